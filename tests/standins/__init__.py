"""Test stand-ins that ship with the package: the sample VPC estate and its flow-log generator.

They live inside the package (not under ``tests/``) so that the committed ``sample_data/`` can be rebuilt
with ``python -m sgadvisor.testing.sample_estate`` from an installed wheel, and so that tests of any
layer (moto topology, Insights endpoint, analysis invariants) share one ground truth.
"""
