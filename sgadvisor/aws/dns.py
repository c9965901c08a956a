"""Route 53 Resolver query logs in AWS mode: found from the Resolver query-logging configurations of the
VPCs in scope (or named with ``--dns-log-group``) and read with Logs Insights over the flow window.

Discovery. ``ListResolverQueryLogConfigAssociations`` (filter ``ResourceId`` = the VPCs in scope) names the
query-logging configurations that log those VPCs; ``ListResolverQueryLogConfigs`` (filter ``Id``) their
``DestinationArn``: a CloudWatch Logs log group (``arn:aws:logs:<region>:<account>:log-group:<name>``) is
read; an S3 bucket or a Kinesis Data Firehose stream cannot be read here, and a warning names it (copy the
files and pass ``--dns-logs``). So does a configuration shared with this account (its log group is in the
owner's account), a log group of another region, and an association that is not ``ACTIVE``. Discovery is
a convenience: when it is refused (no ``route53resolver:List*`` permission, no endpoint) the run goes on
without DNS evidence and says why. A log group named with ``--dns-log-group`` is read as named, for the
VPCs in scope; a missing one is an error.

Reading. The analysis needs only queries that resolved, from the clients' records, so each log group is
read with :func:`dns_query`: every ``NOERROR`` record of the VPCs in scope, as its ``@message`` (the JSON
record as Route 53 Resolver wrote it), parsed by ``parse_record`` into the same tables the file reader
fills (:class:`sgadvisor.dnslogs.DnsLogBuilder`). The rest stays in CloudWatch Logs and is counted in the
accounting as filtered (records scanned minus records matched), so ``--show-all-names`` lists only names
that resolved (the file reader also lists those that did not). A log group of the Infrequent Access class
has no field discovery: its records are matched in ``@message`` instead.

One query per log group and UTC day of the window (widened by ``MARGIN`` on both sides: the event time is the
Resolver's, the window is judged on ``query_timestamp`` as for files), run by the project's Insights runner
(concurrency, polling, StopQuery on Ctrl-C/SIGTERM, the ``--timeout`` deadline): a day that returns as many
rows as the limit is split by time (then by log stream) until no part may have been cut. Rows scale with
queries, not with distinct answers, so a busy VPC costs several queries a day and each split re-scans its
range: the stderr notice reports the queries and the bytes scanned. ``--max-bytes`` applies to the estimate of
the DNS scan on its own (an explicit group over it is refused; discovered ones are skipped, with a warning).
The days run in batches of ``--max-concurrent-queries`` so that at most one batch of rows is held before it is
folded into the compact tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sgadvisor.aws.clients import AwsSettings, aws_errors, make_client, make_session
from sgadvisor.aws.cost import ScanBudget
from sgadvisor.aws.flows import estimate_scan_bytes, stream_lister
from sgadvisor.aws.insights import InsightsRunner, QueryTask, RunnerSettings, RunStats, TaskResult
from sgadvisor.dnslogs.reader import DnsLogBuilder
from sgadvisor.errors import AwsError, CostLimitError, SgAdvisorError
from sgadvisor.flowlogs.edges import Window
from sgadvisor.insights.builder import quote
from sgadvisor.inventory.model import Inventory
from sgadvisor.jsonload import load_json_text

DAY = 86_400
MARGIN = 300  # seconds read beyond the window on each side (event time vs query_timestamp)
MAX_VPC_FILTER = 200  # VPC ids written into the query's filter; beyond that, every VPC's records are read
FILTER_VALUES = 20  # values per Filter of the List calls
SHAPE = "cloudwatch-insights"  # the shape a log group's records are read as (DnsLog.shapes)
LEFT_OUT = "not NOERROR, or of a VPC out of scope (left in CloudWatch Logs by the query)"
_DISCOVERY_ATTEMPTS = 3  # discovery is optional: fail fast rather than retry for a minute
_FIELDS = ("@timestamp", "@logStream", "@message")
_VPC_ID = re.compile(r"vpc-[0-9a-zA-Z]+")


# ------------------------------------------------------------------------------------------ discovery


@dataclass(frozen=True)
class Destination:
    """Where a query-logging configuration delivers: ``kind`` is ``logs``, ``s3``, ``firehose`` or the
    ARN's service; ``name`` the log group, bucket (with its prefix) or delivery stream."""

    kind: str
    name: str
    region: str = ""
    account: str = ""


