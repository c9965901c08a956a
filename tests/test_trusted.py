"""``trusted`` builds the analysis' most numerous models without validation: what it builds must be the
model validation would build, field for field and byte for byte once serialised."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, PrivateAttr

from sgadvisor.models import Change, CoverageOut, EdgeOut, Evidence, NotPermitted, ProposedRule
from sgadvisor.rules import DestKind, Rule, make_key
from sgadvisor.trusted import trusted

RULE = {"ip_protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_ipv4": "10.0.2.0/24"}
EVIDENCE = {"records": 12, "bytes": 3400, "first_seen": "2026-11-11T00:00:00Z", "enis": ["eni-1"],
            "destinations": ["10.0.2.15"], "confidence": "high", "why": ["the ENI sent SYN"]}  # fmt: skip

CASES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (Rule, RULE),
    (Rule, {**RULE, "description": "sgadvisor 12 records", "security_group_rule_id": "sgr-1"}),
    (Evidence, EVIDENCE),
    (Evidence, {**EVIDENCE, "internet": "pinned", "names": ["api.partner.example"]}),
    (ProposedRule, {**RULE, "evidence": Evidence(**EVIDENCE)}),
    (
        EdgeOut,
        {
            "eni": "eni-1",
            "remote": "10.0.2.15",
            "protocol": "tcp",
            "port": 5432,
            "records": 9,
            "klass": "initiated",
            "confidence": "medium",
        },
    ),
    (Change, {"action": "add", "rule": Rule(**RULE), "reason": "carries 12 records", "replaces": ["sgr-9"]}),
    (NotPermitted, {"eni": "eni-1", "rule": Rule(**RULE), "records": 3, "note": "not permitted"}),
]


@pytest.mark.parametrize(
    ("cls", "values"), CASES, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_trusted_builds_what_validation_builds(cls: type[BaseModel], values: dict[str, Any]) -> None:
    validated = cls.model_validate(values)
    built = trusted(cls, **values)
    assert type(built) is cls and built == validated
    assert built.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    assert built.model_fields_set == validated.model_fields_set


def test_models_built_alike_share_their_field_names_and_a_copy_gets_its_own() -> None:
    one, two = trusted(Evidence, **EVIDENCE), trusted(Evidence, **{**EVIDENCE, "records": 1})
    assert one.__pydantic_fields_set__ is two.__pydantic_fields_set__
    copy = one.model_copy(update={"internet": "port"})
    assert "internet" in copy.model_fields_set and "internet" not in one.model_fields_set


def test_mutable_defaults_are_made_afresh() -> None:
    values = {"status": "ok", "enis": 1, "enis_with_evidence": 1, "window_seconds": 1, "skipdata_share": 0.0}
    one, two = trusted(CoverageOut, **values), trusted(CoverageOut, **values)
    assert one.reasons == [] and one.reasons is not two.reasons
    assert one == CoverageOut.model_validate(values)


def test_unknown_or_missing_fields_and_unusual_models_are_refused() -> None:
    with pytest.raises(TypeError, match="no field 'recrods'"):
        trusted(Evidence, **{**EVIDENCE, "recrods": 1})
    with pytest.raises(TypeError, match="required field 'records'"):
        trusted(Evidence, **{k: v for k, v in EVIDENCE.items() if k != "records"})

    class WithPrivate(BaseModel):
        value: int
        _cache: int = PrivateAttr(default=0)

    with pytest.raises(TypeError, match="not a plain model"):
        trusted(WithPrivate, value=1)


def test_rule_from_key_is_the_validated_rule() -> None:
    for kind, value in [(DestKind.CIDR_IPV4, "10.0.0.0/8"), (DestKind.CIDR_IPV6, "2001:db8::/64"),
                        (DestKind.PREFIX_LIST, "pl-1"), (DestKind.SECURITY_GROUP, "sg-1")]:  # fmt: skip
        key = make_key("tcp", 22, 22, kind, value)
        built = Rule.from_key(key, description="d", rule_id="sgr-1")
        assert built == Rule.model_validate(built.model_dump()) and built.key() == key
