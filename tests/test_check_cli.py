"""``sgadvisor check`` on the command line: exit codes 0/1/2, outputs written all or none, SARIF valid
against the official 2.1.0 schema, the config file's [check] table and [[allow]]."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from sgadvisor.cli import main
from tests.conftest import REPO, shared_path

SAMPLE = REPO / "sample_data"
BASELINE = SAMPLE / "expected" / "recommendation.json"
INPUTS = ["--inventory", str(SAMPLE / "inventory"), "--flows", str(SAMPLE / "flows")]


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    code = caught.value.code
    return code if isinstance(code, int) else (0 if code is None else 1)


def _outputs(tmp_path: Path) -> tuple[list[str], list[Path]]:
    paths = [
        tmp_path / "out" / "check.sarif",
        tmp_path / "out" / "junit.xml",
        tmp_path / "out" / "summary.md",
    ]
    args = ["--sarif", str(paths[0]), "--junit", str(paths[1]), "--markdown", str(paths[2])]
    return args, paths


def test_sample_against_its_recommendation_is_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, paths = _outputs(tmp_path)
    assert run(["check", "--baseline", str(BASELINE), *INPUTS, *args]) == 1
    out = capsys.readouterr().out
    assert "rule-broader-than-baseline" in out and out.rstrip().endswith("exit 1")
    assert all(path.is_file() for path in paths)
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(p.name for p in paths)  # no temp files

    sarif = json.loads(paths[0].read_text())
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(shared_path("schemas", "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    assert sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]

    junit = ET.parse(paths[1]).getroot()
    names = [case.get("name", "").split()[0] for case in junit.iter("testcase")]
    recommendation = json.loads(BASELINE.read_text())
    assert sorted(names) == sorted(g["group_id"] for g in recommendation["security_groups"])
    assert len(paths[2].read_text()) <= 60_000


def test_sarif_of_a_clean_run_is_valid_too(tmp_path: Path) -> None:
    sarif = tmp_path / "clean.sarif"
    code = run(
        [
            "check",
            "--baseline",
            str(BASELINE),
            *INPUTS,
            "--sarif",
            str(sarif),
            "--fail-on",
            "high",
            "--severity",
            "rule-not-in-baseline=low",
            "--severity",
            "rule-broader-than-baseline=low",
            "-q",
        ]
    )
    assert code == 0
    log = json.loads(sarif.read_text())
    assert {r["level"] for r in log["runs"][0]["results"]} == {"note"}
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(shared_path("schemas", "sarif-schema-2.1.0.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(log)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], 1),
        (["--fail-on", "high"], 1),
        (
            [
                "--severity",
                "rule-not-in-baseline=medium",
                "--severity",
                "rule-broader-than-baseline=medium",
                "--fail-on",
                "high",
            ],
            0,
        ),
        (["--severity", "rule-not-in-baseline=low", "--severity", "rule-broader-than-baseline=low"], 0),
        (
            [
                "--severity",
                "rule-not-in-baseline=low",
                "--severity",
                "rule-broader-than-baseline=low",
                "--fail-on",
                "low",
            ],
            1,
        ),
    ],
)
def test_fail_on_and_severity_options(extra: list[str], expected: int) -> None:
    assert run(["check", "--baseline", str(BASELINE), *INPUTS, "-q", *extra]) == expected


def test_no_flows_reads_no_flows(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["check", "--baseline", str(BASELINE), "--inventory", str(SAMPLE / "inventory"), "--no-flows"])
    assert code == 1
    out = capsys.readouterr().out
    assert "configuration only (--no-flows)" in out
    assert "flow-not-in-baseline" not in out and "baseline-rule-unused" not in out


def test_egress_tf_baseline_gives_the_same_findings(capsys: pytest.CaptureFixture[str]) -> None:
    def finding_ids(baseline: Path) -> set[str]:
        run(["check", "--baseline", str(baseline), *INPUTS])
        out = capsys.readouterr().out
        return {
            line.split("[")[1].split("]")[0]
            for line in out.splitlines()
            if line[:6].strip() in ("HIGH", "MEDIUM", "LOW")
        }

    from_json = finding_ids(BASELINE)
    from_tf = finding_ids(SAMPLE / "expected" / "egress.tf")
    # Even a group approved with no egress at all: egress.tf marks it (# sgadvisor:no-egress sg-…).
    empty = [
        g["group_id"] for g in json.loads(BASELINE.read_text())["security_groups"] if not g["proposed_egress"]
    ]
    assert len(empty) == 1
    assert from_json == from_tf and from_json


@pytest.mark.parametrize(
    ("baseline_text", "name", "message"),
    [
        (None, "missing.json", "cannot read baseline"),
        ("{}", "empty.json", "neither a recommendation.json"),
        ('{"schema_version": 1, "security_groups": 3}', "bad.json", "security_groups"),
        (
            'resource "aws_vpc_security_group_egress_rule" "r" {\n  security_group_id = var.sg\n}\n',
            "r.tf",
            "not literals",
        ),
    ],
)
def test_bad_or_missing_baseline_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], baseline_text: str | None, name: str, message: str
) -> None:
    baseline = tmp_path / name
    if baseline_text is not None:
        baseline.write_text(baseline_text)
    args, paths = _outputs(tmp_path)
    assert run(["check", "--baseline", str(baseline), *INPUTS, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and str(baseline) in err
    assert "Traceback" not in err
    assert not any(path.exists() for path in paths) and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--inventory", "/nonexistent/inv", "--no-flows"], "/nonexistent/inv"),
        (["--inventory", str(SAMPLE / "inventory"), "--flows", "/nonexistent/flows"], "/nonexistent/flows"),
        (
            ["--inventory", str(SAMPLE / "inventory"), "--no-flows", "--flows", str(SAMPLE / "flows")],
            "exclude",
        ),
        ([*INPUTS, "--fail-on", "critical"], "--fail-on"),
        ([*INPUTS, "--severity", "made-up=high"], "unknown finding kind"),
    ],
)
def test_unreadable_inputs_and_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args, paths = _outputs(tmp_path)
    assert run(["check", "--baseline", str(BASELINE), *argv, *args]) == 2
    assert message in capsys.readouterr().err
    assert not any(path.exists() for path in paths)


def test_missing_baseline_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", *INPUTS]) == 2
    assert "--baseline" in capsys.readouterr().err


def test_config_check_table_and_allow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sgadvisor.toml"
    config.write_text(
        f"""
