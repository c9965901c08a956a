"""Hostile JSON and unexpected exceptions end as one clear line and exit 2, never a traceback, and leave
no output or temporary file behind (issue 15): JSON nested thousands of levels deep, integers of
thousands of digits and lone surrogates, in every input that is JSON (inventory snapshots, CloudWatch
events and flow-edge files under --flows, check --baseline, --ip-ranges), the TOML config, and a bug
anywhere in a run."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.cli import main
from sgadvisor.flowlogs.ingest import IngestOptions, read_flows
from tests.conftest import DEFAULT_HEADER, REPO, default_line, write_lines

SAMPLE = REPO / "sample_data"
DEEP_LIST = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
HUGE_INT = "1" + "0" * 5000


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _one_clear_line(err: str, *expected: str) -> None:
    """The contract: an ``error:`` line (plus at most a hint) naming what is at fault, no traceback."""
    lines = err.strip().splitlines()
    assert lines and lines[0].startswith("error: "), err
    assert len(lines) <= 2 and all(line.startswith("hint: ") for line in lines[1:]), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, err)


def _nothing_written(out: Path) -> None:
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


# ---------------------------------------------------------------------------------------- inventory


def _inventory_with(tmp_path: Path, name: str, text: str) -> Path:
    inventory = tmp_path / "inventory"
    shutil.copytree(SAMPLE / "inventory", inventory)
    (inventory / name).write_text(text, encoding="utf-8")
    return inventory


def _groups_doc(edit: str) -> str:
    """describe-security-groups.json with the first group's Name tag and first egress rule's
    description replaced by JSON text (escapes kept as written)."""
    document = json.loads((SAMPLE / "inventory" / "describe-security-groups.json").read_text())
    document["SecurityGroups"][0]["Tags"] = [{"Key": "Name", "Value": "@NAME@"}]
    document["SecurityGroups"][0]["Description"] = "@DESCRIPTION@"
    return json.dumps(document, indent=2).replace(edit.split("=")[0], edit.split("=", 1)[1])


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "describe-security-groups.json",
            '{"SecurityGroups": ' + DEEP_LIST + "}",
            ["line 1", "nested deeper"],
        ),
        ("describe-network-interfaces.json", DEEP_OBJECT, ["line 1", "nested deeper"]),
        (
            "describe-security-group-rules.json",
            '{"SecurityGroupRules": [\n  {"FromPort": ' + HUGE_INT + "}\n]}",
            ["line 2", "more than 4300 digits"],
        ),
        (
            "describe-security-groups.json",
            _groups_doc('"@NAME@"="web\\ud800"'),
            ["SecurityGroups[0].Tags[0].Value", "lone surrogate", "line "],
        ),
        (
            "describe-security-groups.json",
            _groups_doc('"@DESCRIPTION@"="\\udfff app"'),
            ["SecurityGroups[0].Description", "lone surrogate"],
        ),
    ],
    ids=["deep-list", "deep-object", "huge-int", "surrogate-name-tag", "surrogate-description"],
)
def test_hostile_inventory_exits_2_naming_file_and_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, expected: list[str]
) -> None:
    inventory = _inventory_with(tmp_path, name, text)
    out = tmp_path / "out"
    argv = ["recommend", "--inventory", str(inventory), "--flows", str(SAMPLE / "flows"), "--out", str(out)]
    assert run(argv) == 2
    _one_clear_line(capsys.readouterr().err, str(inventory / name), *expected)
    _nothing_written(out)


# ---------------------------------------------------------------------------------------- --flows


def _events(count: int = 3) -> list[dict[str, Any]]:
    return [
        {"logStreamName": "eni-0aaa-all", "timestamp": 1, "message": default_line(sport=40000 + i)}
        for i in range(count)
    ]


def _edge_file(tmp_path: Path) -> list[str]:
    flows = write_lines(
        tmp_path / "src" / "f.log", [default_line(sport=40000 + i) for i in range(3)], header=DEFAULT_HEADER
    )
    edges = tmp_path / "src" / "edges.jsonl"
    assert run(["edges", "--flows", str(flows), "--out", str(edges), "--quiet"]) == 0
    return edges.read_text().splitlines()


def _flow_case(tmp_path: Path, case: str) -> tuple[str, str, list[str]]:
    """(file name, content, what the message names) for one hostile --flows input."""
    events = json.dumps({"events": _events()}, indent=2)
    lines = [json.dumps({"message": e["message"], "logStreamName": e["logStreamName"]}) for e in _events()]
    if case == "cloudwatch-deep":
        return "events.json", '{"events": ' + DEEP_LIST + "}", ["line 1", "nested deeper"]
    if case == "cloudwatch-huge-int":
        text = events.replace('"timestamp": 1,', '"timestamp": ' + HUGE_INT + ",", 1)
        return "events.json", text, ["line 5", "more than 4300 digits"]
    if case == "cloudwatch-surrogate":
        text = events.replace('"message": "2 ', '"message": "2\\ud800 ', 1)
        return "events.json", text, ["line 6", "events[0].message", "lone surrogate"]
    if case == "json-lines-deep":
        text = "\n".join([*lines[:2], '{"message": ' + DEEP_OBJECT + "}", lines[2]]) + "\n"
        return "events.jsonl", text, ["line 3", "nested deeper"]
    if case == "json-lines-surrogate":
        text = "\n".join([*lines[:2], lines[2].replace('"2 ', '"\\udc00 ')]) + "\n"
        return "events.jsonl", text, ["line 3", "message", "lone surrogate"]
    edges = _edge_file(tmp_path)
    if case == "edges-deep":
        return (
            "edges.jsonl",
            "\n".join([*edges, '{"kind": "edge", "x": ' + DEEP_LIST + "}"]) + "\n",
            [
                f"line {len(edges) + 1}",
                "nested deeper",
            ],
        )
    if case == "edges-deep-first-line":  # is_edge_file sniffs the first line: the reader reports it
        return (
            "edges.jsonl",
            "\n".join(['{"kind": "window", "x": ' + DEEP_LIST + "}", *edges]) + "\n",
            [
                "line 1",
                "nested deeper",
            ],
        )
    if case == "edges-huge-int":
        last = edges[-1].replace('"records":', '"records":' + HUGE_INT + ',"x":', 1)
        return "edges.jsonl", "\n".join([*edges[:-1], last]) + "\n", [f"line {len(edges)}", "4300 digits"]
    assert case == "edges-surrogate"
    last = edges[-1].replace('"interface_id":"eni-', '"interface_id":"eni-\\ud800', 1)
    return "edges.jsonl", "\n".join([*edges[:-1], last]) + "\n", [f"line {len(edges)}", "interface_id"]


FLOW_CASES = [
    "cloudwatch-deep",
    "cloudwatch-huge-int",
    "cloudwatch-surrogate",
    "json-lines-deep",
    "json-lines-surrogate",
    "edges-deep",
    "edges-deep-first-line",
    "edges-huge-int",
    "edges-surrogate",
]


@pytest.mark.parametrize("case", FLOW_CASES)
@pytest.mark.parametrize("named", [True, False], ids=["named", "in-directory"])
def test_hostile_flow_json_exits_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, named: bool
) -> None:
    name, text, expected = _flow_case(tmp_path, case)
    path = tmp_path / "flows" / name
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "out" / "edges.jsonl"
    assert run(["edges", "--flows", str(path if named else path.parent), "--out", str(out)]) == 2
    _one_clear_line(capsys.readouterr().err, str(path), *expected)
    _nothing_written(out.parent)


def test_edge_line_integer_beyond_64_bits_is_a_malformed_line(tmp_path: Path) -> None:
    """Within Python's digit limit but not an Int64: counted and located like any bad line."""
    edges = _edge_file(tmp_path)
    path = tmp_path / "edges.jsonl"
    path.write_text(
        "\n".join([*edges[:-1], edges[-1].replace('"records":', '"records":1' + "0" * 30 + ',"x":', 1)])
    )
    flows = read_flows([path], IngestOptions(max_malformed=1.0))
    assert flows.accounting.malformed == 1
    issue = flows.accounting.issues[0]
    assert issue.line == len(edges) and "64-bit" in issue.reason