def parse_destination(arn: str) -> Destination:
    """The destination of a ``DestinationArn`` (any partition)."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or parts[0] != "arn":
        return Destination("unknown", arn)
    _, _, service, region, account, resource = parts
    if service == "logs" and resource.startswith("log-group:"):
        return Destination("logs", resource.removeprefix("log-group:").removesuffix(":*"), region, account)
    if service == "s3":
        return Destination("s3", resource, region, account)
    if service == "firehose" and resource.startswith("deliverystream/"):
        return Destination("firehose", resource.removeprefix("deliverystream/"), region, account)
    return Destination(service or "unknown", resource, region, account)


@dataclass(frozen=True)
class DnsDiscovery:
    """The log groups holding query logs of the VPCs in scope (group → those VPCs), and what could not
    be used."""

    groups: Mapping[str, tuple[str, ...]]
    warnings: tuple[str, ...] = ()
    unlogged: tuple[str, ...] = ()  # VPCs in scope that no configuration logs


def discover_query_logs(resolver: Any, vpcs: Sequence[str], region: str | None = None) -> DnsDiscovery:
    """The CloudWatch Logs destinations of the query-logging configurations associated with ``vpcs``.
    Raises botocore's errors (the caller decides whether discovery may fail)."""
    associations = _listed(
        resolver,
        "list_resolver_query_log_config_associations",
        "ResolverQueryLogConfigAssociations",
        "ResourceId",
        sorted(set(vpcs)),
    )
    warnings: list[str] = []
    vpcs_of: dict[str, set[str]] = {}
    for association in associations:
        vpc, config = association.get("ResourceId"), association.get("ResolverQueryLogConfigId")
        if vpc not in vpcs or not config:
            continue
        vpcs_of.setdefault(str(config), set()).add(str(vpc))
        status = association.get("Status", "ACTIVE")
        if status != "ACTIVE":
            error = association.get("Error")
            why = f" ({error}: {association.get('ErrorMessage') or '-'})" if error and error != "NONE" else ""
            warnings.append(
                f"Route 53 Resolver query logging of {vpc} (configuration {config}) is {status}{why}: "
                "its log may lack queries of the window"
            )
    configs = _listed(resolver, "list_resolver_query_log_configs", "ResolverQueryLogConfigs", "Id",
                      sorted(vpcs_of))  # fmt: skip
    groups: dict[str, set[str]] = {}
    found: set[str] = set()
    for config in configs:
        config_id = str(config.get("Id", ""))
        served = sorted(vpcs_of.get(config_id, ()))
        if not served:
            continue
        found.add(config_id)
        destination = parse_destination(str(config.get("DestinationArn", "")))
        text = _vpcs_text(served)
        if destination.kind == "logs":
            if config.get("ShareStatus") == "SHARED_WITH_ME":
                warnings.append(
                    f"Route 53 Resolver query logs of {text} go to log group {destination.name} of account "
                    f"{destination.account} (configuration {config_id} is shared with this account): not "
                    "read; run with that account's credentials and --dns-log-group, or pass --dns-logs"
                )
            elif region and destination.region and destination.region != region:
                warnings.append(
                    f"Route 53 Resolver query logs of {text} go to log group {destination.name} in "
                    f"{destination.region}, not {region}: not read"
                )
            else:
                groups.setdefault(destination.name, set()).update(served)
        elif destination.kind == "s3":
            warnings.append(
                f"Route 53 Resolver query logs of {text} go to S3 bucket {destination.name} (configuration "
                f"{config_id}): not read in AWS mode; copy its AWSLogs/<account>/vpcdnsquerylogs/ files and "
                "pass --dns-logs"
            )
        elif destination.kind == "firehose":
            warnings.append(
                f"Route 53 Resolver query logs of {text} go to Kinesis Data Firehose stream "
                f"{destination.name} (configuration {config_id}): not read in AWS mode; pass --dns-logs on "
                "a copy of what the stream delivers"
            )
        else:
            warnings.append(
                f"Route 53 Resolver query logs of {text} go to "
                f"{destination.name or 'an unknown destination'} (configuration {config_id}): not read"
            )
    for config_id in sorted(set(vpcs_of) - found):
        warnings.append(f"Route 53 Resolver query-logging configuration {config_id} is not listed: not read")
    logged = {vpc for config_id in found for vpc in vpcs_of[config_id]}
    return DnsDiscovery(
        {group: tuple(sorted(served)) for group, served in sorted(groups.items())},
        tuple(warnings),
        tuple(sorted(set(vpcs) - logged)),
    )


