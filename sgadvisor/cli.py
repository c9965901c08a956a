"""The command line: thin typer commands; domain errors become one message and exit code 2 here only."""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from sgadvisor import __version__, terminal
from sgadvisor.analysis.awsranges import load_ip_ranges
from sgadvisor.analysis.direction import Confidence, EphemeralRanges
from sgadvisor.analysis.internet import FirewallAction, InternetOptions, InternetPolicy
from sgadvisor.analysis.recommend import AnalysisOptions, Scope
from sgadvisor.athena.source import AthenaInputs
from sgadvisor.aws.clients import AwsSettings
from sgadvisor.aws.control import Deadline, aws_run
from sgadvisor.aws.history import HistoryMode
from sgadvisor.aws.insights import RunnerSettings
from sgadvisor.aws.source import AwsInputs
from sgadvisor.config import ConfigFile, build_default_map, find_config_path, load_config
from sgadvisor.errors import SgAdvisorError, TooManyMalformedError, UsageError
from sgadvisor.flowlogs.edgefile import write_edge_lines
from sgadvisor.flowlogs.edges import FlowEdges, PortRange, Window
from sgadvisor.flowlogs.fields import parse_log_format
from sgadvisor.flowlogs.ingest import DEFAULT_MAX_MALFORMED, IngestOptions, check_malformed, read_flows
from sgadvisor.flowlogs.spans import SPAN_RESOLUTION
from sgadvisor.flowlogs.summary import describe_accounting, describe_flows
from sgadvisor.insights.output import QueryOutput
from sgadvisor.inventory.model import Inventory
from sgadvisor.models import Recommendation
from sgadvisor.outputs import atomic_writer
from sgadvisor.pipeline import (
    OutputFormat,
    PrintedSql,
    RecommendInputs,
    load_recommendation,
    recommend,
    write_outputs,
)
from sgadvisor.render import RenderContext
from sgadvisor.render.json_out import recommendation_json
from sgadvisor.render.quoting import safe_text
from sgadvisor.render.summary_table import format_summary
from sgadvisor.terminal import Progress
from sgadvisor.timeparse import parse_duration, parse_instant, parse_size


class _Interrupted(BaseException):
    """Ctrl-C inside a command, raised past click/typer (which would turn it into "Aborted!" and exit 1 in
    some versions: `check`'s exit code for drift) to :func:`main`, which exits 130."""


class _PipeClosed(BaseException):
    """A closed pipe that no output helper met (they let the command finish): the command stopped."""


class _Group(TyperGroup):
    def invoke(self, ctx: Any) -> Any:  # typer's (vendored) click.Context
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # the command's own cleanup (StopQuery, temp files) has run
            raise _Interrupted() from exc
        except BrokenPipeError as exc:
            raise _PipeClosed() from exc


app = typer.Typer(
    name="sgadvisor",
    help="Least-privilege security-group egress rules from VPC Flow Logs evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=_Group,
)

