"""Peer flow-log test vectors: every record a peer parses, sgadvisor parses to the same values.

The vectors (OpenTelemetry collector-contrib, Elastic integrations, Vector's VRL, AWS docs examples) live in
``../shared/fixtures/peer-flowlogs``; its README.md documents every file. They are read at test time and
never copied into this repo: their licences (Apache-2.0, Elastic License 2.0, MPL-2.0, CC-BY-SA-4.0) are
not ours. Only field names and field orders (facts from the AWS docs and the README) appear here.

Where peers disagree, sgadvisor follows a deliberate choice, asserted below:

- ``-`` means absent (null), as the AWS docs say. vrl agrees (null), OTel and Elastic omit the field, but
  Elastic keeps the literal ``-`` in ``cloud.region``/``cloud.availability_zone``: ours is null there.
- A record whose value count differs from its format is malformed, counted and located, never guessed.
  Older OTel errors too; newer OTel emits a short record with the missing field left out.
- Runs of whitespace separate values (AWS values never contain spaces), so the AWS doc record with two
  spaces parses; a single-space splitter (vrl) would see an empty value and fail.
- Ids are opaque text (Elastic's search-and-replace left ``eni-89.160.20.1561aaaaaaaaa``; kept as is).
- sgadvisor keeps srcaddr/dstaddr and pkt-srcaddr/pkt-dstaddr as separate fields. OTel's
  ``source.address`` prefers pkt-*; Elastic's ``source.address`` is srcaddr. Both are checked.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from _pytest.mark.structures import ParameterSet

from sgadvisor.accounting import Issue, Ledger
from sgadvisor.errors import TooManyMalformedError
from sgadvisor.flowlogs.fields import DEFAULT_FORMAT, normalize_field_name, parse_log_format
from sgadvisor.flowlogs.ingest import DEFAULT_MAX_MALFORMED, IngestOptions, read_flows, read_records
from tests.conftest import SHARED, shared_path

PEER = ("fixtures", "peer-flowlogs")
Row = dict[str, Any]

# Integer fields (AWS docs; vrl types the same ones, plus the TGW packet-loss counters vrl does not know).
INT_FIELDS = frozenset(
    {
        "version",
        "srcport",
        "dstport",
        "protocol",
        "packets",
        "bytes",
        "start",
        "end",
        "tcp-flags",
        "traffic-path",
        "encryption-status",
        "packets-lost-no-route",
        "packets-lost-blackhole",
        "packets-lost-mtu-exceeded",
        "packets-lost-ttl-expired",
    }
)

# Elastic picks the format by field count; the README worked these orders out from the expected output.
_V3_EXTRA = (
    "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id sublocation-type "
    "sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"
)
_ECS = (
    "ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id "
    "ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id"
)
_DEFAULT = " ".join(DEFAULT_FORMAT)
ELASTIC_FORMATS: dict[int, str] = {
    14: _DEFAULT,
    21: (
        "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport dstport "
        "pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status"
    ),
    29: f"{_DEFAULT} {_V3_EXTRA}",
    36: (
        "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id "
        "tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id "
        "tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id "
        "srcaddr dstaddr srcport dstport protocol packets bytes start end log-status type "
        "packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded packets-lost-ttl-expired "
        "tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service"
    ),
    39: f"{_DEFAULT} {_V3_EXTRA} {_ECS}",
    40: f"{_DEFAULT} {_V3_EXTRA} {_ECS} reject-reason",
}

# OTel sets these formats in its test config, not in the data (README).
OTEL_CW_CUSTOM_FORMAT = "version interface-id srcaddr dstaddr"
OTEL_TGW_CW_FORMAT = (
    "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-id tgw-dst-vpc-id "
    "tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id srcaddr dstaddr "
    "srcport dstport protocol packets bytes start end log-status"
)
OTEL_FORMATS: dict[str, str] = {
    "valid_vpc_flow_cw_custom.json": OTEL_CW_CUSTOM_FORMAT,
    "valid_tgw_flow_cw.json": OTEL_TGW_CW_FORMAT,
}

ELASTIC_WITH_EXPECTED = (
    "test-extra-samples.log",
    "test-tcp-flag-sequence.log",
    "test-tgw-samples.log",
    "test-v5-all-fields.log",
    "test-v8-samples.log",
    "test-with-message-field.log",
)
ELASTIC_INPUT_ONLY = ("test-ecs-samples.log", "older-versions/3293a89e/test-extra-samples.log")
JSON_LINES = frozenset({"test-with-message-field.log"})


# ------------------------------------------------------------------------------------------------ helpers


def peer_path(*parts: str) -> Path:
    """A peer fixture: skipped where ../shared is absent, a failure under CI=true (conftest.shared_path)."""
    return shared_path(*PEER, *parts)


def _peek(*parts: str) -> Path | None:
    """The same file at collection time, when test ids are built (no skip there; the test itself skips)."""
    path = SHARED.joinpath(*PEER, *parts)
    return path if path.is_file() else None


ABSENT = pytest.param(-1, id="peer-fixtures-absent")


@cache
def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _cases(*parts: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = _json(peer_path(*parts))["cases"]
    return cases


def _case_params(parts: tuple[str, ...], ident: Callable[[int, dict[str, Any]], str]) -> list[ParameterSet]:
    path = _peek(*parts)
    if path is None:
        return [ABSENT]
    return [pytest.param(i, id=ident(i, case)) for i, case in enumerate(_json(path)["cases"])]


def _read(path: Path, fmt: str | tuple[str, ...] | None = None) -> tuple[list[Row], Ledger]:
    """Every good record of ``path`` (in order) and the ledger that counted the bad ones."""
    names = parse_log_format(fmt) if isinstance(fmt, str) else fmt
    ledger = Ledger()
    blocks = list(read_records([path], ledger, IngestOptions(log_format=names or None)))
    rows = [row for block in blocks for row in block.frame.iter_rows(named=True)]
    return sorted(rows, key=lambda row: int(row["_line"])), ledger


@cache
def _read_elastic(path: Path) -> tuple[list[Row], Ledger]:
    """One read per Elastic file, shared by its per-event tests (the rows are never modified)."""
    return _read(path, _elastic_format(path))


def _one_line(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "case.log"
    path.write_text(line + "\n", encoding="utf-8")
    return path


def _fields(row: Row) -> Row:
    """The AWS fields of a record (without ``_line`` and other bookkeeping columns)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _typed(values: Mapping[str, object]) -> dict[str, tuple[str, object]]:
    """Compare values *and* types: 2 and "2" must not pass for each other."""
    return {k: (type(v).__name__, v) for k, v in values.items()}


