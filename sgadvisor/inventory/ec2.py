"""Read the inventory from the EC2 API into the DESIGN §4.3 snapshot layout.

The snapshot files are exactly the API responses (the AWS CLI shapes), so that a run against the API and
a later offline run over the written files see the same inventory. Every call goes through a paginator:
real accounts page (moto never does, so tests of paging need a paging proxy). The client is passed in;
nothing here creates one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sgadvisor.outputs import write_text_atomic

# file name → (paginated operation, result key); the loader recognises files by that key (DESIGN §4.3).
SNAPSHOT_CALLS: dict[str, tuple[str, str]] = {
    "describe-security-groups.json": ("describe_security_groups", "SecurityGroups"),
    "describe-security-group-rules.json": ("describe_security_group_rules", "SecurityGroupRules"),
    "describe-network-interfaces.json": ("describe_network_interfaces", "NetworkInterfaces"),
    "describe-managed-prefix-lists.json": ("describe_managed_prefix_lists", "PrefixLists"),
    "describe-flow-logs.json": ("describe_flow_logs", "FlowLogs"),
}


def paginate(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of ``key`` over all pages of ``operation``."""
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def collect_inventory(ec2: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The snapshot documents by file name. Prefix lists carry their entries (GetManagedPrefixListEntries)
    so the analysis can tell which addresses a prefix-list rule admits."""
    documents: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for file_name, (operation, key) in SNAPSHOT_CALLS.items():
        documents[file_name] = {key: list(paginate(ec2, operation, key))}
    for prefix_list in documents["describe-managed-prefix-lists.json"]["PrefixLists"]:
        prefix_list["Entries"] = list(
            paginate(
                ec2, "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list["PrefixListId"]
            )
        )
    return documents


def write_snapshot(documents: dict[str, dict[str, list[dict[str, Any]]]], out_dir: Path) -> list[Path]:
    """Write each document as stable, sorted JSON (times as ISO 8601 UTC); each file atomically."""
    written = []
    for file_name, document in sorted(documents.items()):
        path = out_dir / file_name
        write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=_json_value) + "\n")
        written.append(path)
    return written


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} into a snapshot")
