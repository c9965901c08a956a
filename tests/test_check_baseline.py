"""Baselines of every shape, and every way one can be wrong: a clear error naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sgadvisor.check.baseline import load_baseline
from sgadvisor.errors import InputError
from sgadvisor.rules import RuleKey
from tests.conftest import REPO

EXPECTED = REPO / "sample_data" / "expected"


def _keys(groups: dict[str, Any]) -> dict[str, set[RuleKey]]:
    return {gid: {entry.rule.key() for entry in rules} for gid, rules in groups.items() if rules}


def test_recommendation_and_its_egress_tf_are_the_same_baseline() -> None:
    from_json = load_baseline(EXPECTED / "recommendation.json")
    from_tf = load_baseline(EXPECTED / "egress.tf")
    assert from_json.format == "recommendation" and from_tf.format == "terraform"
    assert from_json.rule_count == from_tf.rule_count > 0
    assert _keys(from_json.groups) == _keys(from_tf.groups)
    assert set(from_json.groups) == set(from_tf.groups)  # groups approved empty too (no-egress marker)
    # Places are kept for the reports: the resource address and its line in the file.
    entry = next(rules for rules in from_tf.groups.values() if rules)[0]
    assert entry.source.startswith("aws_vpc_security_group_egress_rule.") and entry.line
    text = (EXPECTED / "egress.tf").read_text().splitlines()
    assert entry.source.split(".", 1)[1] in text[entry.line - 1]


def test_a_directory_of_tf_files(tmp_path: Path) -> None:
    (tmp_path / "egress.tf").write_text((EXPECTED / "egress.tf").read_text())
    (tmp_path / "other.tf").write_text('variable "x" {}\n')
    assert load_baseline(tmp_path).rule_count == load_baseline(EXPECTED / "egress.tf").rule_count


def _tf_resource(address: str, values: dict[str, Any]) -> dict[str, Any]:
    rtype, name = address.rsplit(".", 1)[-2:] if address.count(".") == 1 else address.split(".")[-2:]
    return {"address": address, "mode": "managed", "type": rtype, "name": name, "values": values}


def _rule_values(group: str, **rule: Any) -> dict[str, Any]:
    base = {
        "security_group_id": group,
        "ip_protocol": "tcp",
        "from_port": 443,
        "to_port": 443,
        "cidr_ipv4": None,
        "cidr_ipv6": None,
        "prefix_list_id": None,
        "referenced_security_group_id": None,
        "description": None,
        "tags": None,
        "arn": "arn:…",
        "security_group_rule_id": "sgr-1",
    }
    return {**base, **rule}


def test_terraform_show_json_state_with_child_modules(tmp_path: Path) -> None:
    state = {
        "format_version": "1.0",
        "values": {
            "root_module": {
                "resources": [
                    _tf_resource(
                        "aws_vpc_security_group_egress_rule.a",
                        _rule_values("sg-1", cidr_ipv4="10.0.0.7/24"),
                    ),
                    _tf_resource("aws_security_group.x", {"id": "sg-1"}),
                    {**_tf_resource("aws_vpc_security_group_egress_rule.d", {}), "mode": "data"},
                ],
                "child_modules": [
                    {
                        "address": "module.net",
                        "resources": [
                            _tf_resource(
                                "module.net.aws_vpc_security_group_egress_rule.b",
                                _rule_values(
                                    "sg-2",
                                    ip_protocol="-1",
                                    from_port=None,
                                    to_port=None,
                                    referenced_security_group_id="sg-1",
                                ),
                            )
                        ],
                    }
                ],
            }
        },
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    baseline = load_baseline(path)
    assert baseline.format == "terraform-json"
    assert {gid: [str(e.rule.key()) for e in rules] for gid, rules in baseline.groups.items()} == {
        "sg-1": [str(RuleKey("tcp", 443, 443, *_dest("cidr_ipv4", "10.0.0.0/24")))],
        "sg-2": [str(RuleKey("-1", None, None, *_dest("referenced_security_group_id", "sg-1")))],
    }
    assert baseline.groups["sg-2"][0].source == "module.net.aws_vpc_security_group_egress_rule.b"


def _dest(kind: str, value: str) -> tuple[Any, str]:
    from sgadvisor.rules import DestKind

    return DestKind(kind), value


def test_terraform_show_json_plan_uses_planned_values(tmp_path: Path) -> None:
    plan = {
        "format_version": "1.2",
        "planned_values": {
            "root_module": {
                "resources": [
                    _tf_resource(
                        "aws_vpc_security_group_egress_rule.a", _rule_values("sg-9", prefix_list_id="pl-1")
                    )
                ]
            }
        },
        "prior_state": {"values": {"root_module": {"resources": []}}},
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert list(load_baseline(path).groups) == ["sg-9"]


# ------------------------------------------------------------------------------------------ errors


BAD_TF = {
    "reference": (
        'resource "aws_vpc_security_group_egress_rule" "r" {\n'
        "  security_group_id = aws_security_group.web.id\n"
        '  ip_protocol = "tcp"\n  from_port = 443\n  to_port = 443\n  cidr_ipv4 = "10.0.0.0/8"\n}\n',
        r"aws_vpc_security_group_egress_rule\.r: security_group_id = \$\{aws_security_group\.web\.id\}",
    ),
    "template": (
        'resource "aws_vpc_security_group_egress_rule" "r" {\n'
        '  security_group_id = "sg-1"\n  ip_protocol = "tcp"\n  from_port = 443\n  to_port = 443\n'
        '  cidr_ipv4 = "${var.cidr}"\n}\n',
        r"aws_vpc_security_group_egress_rule\.r: cidr_ipv4",
    ),
    "count": (
        'resource "aws_vpc_security_group_egress_rule" "r" {\n  count = 2\n'
        '  security_group_id = "sg-1"\n  ip_protocol = "-1"\n  cidr_ipv4 = "0.0.0.0/0"\n}\n',
        r"aws_vpc_security_group_egress_rule\.r: count",
    ),
    "two destinations": (
        'resource "aws_vpc_security_group_egress_rule" "r" {\n'
        '  security_group_id = "sg-1"\n  ip_protocol = "-1"\n  cidr_ipv4 = "0.0.0.0/0"\n'
        '  cidr_ipv6 = "::/0"\n}\n',
        r"aws_vpc_security_group_egress_rule\.r: .*exactly one of",
    ),
    "bad protocol": (
        'resource "aws_vpc_security_group_egress_rule" "r" {\n'
        '  security_group_id = "sg-1"\n  ip_protocol = "telnet"\n  cidr_ipv4 = "0.0.0.0/0"\n}\n',
        r"aws_vpc_security_group_egress_rule\.r: unknown IP protocol 'telnet'",
    ),
    "no resources": ('variable "x" {}\n', r"no aws_vpc_security_group_egress_rule resources"),
    "not hcl": ('resource "x" {{{\n', r"is not valid HCL"),
}


@pytest.mark.parametrize("case", sorted(BAD_TF))
def test_bad_tf_baseline_names_file_and_key(case: str, tmp_path: Path) -> None:
    text, pattern = BAD_TF[case]
    path = tmp_path / "baseline.tf"
    path.write_text(text)
    with pytest.raises(InputError, match=pattern) as caught:
        load_baseline(path)
    assert "baseline.tf" in caught.value.message


def test_non_literal_tf_points_at_terraform_show_json(tmp_path: Path) -> None:
    path = tmp_path / "main.tf"
    path.write_text(BAD_TF["reference"][0])
    with pytest.raises(InputError) as caught:
        load_baseline(path)
    assert caught.value.hint is not None and "terraform show -json" in caught.value.hint


BAD_JSON: dict[str, tuple[Any, str]] = {
    "not json": ("{nope", r"is not JSON"),
    "a list": ([1, 2], r"neither a recommendation\.json nor `terraform show -json` output"),
    "unknown keys": ({"foo": 1}, r"top level: foo"),
    "recommendation missing a key": (
        {"schema_version": 1, "security_groups": [{"group_name": "x"}]},
        r"not a sgadvisor recommendation\.json: .*security_groups\.0\.group_id",
    ),
    "recommendation bad protocol": (
        None,
        r"security_groups\[sg-.*\]\.proposed_egress\[0\]: unknown IP protocol",
    ),
    "empty state": ({"format_version": "1.0"}, r"no values\.root_module"),
    "plan with unknown group": (
        {
            "format_version": "1.2",
            "planned_values": {
                "root_module": {
                    "resources": [
                        _tf_resource(
                            "aws_vpc_security_group_egress_rule.new",
                            {
                                k: v
                                for k, v in _rule_values("x", cidr_ipv4="0.0.0.0/0").items()
                                if k != "security_group_id"
                            },
                        )
                    ]
                }
            },
        },
        r"aws_vpc_security_group_egress_rule\.new: security_group_id is not known",
    ),
    "state without egress rules": (
        {"format_version": "1.0", "values": {"root_module": {"resources": []}}},
        r"no aws_vpc_security_group_egress_rule resources",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_bad_json_baseline_names_file_and_key(case: str, tmp_path: Path) -> None:
    content, pattern = BAD_JSON[case]
    if content is None:
        data = json.loads((EXPECTED / "recommendation.json").read_text())
        data["security_groups"][0]["proposed_egress"][0]["ip_protocol"] = "bogus"
        content = data
    path = tmp_path / "baseline.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(InputError, match=pattern) as caught:
        load_baseline(path)
    assert str(path) in caught.value.message


def test_missing_baseline(tmp_path: Path) -> None:
    for name in ("nothere.json", "nothere.tf"):
        with pytest.raises(InputError, match=rf"cannot read baseline .*{name}: No such file"):
            load_baseline(tmp_path / name)
