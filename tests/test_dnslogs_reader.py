"""read_dns_logs: every shape by content, walking, the window, and every bad input counted and located.

Shapes: the S3 delivery (``AWSLogs/<account>/vpcdnsquerylogs/<vpc>/YYYY/MM/DD/<vpc>_vpcdnsquerylogs_
<account>_<time>Z_<hash>.log.gz``, the key pattern of Dynatrace's S3 log forwarder rules), ``aws logs
filter-log-events`` output (pretty, and one page per line), a subscription envelope, JSON Lines of
events, and a CloudWatch Logs export (``<task>/<stream>/000000.gz`` of ``<time> <message>`` lines).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.dnslogs import DnsLog, read_dns_logs
from sgadvisor.dnslogs.lines import StreamEnd, numbered_lines
from sgadvisor.errors import InputError
from sgadvisor.models import DnsAccounting
from tests.test_dnslogs_records import FIXTURES, base

T0 = 1612461115  # 2021-02-04T17:51:55Z
DAY = 86400
S3_DIR = ("AWSLogs", "111122223333", "vpcdnsquerylogs", "vpc-0abc", "2021", "02", "04")
S3_NAME = "vpc-0abc_vpcdnsquerylogs_111122223333_20210204T1750Z_1a2b3c4d.log.gz"


def iso(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rec(
    name: str = "api.partner.example", address: str = "203.0.113.5", *, at: int = T0, **more: Any
) -> dict[str, Any]:
    return base(
        query_name=name + ".",
        query_timestamp=iso(at),
        answers=[{"Rdata": address, "Type": "A", "Class": "IN"}],
        **more,
    )


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def write(path: Path, text: str, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
            handle.write(text.encode())
    else:
        path.write_text(text)
    return path


def s3_file(root: Path, records: list[dict[str, Any]]) -> Path:
    return write(root.joinpath(*S3_DIR, S3_NAME), "".join(line(r) + "\n" for r in records), gz=True)


def balanced(accounting: DnsAccounting) -> bool:
    return accounting.records == accounting.used + accounting.malformed + sum(accounting.filtered.values())


def reasons(log: DnsLog) -> dict[tuple[str, int], str]:
    return {(Path(i.file).name, i.line): i.reason for i in log.accounting.issues}


# ------------------------------------------------------------------------------------------ shapes


def test_s3_delivery_in_the_real_layout(tmp_path: Path) -> None:
    guide = json.loads((FIXTURES / "aws-docs" / "resolver-query-logs-example.json").read_text())
    path = s3_file(tmp_path, [guide, rec(), rec("cdn.example", "198.51.100.7", srcaddr="10.0.1.11")])
    log = read_dns_logs([tmp_path / "AWSLogs"], None, None)
    assert log.sources == [str(path)] and log.shapes == {str(path): "s3"}
    assert (log.accounting.records, log.accounting.used, log.accounting.malformed) == (3, 3, 0)
    assert log.names() == ["15.3.4.32.in-addr.arpa", "api.partner.example", "cdn.example"]
    assert log.names_for(["10.0.1.10"], "203.0.113.5").names == ("api.partner.example",)
    assert log.names_for(["10.0.1.10"], "198.51.100.7").names == ()
    assert log.names_for(["10.0.1.11"], "198.51.100.7").names == ("cdn.example",)


def _events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "logStreamName": "vpc-0abc_i-0abc",
            "timestamp": 1000 * (T0 + i),
            "message": line(r),
            "ingestionTime": 1000 * (T0 + i + 5),
            "eventId": f"3681457238756612391834529341276540870834562358{i:08d}",
        }
        for i, r in enumerate(records)
    ]


def test_filter_log_events_pretty_printed(tmp_path: Path) -> None:
    """``aws logs filter-log-events --log-group-name … --output json``: one indented document."""
    document = {"events": _events([rec(), rec("cdn.example", "198.51.100.7")]), "searchedLogStreams": []}
    path = write(tmp_path / "events.json", json.dumps(document, indent=4))
    log = read_dns_logs([path], None, None)
    assert log.shapes == {str(path): "cloudwatch-events"}
    assert log.accounting.used == 2
    assert log.names_for(["10.0.1.10"], "198.51.100.7").names == ("cdn.example",)


def test_filter_log_events_one_page_per_line(tmp_path: Path) -> None:
    pages = [{"events": _events([rec()]), "nextToken": "x"}, {"events": _events([rec("b.example")])}]
    path = write(tmp_path / "pages.json", "".join(json.dumps(p) + "\n" for p in pages))
    log = read_dns_logs([path], None, None)
    assert log.shapes == {str(path): "cloudwatch-events"}
    assert log.names() == ["api.partner.example", "b.example"]


def test_subscription_envelope_and_control_message(tmp_path: Path) -> None:
    data = {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "/aws/route53/resolver",
        "logStream": "vpc-0abc_i-0abc",
        "logEvents": [{"id": "1", "timestamp": 1000 * T0, "message": line(rec())}],
    }
    control = {
        "messageType": "CONTROL_MESSAGE",
        "logEvents": [{"id": "", "timestamp": 1000 * T0, "message": "CWL CONTROL MESSAGE: Checking health"}],
    }
    path = write(tmp_path / "sub.json", json.dumps(data) + "\n" + json.dumps(control) + "\n")
    log = read_dns_logs([path], None, None)
    assert (log.accounting.records, log.accounting.used) == (1, 1)


def test_json_lines_of_events(tmp_path: Path) -> None:
    """``… --output json | jq -c '.events[]'``"""
    path = write(tmp_path / "ev.json", "".join(json.dumps(e) + "\n" for e in _events([rec(), rec()])))
    log = read_dns_logs([path], None, None)
    assert log.shapes == {str(path): "cloudwatch-events"} and log.accounting.used == 2


def test_cloudwatch_logs_export(tmp_path: Path) -> None:
    """CreateExportTask writes ``<prefix>/<task id>/<log stream>/000000.gz`` whose lines are the event
    time, a space and the message; it also leaves an ``aws-logs-write-test`` object at the prefix."""
    export = tmp_path / "exportedlogs"
    write(export / "aws-logs-write-test", "Permission Check Successful")
    body = "".join(f"{iso(T0 + i)[:-1]}.{i:03d}Z {line(rec(at=T0 + i))}\n" for i in range(3))
    path = write(export / "0f3c-task" / "vpc-0abc_i-0abc" / "000000.gz", body, gz=True)
    log = read_dns_logs([export], None, None)
    assert log.shapes == {str(path): "cloudwatch-export"}
    assert log.accounting.used == 3
    assert reasons(log) == {("aws-logs-write-test", 0): "skipped, not a .log, .json or gzip file"}


def test_pretty_printed_record_as_the_guide_prints_it() -> None:
    path = FIXTURES / "aws-docs" / "resolver-query-logs-example.json"
    log = read_dns_logs([path], None, None)
    assert log.shapes == {str(path): "json"} and log.accounting.used == 1
    assert log.names() == ["15.3.4.32.in-addr.arpa"]


def test_inbound_endpoint_sample_is_read_but_never_the_clients(tmp_path: Path) -> None:
    path = FIXTURES / "opensearch" / "route53-inbound-endpoint.json"
    log = read_dns_logs([path], None, None)
    assert log.accounting.used == 1
    match = log.names_for(["10.200.21.100"], "127.0.0.62")
    assert match.names == () and match.forwarded == ("ip-127-0-0-62.alert.firewall.canary",)
    assert match.forwarded_via == ("rslvr-in-0000000000000000",)


# ------------------------------------------------------------------------------------------ window


def test_window_is_half_open_and_counted(tmp_path: Path) -> None:
    records = [rec(at=T0 - 1), rec(at=T0), rec(at=T0 + DAY - 1), rec(at=T0 + DAY)]
    path = s3_file(tmp_path, records)
    log = read_dns_logs([path], T0, T0 + DAY)
    assert log.accounting.used == 2
    assert log.accounting.filtered == {"outside the window": 2}
    assert balanced(log.accounting)
    assert log.names_for(["10.0.1.10"], "203.0.113.5").queries == 2


# ------------------------------------------------------------------------------------------ bad lines


def test_malformed_lines_are_counted_and_located(tmp_path: Path) -> None:
    text = "\n".join(
        [
            line(rec()),
            '{"query_name": "x.example.", "query_timestamp": ',  # cut JSON
            line(rec(srcaddr="nowhere")),
            "",
            line(rec(query_type=...)),
            "[1, 2]",
            line(rec()),
        ]
    )
    path = write(tmp_path / "bad.log", text + "\n")
    log = read_dns_logs([path], None, None)
    assert (log.accounting.records, log.accounting.used, log.accounting.malformed) == (6, 2, 4)
    assert reasons(log) == {
        ("bad.log", 2): "invalid JSON: Expecting value",
        ("bad.log", 3): "srcaddr 'nowhere' is not an IP address",
        ("bad.log", 5): "query_type is missing",
        ("bad.log", 6): "a record is a JSON object, not a list",
    }
    assert balanced(log.accounting)


def test_bad_events_are_located_by_event_number(tmp_path: Path) -> None:
    events = _events([rec(), rec()])
    events[1]["message"] = "2 111122223333 eni-0abc 10.0.1.10 203.0.113.5 443 49152 6 1 40 1 2 ACCEPT OK"
    events.append({"logStreamName": "s", "timestamp": 0})
    path = write(tmp_path / "events.json", json.dumps({"events": events}, indent=2))
    log = read_dns_logs([path], None, None)
    assert log.accounting.used == 1 and log.accounting.malformed == 2
    assert reasons(log) == {
        ("events.json", 2): "event 2: message is not JSON: Extra data",
        ("events.json", 3): "event 3: event without a text 'message'",
    }


def test_first_hundred_issues_kept_the_rest_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "many.log", line(rec()) + "\n" + "not json\n" * 150)
    log = read_dns_logs([path], None, None)
    assert log.accounting.malformed == 150
    assert len(log.accounting.issues) == 100 and log.accounting.issues_omitted == 50
    assert log.accounting.issues[0].line == 2 and log.accounting.issues[-1].line == 101


def _big_gzip(count: int) -> tuple[bytes, list[str]]:
    lines = [line(rec(f"n{i:05d}-{os.urandom(6).hex()}.example", at=T0 + i)) for i in range(count)]
    return gzip.compress("".join(ln + "\n" for ln in lines).encode(), mtime=0), lines


def _complete_lines(data: bytes) -> int:
    """How many whole lines a damaged gzip still yields (decoded independently of sgadvisor)."""
    decoder = zlib.decompressobj(wbits=31)
    out = b""
    for i in range(len(data)):
        try:
            out += decoder.decompress(data[i : i + 1])
        except zlib.error:
            break
    return out.count(b"\n")


def test_truncated_gzip_keeps_every_good_line_and_reports_where(tmp_path: Path) -> None:
    data, _ = _big_gzip(3000)
    cut = data[: len(data) * 3 // 5]
    path = tmp_path.joinpath(*S3_DIR, S3_NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(cut)
    kept = _complete_lines(cut)
    assert 1000 < kept < 3000
    log = read_dns_logs([tmp_path], None, None)
    assert log.accounting.used == kept
    assert log.accounting.malformed == 1 and balanced(log.accounting)
    (issue,) = log.accounting.issues
    assert issue.file == str(path) and issue.line == kept + 1
    assert "gzip stream truncated" in issue.reason and "incomplete line dropped" in issue.reason
    assert len(log.names()) == kept


def test_corrupt_gzip_keeps_the_lines_before_the_damage(tmp_path: Path) -> None:
    """A wrong CRC (a flipped trailer byte): zlib finds it only at the end, so every line is kept and
    the damage is one malformed record after the last line."""
    data, lines = _big_gzip(500)
    broken = bytearray(data)
    broken[-8] ^= 0xFF
    path = tmp_path / "corrupt.log.gz"
    path.write_bytes(bytes(broken))
    log = read_dns_logs([path], None, None)
    assert log.accounting.used == len(lines) and log.accounting.malformed == 1
    (issue,) = log.accounting.issues
    assert issue.line == len(lines) + 1
    assert "corrupt gzip data" in issue.reason and "rest of file unreadable" in issue.reason


def test_garbage_after_the_last_member(tmp_path: Path) -> None:
    data, _ = _big_gzip(10)
    path = tmp_path / "tail.log.gz"
    path.write_bytes(data + b"garbage")
    log = read_dns_logs([path], None, None)
    assert log.accounting.used == 10
    (issue,) = log.accounting.issues
    assert issue.line == 11 and "data after the last gzip member" in issue.reason


def test_over_long_lines_are_dropped_as_they_stream() -> None:
    import io

    data = b"short\n" + b"x" * 500 + b"\nafter\n" + b"y" * 300
    end = StreamEnd()
    lines = list(numbered_lines(io.BytesIO(data), end, max_line=100))
    assert lines == [(1, b"short"), (3, b"after")]
    assert end.long_lines == [(2, 500), (4, 300)]


# ------------------------------------------------------------------------------------------ hostile JSON


@pytest.mark.parametrize(
    ("payload", "what"),
    [("[" * 5000 + "]" * 5000, "nested deeper"), ("1" + "0" * 5000, "more than")],
    ids=["deep", "huge-int"],
)
def test_hostile_json_is_one_clear_error_naming_the_line(tmp_path: Path, payload: str, what: str) -> None:
    """As for every JSON input of sgadvisor (tests/test_hostile_json.py): an InputError, never a
    traceback or a crash, naming the file and line."""
    path = write(tmp_path / "h.log", f'{line(rec())}\n{line(rec())}\n{{"query_name": {payload}}}\n')
    with pytest.raises(InputError) as caught:
        read_dns_logs([path], None, None)
    assert f"{path}: line 3: " in caught.value.message and what in caught.value.message


def test_hostile_json_inside_an_event_message(tmp_path: Path) -> None:
    events = _events([rec()])
    events[0]["message"] = '{"query_name": "\\ud800"}'
    path = write(tmp_path / "e.json", json.dumps({"events": events}) + "\n")
    with pytest.raises(InputError, match="lone surrogate"):
        read_dns_logs([path], None, None)


# ------------------------------------------------------------------------------------------ paths


def test_named_file_that_is_no_query_log_is_an_error(tmp_path: Path) -> None:
    notes = write(tmp_path / "notes.log", "hello\n")
    with pytest.raises(InputError, match="not a Route 53 Resolver query log"):
        read_dns_logs([notes], None, None)
    with pytest.raises(InputError, match="invalid JSON at line"):
        # The guide's 2020 example has trailing commas: no JSON parser reads it.
        read_dns_logs([FIXTURES / "aws-docs" / "resolver-query-logs-example-2020.json"], None, None)
    flows = write(
        tmp_path / "flows.json",
        json.dumps(
            {"events": [{"message": "2 111122223333 eni-0abc 10.0.1.10 10.0.2.1 1 2 6 1 40 1 2 ACCEPT OK"}]}
        ),
    )
    with pytest.raises(InputError, match="not a Route 53 Resolver query-log record"):
        read_dns_logs([flows], None, None)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_dns_logs([tmp_path / "nope"], None, None)


def test_named_fifo_is_an_error(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="a FIFO"):
        read_dns_logs([fifo], None, None)


def test_walking_skips_and_lists_what_it_cannot_read(tmp_path: Path) -> None:
    good = s3_file(tmp_path, [rec()])
    os.mkfifo(tmp_path / "pipe.log")  # never opened: it would block
    (tmp_path / "dangling.log").symlink_to(tmp_path / "gone.log")
    write(tmp_path / "README.txt", "notes")
    write(tmp_path / "notes.log", "hello\n")
    write(tmp_path / ".hidden.log", "not read\n")
    write(tmp_path / "empty.log", "\n\n")
    write(
        tmp_path / "old-example.json",
        (FIXTURES / "aws-docs" / "resolver-query-logs-example-2020.json").read_text(),
    )
    log = read_dns_logs([tmp_path], None, None)
    assert log.sources == [str(good)]
    found = reasons(log)
    assert found[("pipe.log", 0)] == "skipped, not a regular file (a FIFO)"
    assert found[("dangling.log", 0)].startswith("skipped, unreadable: dangling symlink")
    assert found[("README.txt", 0)] == "skipped, not a .log, .json or gzip file"
    assert found[("notes.log", 0)].startswith("skipped, not a Route 53 Resolver query log: line 1 is neither")
    assert found[("empty.log", 0)] == "empty file: no records"
    assert found[("old-example.json", 0)].startswith(
        "skipped, not a Route 53 Resolver query log: invalid JSON"
    )
    assert not any(name == ".hidden.log" for name, _ in found)
    assert log.accounting.used == 1 and balanced(log.accounting)


def test_gzip_without_a_suffix_is_read_by_its_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "dir" / "000001", line(rec()) + "\n", gz=True)
    log = read_dns_logs([tmp_path / "dir"], None, None)
    assert log.sources == [str(path)] and log.accounting.used == 1


def test_paths_repeat_and_accumulate(tmp_path: Path) -> None:
    a = write(tmp_path / "a.log", line(rec(at=T0)) + "\n")
    b = write(tmp_path / "b.log", line(rec(at=T0 + DAY)) + "\n")
    log = read_dns_logs([a, b], None, None)
    assert log.sources == [str(a), str(b)]
    assert log.stability("api.partner.example", 4).days == 2


def test_a_broken_document_is_located_by_its_line_in_the_file(tmp_path: Path) -> None:
    text = "\n\n" + json.dumps({"events": _events([rec()])}, indent=4)
    broken = write(tmp_path / "broken.json", text.replace('"events"', "events", 1))
    with pytest.raises(InputError, match="invalid JSON at line 4: Expecting property name"):
        read_dns_logs([broken], None, None)


def test_a_document_cut_by_gzip_damage_says_so(tmp_path: Path) -> None:
    document = json.dumps(
        {"events": _events([rec(f"n{i}-{os.urandom(8).hex()}.example") for i in range(300)])}, indent=4
    )
    data = gzip.compress(document.encode(), mtime=0)
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"invalid JSON at line \d+: .*\(gzip stream truncated"):
        read_dns_logs([path], None, None)
