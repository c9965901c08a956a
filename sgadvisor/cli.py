"""The command line: thin typer commands; domain errors become one message and exit code 2 here only."""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer

from sgadvisor import __version__
from sgadvisor.analysis.awsranges import load_ip_ranges
from sgadvisor.analysis.direction import Confidence, EphemeralRanges
from sgadvisor.analysis.recommend import AnalysisOptions, Scope
from sgadvisor.aws.clients import AwsSettings
from sgadvisor.aws.control import Deadline, aws_run
from sgadvisor.aws.insights import RunnerSettings
from sgadvisor.aws.source import AwsInputs
from sgadvisor.config import ConfigFile, build_default_map, find_config_path, load_config
from sgadvisor.errors import SgAdvisorError, TooManyMalformedError, UsageError
from sgadvisor.flowlogs.edgefile import write_edge_lines
from sgadvisor.flowlogs.edges import PortRange, Window
from sgadvisor.flowlogs.fields import parse_log_format
from sgadvisor.flowlogs.ingest import DEFAULT_MAX_MALFORMED, IngestOptions, read_flows
from sgadvisor.flowlogs.spans import SPAN_RESOLUTION
from sgadvisor.flowlogs.summary import describe_accounting, describe_flows
from sgadvisor.insights.output import QueryOutput
from sgadvisor.models import Recommendation
from sgadvisor.outputs import atomic_writer
from sgadvisor.pipeline import (
    OutputFormat,
    RecommendInputs,
    load_recommendation,
    recommend,
    write_outputs,
)
from sgadvisor.render import RenderContext
from sgadvisor.render.summary_table import format_summary
from sgadvisor.timeparse import parse_duration, parse_instant, parse_size

