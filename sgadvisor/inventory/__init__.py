"""Inventory: security groups, rules, ENIs, prefix lists and flow logs, from snapshots or the EC2 API."""