# ---------------------------------------------------------------------------------------- check --baseline


def _terraform_show(description: str = '"x"', from_port: str = "443") -> str:
    values = (
        '{"security_group_id": "sg-0123", "ip_protocol": "tcp", "from_port": '
        + from_port
        + ', "to_port": 443, '
        '"cidr_ipv4": "10.0.0.0/8", "description": ' + description + "}"
    )
    resource = (
        '{"address": "aws_vpc_security_group_egress_rule.a", "mode": "managed", '
        '"type": "aws_vpc_security_group_egress_rule", "name": "a", "values": ' + values + "}"
    )
    return '{"format_version": "1.0", "values": {"root_module": {"resources": [\n' + resource + "\n]}}}"


_RECOMMENDATION = (SAMPLE / "expected" / "recommendation.json").read_text()
_FIRST_DESCRIPTION = _RECOMMENDATION.index('"description": "')
_DESCRIPTION_LINE = _RECOMMENDATION.count("\n", 0, _FIRST_DESCRIPTION) + 1


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("baseline.json", '{"security_groups": ' + DEEP_LIST + "}", ["line 1", "nested deeper"]),
        ("show.json", _terraform_show(description=DEEP_OBJECT), ["line 2", "nested deeper"]),
        ("show.json", _terraform_show(from_port=HUGE_INT), ["line 2", "more than 4300 digits"]),
        (
            "recommendation.json",
            _RECOMMENDATION.replace('"description": "', '"description": "\\ud800', 1),
            [f"line {_DESCRIPTION_LINE}", ".description", "lone surrogate"],
        ),
        (
            "show.json",
            _terraform_show(description='"x\\udfff"'),
            ["line 2", "values.root_module.resources[0].values.description", "lone surrogate"],
        ),
        (
            "egress.tf",
            'resource "aws_vpc_security_group_egress_rule" "a" {\n  security_group_id = "sg-0123"\n'
            '  ip_protocol = "tcp"\n  from_port = 443\n  to_port = 443\n  cidr_ipv4 = "10.0.0.0/8"\n'
            '  description = "x\\ud800"\n}\n',
            ["aws_vpc_security_group_egress_rule.a", "description", "lone surrogate"],
        ),
    ],
    ids=[
        "deep",
        "terraform-deep",
        "terraform-huge-int",
        "recommendation-surrogate",
        "terraform-surrogate",
        "tf-surrogate",
    ],
)
def test_hostile_baseline_exits_2_naming_file_and_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, expected: list[str]
) -> None:
    baseline = tmp_path / name
    baseline.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    reports = ["--sarif", str(out / "check.sarif"), "--markdown", str(out / "summary.md")]
    argv = [
        "check",
        "--baseline",
        str(baseline),
        "--inventory",
        str(SAMPLE / "inventory"),
        "--no-flows",
        *reports,
    ]
    assert run(argv) == 2
    _one_clear_line(capsys.readouterr().err, str(baseline), *expected)
    _nothing_written(out)