app = typer.Typer(
    name="sgadvisor",
    help="Least-privilege security-group egress rules from VPC Flow Logs evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
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
    str, typer.Option("--since", help="Insights window: this long (14d, 36h, …) before --lag.")
]
LagOpt = Annotated[
    str, typer.Option("--lag", help="Insights window ends this long before now (flow-log delivery lags).")
]
MaxBytesOpt = Annotated[
    str | None,
    typer.Option("--max-bytes", help="Refuse to run Insights queries estimated to scan more (e.g. 50GB)."),
]
MaxQueriesOpt = Annotated[
    int, typer.Option("--max-concurrent-queries", help="Insights queries in flight at once (account quota).")
]
DEFAULT_TIMEOUT = "6h"
TimeoutOpt = Annotated[
    str,
    typer.Option(
        "--timeout",
        help="AWS mode: stop the whole AWS run (EC2, DescribeFlowLogs, Insights queries, retries) after "
        "this long (30m, 2h; 0: no limit), stopping the queries in flight; exit 2.",
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
    """Progress lines on stderr: when it is a terminal, or with --verbose; never with --quiet."""
    if quiet or not (verbose or sys.stderr.isatty()):
        return lambda message: None
    return lambda message: typer.echo(f"sgadvisor: {message}", err=True)


def _ingest_options(
    log_format: str | None,
    log_stream: str | None,
    bucket_ports: str,
    start: str | None,
    end: str | None,
    max_malformed: float,
    allow_missing: bool = False,
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
    )


def _max_gap(text: str) -> int:
    seconds = parse_duration(text, option="--max-gap")
    if seconds < SPAN_RESOLUTION:
        raise UsageError(
            f"--max-gap {text!r} is shorter than the finest aggregation interval AWS writes "
            f"({SPAN_RESOLUTION}s)"
        )
    return seconds


@app.command("edges")
def edges_command(
    flows: FlowsOpt,
    out: Annotated[str, typer.Option("--out", help="Flow-edge JSON Lines file, or - for stdout.")] = "-",
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = "32768-65535",
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    allow_missing: AllowMissingOpt = False,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Reduce flow-log files to flow edges and per-ENI coverage (JSON Lines, accepted back by --flows)."""
    options = _ingest_options(log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing)
    result = read_flows(flows, options)
    if out == "-":
        write_edge_lines(result, sys.stdout)
    else:
        with atomic_writer(Path(out)) as handle:
            write_edge_lines(result, handle)
    if not quiet:
        typer.echo(describe_flows(result, verbose=verbose), err=True)


@app.command("recommend")
def recommend_command(
    flows: FlowsOpt = [],  # noqa: B006 - typer reads the default, it is never mutated
    inventory: Annotated[
        list[Path],
        typer.Option("--inventory", help="Inventory snapshot files or directories (AWS CLI JSON shapes)."),
    ] = [],  # noqa: B006
    out: Annotated[
        str | None, typer.Option("--out", help="Output directory, or - for recommendation.json on stdout.")
    ] = None,
    formats: FormatsOpt = [],  # noqa: B006
    terraform_dir: TerraformDirOpt = None,
    min_window: MinWindowOpt = "7d",
    max_gap: MaxGapOpt = "30m",
    allow_missing: AllowMissingOpt = False,
    min_records: MinRecordsOpt = 1,
    min_confidence: MinConfidenceOpt = Confidence.LOW,
    max_unattributed: MaxUnattributedOpt = 0,
    cidr_tolerance: Annotated[
        int | None,
        typer.Option(
            "--cidr-tolerance",
            help="Aggregate destination CIDRs when the wider block admits at most N unobserved addresses.",
        ),
    ] = None,
    ephemeral_ports: Annotated[
        list[str],
        typer.Option(
            "--ephemeral-ports",
            help="Client port range LOW-HIGH for initiator inference (repeatable; default Linux 32768-60999 "
            "and Windows 49152-65535).",
        ),
    ] = [],  # noqa: B006
    ip_ranges: Annotated[
        Path | None,
        typer.Option("--ip-ranges", help="AWS ip-ranges.json: label destinations with their AWS service."),
    ] = None,
    rule_budget: Annotated[
        int, typer.Option("--rule-budget", help="Egress rules per group and IP family before widening.")
    ] = 60,
    vpc: Annotated[list[str], typer.Option("--vpc", help="Analyse groups of this VPC (repeatable).")] = [],  # noqa: B006
    group: Annotated[list[str], typer.Option("--group", help="Analyse this group (repeatable).")] = [],  # noqa: B006
    eni: Annotated[
        list[str], typer.Option("--eni", help="Analyse the groups of this ENI (repeatable).")
    ] = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = "32768-65535",
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = "14d",
    lag: LagOpt = "15m",
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = 4,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Propose least-privilege egress rules from flow evidence (files, or EC2 + Logs Insights)."""
    chosen = list(dict.fromkeys(formats)) or list(OutputFormat)
    loaded = loaded_config()
    pins = loaded.pins if loaded is not None else []
    ingest = _ingest_options(log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing)
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
        ),
        progress=_progress(quiet=quiet, verbose=verbose),
        analysis=AnalysisOptions(
            min_window=parse_duration(min_window, option="--min-window"),
            max_gap=_max_gap(max_gap),
            min_records=min_records,
            min_confidence=min_confidence,
            max_unattributed=max_unattributed,
            scope=Scope(frozenset(vpc), frozenset(group), frozenset(eni), frozenset(_parse_tags(tag))),
            pins=tuple(pins),
            cidr_tolerance=cidr_tolerance,
            ephemeral=EphemeralRanges(tuple(PortRange.parse(r) for r in ephemeral_ports))
            if ephemeral_ports
            else EphemeralRanges(),
            ip_ranges=load_ip_ranges(ip_ranges) if ip_ranges is not None else None,
            rule_budget=rule_budget,
        ),
    )
    with _aws_run(inputs.aws, active=not (flows and inventory)):
        result = recommend(inputs)
    summary = format_summary(result)
    if out == "-":
        sys.stdout.write(result.to_json())
        if not quiet:
            typer.echo(summary, err=True)
        return
    if out is not None:
        _write(result, Path(out), chosen, RenderContext(terraform_dir=terraform_dir), quiet=quiet)
    if not quiet:
        typer.echo(summary)
        if out is None:
            typer.echo("(nothing written: pass --out DIR, or --out - for the JSON on stdout)", err=True)
    if verbose:
        typer.echo(describe_accounting(result.input_accounting, verbose=True), err=True)


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
    if query is None:
        text = build_query(options)
        if fields is None and not quiet:
            typer.echo(
                "note: the default flow-log format is assumed (pass --log-format for a custom one)", err=True
            )
    else:
        text = query
    if print_query:
        typer.echo(text)
        return
    if log_group and flows:
        raise UsageError("--log-group (AWS) and --flows (files) exclude each other")
    if log_group:
        window = (
            _query_window(since or "1h", start, end) if start is None else _query_window(None, start, end)
        )
        settings = AwsSettings(profile=profile, region=region, deadline=_deadline(timeout))
        _run_aws_query(text, log_group, window, output, settings, quiet=quiet)
        return
    if not flows:
        raise UsageError(
            "nothing to query: pass --flows PATH (local flow-log files)",
            hint="e.g. sgadvisor query --flows sample_data/flows --action REJECT --count-by srcAddr,dstPort",
        )
    window = _query_window(since, start, end)
    _run_offline_query(
        text, flows, window, output, IngestOptions(log_format=fields, log_stream=log_stream,
        allow_missing=allow_missing), quiet=quiet, verbose=verbose,
    )  # fmt: skip


def _run_aws_query(
    text: str,
    log_groups: list[str],
    window: tuple[int | None, int | None],
    output: QueryOutput,
    settings: AwsSettings,
    *,
    quiet: bool,
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
    sys.stdout.write(format_result(result, output, width=shutil.get_terminal_size((120, 24)).columns))
    if not quiet:
        typer.echo(describe_result(result), err=True)


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
    result = run_query(text, events, start=window[0], end=window[1])
    width = shutil.get_terminal_size((120, 24)).columns
    sys.stdout.write(format_result(result, output, width=width))
    if quiet:
        return
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(describe_result(result), err=True)
    if ledger.malformed or ledger.file_issues:
        typer.echo(describe_accounting(ledger.freeze(), verbose=verbose), err=True)


@app.command("collect")
def collect_command(
    out: Annotated[Path, typer.Option("--out", help="Directory for the inventory snapshot (DESIGN §4.3).")],
    flows_out: Annotated[
        Path | None,
        typer.Option("--flows-out", help="Also read the flow edges with Insights into this JSON Lines file."),
    ] = None,
    vpc: Annotated[list[str], typer.Option("--vpc", help="Collect this VPC (repeatable).")] = [],  # noqa: B006
    group: Annotated[
        list[str], typer.Option("--group", help="Collect the VPC of this group (repeatable).")
    ] = [],  # noqa: B006
    eni: Annotated[list[str], typer.Option("--eni", help="Collect the VPC of this ENI (repeatable).")] = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = "14d",
    lag: LagOpt = "15m",
    start: StartOpt = None,
    end: EndOpt = None,
    bucket_ports: BucketOpt = "32768-65535",
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = 4,
    timeout: TimeoutOpt = DEFAULT_TIMEOUT,
    region: RegionOpt = None,
    profile: ProfileOpt = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Snapshot the inventory from EC2 (and with --flows-out the flow edges from Logs Insights), so that
    recommend/check run offline later on exactly the same data."""
    from sgadvisor.aws.source import AwsClients, collect_documents, load_aws_flows
    from sgadvisor.inventory.ec2 import snapshot_text, write_snapshot
    from sgadvisor.inventory.snapshot import load_snapshot
    from sgadvisor.outputs import write_files

    ingest = _ingest_options(None, None, bucket_ports, start, end, DEFAULT_MAX_MALFORMED)
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
    )
    progress = _progress(quiet=quiet, verbose=verbose)
    with aws_run(inputs.settings.deadline):
        clients = AwsClients.create(inputs.settings)
        documents = collect_documents(clients, inputs)
        edges = None
        if flows_out is not None:
            with tempfile.TemporaryDirectory(prefix="sgadvisor-inventory-") as tmp:
                write_snapshot(documents, Path(tmp))
                inventory = load_snapshot([Path(tmp)])
            read, _ = load_aws_flows(clients, inputs, inventory, progress)
            edges = read.flows
    # Everything was read: only now write, all files or none (exit 2 above leaves nothing behind).
    files = {out / name: snapshot_text(doc) for name, doc in sorted(documents.items())}
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
        typer.echo(f"collected {counts}", err=True)
        typer.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
        if edges is not None:
            typer.echo(describe_flows(edges, verbose=verbose), err=True)


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
    _write(result, out, chosen, RenderContext(terraform_dir=terraform_dir), quiet=quiet)
    if not quiet:
        typer.echo(format_summary(result))


def _write(
    result: Recommendation, out: Path, formats: list[OutputFormat], context: RenderContext, *, quiet: bool
) -> None:
    written, warnings = write_outputs(result, out, formats, context)
    if quiet:
        return
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {', '.join(str(path) for path in written)}", err=True)


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
    inventory: Annotated[
        list[Path],
        typer.Option("--inventory", help="Inventory snapshot files or directories (AWS CLI JSON shapes)."),
    ] = [],  # noqa: B006
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
    min_window: MinWindowOpt = "7d",
    max_gap: MaxGapOpt = "30m",
    allow_missing: AllowMissingOpt = False,
    min_records: MinRecordsOpt = 1,
    min_confidence: MinConfidenceOpt = Confidence.LOW,
    max_unattributed: MaxUnattributedOpt = 0,
    ephemeral_ports: Annotated[
        list[str],
        typer.Option("--ephemeral-ports", help="Client port range LOW-HIGH for initiator inference."),
    ] = [],  # noqa: B006
    vpc: Annotated[list[str], typer.Option("--vpc", help="Check groups of this VPC (repeatable).")] = [],  # noqa: B006
    group: Annotated[list[str], typer.Option("--group", help="Check this group (repeatable).")] = [],  # noqa: B006
    eni: Annotated[list[str], typer.Option("--eni", help="Check the groups of this ENI (repeatable).")] = [],  # noqa: B006
    tag: TagOpt = [],  # noqa: B006
    log_format: LogFormatOpt = None,
    log_stream: LogStreamOpt = None,
    bucket_ports: BucketOpt = "32768-65535",
    start: StartOpt = None,
    end: EndOpt = None,
    max_malformed: MaxMalformedOpt = DEFAULT_MAX_MALFORMED,
    log_group: LogGroupOpt = [],  # noqa: B006
    since: SinceOpt = "14d",
    lag: LagOpt = "15m",
    max_bytes: MaxBytesOpt = None,
    max_concurrent_queries: MaxQueriesOpt = 4,
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
    ingest = _ingest_options(log_format, log_stream, bucket_ports, start, end, max_malformed, allow_missing)
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
    )
    request = CheckRequest(
        inputs=RecommendInputs(
            flows=tuple(flows),
            inventory=tuple(inventory),
            ingest=ingest,
            aws=aws,
            progress=_progress(quiet=quiet, verbose=verbose),
            analysis=AnalysisOptions(
                min_window=parse_duration(min_window, option="--min-window"),
                max_gap=_max_gap(max_gap),
                min_records=min_records,
                min_confidence=min_confidence,
                max_unattributed=max_unattributed,
                scope=Scope(frozenset(vpc), frozenset(group), frozenset(eni), frozenset(_parse_tags(tag))),
                pins=tuple(loaded.pins) if loaded is not None else (),
                ephemeral=EphemeralRanges(tuple(PortRange.parse(r) for r in ephemeral_ports))
                if ephemeral_ports
                else EphemeralRanges(),
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
    with _aws_run(aws, active=not inventory or not (flows or no_flows)):
        report = run_check(request)
    files = render_outputs(report, CheckOutputs(sarif=sarif, junit=junit, markdown=markdown))
    write_all(files)
    if not quiet:
        typer.echo(render_text(report), nl=False)
        if files:
            typer.echo(f"wrote {', '.join(str(path) for path in files)}", err=True)
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
    click/typer's own handling stays: usage errors, --help, Ctrl-C (130), a closed stdout pipe."""
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
    except KeyboardInterrupt:  # while reading the config (typer handles it inside the command)
        sys.exit(130)
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
        typer.echo(
            f"error: internal error: {detail} — this is a bug in sgadvisor; please report it with the "
            "command line (run with SGADVISOR_DEBUG=1 for the traceback)",
            err=True,
        )
        return
    typer.echo(f"error: {exc.message}", err=True)
    if isinstance(exc, TooManyMalformedError):
        located = sorted(exc.issues, key=lambda issue: issue.line is None)  # damaged lines first
        for issue in located[:10]:
            where = f"{issue.file}:{issue.line}" if issue.line is not None else issue.file
            typer.echo(f"  {where}: {issue.reason}", err=True)
    if exc.hint:
        typer.echo(f"hint: {exc.hint}", err=True)