[check]
baseline = "{BASELINE}"
fail-on = "high"
severity = ["rule-broader-than-baseline=medium"]

[[allow]]
group = "sg-0ff13905d5a801b02"
ip_protocol = "tcp"
from_port = 11211
to_port = 11211
cidr_ipv4 = "10.0.2.0/24"
reason = "memcached cluster moving, INFRA-7"
expires = 2999-01-01
"""
    )
    code = run(["check", "--config", str(config), *INPUTS])
    out = capsys.readouterr().out
    assert "memcached cluster moving, INFRA-7" in out  # suppressed, with its reason
    assert "MEDIUM rule-broader-than-baseline" in out
    assert code == 1  # rule-not-in-baseline stays high
    config.write_text(
        config.read_text().replace("severity = [", 'severity = ["rule-not-in-baseline=medium", ')
    )
    assert run(["check", "--config", str(config), *INPUTS, "-q"]) == 0


def test_unwritable_output_is_exit_2_not_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run(["check", "--baseline", str(BASELINE), *INPUTS, "--sarif", str(blocker / "x.sarif")]) == 2
    assert "error: cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["github-actions-drift.yml", "gitlab-ci-drift.yml"])
def test_ci_examples_are_yaml_and_use_real_options(name: str) -> None:
    import re

    import typer
    import yaml

    from sgadvisor.cli import app

    text = (REPO / "examples" / name).read_text()
    assert yaml.safe_load(text)
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    known = {
        opt
        for cmd in ("check", "collect")
        for param in commands[cmd].params
        for opt in getattr(param, "opts", [])
    }
    commands_text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", commands_text))
    assert used and used <= known, used - known
    assert "sgadvisor collect" in text and "sgadvisor check --baseline" in text
