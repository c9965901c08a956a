"""Which CloudWatch log groups hold the flow logs of the ENIs in scope, and in which format.

DescribeFlowLogs names, per flow log, its resource (VPC, subnet or ENI), its destination and its
``LogFormat``; with ``--inventory`` the snapshot's ``describe-flow-logs.json`` does
(:func:`flow_log_entries`), and EC2 is not asked. Flow logs that deliver to CloudWatch Logs are grouped
by log group: a group written in the default format can use Insights' discovered fields, a custom format
needs a generated ``parse @message``.
Two formats in one group are detected: they are queried separately when their field counts differ (a
regular expression on ``@message`` tells the records apart), and refused otherwise.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgadvisor.errors import UsageError
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT, parse_log_format
from sgadvisor.inventory.model import FlowLogConfig


@dataclass(frozen=True)
class LogGroupFormat:
    """One format written into one log group, and the flow logs that write it."""

    log_group: str
    fields: tuple[str, ...]  # AWS field names, in record order
    flow_log_ids: tuple[str, ...]
    traffic_types: tuple[str, ...]
    resource_ids: tuple[str, ...]
    mixed: bool = False  # the group also receives another format (records told apart by field count)

    @property
    def default_format(self) -> bool:
        return self.fields == DEFAULT_FORMAT


@dataclass(frozen=True)
class Discovery:
    formats: tuple[LogGroupFormat, ...]
    warnings: tuple[str, ...]

    @property
    def log_groups(self) -> tuple[str, ...]:
        return tuple(sorted({f.log_group for f in self.formats}))


def flow_log_entries(configs: Iterable[FlowLogConfig]) -> list[dict[str, Any]]:
    """An inventory snapshot's flow logs (``Inventory.flow_logs``) as DescribeFlowLogs entries, for
    :func:`select_flow_logs` and :func:`discover_formats`."""
    entries = []
    for config in configs:
        entry: dict[str, Any] = {
            "FlowLogId": config.flow_log_id,
            "ResourceId": config.resource_id,
            "TrafficType": config.traffic_type,
            "LogDestinationType": config.destination_type,
        }
        if config.log_format:
            entry["LogFormat"] = config.log_format
        if config.log_group:
            entry["LogGroupName"] = config.log_group
        entries.append(entry)
    return entries


def select_flow_logs(
    flow_logs: Iterable[Mapping[str, Any]], resources: Collection[str] | None
) -> list[Mapping[str, Any]]:
    """Flow logs delivering to CloudWatch Logs for the resources in scope (all when ``resources`` is None)."""
    chosen = []
    for flow_log in flow_logs:
        if flow_log.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
            continue
        if not flow_log.get("LogGroupName"):
            continue
        if resources is not None and flow_log.get("ResourceId") not in resources:
            continue
        chosen.append(flow_log)
    return chosen


def discover_formats(
    flow_logs: Iterable[Mapping[str, Any]], log_groups: Sequence[str] = (), source: str = "DescribeFlowLogs"
) -> Discovery:
    """Group CloudWatch flow logs by log group and format. ``log_groups``, when given (``--log-group``),
    restricts the result to those groups; a named group with no known flow log is assumed to hold the
    default format, with a warning. ``source``: where the flow logs were read, for that warning."""
    by_group: dict[str, dict[tuple[str, ...], list[Mapping[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for flow_log in flow_logs:
        text = flow_log.get("LogFormat") or ""
        fields = parse_log_format(text) if text.strip() else DEFAULT_FORMAT
        by_group[str(flow_log["LogGroupName"])][fields].append(flow_log)
    warnings: list[str] = []
    wanted = list(log_groups) or sorted(by_group)
    formats: list[LogGroupFormat] = []
    for group in wanted:
        found = by_group.get(group)
        if not found:
            warnings.append(
                f"log group {group}: no flow log in {source} writes to it; default format assumed"
            )
            formats.append(LogGroupFormat(group, DEFAULT_FORMAT, (), (), ()))
            continue
        mixed = len(found) > 1
        if mixed:
            counts = [len(fields) for fields in found]
            if len(set(counts)) < len(counts):
                ids = ", ".join(sorted(str(fl.get("FlowLogId")) for fls in found.values() for fl in fls))
                raise UsageError(
                    f"log group {group} receives several flow-log formats with the same number of fields "
                    f"({ids}): their records cannot be told apart",
                    hint="send each format to its own log group, or query with --flows on exported files",
                )
            warnings.append(
                f"log group {group} receives {len(found)} flow-log formats; each is queried separately "
                "(records told apart by their field count)"
            )
        for fields, members in sorted(found.items()):
            formats.append(
                LogGroupFormat(
                    log_group=group,
                    fields=fields,
                    flow_log_ids=tuple(sorted(str(m.get("FlowLogId", "")) for m in members)),
                    traffic_types=tuple(sorted({str(m.get("TrafficType", "ALL")) for m in members})),
                    resource_ids=tuple(sorted({str(m.get("ResourceId", "")) for m in members})),
                    mixed=mixed,
                )
            )
    for fmt in formats:
        if "REJECT" in fmt.traffic_types and len(fmt.traffic_types) == 1:
            warnings.append(
                f"log group {fmt.log_group}: its flow logs capture REJECT traffic only (no evidence of use)"
            )
    return Discovery(tuple(formats), tuple(warnings))
