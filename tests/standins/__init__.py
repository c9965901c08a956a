"""Test stand-ins, outside the product package (the wheel ships only ``sgadvisor``): the sample VPC
estate and its flow-log generator (``sample_estate``, which writes ``sample_data/``), the golden outputs
(``golden``), the moto topology (``moto_estate``) and the local CloudWatch Logs endpoint that executes
Insights queries (``cwl_*``). Tests, bench and the sample-data check import them from a checkout; run
the generators from the repository root, e.g. ``python -m tests.standins.golden``. A user of sgadvisor
needs none of them.
"""
