"""``sgadvisor check``: drift of the rules in place from an approved least-privilege baseline (DESIGN §3).

``baseline`` reads the approved rules (recommendation.json, literal Terraform, ``terraform show -json``),
``findings`` compares them with the current state and *the flows* (DESIGN §6), ``exceptions`` applies the
config file's ``[[allow]]``/``[[pin]]`` tables, ``run`` ties the inputs together, and ``text``/``sarif``/
``junit``/``markdown`` render the report, one module per format.
"""
