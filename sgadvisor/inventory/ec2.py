"""Read the inventory from the EC2 API into the DESIGN §4.3 snapshot layout.

The snapshot files are exactly the API responses (the AWS CLI shapes), so that a run against the API and
a later offline run over the written files see the same inventory. Every call goes through a paginator:
real accounts page (moto never does, so tests of paging need a paging proxy). The client is passed in;
nothing here creates one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sgadvisor.outputs import write_files

# file name → (paginated operation, result key); the loader recognises files by that key (DESIGN §4.3).
SNAPSHOT_CALLS: dict[str, tuple[str, str]] = {
    "describe-security-groups.json": ("describe_security_groups", "SecurityGroups"),
    "describe-security-group-rules.json": ("describe_security_group_rules", "SecurityGroupRules"),
    "describe-network-interfaces.json": ("describe_network_interfaces", "NetworkInterfaces"),
    "describe-managed-prefix-lists.json": ("describe_managed_prefix_lists", "PrefixLists"),
    "describe-flow-logs.json": ("describe_flow_logs", "FlowLogs"),
    # The VPCs' CIDR blocks: where the Amazon DNS server (base + 2) and the VPC router (base + 1) live.
    "describe-vpcs.json": ("describe_vpcs", "Vpcs"),
}


# The calls that collect only the scope's VPCs (the others are account-wide or follow the groups).
SCOPED_CALLS = frozenset(
    {
        "describe_security_groups",
        "describe_security_group_rules",
        "describe_network_interfaces",
        "describe_vpcs",
    }
)

# ENIs that AWS services manage for you (load balancers, endpoints, NAT gateways, Lambda…) are left out
# of DescribeNetworkInterfaces unless asked for; they carry groups and addresses the analysis needs.
_EXTRA_ARGS: dict[str, dict[str, Any]] = {"describe_network_interfaces": {"IncludeManagedResources": True}}


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of ``key`` over all pages of ``operation``."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def scope_vpcs(
    ec2: Any,
    *,
    vpcs: Sequence[str] = (),
    groups: Sequence[str] = (),
    enis: Sequence[str] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> list[str] | None:
    """The VPCs a scope lives in (None: the whole account/region). Whole VPCs are collected even for a
    narrower scope, because out-of-scope groups are still reference destinations (DESIGN §3)."""
    if not (vpcs or groups or enis or tags):
        return None
    found = set(vpcs)
    for chunk in _chunks(list(groups)):
        found.update(
            g["VpcId"] for g in paginate(ec2, "describe_security_groups", "SecurityGroups", GroupIds=chunk)
        )
    for chunk in _chunks(list(enis)):
        found.update(
            e["VpcId"]
            for e in paginate(
                ec2,
                "describe_network_interfaces",
                "NetworkInterfaces",
                NetworkInterfaceIds=chunk,
                **_EXTRA_ARGS["describe_network_interfaces"],
            )
        )
    for key, value in tags:
        filters = [{"Name": f"tag:{key}", "Values": [value]}]
        found.update(
            g["VpcId"] for g in paginate(ec2, "describe_security_groups", "SecurityGroups", Filters=filters)
        )
    return sorted(v for v in found if v)


def collect_inventory(
    ec2: Any, vpcs: Sequence[str] | None = None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The snapshot documents by file name (of ``vpcs`` only, when given). Prefix lists carry their entries
    (GetManagedPrefixListEntries) so the analysis can tell which addresses a prefix-list rule admits."""
    documents: dict[str, dict[str, list[dict[str, Any]]]] = {}
    by_vpc = [{"Name": "vpc-id", "Values": list(vpcs)}] if vpcs is not None else None
    for file_name, (operation, key) in SNAPSHOT_CALLS.items():
        extra = _EXTRA_ARGS.get(operation, {})
        scoped = operation in SCOPED_CALLS
        if vpcs is not None and not vpcs and scoped:
            items = []  # the scope matched no VPC (an empty filter would be refused, or match everything)
        elif by_vpc is not None and operation in (
            "describe_security_groups",
            "describe_network_interfaces",
            "describe_vpcs",
        ):
            items = list(paginate(ec2, operation, key, Filters=by_vpc, **extra))
        elif by_vpc is not None and operation == "describe_security_group_rules":
            group_ids = [g["GroupId"] for g in documents["describe-security-groups.json"]["SecurityGroups"]]
            items = [
                rule
                for chunk in _chunks(group_ids)
                for rule in paginate(ec2, operation, key, Filters=[{"Name": "group-id", "Values": chunk}])
            ]
        else:
            items = list(paginate(ec2, operation, key, **extra))
        documents[file_name] = {key: items}
    for prefix_list in documents["describe-managed-prefix-lists.json"]["PrefixLists"]:
        prefix_list["Entries"] = list(
            paginate(
                ec2, "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list["PrefixListId"]
            )
        )
    return documents


def _chunks(values: list[str], size: int = 200) -> list[list[str]]:
    """EC2 filters and id lists accept a bounded number of values per call."""
    return [values[i : i + size] for i in range(0, len(values), size)]


def write_snapshot(documents: dict[str, dict[str, list[dict[str, Any]]]], out_dir: Path) -> list[Path]:
    """Write each document as stable, sorted JSON (times as ISO 8601 UTC); all files or none."""
    return write_files(
        {out_dir / name: snapshot_text(document) for name, document in sorted(documents.items())}
    )


def snapshot_text(document: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, default=_json_value) + "\n"


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} into a snapshot")