def _listed(client: Any, operation: str, key: str, name: str, values: Sequence[str]) -> list[dict[str, Any]]:
    """Every item of a Resolver List call filtered on ``name`` ∈ ``values`` (a few values per call)."""
    items: list[dict[str, Any]] = []
    paginator = client.get_paginator(operation)
    for index in range(0, len(values), FILTER_VALUES):
        chunk = list(values[index : index + FILTER_VALUES])
        for page in paginator.paginate(Filters=[{"Name": name, "Values": chunk}]):
            items += page.get(key, [])
    return items


def _vpcs_text(vpcs: Sequence[str]) -> str:
    return ", ".join(vpcs) if len(vpcs) <= 5 else f"{', '.join(vpcs[:5])} and {len(vpcs) - 5} more VPCs"


# ------------------------------------------------------------------------------------------ the query


def dns_query(vpcs: Sequence[str] = (), streams: Sequence[str] = (), *, discovered: bool = True) -> str:
    """The Logs Insights query: every resolved query (``rcode`` NOERROR) of ``vpcs`` as its JSON record
    (``@message``), with where it was (``@timestamp``, ``@logStream``) for messages about a bad record;
    ``streams`` restricts it to some log streams (the runner's split by stream).

    Insights discovers the fields of JSON records (``rcode``, ``vpc_id``) by itself, but only in log
    groups of the Standard class; elsewhere (``discovered`` False: Infrequent Access) the same records are
    matched in ``@message`` with regular expressions."""
    lines: list[str] = []
    if streams:
        lines.append(f"filter @logStream in [{', '.join(quote(s) for s in streams)}]")
    with_vpcs = bool(vpcs) and len(vpcs) <= MAX_VPC_FILTER
    if discovered:
        condition = "rcode = 'NOERROR'"
        if with_vpcs:
            condition += f" and vpc_id in [{', '.join(quote(v) for v in vpcs)}]"
    else:
        condition = '@message like /"rcode"\\s*:\\s*"NOERROR"/'
        if with_vpcs and all(_VPC_ID.fullmatch(v) for v in vpcs):
            condition += f' and @message like /"vpc_id"\\s*:\\s*"({"|".join(vpcs)})"/'
    lines.append(f"filter {condition}")
    lines.append(f"fields {', '.join(_FIELDS)}")
    return "\n".join(lines[:1] + [f"| {line}" for line in lines[1:]])