def _documented(fmt: tuple[str, ...], line: str) -> Row:
    """What the AWS docs make of a record: ``-`` is null, INT_FIELDS are integers, the rest text as written.

    An oracle independent of sgadvisor; it is checked against vrl's explicit expected objects below.
    """
    values = line.split()
    assert len(values) == len(fmt), (fmt, line)
    return {
        name: None if value == "-" else int(value) if name in INT_FIELDS else value
        for name, value in zip(fmt, values, strict=True)
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _nonblank_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# ------------------------------------------------------------------------------------------------ guards


def test_manifest_matches_the_files() -> None:
    """The data is what the README describes (byte counts and sha256 from MANIFEST.json)."""
    manifest = _json(peer_path("MANIFEST.json"))
    assert len(manifest["files"]) >= 30
    for entry in manifest["files"]:
        data = peer_path(entry["file"]).read_bytes()
        assert len(data) == entry["bytes"], entry["file"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["file"]


def test_case_counts() -> None:
    """A regenerated fixture that silently lost cases would otherwise shrink the parametrization."""
    assert len(_cases("vrl", "vrl_test_cases.json")) == 36
    assert sum(c["expected"] is not None for c in _cases("vrl", "vrl_test_cases.json")) == 6
    assert len(_cases("aws-docs", "flow-logs-records-examples.json")) == 27
    assert len(_cases("otel-contrib", "handle_addresses_cases.json")) == 4
    for width, fmt in ELASTIC_FORMATS.items():
        assert len(parse_log_format(fmt)) == width
    assert len(parse_log_format(OTEL_TGW_CW_FORMAT)) == 23


# ------------------------------------------------------------------------------------------------ vrl


def _vrl_id(index: int, case: dict[str, Any]) -> str:
    origin = "doc" if case["source"].startswith("docs/") else "rs"
    width = len(case["format"].split()) if case["format"] else len(DEFAULT_FORMAT)
    checked = "expected" if case["expected"] is not None else "parses"
    return f"{index:02d}-{origin}-{width}f-{checked}"


@pytest.mark.parametrize("index", _case_params(("vrl", "vrl_test_cases.json"), _vrl_id))
def test_vrl_case(index: int, tmp_path: Path) -> None:
    case = _cases("vrl", "vrl_test_cases.json")[index]
    fmt = parse_log_format(case["format"]) if case["format"] else DEFAULT_FORMAT
    # A null vrl format means the AWS default: read it without a format to exercise our default too.
    rows, ledger = _read(_one_line(tmp_path, case["input"]), case["format"])
    assert ledger.malformed == 0, ledger.issues
    assert len(rows) == 1
    ours = _fields(rows[0])
    assert tuple(ours) == fmt
    assert _typed(ours) == _typed(_documented(fmt, case["input"]))
    if case["expected"] is not None:
        expected = {normalize_field_name(k): v for k, v in case["expected"].items()}
        assert set(expected) == set(fmt)  # vrl keeps every key, null for "-"
        assert _typed(ours) == _typed(expected)
        assert _typed(_documented(fmt, case["input"])) == _typed(expected)  # the oracle agrees with vrl


# ------------------------------------------------------------------------------------------------ AWS docs


def _aws_id(index: int, case: dict[str, Any]) -> str:
    return f"{index:02d}-{case['section'].removeprefix('flow-log-example-')}"


def _spot_check_note(note: str, row: Row) -> int:
    """Check what the doc says a record shows (where the note says it plainly); returns checks made."""
    checks = 0

    def check(condition: bool, what: str) -> None:
        nonlocal checks
        checks += 1
        assert condition, f"{what}: note {note!r}, record {row}"

    for field in ("dstport", "tcp-flags", "traffic-path"):
        if match := re.search(rf"\b{field} (\d+)\b", note):
            check(row[field] == int(match.group(1)), field)
    for field in ("traffic-path", "instance-id"):
        if f"{field} '-'" in note:
            check(row[field] is None, f"{field} is '-'")
    if re.search(r"\baccepted\b", note):
        check(row["action"] == "ACCEPT", "accepted")
    if re.search(r"\brejected\b", note):
        check(row["action"] == "REJECT", "rejected")
    if "no data" in note:
        check(row["log-status"] == "NODATA" and row["action"] is None, "no data")
    if "skipped" in note:
        check(row["log-status"] == "SKIPDATA" and row["srcaddr"] is None, "skipped")
    if "ports 0" in note:
        check(row["srcport"] == 0 and row["dstport"] == 0, "ports 0")
    if "ICMP" in note:
        check(row["protocol"] == 1, "ICMP")
    if "TCP" in note:
        check(row["protocol"] == 6, "TCP")
    if "IPv6" in note:
        check(ipaddress.ip_address(row["srcaddr"]).version == 6, "IPv6")
    for side, word in (("src", "from"), ("dst", "to")):
        if f"{word} S3" in note:
            check(row[f"pkt-{side}-aws-service"] == "S3", f"{word} S3")
        if f"{side}addr != pkt-{side}addr" in note or f"{side}addr = TGW ENI IP" in note:
            check(row[f"{side}addr"] != row[f"pkt-{side}addr"], f"{side}addr != pkt-{side}addr")
    for direction in ("ingress", "egress"):
        if re.search(rf"\b{direction}\b", note):
            check(row["flow-direction"] == direction, direction)
    return checks


@pytest.mark.parametrize("index", _case_params(("aws-docs", "flow-logs-records-examples.json"), _aws_id))
def test_aws_docs_example(index: int, tmp_path: Path) -> None:
    case = _cases("aws-docs", "flow-logs-records-examples.json")[index]
    fmt = parse_log_format(case["format"])
    rows, ledger = _read(_one_line(tmp_path, case["input"]), fmt)
    assert ledger.malformed == 0, ledger.issues
    assert len(rows) == 1
    assert _typed(_fields(rows[0])) == _typed(_documented(fmt, case["input"]))
    _spot_check_note(case["note"], rows[0])


def test_aws_docs_notes_are_spot_checked() -> None:
    """The note checks above are not vacuous: most records get at least one."""
    checked = 0
    for case in _cases("aws-docs", "flow-logs-records-examples.json"):
        fmt = parse_log_format(case["format"])
        checked += _spot_check_note(case["note"], _documented(fmt, case["input"])) > 0
    assert checked >= 21


def test_aws_docs_record_with_two_spaces_parses(tmp_path: Path) -> None:
    """The AWS doc prints one record with two spaces between values (``… 43638  10.0.0.62 …``).

    sgadvisor deliberately splits on runs of whitespace: no AWS flow-log value contains a space, so a run
    can only be a separator, and the record is the one the doc means. A single-space splitter (vrl)
    would see an empty value, hence one value too many, and reject it.
    """
    cases = [c for c in _cases("aws-docs", "flow-logs-records-examples.json") if "  " in c["input"]]
    assert len(cases) == 1
    case = cases[0]
    fmt = parse_log_format(case["format"])
    assert len(case["input"].split(" ")) == len(fmt) + 1 and "" in case["input"].split(" ")
    rows, ledger = _read(_one_line(tmp_path, case["input"]), fmt)
    assert (ledger.malformed, len(rows)) == (0, 1)
    row = rows[0]
    assert (row["srcport"], row["dstport"], row["pkt-srcaddr"]) == (5001, 43638, "10.0.0.62")
    assert (row["tcp-flags"], row["log-status"]) == (19, "OK")


# ------------------------------------------------------------------------------------------------ Elastic


def _elastic_format(path: Path) -> str | None:
    """Elastic picks the format from the field count; JSON Lines of {"message": …} need none."""
    if path.name in JSON_LINES:
        return None
    widths = {len(line.split()) for line in _nonblank_lines(path)}
    assert len(widths) == 1, f"{path}: mixed field counts {widths}"
    return ELASTIC_FORMATS[widths.pop()]


def _elastic_inputs(path: Path) -> list[str]:
    """The flow-log line of each input record (Elastic's ``event.original``)."""
    lines = _nonblank_lines(path)
    if path.name in JSON_LINES:
        return [str(json.loads(line)["message"]) for line in lines]
    return lines


def _elastic_params() -> list[ParameterSet]:
    params: list[ParameterSet] = []
    for name in ELASTIC_WITH_EXPECTED:
        path = _peek("elastic-integrations", f"{name}-expected.json")
        if path is None:
            return [pytest.param("", -1, id="peer-fixtures-absent")]
        for index in range(len(_json(path)["expected"])):
            params.append(pytest.param(name, index, id=f"{name.removesuffix('.log')}#{index + 1}"))
    return params


# Where Elastic puts an AWS field when not at aws.vpcflow.<field with underscores>.
ELASTIC_KEY: dict[str, str] = {
    "srcaddr": "source.address",
    "dstaddr": "destination.address",
    "srcport": "source.port",
    "dstport": "destination.port",
    "protocol": "network.iana_number",
    "packets": "source.packets",
    "bytes": "source.bytes",
    "start": "event.start",
    "end": "event.end",
    "flow-direction": "network.direction",
    "region": "cloud.region",
    "az-id": "cloud.availability_zone",
    "reject-reason": "event.reason",
    "pkt-src-aws-service": "aws.vpcflow.pkt_src_service",
    "pkt-dst-aws-service": "aws.vpcflow.pkt_dst_service",
    "sublocation-type": "aws.vpcflow.sublocation.type",
    "sublocation-id": "aws.vpcflow.sublocation.id",
    "ecs-cluster-arn": "orchestrator.cluster.id",
    "ecs-cluster-name": "orchestrator.cluster.name",
    "ecs-container-instance-arn": "orchestrator.resource.name",
    "ecs-container-instance-id": "orchestrator.resource.id",
    "ecs-service-name": "service.name",
}
# Second places Elastic copies a field to.
ELASTIC_COPIES: dict[str, tuple[str, ...]] = {
    "srcaddr": ("source.ip",),
    "dstaddr": ("destination.ip",),
    "packets": ("network.packets",),
    "bytes": ("network.bytes",),
    "end": ("@timestamp",),
    "account-id": ("cloud.account.id",),
    "instance-id": ("cloud.instance.id",),
}
# Elastic keeps "-" literally here; sgadvisor follows the AWS docs ("-" = absent, null).
ELASTIC_KEEPS_DASH = frozenset({"cloud.region", "cloud.availability_zone"})
# Enrichment and derived keys, not parsing (README: ignore geo, as, community_id, related).
ELASTIC_IGNORED = re.compile(
    r"^(?:(?:source|destination)\.(?:geo|as)\.|network\.community_id$|related\.|ecs\.version$|tags$"
    r"|cloud\.provider$|event\.(?:category|kind|type|original)$|network\.type$)"
)
_TRANSPORT = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp"}


def _elastic_view(row: Row) -> dict[str, object]:
    """Our record as Elastic would show it: flat key -> value, None where Elastic leaves the key out."""
    view: dict[str, object] = {}
    for name, value in _fields(row).items():
        key = ELASTIC_KEY.get(name, "aws.vpcflow." + name.replace("-", "_"))
        rendered: object = value
        if value is not None:
            if key in ("event.start", "event.end"):
                rendered = _iso(value)
            elif key.startswith("aws.vpcflow.") or key == "network.iana_number":
                rendered = str(value)  # Elastic keeps these as strings ("3", "6", "2")
        view[key] = rendered
        for copy in ELASTIC_COPIES.get(name, ()):
            view[copy] = _iso(value) if copy == "@timestamp" and value is not None else value
    return view


@pytest.mark.parametrize(("name", "index"), _elastic_params())
def test_elastic_event(name: str, index: int) -> None:
    log = peer_path("elastic-integrations", name)
    expected = _json(peer_path("elastic-integrations", f"{name}-expected.json"))["expected"]
    inputs = _elastic_inputs(log)
    assert len(expected) == len(inputs)  # one event per input record, in input order
    rows, ledger = _read_elastic(log)
    assert ledger.malformed == 0, ledger.issues
    assert [row["_line"] for row in rows] == list(range(1, len(inputs) + 1))
    peer = dict(_flatten(expected[index]))
    assert peer["event.original"] == inputs[index]
    row = rows[index]
    ours = _elastic_view(row)

    for key in ELASTIC_KEEPS_DASH:
        if peer.get(key) == "-":  # documented disagreement: Elastic keeps "-", we follow the AWS docs
            assert ours.get(key) is None, f"{key}: ours is {ours.get(key)!r}, '-' means absent"
    compared = 0
    for key, value in ours.items():
        if value is None:
            if key in ELASTIC_KEEPS_DASH and peer.get(key) == "-":
                continue  # the disagreement checked above
            assert key not in peer, f"{key}: peer has {peer[key]!r}, ours is null"
        else:
            assert key in peer, f"{key}: ours is {value!r}, peer has nothing"
            assert _typed({key: peer[key]}) == _typed({key: value})
            compared += 1
    for key, value in peer.items():
        if ELASTIC_IGNORED.match(key) or isinstance(value, list):
            continue  # enrichment, or lists such as tcp_flags_array (derived, not parsed)
        if key == "event.action":
            assert value == row["action"]
        elif key == "event.outcome":
            assert value == {"ACCEPT": "success", "REJECT": "failure"}[row["action"]]
        elif key == "network.transport":
            assert value == _TRANSPORT[row["protocol"]]
        else:
            assert key in ours, f"peer key {key} = {value!r} has no sgadvisor field"
            continue
        compared += 1
    assert compared > 3


def test_elastic_keeps_opaque_interface_id() -> None:
    """Ids are opaque: Elastic's mangled ``eni-89.160.20.1561aaaaaaaaa`` is kept byte for byte."""
    rows, ledger = _read(peer_path("elastic-integrations", "test-extra-samples.log"))
    assert ledger.malformed == 0
    assert "eni-89.160.20.1561aaaaaaaaa" in {row["interface-id"] for row in rows}


def test_elastic_dash_region_is_null() -> None:
    """Documented disagreement: Elastic emits cloud.region/availability_zone "-"; ours is null (AWS docs)."""
    log = peer_path("elastic-integrations", "test-v8-samples.log")
    expected = _json(peer_path("elastic-integrations", "test-v8-samples.log-expected.json"))["expected"]
    peer = dict(_flatten(expected[0]))
    assert (peer["cloud.region"], peer["cloud.availability_zone"]) == ("-", "-")
    rows, _ = _read(log, _elastic_format(log))
    assert (rows[0]["region"], rows[0]["az-id"]) == (None, None)


@pytest.mark.parametrize("name", ELASTIC_INPUT_ONLY)
def test_elastic_input_only_file_parses(name: str) -> None:
    """No expected file (ECS samples: not copied; older version: does not match the newer expected)."""
    log = peer_path("elastic-integrations", name)
    fmt = _elastic_format(log)
    assert fmt is not None
    rows, ledger = _read(log, fmt)
    assert (ledger.malformed, ledger.issues) == (0, [])
    names = parse_log_format(fmt)
    assert [_typed(_fields(row)) for row in rows] == [
        _typed(_documented(names, line)) for line in _nonblank_lines(log)
    ]


# ------------------------------------------------------------------------------------------------ OTel

_PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp"}
_IO_DIRECTION = {"ingress": "receive", "egress": "send"}
_TGW_SIDES = {"source": "src", "destination": "dst"}
# Resource attributes that are not record values (or not values sgadvisor keeps).
_OTEL_RESOURCE_SKIPPED = frozenset({"cloud.provider", "aws.log.group.names", "aws.log.stream.names"})


def _coalesce(*values: object) -> object:
    return next((v for v in values if v is not None), None)


def _otel_view(row: Row) -> dict[str, object]:
    """Our record as OTel attributes: key -> value, None where OTel leaves the attribute out."""
    get = row.get
    protocol, tcp_flags = get("protocol"), get("tcp-flags")
    kind, direction = get("type"), get("flow-direction")
    view: dict[str, object] = {
        "aws.vpc.flow.log.version": get("version"),
        "network.interface.name": get("interface-id"),
        # OTel's rule (handle_addresses_cases.json): the packet address when present.
        "source.address": _coalesce(get("pkt-srcaddr"), get("srcaddr")),
        "destination.address": _coalesce(get("pkt-dstaddr"), get("dstaddr")),
        "source.port": get("srcport"),
        "destination.port": get("dstport"),
        "network.protocol.name": None if protocol is None else _PROTOCOL_NAMES[protocol],
        "aws.vpc.flow.packets": get("packets"),
        "aws.vpc.flow.bytes": get("bytes"),
        "aws.vpc.flow.start": get("start"),
        "aws.vpc.flow.action": get("action"),
        "aws.vpc.flow.status": get("log-status"),
        "network.tcp.flags": None if tcp_flags is None else str(tcp_flags),
        "network.type": None if kind is None else str(kind).lower(),
        "network.io.direction": None if direction is None else _IO_DIRECTION[direction],
        "aws.tgw.id": get("tgw-id"),
        "aws.tgw.attachment.id": get("tgw-attachment-id"),
        "aws.tgw.attachment.pair.id": get("tgw-pair-attachment-id"),
    }
    for side, short in _TGW_SIDES.items():
        view[f"aws.tgw.{side}.vpc.id"] = get(f"tgw-{short}-vpc-id")
        view[f"aws.tgw.{side}.vpc.subnet.id"] = get(f"tgw-{short}-subnet-id")
        view[f"aws.tgw.{side}.eni.id"] = get(f"tgw-{short}-eni")
        view[f"aws.tgw.{side}.az.id"] = get(f"tgw-{short}-az-id")
    for name, value in _fields(row).items():
        if name.startswith("packets-lost-"):
            view["aws.vpc.flow." + name.replace("-", "_")] = value
        elif name.startswith("ecs-"):
            view["aws.ecs." + name.removeprefix("ecs-").replace("-", ".")] = value
    return view


def _otel_value(value: Mapping[str, Any]) -> object:
    (kind, raw), *rest = value.items()
    assert not rest, value
    if kind == "intValue":
        return int(raw)
    assert kind == "stringValue", value
    return str(raw)


def _otel_attributes(items: list[dict[str, Any]] | None) -> dict[str, object]:
    return {item["key"]: _otel_value(item["value"]) for item in items or []}


def _otel_records(*names: str) -> list[tuple[dict[str, object], dict[str, object], int | None]]:
    """(resource attributes, record attributes, timeUnixNano) of every log record, in order."""
    records: list[tuple[dict[str, object], dict[str, object], int | None]] = []
    for name in names:
        document = yaml.safe_load(peer_path("otel-contrib", name).read_text(encoding="utf-8"))
        for resource_logs in document["resourceLogs"]:
            resource = _otel_attributes(resource_logs["resource"].get("attributes"))
            for scope_logs in resource_logs["scopeLogs"]:
                for record in scope_logs["logRecords"]:
                    nanos = record.get("timeUnixNano")
                    attributes = _otel_attributes(record.get("attributes"))
                    records.append((resource, attributes, None if nanos is None else int(nanos)))
    return records


OTEL_PAIRS = [
    pytest.param("valid_vpc_flow_log.log", ("valid_vpc_flow_log_single_expected.yaml",), id="s3-nodata"),
    pytest.param("valid_vpc_flow_log_multi.log", ("valid_vpc_flow_log_expected_multi.yaml",), id="s3-multi"),
    pytest.param(
        "valid_vpc_flow_log_multi.log",
        ("stream/valid_vpc_flow_log_multi_1.yaml", "stream/valid_vpc_flow_log_multi_2.yaml"),
        id="s3-multi-stream",
    ),
    pytest.param("valid_vpc_flow_log_ecs.log", ("valid_vpc_flow_log_ecs_expected.yaml",), id="s3-ecs"),
    pytest.param("valid_tgw_flow_log.log", ("valid_tgw_flow_log_expected.yaml",), id="s3-tgw"),
    pytest.param("valid_vpc_flow_cw.json", ("valid_vpc_flow_cw_expected.yaml",), id="cw"),
    pytest.param(
        "valid_vpc_flow_cw_custom.json", ("valid_vpc_flow_cw_custom_expected.yaml",), id="cw-custom"
    ),
    pytest.param("valid_tgw_flow_cw.json", ("valid_tgw_flow_cw_expected.yaml",), id="cw-tgw"),
]


@pytest.mark.parametrize(("source", "expected_files"), OTEL_PAIRS)
def test_otel_pair(source: str, expected_files: tuple[str, ...]) -> None:
    rows, ledger = _read(peer_path("otel-contrib", source), OTEL_FORMATS.get(source))
    assert ledger.malformed == 0, ledger.issues
    expected = _otel_records(*expected_files)
    assert len(rows) == len(expected)
    for row, (resource, attributes, nanos) in zip(rows, expected, strict=True):
        ours = _otel_view(row)
        compared = 0
        for key, value in attributes.items():
            assert key in ours, f"peer attribute {key} = {value!r} has no sgadvisor field"
            assert _typed({key: ours[key]}) == _typed({key: value})
            compared += 1
        for key, value in ours.items():
            if value is not None:  # OTel omits "-" (null) fields; everything else must be there
                assert key in attributes, f"{key}: ours is {value!r}, peer has nothing"
        assert (nanos is not None) == (row.get("end") is not None)
        if nanos is not None:
            assert nanos == row["end"] * 10**9  # timeUnixNano is `end`
            compared += 1
        for key, field in (("cloud.account.id", "account-id"), ("cloud.region", "region")):
            if row.get(field) is not None or key in resource:
                assert resource.get(key) == row.get(field), key
                compared += 1
        assert set(resource) - {"cloud.account.id", "cloud.region"} <= _OTEL_RESOURCE_SKIPPED
        assert compared > 3, (source, row)


def _handle_addresses_id(index: int, case: dict[str, Any]) -> str:
    return str(case["name"])


@pytest.mark.parametrize(
    "index", _case_params(("otel-contrib", "handle_addresses_cases.json"), _handle_addresses_id)
)
def test_otel_handle_addresses(index: int, tmp_path: Path) -> None:
    """OTel's NAT/TGW address rule: source/destination.address is pkt-* when present, and
    network.local.address is the interface-side address it replaced (srcaddr/dstaddr)."""
    case = _cases("otel-contrib", "handle_addresses_cases.json")[index]
    fmt = " ".join(case["input"])
    rows, ledger = _read(_one_line(tmp_path, " ".join(case["input"].values())), fmt)
    assert (ledger.malformed, len(rows)) == (0, 1)
    row = rows[0]
    assert _fields(row) == {normalize_field_name(k): v for k, v in case["input"].items()}
    view = _otel_view(row)
    local = next(
        (
            row[f"{side}addr"]
            for side in ("src", "dst")
            if row.get(f"pkt-{side}addr") not in (None, row[f"{side}addr"])
        ),
        None,
    )
    ours = {
        "source.address": view["source.address"],
        "destination.address": view["destination.address"],
        **({} if local is None else {"network.local.address": local}),
    }
    assert ours == case["expected"]


# ------------------------------------------------------------------------------------------------ field count


@pytest.mark.parametrize(
    ("name", "found", "otel_newer_emits"),
    [
        pytest.param("vpc_flow_log_too_few_fields.log", 13, True, id="too-few"),
        pytest.param("vpc_flow_log_too_many_fields.log", 15, False, id="too-many"),
    ],
)
def test_field_count_mismatch_is_malformed(name: str, found: int, otel_newer_emits: bool) -> None:
    """A record whose value count differs from its format is malformed: counted and located, never guessed.

    Peers disagree: older OTel rejects both files; newer OTel emits the short record with the missing
    (last) field left out. sgadvisor cannot know which value is missing: a gap in the middle shifts every
    later value into the wrong column (an address read as a port, a status as an action), and a rule
    built from a shifted record would be wrong without any sign. So the record is left out, counted in
    ``malformed``, and its file and line are reported, and the run's malformed threshold decides.
    """
    path = peer_path("otel-contrib", name)
    rows, ledger = _read(path)  # the header line gives the 14-field format
    assert rows == []
    assert ledger.malformed == 1 and ledger.records == 1
    assert ledger.issues == [Issue(file=str(path), line=2, reason=f"expected 14 fields, found {found}")]
    if otel_newer_emits:
        # What we deliberately do not do: the newer peer's record, with log-status simply missing.
        [(_, attributes, _)] = _otel_records("vpc_flow_log_too_few_fields_expected.yaml")
        assert "aws.vpc.flow.status" not in attributes
    flows = read_flows([path], IngestOptions(max_malformed=1.0))
    assert flows.accounting.balanced and flows.accounting.malformed == 1
    with pytest.raises(TooManyMalformedError):
        read_flows([path])  # 1 of 1 malformed is above the default threshold: the run refuses


# ------------------------------------------------------------------------------------------------ accounting


ACCOUNTING_FILES = [
    *(f"elastic-integrations/{name}" for name in (*ELASTIC_WITH_EXPECTED, *ELASTIC_INPUT_ONLY)),
    *(
        f"otel-contrib/{name}"
        for name in (
            "valid_vpc_flow_log.log",
            "valid_vpc_flow_log_multi.log",
            "valid_vpc_flow_log_ecs.log",
            "valid_tgw_flow_log.log",
            "valid_vpc_flow_cw.json",
            "valid_vpc_flow_cw_custom.json",
            "valid_tgw_flow_cw.json",
            "vpc_flow_log_too_few_fields.log",
            "vpc_flow_log_too_many_fields.log",
        )
    ),
]
MALFORMED = {
    "otel-contrib/vpc_flow_log_too_few_fields.log": 1,
    "otel-contrib/vpc_flow_log_too_many_fields.log": 1,
}


def _record_count(path: Path) -> int:
    """Records in a fixture, counted without sgadvisor: events, or lines less a header line."""
    if path.suffix == ".json":
        return len(_json(path)["logEvents"])
    lines = _nonblank_lines(path)
    has_header = lines[0].split()[0] == "version"
    return len(lines) - has_header


# Samples whose records the format does not fit for sgadvisor (interface-id "-", or a custom format without
# protocol and action): they count toward --max-malformed (README "Bad input"), so these are read leniently.
UNFIT = frozenset(
    {
        "elastic-integrations/test-v8-samples.log",
        "elastic-integrations/test-ecs-samples.log",
        "otel-contrib/valid_vpc_flow_cw_custom.json",
    }
)


@pytest.mark.parametrize("relative", ACCOUNTING_FILES)
def test_accounting_balances(relative: str) -> None:
    path = peer_path(*relative.split("/"))
    if relative.startswith("elastic-integrations/"):
        fmt = _elastic_format(path)
    else:
        fmt = OTEL_FORMATS.get(path.name)
    malformed = MALFORMED.get(relative, 0)
    options = IngestOptions(
        log_format=parse_log_format(fmt) if fmt else None,
        max_malformed=1.0 if malformed or relative in UNFIT else DEFAULT_MAX_MALFORMED,
    )
    accounting = read_flows([path], options).accounting
    assert accounting.balanced, accounting
    assert (accounting.records, accounting.malformed) == (_record_count(path), malformed)