# ---------------------------------------------------------------------------------------- --ip-ranges, config


@pytest.mark.parametrize(
    "text",
    [
        '{"prefixes": ' + DEEP_LIST + "}",
        '{"prefixes": [{"ip_prefix": "1.2.3.0/24", "service": ' + HUGE_INT + "}]}",
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_ip_ranges_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    ranges = tmp_path / "ip-ranges.json"
    ranges.write_text(text)
    out = tmp_path / "out"
    argv = ["recommend", "--inventory", str(SAMPLE / "inventory"), "--flows", str(SAMPLE / "flows")]
    assert run([*argv, "--ip-ranges", str(ranges), "--out", str(out)]) == 2
    _one_clear_line(capsys.readouterr().err, str(ranges), "line 1")
    _nothing_written(out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max-malformed = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deep"),
        (f"max-gap = {HUGE_INT}\n", "4300 digits"),
    ],
    ids=["deep", "huge-int"],
)
def test_hostile_config_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    config = tmp_path / "sgadvisor.toml"
    config.write_text(text)
    flows = write_lines(tmp_path / "f.log", [default_line()], header=DEFAULT_HEADER)
    out = tmp_path / "out" / "edges.jsonl"
    assert run(["edges", "--config", str(config), "--flows", str(flows), "--out", str(out)]) == 2
    _one_clear_line(capsys.readouterr().err, str(config), expected)
    _nothing_written(out.parent)


# ---------------------------------------------------------------------------------------- bugs


def test_unexpected_exception_is_one_line_exit_2_and_leaves_no_temp_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug while the outputs are being written: no traceback, no output, no temporary file; with
    SGADVISOR_DEBUG=1 the exception (and so its traceback) comes through."""
    from sgadvisor import outputs

    def boom() -> int:
        raise KeyError("x")

    monkeypatch.setattr(outputs, "_umask", boom)  # called once the first output is staged
    out = tmp_path / "out"
    argv = [
        "recommend",
        "--inventory",
        str(SAMPLE / "inventory"),
        "--flows",
        str(SAMPLE / "flows"),
        "--out",
        str(out),
    ]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: internal error: KeyError: 'x' — this is a bug in sgadvisor; please report it with the "
        "command line (run with SGADVISOR_DEBUG=1 for the traceback)"
    )
    _nothing_written(out)

    monkeypatch.setenv("SGADVISOR_DEBUG", "1")
    with pytest.raises(KeyError):
        main(argv)
    _nothing_written(out)


def test_click_and_typer_exits_are_kept_and_ctrl_c_is_130_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage errors stay 2 with click's message, --help 0, Ctrl-C 130 inside a command and while the
    config file is read. A closed pipe that no output helper met stops the command: 2, never typer's 1
    (drift, for check); the pipes the output helpers meet are tests/test_terminal.py's."""
    from sgadvisor import cli

    flows = write_lines(tmp_path / "f.log", [default_line()], header=DEFAULT_HEADER)
    assert run(["edges", "--no-such-option"]) == 2
    assert "No such option" in capsys.readouterr().err
    assert run(["edges", "--help"]) == 0
    capsys.readouterr()

    def interrupt(*_args: object, **_kwargs: object) -> object:
        raise KeyboardInterrupt

    def closed_pipe(*_args: object, **_kwargs: object) -> object:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    with monkeypatch.context() as patch:
        patch.setattr(cli, "read_flows", closed_pipe)
        assert run(["edges", "--flows", str(flows)]) == 2
        patch.setattr(cli, "read_flows", interrupt)
        assert run(["edges", "--flows", str(flows)]) == 130
        patch.setattr(cli, "load_config", interrupt)
        config = tmp_path / "sgadvisor.toml"
        config.write_text("")
        try:
            code = run(["edges", "--config", str(config), "--flows", str(flows)])
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C while the config was read escaped main()")
        assert code == 130
    assert "Traceback" not in capsys.readouterr().err