# ------------------------------------------------------------------------------------- shared options
FlowsOpt = Annotated[
    list[Path],
    typer.Option(
        "--flows",
        help="Flow-log files or directories (S3 text/.gz, Parquet, CloudWatch JSON, flow-edge JSONL). "
        "Repeatable.",
    ),
]
LogFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--log-format", help="Field order of header-less records, e.g. '${version} ${srcaddr} ...'."
    ),
]
LogStreamOpt = Annotated[
    str | None,
    typer.Option("--log-stream", help="Log stream of get-log-events JSON whose records lack interface-id."),
]
BucketOpt = Annotated[
    str, typer.Option("--bucket-ports", help="Ports in this range become 0 when the other port is not.")
]
StartOpt = Annotated[
    str | None, typer.Option("--start", help="Window start (ISO 8601 or epoch seconds), inclusive.")
]
EndOpt = Annotated[
    str | None, typer.Option("--end", help="Window end (ISO 8601 or epoch seconds), exclusive.")
]
MaxMalformedOpt = Annotated[
    float,
    typer.Option("--max-malformed", help="Fail (exit 2) above this fraction of malformed records."),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config (default ./sgadvisor.toml if present)."),
]
RegionOpt = Annotated[
    str | None, typer.Option("--region", help="AWS region (else AWS_REGION / the profile's).")
]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile (else AWS_PROFILE).")]
FormatsOpt = Annotated[
    list[OutputFormat],
    typer.Option(
        "--format",
        help="Outputs to write (repeatable): json, terraform, html, markdown; default all.",
    ),
]
TerraformDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--terraform-dir",
        help="Your Terraform code: warn when a group's egress is also managed there (inline egress blocks, "
        "aws_security_group_rule), which would fight egress.tf.",
    ),
]
LogGroupOpt = Annotated[
    list[str],
    typer.Option(
        "--log-group",
        help="CloudWatch log group with flow logs (repeatable); default: found with DescribeFlowLogs.",
    ),
]
SinceOpt = Annotated[
    str,
    typer.Option("--since", help="AWS window (Insights or Athena): this long (14d, 36h, …) before --lag."),
]
LagOpt = Annotated[
    str,
    typer.Option(
        "--lag", help="AWS window (Insights or Athena) ends this long before now (flow-log delivery lags)."
    ),
]
MaxBytesOpt = Annotated[
    str | None,
    typer.Option(
        "--max-bytes",
        help="Stop before the run's queries (flows: Insights or Athena; DNS query logs) scan more than this "
        "(e.g. 50GB): checked on the estimate before running and on the bytes actually scanned, splits "
        "included (exit 2).",
    ),
]
MaxQueriesOpt = Annotated[
    int, typer.Option("--max-concurrent-queries", help="Insights queries in flight at once (account quota).")
]
DEFAULT_TIMEOUT = "6h"
TimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout",
        help="AWS mode: stop the whole AWS run (EC2, DescribeFlowLogs, Insights or Athena queries, retries) "
        "after this long (30m, 2h; 0: no limit), stopping the queries in flight; exit 2.",
    ),
]
HistoryOpt = Annotated[
    HistoryMode,
    typer.Option(
        "--history",
        help="ENI history (AWS Config, else CloudTrail): for the ENIs and in-VPC addresses the flows name "
        "that the inventory lacks (missing), also for every ENI in scope (all), or none. collect writes it "
        "into the snapshot (missing: nothing without --flows-out); recommend and check fetch it when they "
        "read the inventory from EC2 and flows (with --inventory the snapshot's own history files are used "
        "as they are).",
    ),
]
AthenaTableOpt = Annotated[
    list[str],
    typer.Option(
        "--athena-table",
        metavar="DATABASE.TABLE",
        help="Read the flows with Amazon Athena from this flow-log table (repeatable: one per format). "
        "Its definition comes from athena:GetTableMetadata, or from --athena-ddl.",
    ),
]
AthenaDdlOpt = Annotated[
    list[Path],
    typer.Option(
        "--athena-ddl",
        metavar="FILE",
        help="The CREATE EXTERNAL TABLE statement of the Athena table (repeatable), instead of asking "
        "Athena.",
    ),
]
AthenaResultOpt = Annotated[
    list[Path],
    typer.Option(
        "--athena-result",
        metavar="FILE",
        help="The result CSV Athena wrote for the SQL --print-sql printed (same window and --bucket-ports): "
        "the flows, with no AWS call (repeatable: one per table).",
    ),
]
AthenaWorkgroupOpt = Annotated[str | None, typer.Option("--athena-workgroup", help="Athena workgroup.")]
AthenaOutputOpt = Annotated[
    str | None,
    typer.Option(
        "--athena-output", metavar="S3URI", help="Athena query result location (else the workgroup's)."
    ),
]
PrintSqlOpt = Annotated[
    bool,
    typer.Option("--print-sql", help="Print the Athena SQL that would be submitted and stop (no AWS call)."),
]
InternetOpt = Annotated[
    InternetPolicy | None,
    typer.Option(
        "--internet",
        help="Internet destinations: port (the observed protocol and ports to the internet, what survives "
        "address rotation; the default without DNS evidence), address (today's /32s, labelled pinned), auto "
        "(names from the query logs; only stable names are pinned; the default with --dns-logs, "
        "--dns-log-group or query logs found in AWS mode). [[fixed]] "
        "config tables pin a partner address under any policy.",
        case_sensitive=False,
    ),
]
DnsLogsOpt = Annotated[
    list[Path],
    typer.Option(
        "--dns-logs",
        metavar="PATH",
        help="Route 53 Resolver query logs (repeatable; files or folders: the S3 delivery layout, CloudWatch "
        "Logs exports, filter-log-events JSON): names internet destinations and writes egress-domains.tf.",
    ),
]
DnsLogGroupOpt = Annotated[
    list[str],
    typer.Option(
        "--dns-log-group",
        metavar="NAME",
        help="CloudWatch log group holding Route 53 Resolver query logs (repeatable; with --dns-logs, both "
        "are read), read with Logs Insights over the flow window for the VPCs in scope. Default in AWS mode "
        "(flows from Insights, neither --dns-logs nor --dns-log-group, --internet auto or unset): the log "
        "groups the Resolver query-logging configurations of the VPCs in scope deliver to; when any is "
        "found --internet defaults to auto, otherwise to port.",
    ),
]
FirewallActionOpt = Annotated[
    FirewallAction,
    typer.Option(
        "--dns-firewall-action",
        help="egress-domains.tf: what DNS Firewall does with every domain outside the allowlist.",
        case_sensitive=False,
    ),
]
ShowAllNamesOpt = Annotated[
    bool,
    typer.Option(
        "--show-all-names",
        help="Put every DNS name the query logs hold into the outputs (by default only names that back a "
        "rule: the logs name everything the workloads asked for).",
    ),
]
TagOpt = Annotated[
    list[str],
    typer.Option("--tag", help="Only groups carrying this tag KEY=VALUE (repeatable: all of them)."),
]
MinWindowOpt = Annotated[
    str,
    typer.Option(
        "--min-window", help="Evidence a group needs before a rule may be called unused (7d, 36h, …)."
    ),
]
MinRecordsOpt = Annotated[int, typer.Option("--min-records", help="Records a flow needs to count.")]
MinConfidenceOpt = Annotated[
    Confidence, typer.Option("--min-confidence", help="Lowest initiator confidence that counts.")
]
MaxUnattributedOpt = Annotated[
    int,
    typer.Option(
        "--max-unattributed", help="Initiated records of unknown ENIs tolerated before coverage drops."
    ),
]
MaxGapOpt = Annotated[
    str,
    typer.Option(
        "--max-gap",
        help="Longest stretch of an ENI's life in the window without a record of it (NODATA included) "
        "before its coverage is partial (30m, 1h, …).",
    ),
]
AllowMissingOpt = Annotated[
    bool,
    typer.Option(
        "--allow-missing",
        help="Go on when part of --flows cannot be read (else exit 2); the ENIs it could hold are partial.",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")]
InventoryOpt = Annotated[
    list[Path],
    typer.Option("--inventory", help="Inventory snapshot files or directories (AWS CLI JSON shapes)."),
]
EdgesInventoryOpt = Annotated[
    list[Path],
    typer.Option(
        "--inventory",
        help="Inventory snapshot files or directories: its ENI addresses decide the direction of records "
        "without flow-direction; with Athena its flow logs restrict each text table to the flow logs of "
        "its format (several formats under one S3 prefix).",
    ),
]
# Scope (repeatable), in each command's words: what recommend analyses, check checks, collect collects.
AnalyseVpcOpt = Annotated[list[str], typer.Option("--vpc", help="Analyse groups of this VPC (repeatable).")]
AnalyseGroupOpt = Annotated[list[str], typer.Option("--group", help="Analyse this group (repeatable).")]
AnalyseEniOpt = Annotated[
    list[str], typer.Option("--eni", help="Analyse the groups of this ENI (repeatable).")
]
CheckVpcOpt = Annotated[list[str], typer.Option("--vpc", help="Check groups of this VPC (repeatable).")]
CheckGroupOpt = Annotated[list[str], typer.Option("--group", help="Check this group (repeatable).")]
CheckEniOpt = Annotated[list[str], typer.Option("--eni", help="Check the groups of this ENI (repeatable).")]
CollectVpcOpt = Annotated[list[str], typer.Option("--vpc", help="Collect this VPC (repeatable).")]
CollectGroupOpt = Annotated[
    list[str], typer.Option("--group", help="Collect the VPC of this group (repeatable).")
]
CollectEniOpt = Annotated[list[str], typer.Option("--eni", help="Collect the VPC of this ENI (repeatable).")]
EphemeralOpt = Annotated[
    list[str],
    typer.Option(
        "--ephemeral-ports",
        help="Client port range LOW-HIGH for initiator inference (repeatable; default Linux 32768-60999 "
        "and Windows 49152-65535).",
    ),
]
CheckEphemeralOpt = Annotated[
    list[str],
    typer.Option("--ephemeral-ports", help="Client port range LOW-HIGH for initiator inference."),
]

# Defaults the commands share (shown by --help).
DEFAULT_BUCKET_PORTS = "32768-65535"
DEFAULT_SINCE = "14d"
DEFAULT_LAG = "15m"
DEFAULT_MAX_CONCURRENT = 4
DEFAULT_MIN_WINDOW = "7d"
DEFAULT_MAX_GAP = "30m"
DEFAULT_MIN_RECORDS = 1
DEFAULT_MIN_CONFIDENCE = Confidence.LOW
DEFAULT_MAX_UNATTRIBUTED = 0


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"sgadvisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """sgadvisor turns observed VPC Flow Logs into least-privilege egress rules."""


def _athena_inputs(
    tables: Sequence[str],
    ddl: Sequence[Path],
    results: Sequence[Path],
    workgroup: str | None,
    output: str | None,
    print_sql: bool,
) -> AthenaInputs | None:
    """The Athena options as one model, or None when no Athena option was given."""
    athena = AthenaInputs(tuple(tables), tuple(ddl), tuple(results), workgroup, output, print_sql)
    if print_sql and not athena.active:
        raise UsageError("--print-sql prints the Athena SQL: pass --athena-ddl FILE (and --athena-table)")
    return athena if athena.active else None


def _aws_inputs(
    region: str | None,
    profile: str | None,
    log_groups: list[str],
    since: str,
    lag: str,
    ingest: IngestOptions,
    max_bytes: str | None,
    max_concurrent: int,
    vpcs: list[str] = [],  # noqa: B006 - never mutated
    groups: list[str] = [],  # noqa: B006
    enis: list[str] = [],  # noqa: B006
    tags: list[str] = [],  # noqa: B006
    timeout: str = DEFAULT_TIMEOUT,
    history: HistoryMode = HistoryMode.missing,
) -> AwsInputs:
    """How to read from AWS when --flows/--inventory are not given (unused otherwise)."""
    if max_concurrent < 1:
        raise UsageError("--max-concurrent-queries must be at least 1")
    parsed_tags = _parse_tags(tags)
    return AwsInputs(
        settings=AwsSettings(profile=profile, region=region, deadline=_deadline(timeout)),
        log_groups=tuple(log_groups),
        since=parse_duration(since, option="--since"),
        lag=parse_duration(lag, option="--lag"),
        window=ingest.window,
        max_bytes=parse_size(max_bytes, option="--max-bytes") if max_bytes else None,
        runner=RunnerSettings(max_concurrent=max_concurrent),
        vpcs=tuple(vpcs),
        groups=tuple(groups),
        enis=tuple(enis),
        tags=tuple(parsed_tags),
        bucket=ingest.bucket,
        history=history,
    )


def _deadline(timeout: str) -> Deadline:
    """--timeout: the whole AWS run's deadline (0: none); its clock starts with the first AWS client."""
    return Deadline(parse_duration(timeout, option="--timeout"), option=timeout.strip())


def _aws_run(aws: AwsInputs | None, *, active: bool) -> AbstractContextManager[None]:
    """The AWS part of a command: --timeout's clock, and SIGTERM stops the queries in flight (exit 2)."""
    return aws_run(aws.settings.deadline if aws is not None else Deadline(), active=active)


def _parse_tags(tags: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise UsageError(f"--tag {tag!r}: use KEY=VALUE")
        parsed.append((key, value))
    return parsed


def _progress(*, quiet: bool, verbose: bool) -> Callable[[str], None]:
    """Progress lines of an AWS run on stderr: when it is a terminal, or with --verbose; never with --quiet.
    (Reading files shows a progress line instead: :class:`sgadvisor.terminal.Progress`.)"""
    if quiet or not (verbose or terminal.stderr_is_terminal()):
        return lambda message: None
    return lambda message: terminal.err(f"sgadvisor: {message}")


def _notice(*, quiet: bool) -> Callable[[str], None]:
    """Summary lines of an AWS run (what the ENI history fetch read) on stderr, unless --quiet."""
    return (lambda message: None) if quiet else terminal.err


def _ingest_options(
    log_format: str | None,
    log_stream: str | None,
    bucket_ports: str,
    start: str | None,
    end: str | None,
    max_malformed: float,
    allow_missing: bool = False,
    progress: Progress | None = None,
) -> IngestOptions:
    window = None
    if (start is None) != (end is None):
        raise UsageError("--start and --end go together", hint="give both, or neither to use the data's span")
    if start is not None and end is not None:
        window = Window(parse_instant(start, option="--start"), parse_instant(end, option="--end"))
        if window.end <= window.start:
            raise UsageError("--end must be after --start")
    if not 0 <= max_malformed <= 1:
        raise UsageError("--max-malformed is a fraction between 0 and 1")
    return IngestOptions(
        log_format=parse_log_format(log_format) if log_format else None,
        log_stream=log_stream,
        bucket=PortRange.parse(bucket_ports),
        window=window,
        max_malformed=max_malformed,
        allow_missing=allow_missing,
        progress=progress.reading if progress is not None else None,
    )


def _scope(vpc: list[str], group: list[str], eni: list[str], tag: list[str]) -> Scope:
    return Scope(frozenset(vpc), frozenset(group), frozenset(eni), frozenset(_parse_tags(tag)))


def _ephemeral(ranges: list[str]) -> EphemeralRanges:
    return EphemeralRanges(tuple(PortRange.parse(r) for r in ranges)) if ranges else EphemeralRanges()


def _max_gap(text: str) -> int:
    seconds = parse_duration(text, option="--max-gap")
    if seconds < SPAN_RESOLUTION:
        raise UsageError(
            f"--max-gap {text!r} is shorter than the resolution delivery is recorded at "
            f"({SPAN_RESOLUTION}s, one longest aggregation interval)"
        )
    return seconds


@app.command("edges")
def edges_command(
    flows: FlowsOpt = [],  # noqa: B006 - typer reads the default, it is never mutated
    out: Annotated[str, typer.Option("--out", help="Flow-edge JSON Lines file, or - for stdout.")] = "-",
    inventory: EdgesInventoryOpt = [],  # noqa: B006
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = DEFAULT_BUCKET_PORTS,
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    allow_missing: AllowMissingOpt = False,
    athena_table: AthenaTableOpt = [],  # noqa: B006
    athena_ddl: AthenaDdlOpt = [],  # noqa: B006
    athena_result: AthenaResultOpt = [],  # noqa: B006
    athena_workgroup: AthenaWorkgroupOpt = None,
    athena_output: AthenaOutputOpt = None,
    print_sql: PrintSqlOpt = False,
    since: SinceOpt = DEFAULT_SINCE,
    lag: LagOpt = DEFAULT_LAG,
    max_bytes: MaxBytesOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reduce flow logs to flow edges and per-ENI coverage (JSON Lines, accepted back by --flows): from
    files (--flows), or from Amazon Athena (--athena-table/--athena-ddl; --athena-result offline)."""
    athena = _athena_inputs(
        athena_table, athena_ddl, athena_result, athena_workgroup, athena_output, print_sql
    )
    if athena is not None and flows:
        raise UsageError(
            "--flows (files) and --athena-table/--athena-ddl/--athena-result (Athena) exclude each other",
            hint="give one flow source",
        )
    if athena is None and not flows:
        raise UsageError(
            "nothing to read: pass --flows PATH (flow-log files), or --athena-table DATABASE.TABLE "
            "(--athena-ddl FILE, --athena-result FILE) to read the flows with Athena",
            hint="e.g. sgadvisor edges --flows sample_data/flows --out edges.jsonl",
        )
    if athena is not None and athena.results and start is None:
        raise UsageError(
            "--athena-result needs --start and --end: the window the SQL was printed for",
            hint="pass the --start/--end given with --print-sql",
        )
    progress = Progress.on_terminal(quiet=quiet, after_reading="rendering")
    options = _ingest_options(log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing)
    snapshot = _edges_inventory(inventory)
    if athena is None:
        addresses = snapshot.addresses if inventory else None
        result = read_flows(flows, options, addresses=addresses, progress=progress.reading)
    else:
        from sgadvisor.athena.source import load_athena_flows
        from sgadvisor.aws.flows import insights_window

        aws = _aws_inputs(region, profile, [], since, lag, options, max_bytes, DEFAULT_MAX_CONCURRENT,
                          timeout=timeout)  # fmt: skip
        window = options.window or insights_window(aws.since, aws.lag)
        with _aws_run(aws, active=not athena.offline):
            loaded = load_athena_flows(
                athena, snapshot, window, aws.settings, bucket=options.bucket, max_bytes=aws.max_bytes,
                progress=_progress(quiet=quiet, verbose=verbose),
            )  # fmt: skip
        if loaded.flows is None:
            terminal.out(loaded.sql or "")
            return
        check_malformed(loaded.flows.accounting, options.max_malformed)
        result = loaded.flows
    if out == "-":
        with terminal.reader_may_leave() as stdout:  # `| head`: the rest is dropped, the run ends as usual
            write_edge_lines(result, stdout)
    else:
        with atomic_writer(Path(out)) as handle:
            write_edge_lines(result, handle)
    progress.done()
    if not quiet:
        terminal.err(describe_flows(result, verbose=verbose, with_warnings=False))
    # Flow-edge files do not carry the warnings: the rest are only counted here.
    terminal.warnings(result.warnings, quiet=quiet, verbose=verbose, rest="not shown")


def _edges_inventory(paths: list[Path]) -> Inventory:
    """``edges --inventory``: the snapshot (its ENI addresses, its flow logs), else an empty inventory."""
    if not paths:
        return Inventory(groups={}, interfaces={})
    from sgadvisor.inventory.snapshot import load_snapshot

    return load_snapshot(paths)


@app.command("recommend")
def recommend_command(
    flows: FlowsOpt = [],  # noqa: B006 - typer reads the default, it is never mutated
    inventory: InventoryOpt = [],  # noqa: B006
    out: Annotated[
        str | None, typer.Option("--out", help="Output directory, or - for recommendation.json on stdout.")
    ] = None,
    formats: FormatsOpt = [],  # noqa: B006
    terraform_dir: TerraformDirOpt = None,
    min_window: MinWindowOpt = DEFAULT_MIN_WINDOW,
    max_gap: MaxGapOpt = DEFAULT_MAX_GAP,
    allow_missing: AllowMissingOpt = False,
    min_records: MinRecordsOpt = DEFAULT_MIN_RECORDS,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    max_unattributed: MaxUnattributedOpt = DEFAULT_MAX_UNATTRIBUTED,
    cidr_tolerance: Annotated[
        int | None,
        typer.Option(
            "--cidr-tolerance",
            help="Aggregate destination CIDRs when the wider block admits at most N unobserved addresses.",
        ),
    ] = None,
    ephemeral_ports: EphemeralOpt = [],  # noqa: B006
    ip_ranges: Annotated[
        Path | None,
        typer.Option("--ip-ranges", help="AWS ip-ranges.json: label destinations with their AWS service."),
    ] = None,
    rule_budget: Annotated[
        int, typer.Option("--rule-budget", help="Egress rules per group and IP family before widening.")
    ] = 60,
    vpc: AnalyseVpcOpt = [],  # noqa: B006
    group: AnalyseGroupOpt = [],  # noqa: B006
    eni: AnalyseEniOpt = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = DEFAULT_BUCKET_PORTS,
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = DEFAULT_SINCE,
    lag: LagOpt = DEFAULT_LAG,
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = DEFAULT_MAX_CONCURRENT,
    history: HistoryOpt = HistoryMode.missing,
    athena_table: AthenaTableOpt = [],  # noqa: B006
    athena_ddl: AthenaDdlOpt = [],  # noqa: B006
    athena_result: AthenaResultOpt = [],  # noqa: B006
    athena_workgroup: AthenaWorkgroupOpt = None,
    athena_output: AthenaOutputOpt = None,
    print_sql: PrintSqlOpt = False,
    internet: InternetOpt = None,
    dns_logs: DnsLogsOpt = [],  # noqa: B006
    dns_log_group: DnsLogGroupOpt = [],  # noqa: B006
    dns_firewall_action: FirewallActionOpt = FirewallAction.alert,
    show_all_names: ShowAllNamesOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Propose least-privilege egress rules from flow evidence (files, or EC2 + Logs Insights or Athena)."""
    chosen = list(dict.fromkeys(formats)) or list(OutputFormat)
    loaded = loaded_config()
    pins = loaded.pins if loaded is not None else []
    progress = Progress.on_terminal(quiet=quiet)
    ingest = _ingest_options(
        log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing, progress
    )
    inputs = RecommendInputs(
        flows=tuple(flows),
        inventory=tuple(inventory),
        ingest=ingest,
        aws=_aws_inputs(
            region,
            profile,
            log_group,
            since,
            lag,
            ingest,
            max_bytes,
            max_concurrent_queries,
            vpc,
            group,
            eni,
            tag,
            timeout,
            history,
        ),
        progress=_progress(quiet=quiet, verbose=verbose),
        notice=_notice(quiet=quiet),
        analysis=AnalysisOptions(
            min_window=parse_duration(min_window, option="--min-window"),
            max_gap=_max_gap(max_gap),
            min_records=min_records,
            min_confidence=min_confidence,
            max_unattributed=max_unattributed,
            scope=_scope(vpc, group, eni, tag),
            pins=tuple(pins),
            cidr_tolerance=cidr_tolerance,
            ephemeral=_ephemeral(ephemeral_ports),
            ip_ranges=load_ip_ranges(ip_ranges) if ip_ranges is not None else None,
            rule_budget=rule_budget,
            internet=InternetOptions(
                policy=internet
                or (InternetPolicy.auto if dns_logs or dns_log_group else InternetPolicy.port),
                fixed=tuple(loaded.fixed) if loaded is not None else (),
                firewall_action="BLOCK" if dns_firewall_action is FirewallAction.block else "ALERT",
                show_all_names=show_all_names,
            ),
        ),
        dns_logs=tuple(dns_logs),
        athena=_athena_inputs(
            athena_table, athena_ddl, athena_result, athena_workgroup, athena_output, print_sql
        ),
        dns_log_groups=tuple(dns_log_group),
        # Found from the Resolver query-logging configurations only when nothing says otherwise.
        dns_discover=not dns_logs and not dns_log_group and internet in (None, InternetPolicy.auto),
    )
    offline_flows = bool(flows) or (inputs.athena is not None and inputs.athena.offline)
    with _aws_run(inputs.aws, active=not (offline_flows and inventory) or bool(dns_log_group)):
        try:
            result = recommend(inputs)
        except PrintedSql as printed:
            terminal.out(printed.sql)
            return
    progress.enter("rendering")
    summary = format_summary(result)
    if out == "-":
        # `| head`: the rest is dropped, the run ends as usual
        terminal.out(recommendation_json(result), nl=False)
        progress.done()
        if not quiet:
            terminal.err(summary)
        _recommendation_warnings(result, "in the JSON on stdout", quiet=quiet, verbose=verbose)
        return
    if out is not None:
        context = RenderContext(terraform_dir=terraform_dir)
        _write(result, Path(out), chosen, context, quiet=quiet, verbose=verbose)
    progress.done()
    if not quiet:
        terminal.out(summary)
    if out is None:
        rest = "not written (pass --out DIR: recommendation.json lists them all)"
    elif OutputFormat.JSON in chosen:
        rest = f"in {Path(out) / 'recommendation.json'}"
    else:
        rest = "in the output"
    _recommendation_warnings(result, rest, quiet=quiet, verbose=verbose)
    if out is None and not quiet:
        terminal.err("(nothing written: pass --out DIR, or --out - for the JSON on stdout)")
    if verbose:
        terminal.err(describe_accounting(result.input_accounting, verbose=True))


def _recommendation_warnings(result: Recommendation, rest: str, *, quiet: bool, verbose: bool) -> None:
    """The recommendation's warnings (inventory, flows, pins, budget, a window shorter than --min-window)
    on stderr: the first 20, then how many more and where they all are."""
    terminal.warnings(result.warnings, quiet=quiet, verbose=verbose, rest=rest)


@app.command("query")
def query_command(
    query: Annotated[
        str | None,
        typer.Argument(
            help="A Logs Insights query; or build one with the options below.", show_default=False
        ),
    ] = None,
    flows: FlowsOpt = [],  # noqa: B006
    log_group: Annotated[
        list[str], typer.Option("--log-group", help="CloudWatch log group to query (AWS; repeatable).")
    ] = [],  # noqa: B006
    since: Annotated[
        str | None, typer.Option("--since", help="Query the last DURATION (14d, 36h, …) up to now.")
    ] = None,
    start: StartOpt = None,
    end: EndOpt = None,
    eni: Annotated[list[str], typer.Option("--eni", help="Only this ENI's log stream (repeatable).")] = [],  # noqa: B006
    action: Annotated[str | None, typer.Option("--action", help="ACCEPT or REJECT.")] = None,
    src: Annotated[str | None, typer.Option("--src", help="Source address (or CIDR).")] = None,
    src_port: Annotated[str | None, typer.Option("--src-port", help="Source port.")] = None,
    dst: Annotated[str | None, typer.Option("--dst", help="Destination address (or CIDR).")] = None,
    dst_port: Annotated[str | None, typer.Option("--dst-port", help="Destination port.")] = None,
    protocol: Annotated[
        str | None, typer.Option("--protocol", help="tcp, udp, icmp, icmpv6 or a number.")
    ] = None,
    count_by: Annotated[
        list[str],
        typer.Option("--count-by", help="Count records by these fields (F1,F2,…) instead of listing them."),
    ] = [],  # noqa: B006
    sort: Annotated[str | None, typer.Option("--sort", help="FIELD[:asc|desc] (default desc).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N rows (1-100,000).")] = None,
    print_query: Annotated[
        bool, typer.Option("--print-query", help="Print the query text and exit without running it.")
    ] = False,
    output: Annotated[
        QueryOutput, typer.Option("--output", help="Result format: table, json or csv.")
    ] = QueryOutput.TABLE,
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    allow_missing: AllowMissingOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Logs Insights for flow logs: build the query you would write by hand (e.g. was 10.0.1.10 ->
    10.0.2.15:22 rejected?) and run it on local flow-log files, or print it for the CloudWatch console."""
    from sgadvisor.insights.builder import QueryOptions, build_query

    fields = parse_log_format(log_format) if log_format else None
    options = QueryOptions(
        enis=eni, action=action, src=src, src_port=src_port, dst=dst, dst_port=dst_port,
        protocol=protocol, count_by=count_by, sort=sort, limit=limit, log_format=fields,
    )  # fmt: skip
    if query is not None and options.any_set():
        raise UsageError(
            "give either a query or the builder options (--eni, --action, …), not both",
            hint="use --print-query to see the query the options build, then edit it",
        )
    if not 0 <= max_malformed <= 1:
        raise UsageError("--max-malformed is a fraction between 0 and 1")
    if query is None:
        text = build_query(options)  # an unknown --count-by/--sort field is a usage error (exit 2)
        if fields is None and not quiet:
            terminal.err("note: the default flow-log format is assumed (pass --log-format for a custom one)")
    else:
        text = query
    if print_query:
        terminal.out(text)
        return
    if log_group and flows:
        raise UsageError("--log-group (AWS) and --flows (files) exclude each other")
    if log_group:
        window = (
            _query_window(since or "1h", start, end) if start is None else _query_window(None, start, end)
        )
        settings = AwsSettings(profile=profile, region=region, deadline=_deadline(timeout))
        _run_aws_query(text, log_group, window, output, settings, quiet=quiet, verbose=verbose)
        return
    if not flows:
        raise UsageError(
            "nothing to query: pass --flows PATH (local flow-log files)",
            hint="e.g. sgadvisor query --flows sample_data/flows --action REJECT --count-by srcAddr,dstPort",
        )
    window = _query_window(since, start, end)
    progress = Progress.on_terminal(quiet=quiet, after_reading="query")
    ingest = IngestOptions(
        log_format=fields, log_stream=log_stream, max_malformed=max_malformed, allow_missing=allow_missing,
        progress=progress.reading,
    )  # fmt: skip
    _run_offline_query(text, flows, window, output, ingest, progress, quiet=quiet, verbose=verbose)


def _run_aws_query(
    text: str,
    log_groups: list[str],
    window: tuple[int | None, int | None],
    output: QueryOutput,
    settings: AwsSettings,
    *,
    quiet: bool,
    verbose: bool,
) -> None:
    """One query as the user wrote it, run by the service; its result is capped like the console's."""
    from sgadvisor.aws.insights import run_user_query
    from sgadvisor.aws.source import AwsClients
    from sgadvisor.insights.output import describe_result, format_result

    start, end = window
    if start is None or end is None:
        raise UsageError("--start and --end go together (or use --since)")
    with aws_run(settings.deadline):
        clients = AwsClients.create(settings)
        result = run_user_query(
            clients.logs, text, log_groups, start, end, progress=_progress(quiet=quiet, verbose=False),
            deadline=settings.deadline,
        )  # fmt: skip
    terminal.out(format_result(result, output, width=shutil.get_terminal_size((120, 24)).columns), nl=False)
    _query_warnings(result.warnings, output, quiet=quiet, verbose=verbose)
    if not quiet:
        terminal.err(describe_result(result))


def _query_warnings(
    warnings: Sequence[str], output: QueryOutput, *, quiet: bool, verbose: bool, in_json: bool = True
) -> None:
    rest = "in the JSON output" if output is QueryOutput.JSON and in_json else "not shown"
    terminal.warnings(warnings, quiet=quiet, verbose=verbose, rest=rest)


def _query_window(since: str | None, start: str | None, end: str | None) -> tuple[int | None, int | None]:
    """Epoch seconds (inclusive, as StartQuery takes them) from --since or --start/--end."""
    if since is not None:
        if start is not None or end is not None:
            raise UsageError("--since and --start/--end exclude each other")
        now = int(time.time())
        return now - parse_duration(since, option="--since"), now
    return (
        parse_instant(start, option="--start") if start is not None else None,
        parse_instant(end, option="--end") if end is not None else None,
    )


def _run_offline_query(
    text: str,
    flows: list[Path],
    window: tuple[int | None, int | None],
    output: QueryOutput,
    ingest: IngestOptions,
    progress: Progress,
    *,
    quiet: bool,
    verbose: bool,
) -> None:
    from sgadvisor.accounting import Ledger
    from sgadvisor.insights.events import flow_log_events
    from sgadvisor.insights.executor import run_query
    from sgadvisor.insights.output import describe_result, format_result

    ledger = Ledger()
    events = flow_log_events(flows, ledger, ingest)
    check_malformed(ledger.freeze(), ingest.max_malformed)  # as for edges: exit 2 above --max-malformed
    result = run_query(text, events, start=window[0], end=window[1])
    progress.enter("rendering")
    width = shutil.get_terminal_size((120, 24)).columns
    text_out = format_result(result, output, width=width)
    progress.done()
    terminal.out(text_out, nl=False)
    # The query's warnings (the JSON output carries them), then the reading's (start/end in milliseconds).
    _query_warnings(result.warnings, output, quiet=quiet, verbose=verbose, in_json=not ledger.warnings)
    terminal.warnings(ledger.warnings, quiet=quiet, verbose=verbose, rest="not shown")
    if quiet:
        return
    terminal.err(describe_result(result))
    if ledger.malformed or ledger.file_issues:
        terminal.err(describe_accounting(ledger.freeze(), verbose=verbose))


@app.command("collect")
def collect_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for the inventory snapshot (DESIGN §4.3).")],
    flows_out: Annotated[
        Path | None,
        typer.Option(
            "--flows-out",
            help="Also read the flow edges into this JSON Lines file: with Logs Insights, or with Athena "
            "(--athena-table/--athena-ddl).",
        ),
    ] = None,
    vpc: CollectVpcOpt = [],  # noqa: B006
    group: CollectGroupOpt = [],  # noqa: B006
    eni: CollectEniOpt = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = DEFAULT_SINCE,
    lag: LagOpt = DEFAULT_LAG,
    start: StartOpt = None,
    end: EndOpt = None,
    bucket_ports: BucketOpt = DEFAULT_BUCKET_PORTS,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = DEFAULT_MAX_CONCURRENT,
    history: HistoryOpt = HistoryMode.missing,
    athena_table: AthenaTableOpt = [],  # noqa: B006
    athena_ddl: AthenaDdlOpt = [],  # noqa: B006
    athena_workgroup: AthenaWorkgroupOpt = None,
    athena_output: AthenaOutputOpt = None,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Snapshot the inventory from EC2 (and with --flows-out the flow edges from Logs Insights, or from
    Athena with --athena-table/--athena-ddl), so that recommend/check run offline later on exactly the
    same data."""
    from sgadvisor.aws.history import history_text
    from sgadvisor.aws.source import (
        AwsClients,
        collect_documents,
        history_request,
        load_aws_flows,
        load_aws_history,
    )
    from sgadvisor.inventory.ec2 import snapshot_text, write_snapshot
    from sgadvisor.inventory.snapshot import load_snapshot
    from sgadvisor.outputs import write_files

    athena = _athena_inputs(athena_table, athena_ddl, [], athena_workgroup, athena_output, False)
    if athena is not None and flows_out is None:
        raise UsageError("--athena-table/--athena-ddl read the flows: pass --flows-out FILE for them")
    if athena is not None and log_group:
        raise UsageError(
            "--log-group (Logs Insights) and --athena-table/--athena-ddl (Athena) exclude each other",
            hint="give one flow source",
        )
    ingest = _ingest_options(None, None, bucket_ports, start, end, max_malformed)
    inputs = _aws_inputs(
        region,
        profile,
        log_group,
        since,
        lag,
        ingest,
        max_bytes,
        max_concurrent_queries,
        vpc,
        group,
        eni,
        tag,
        timeout,
        history,
    )
    progress = _progress(quiet=quiet, verbose=verbose)
    with aws_run(inputs.settings.deadline):
        clients = AwsClients.create(inputs.settings)
        documents = collect_documents(clients, inputs)
        edges = None
        fetched = None
        if flows_out is not None or history is HistoryMode.all:
            with tempfile.TemporaryDirectory(prefix="sgadvisor-inventory-") as tmp:
                write_snapshot(documents, Path(tmp))
                inventory = load_snapshot([Path(tmp)])
            if flows_out is not None and athena is not None:
                edges = _collect_athena(athena, inventory, inputs, progress)
                check_malformed(edges.accounting, max_malformed)
            elif flows_out is not None:
                read, discovery = load_aws_flows(clients, inputs, inventory, progress)
                edges = replace(read.flows, warnings=(*discovery.warnings, *read.flows.warnings))
                check_malformed(edges.accounting, max_malformed)  # records the assumed format does not fit
            fetched = load_aws_history(
                inputs.settings, history_request(history, inputs, inventory, edges), progress
            )
    # Everything was read: only now write, all files or none (exit 2 above leaves nothing behind).
    files = {out / name: snapshot_text(doc) for name, doc in sorted(documents.items())}
    history_documents = fetched.documents() if fetched is not None else {}
    files.update({out / name: history_text(doc) for name, doc in history_documents.items()})
    if edges is not None and flows_out is not None:
        buffer = io.StringIO()
        write_edge_lines(edges, buffer)
        files[flows_out] = buffer.getvalue()
    written = write_files(files)
    if not quiet:
        counts = ", ".join(
            f"{len(next(iter(doc.values())))} {name.removesuffix('.json')}"
            for name, doc in sorted(documents.items())
        )
        terminal.err(f"collected {counts}")
        if fetched is not None and (fetched.calls or history is not HistoryMode.none):
            terminal.err(fetched.describe())
        terminal.err(f"wrote {', '.join(str(p) for p in written)}")
        if edges is not None:
            terminal.err(describe_flows(edges, verbose=verbose, with_warnings=False))
    if edges is not None:
        terminal.warnings(edges.warnings, quiet=quiet, verbose=verbose, rest="not shown")


def _collect_athena(
    athena: AthenaInputs, inventory: Inventory, inputs: AwsInputs, progress: Callable[[str], None]
) -> FlowEdges:
    """``collect --flows-out`` with Athena: the edges of the window, the tables restricted to the flow logs
    of their format that the collected inventory names."""
    from sgadvisor.athena.source import load_athena_flows
    from sgadvisor.aws.flows import insights_window

    window = inputs.window or insights_window(inputs.since, inputs.lag)
    loaded = load_athena_flows(
        athena, inventory, window, inputs.settings, bucket=inputs.bucket, max_bytes=inputs.max_bytes,
        progress=progress,
    )  # fmt: skip
    assert loaded.flows is not None  # neither --print-sql nor --athena-result here
    return loaded.flows


@app.command("athena-ddl")
def athena_ddl_command(
    location: Annotated[
        str,
        typer.Option(
            "--location",
            metavar="S3URI",
            help="The flow logs' S3 folder: s3://BUCKET/[PREFIX/]AWSLogs/ACCOUNT/vpcflowlogs/ (every region: "
            "name them with --region) or one region's folder below it.",
        ),
    ],
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format", help="The flow log's LogFormat ('${version} ${srcaddr} ...'); default: AWS's."
        ),
    ] = None,
    parquet: Annotated[bool, typer.Option("--parquet", help="The flow log delivers Parquet files.")] = False,
    table: Annotated[str, typer.Option("--table", help="The table's name.")] = "vpc_flow_logs",
    region: Annotated[
        list[str],
        typer.Option("--region", help="Regions of the projection (repeatable), for a vpcflowlogs/ folder."),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    per_hour: Annotated[
        bool,
        typer.Option(
            "--per-hour",
            help="The flow log delivers hourly folders (PerHourPartition: …/yyyy/MM/dd/HH/): project hours.",
        ),
    ] = False,
) -> None:
    """Print a CREATE EXTERNAL TABLE with partition projection for flow logs in S3, for Athena
    (--athena-table; --athena-ddl FILE offline)."""
    from sgadvisor.athena.ddl import render_ddl
    from sgadvisor.flowlogs.fields import DEFAULT_FORMAT

    fields = parse_log_format(log_format) if log_format else DEFAULT_FORMAT
    terminal.out(
        render_ddl(location, fields, parquet=parquet, table=table, regions=region, per_hour=per_hour)
    )


@app.command("render")
def render_command(
    recommendation: Annotated[
        Path,
        typer.Argument(help="A recommendation.json written by `sgadvisor recommend`.", show_default=False),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    formats: FormatsOpt = [],  # noqa: B006
    terraform_dir: TerraformDirOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Rebuild the outputs (egress.tf + removals.sh, report.html, summary.md, the JSON) from a
    recommendation.json alone: no flows, inventory or AWS needed."""
    result = load_recommendation(recommendation)
    chosen = list(dict.fromkeys(formats)) or list(OutputFormat)
    _write(result, out, chosen, RenderContext(terraform_dir=terraform_dir), quiet=quiet, verbose=verbose)
    if not quiet:
        terminal.out(format_summary(result))


def _write(
    result: Recommendation,
    out: Path,
    formats: list[OutputFormat],
    context: RenderContext,
    *,
    quiet: bool,
    verbose: bool = False,
) -> None:
    written, warnings = write_outputs(result, out, formats, context)
    terminal.warnings(warnings, quiet=quiet, verbose=verbose, rest="from the renderers")
    if not quiet:
        terminal.err(f"wrote {', '.join(str(path) for path in written)}")


# ------------------------------------------------------------------------------------------ check


@app.command("check")
def check_command(
    baseline: Annotated[
        Path,
        typer.Option(
            "--baseline",
            help="The approved rules: a recommendation.json, a .tf file (literal "
            "aws_vpc_security_group_egress_rule resources) or `terraform show -json` output.",
        ),
    ],
    flows: FlowsOpt = [],  # noqa: B006 - typer reads the default, it is never mutated
    inventory: InventoryOpt = [],  # noqa: B006
    no_flows: Annotated[
        bool, typer.Option("--no-flows", help="Check the configuration only: read no flows.")
    ] = False,
    fail_on: Annotated[
        str, typer.Option("--fail-on", help="Exit 1 on drift at or above this severity: low, medium, high.")
    ] = "medium",
    severity: Annotated[
        list[str],
        typer.Option("--severity", help="Severity of a finding kind, KIND=low|medium|high (repeatable)."),
    ] = [],  # noqa: B006
    sarif: Annotated[Path | None, typer.Option("--sarif", help="Write SARIF 2.1.0 here.")] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per group).")
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write Markdown here (PR comment, $GITHUB_STEP_SUMMARY)."),
    ] = None,
    min_window: MinWindowOpt = DEFAULT_MIN_WINDOW,
    max_gap: MaxGapOpt = DEFAULT_MAX_GAP,
    allow_missing: AllowMissingOpt = False,
    min_records: MinRecordsOpt = DEFAULT_MIN_RECORDS,
    min_confidence: MinConfidenceOpt = DEFAULT_MIN_CONFIDENCE,
    max_unattributed: MaxUnattributedOpt = DEFAULT_MAX_UNATTRIBUTED,
    ephemeral_ports: CheckEphemeralOpt = [],  # noqa: B006
    vpc: CheckVpcOpt = [],  # noqa: B006
    group: CheckGroupOpt = [],  # noqa: B006
    eni: CheckEniOpt = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = DEFAULT_BUCKET_PORTS,
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = DEFAULT_SINCE,
    lag: LagOpt = DEFAULT_LAG,
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = DEFAULT_MAX_CONCURRENT,
    history: HistoryOpt = HistoryMode.missing,
    athena_table: AthenaTableOpt = [],  # noqa: B006
    athena_ddl: AthenaDdlOpt = [],  # noqa: B006
    athena_result: AthenaResultOpt = [],  # noqa: B006
    athena_workgroup: AthenaWorkgroupOpt = None,
    athena_output: AthenaOutputOpt = None,
    print_sql: PrintSqlOpt = False,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Drift against an approved baseline: exit 0 none, 1 drift at or above --fail-on, 2 could not run."""
    from datetime import UTC, datetime

    from sgadvisor.check.findings import Policy
    from sgadvisor.check.model import Severity, parse_severity_overrides
    from sgadvisor.check.run import CheckOutputs, CheckRequest, render_outputs, run_check, write_all
    from sgadvisor.check.text import render_text

    if no_flows and flows:
        raise UsageError("--no-flows and --flows exclude each other")
    try:
        threshold = Severity(fail_on.strip().lower())
    except ValueError:
        raise UsageError(f"--fail-on {fail_on!r}: use low, medium or high") from None
    loaded = loaded_config()
    progress = Progress.on_terminal(quiet=quiet)
    ingest = _ingest_options(
        log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing, progress
    )
    aws = _aws_inputs(
        region,
        profile,
        log_group,
        since,
        lag,
        ingest,
        max_bytes,
        max_concurrent_queries,
        vpc,
        group,
        eni,
        tag,
        timeout,
        history,
    )
    athena = _athena_inputs(
        athena_table, athena_ddl, athena_result, athena_workgroup, athena_output, print_sql
    )
    request = CheckRequest(
        inputs=RecommendInputs(
            flows=tuple(flows),
            inventory=tuple(inventory),
            ingest=ingest,
            aws=aws,
            progress=_progress(quiet=quiet, verbose=verbose),
            notice=_notice(quiet=quiet),
            athena=athena,
            analysis=AnalysisOptions(
                min_window=parse_duration(min_window, option="--min-window"),
                max_gap=_max_gap(max_gap),
                min_records=min_records,
                min_confidence=min_confidence,
                max_unattributed=max_unattributed,
                scope=_scope(vpc, group, eni, tag),
                pins=tuple(loaded.pins) if loaded is not None else (),
                ephemeral=_ephemeral(ephemeral_ports),
            ),
        ),
        baseline=baseline,
        no_flows=no_flows,
        policy=Policy(
            fail_on=threshold,
            severities=parse_severity_overrides(list(severity)),
            allows=tuple(loaded.allows) if loaded is not None else (),
            pins=tuple(loaded.pins) if loaded is not None else (),
            today=datetime.now(UTC).date(),
        ),
    )
    offline_flows = bool(flows) or no_flows or (athena is not None and athena.offline)
    with _aws_run(aws, active=not inventory or not offline_flows):
        try:
            report = run_check(request)
        except PrintedSql as printed:
            terminal.out(printed.sql)
            return
    progress.enter("rendering")
    files = render_outputs(report, CheckOutputs(sarif=sarif, junit=junit, markdown=markdown))
    write_all(files)
    progress.done()
    if not quiet:
        # A reader that leaves early (`| head`) changes nothing: the exit code is still the verdict.
        terminal.out(render_text(report), nl=False)
        if files:
            terminal.err(f"wrote {', '.join(str(path) for path in files)}")
    terminal.warnings(report.warnings, quiet=quiet, verbose=verbose, rest="in the text report on stdout")
    if report.exit_code:
        raise typer.Exit(report.exit_code)


# ------------------------------------------------------------------------------------------ entry


def _options_by_command(commands: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{command: {long option name: parameter name}}, from the built click commands."""
    table: dict[str, dict[str, str]] = {}
    for name, command in commands.items():
        options: dict[str, str] = {}
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and param.name and param.name != "config":
                    options[opt[2:]] = param.name
        table[name] = options
    return table


_LOADED_CONFIG: list[ConfigFile] = []


def loaded_config() -> ConfigFile | None:
    """The config file this run read (for its [[pin]]/[[allow]] tables), if any."""
    return _LOADED_CONFIG[0] if _LOADED_CONFIG else None


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; SgAdvisorError becomes a one-line message with a hint and exit code 2, and so does any
    other exception (a bug: the message says so; SGADVISOR_DEBUG=1 shows the traceback instead).
    click/typer's own handling stays for usage errors and --help. Ctrl-C is one line and exit 130
    wherever it comes (click would say "Aborted!" and exit 1 in some versions: drift, for `check`).
    A reader that goes away (EPIPE) only stops what it reads: the command finishes with its own exit code
    (sgadvisor/terminal.py); a closed pipe met anywhere else stops the command: exit 2."""
    try:
        _main(argv)
    finally:
        terminal.finish()  # a closed pipe is met here, never as "Exception ignored" at interpreter exit


def _main(argv: list[str] | None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        default_map: dict[str, Any] = {}
        config_path = find_config_path(args)
        commands: dict[str, Any] = getattr(command, "commands", {})
        _LOADED_CONFIG.clear()
        if config_path is not None:
            config = load_config(config_path, sorted(commands))
            _LOADED_CONFIG.append(config)
            default_map = build_default_map(config, _options_by_command(commands))
        command.main(args=args, prog_name="sgadvisor", default_map=default_map, standalone_mode=True)
    except SgAdvisorError as exc:
        _report_error(exc)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, _Interrupted):  # in a command (_Group), or while reading the config
        terminal.err("error: interrupted (Ctrl-C)")
        sys.exit(130)
    except _PipeClosed:
        terminal.silence(sys.stdout)
        terminal.err("error: an output pipe was closed before the command finished")
        sys.exit(2)
    except Exception as exc:
        import os

        if os.environ.get("SGADVISOR_DEBUG", "") not in ("", "0"):
            raise
        _report_error(exc)
        sys.exit(2)


def _report_error(exc: Exception) -> None:
    if not isinstance(exc, SgAdvisorError):
        lines = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__
        detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")  # a lone surrogate, say
        terminal.err(
            f"error: internal error: {detail} — this is a bug in sgadvisor; please report it with the "
            "command line (run with SGADVISOR_DEBUG=1 for the traceback)"
        )
        return
    terminal.err(f"error: {safe_text(exc.message)}")
    if isinstance(exc, TooManyMalformedError):
        located = sorted(exc.issues, key=lambda issue: issue.line is None)  # damaged lines first
        for issue in located[:10]:
            where = f"{issue.file}:{issue.line}" if issue.line is not None else issue.file
            terminal.err(f"  {safe_text(where)}: {safe_text(issue.reason)}")
    if exc.hint:
        terminal.err(f"hint: {safe_text(exc.hint)}")