def day_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end]`` (inclusive seconds) cut at UTC midnights: one inclusive range per day touched."""
    ranges = []
    while start <= end:
        stop = min(end, (start // DAY + 1) * DAY - 1)
        ranges.append((start, stop))
        start = stop + 1
    return ranges


# ------------------------------------------------------------------------------------------ reading


@dataclass
class DnsRead:
    """What was read from CloudWatch Logs (for the stderr notice) and what could not be."""

    log_groups: tuple[str, ...] = ()
    discovered: bool = False
    stats: RunStats = field(default_factory=RunStats)
    estimated_bytes: int = 0
    records: int = 0  # rows read (resolved queries of the VPCs in scope, margins included)
    warnings: tuple[str, ...] = ()

    def describe(self) -> str:
        stats = self.stats
        how = "found from the Resolver query-logging configurations" if self.discovered else "--dns-log-group"
        return (
            f"DNS query logs: {', '.join(self.log_groups)} ({how}): {self.records:,} resolved queries read "
            f"with {stats.queries} Logs Insights queries, {stats.records_scanned:,} records and "
            f"{stats.bytes_scanned:,} bytes scanned (estimated {self.estimated_bytes:,}; splits by time "
            f"{stats.splits_by_time}, by stream {stats.splits_by_stream})"
        )


def read_dns_insights(
    runner: InsightsRunner,
    groups: Mapping[str, Sequence[str]],
    window: Window,
    builder: DnsLogBuilder,
    *,
    explicit: bool,
    max_bytes: int | None = None,
    now: float | None = None,
) -> DnsRead:
    """Read the resolved queries of ``groups`` (log group → the VPCs in scope it logs; empty: every VPC)
    over ``window`` into ``builder``. Named groups (``explicit``) must exist; discovered ones that do not
    are skipped with a warning.

    ``max_bytes``: what the run may still scan (``--max-bytes`` less what the flow queries scanned). An
    estimate above it refuses named groups (exit 2) and skips discovered ones with a warning; then each
    query is admitted on its share of the estimate and the bytes scanned so far, as the flow queries are
    (aws/cost.py): one that could pass the limit stops the run (exit 2)."""
    warnings: list[str] = []
    existing = []
    discovered: dict[str, bool] = {}  # group → whether Insights discovers its fields (Standard class)
    for name in groups:
        with aws_errors(f"DescribeLogGroups {name}"):
            found = _log_group(runner.logs, name)
        if found is not None:
            existing.append(name)
            discovered[name] = found.get("logGroupClass", "STANDARD") == "STANDARD"
        elif explicit:
            raise AwsError(f"log group {name} does not exist", hint="check --dns-log-group and --region")
        else:
            warnings.append(f"Route 53 Resolver query-log group {name} does not exist (any more): not read")
    first, last = window.start - MARGIN, window.end - 1 + MARGIN  # StartQuery's times are inclusive
    read = DnsRead(discovered=not explicit, warnings=tuple(warnings))
    if not existing:
        return read
    estimate = estimate_scan_bytes(runner.logs, existing, Window(first, last + 1), now)
    runner.progress(f"estimated DNS query-log scan: {estimate / 1e9:.2f} GB over {len(existing)} log groups")
    if max_bytes is not None and estimate > max_bytes:
        message = (
            f"reading the DNS query logs would scan about {estimate:,} bytes, above --max-bytes {max_bytes:,}"
        )
        if explicit:
            raise CostLimitError(
                message, hint="shorten the window (--since), raise --max-bytes, or pass --dns-logs files"
            )
        read.warnings += (f"{message}: not read (raise --max-bytes, or pass --dns-logs files)",)
        return read
    days = day_ranges(first, last)
    share = estimate // max(len(existing) * len(days), 1)  # each query's part of the estimate
    tasks = [
        QueryTask(
            log_groups=(name,),
            start=start,
            end=end,
            build=_builder(groups[name], discovered[name]),
            label=f"{name} (DNS {_day(start)})",
            time_slot=runner.settings.min_split_seconds,  # rows scale with time: split time first
            estimated_bytes=share,
        )
        for name in existing
        for start, end in days
    ]
    budget = ScanBudget(max_bytes)
    read.log_groups, read.estimated_bytes, read.stats = tuple(existing), estimate, runner.stats
    for name in existing:
        builder.add_source(name, SHAPE)
    with aws_errors("running Logs Insights queries on the DNS query logs"):
        for batch in _batches(tasks, max(1, runner.settings.max_concurrent)):
            for result in runner.run(batch, budget):
                read.records += _fold(result, builder)
    return read


def _builder(vpcs: Sequence[str], discovered: bool) -> Callable[[Sequence[str]], str]:
    def build(streams: Sequence[str]) -> str:
        return dns_query(vpcs, streams, discovered=discovered)

    return build


def _batches(tasks: Sequence[QueryTask], size: int) -> Iterator[Sequence[QueryTask]]:
    for index in range(0, len(tasks), size):
        yield tasks[index : index + size]


def _fold(result: TaskResult, builder: DnsLogBuilder) -> int:
    """One query's rows into the builder (each record parsed as a file's), the rest counted as left out."""
    (group,) = result.task.log_groups
    for row in result.rows:
        where = f"event of {row.get('@timestamp') or '?'} in stream {row.get('@logStream') or '?'}: "
        message = row.get("@message")
        if message is None:
            builder.add_malformed(group, f"{where}no @message")
            continue
        try:
            value = load_json_text(message, source=group)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            builder.add_malformed(group, f"{where}message is not JSON: {getattr(exc, 'msg', exc)}")
            continue
        except SgAdvisorError as exc:  # hostile JSON: one bad record here, not a bad file
            builder.add_malformed(group, f"{where}{exc.message}")
            continue
        builder.add_record(group, value, where=where)
    statistics = result.statistics
    left_out = int(statistics.get("recordsScanned", 0)) - int(statistics.get("recordsMatched", 0))
    builder.add_filtered(LEFT_OUT, max(left_out, 0))
    return len(result.rows)


def _log_group(logs: Any, name: str) -> dict[str, Any] | None:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page.get("logGroups", []):
            if group.get("logGroupName") == name:
                return dict(group)
    return None


def _day(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


# ------------------------------------------------------------------------------------------ AWS mode


def scope_vpcs(inventory: Inventory) -> list[str]:
    """The VPCs of the inventory (whole VPCs of the scope): its VPCs, and those its ENIs and groups name."""
    vpcs = set(inventory.vpcs)
    vpcs.update(i.vpc_id for i in inventory.interfaces.values() if i.vpc_id)
    vpcs.update(g.vpc_id for g in inventory.groups.values() if g.vpc_id)
    return sorted(vpcs)


def load_aws_dns_logs(
    settings: AwsSettings,
    runner_settings: RunnerSettings,
    inventory: Inventory,
    window: Window,
    builder: DnsLogBuilder,
    *,
    log_groups: Sequence[str] = (),
    discover: bool = False,
    max_bytes: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> DnsRead | None:
    """AWS mode: the query logs of ``log_groups`` (``--dns-log-group``), else, with ``discover``, of the
    log groups the VPCs in scope log to, read into ``builder``. None when neither applies."""
    if not log_groups and not discover:
        return None
    vpcs = scope_vpcs(inventory)
    session = make_session(settings)
    warnings: tuple[str, ...] = ()
    if log_groups:
        groups: Mapping[str, Sequence[str]] = dict.fromkeys(log_groups, vpcs)
    else:
        discovery = _discover(session, settings, vpcs, progress)
        if isinstance(discovery, str):
            return DnsRead(discovered=True, warnings=(discovery,))
        groups, warnings = discovery.groups, discovery.warnings
        if groups and discovery.unlogged:
            warnings += (
                f"{_vpcs_text(discovery.unlogged)} in scope log no Route 53 Resolver queries to CloudWatch "
                "Logs: their internet destinations get no names",
            )
        if not groups:
            progress("no Route 53 Resolver query log of the VPCs in scope delivers to CloudWatch Logs")
            return DnsRead(discovered=True, warnings=warnings)
        progress(f"Route 53 Resolver query logs found in {', '.join(groups)}")
    logs = make_client(session, "logs", settings)
    runner = InsightsRunner(
        logs,
        settings=replace(runner_settings),
        progress=progress,
        list_streams=stream_lister(logs),
        deadline=settings.deadline,
    )
    read = read_dns_insights(runner, groups, window, builder, explicit=bool(log_groups), max_bytes=max_bytes)
    read.warnings = warnings + read.warnings
    return read


def _discover(
    session: Any, settings: AwsSettings, vpcs: Sequence[str], progress: Callable[[str], None]
) -> DnsDiscovery | str:
    """Discovery, or the warning saying why it could not be done (the run goes on without it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    quick = replace(settings, max_attempts=min(settings.max_attempts, _DISCOVERY_ATTEMPTS))
    try:
        resolver = make_client(session, "route53resolver", quick)
        return discover_query_logs(resolver, vpcs, getattr(resolver.meta, "region_name", None))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        why = f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    except BotoCoreError as exc:
        why = str(exc)
    progress(f"Route 53 Resolver query-log discovery failed: {why}")
    return (
        f"Route 53 Resolver query logs could not be looked up ({why}): internet destinations get no names; "
        "grant route53resolver:ListResolverQueryLogConfigAssociations and ListResolverQueryLogConfigs "
        "(examples/iam-policy.json), or name the log group with --dns-log-group"
    )
