"""The approved baseline: per security group, the egress rules someone reviewed and accepted.

Three shapes are read (DESIGN §3 ``check``): a ``recommendation.json`` (its ``proposed_egress`` per group),
the literal ``aws_vpc_security_group_egress_rule`` resources of ``.tf`` files, and ``terraform show
-json`` output (state ``values`` or plan ``planned_values``, child modules included). A baseline that
cannot be read completely is an error naming the file and the key at fault: a check that silently
skipped part of its baseline could pass when it should fail, or fail for the wrong reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from sgadvisor.errors import InputError
from sgadvisor.jsonload import has_surrogate, load_json_text
from sgadvisor.models import Recommendation
from sgadvisor.rules import Rule, RuleKey

RESOURCE_TYPE = "aws_vpc_security_group_egress_rule"
BaselineFormat = Literal["recommendation", "terraform", "terraform-json"]
_RULE_FIELDS = (
    "ip_protocol",
    "from_port",
    "to_port",
    "cidr_ipv4",
    "cidr_ipv6",
    "prefix_list_id",
    "referenced_security_group_id",
    "description",
)
_INTERPOLATION = re.compile(r"(?<!\$)\$\{|(?<!%)%\{")
_TF_HINT = (
    "only literal values can be read from .tf files; pass `terraform show -json` output instead "
    "(references resolved), or the recommendation.json you approved"
)


class BaselineRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: Rule
    source: str  # where it is written: a resource address or a JSON path
    line: int | None = None  # 1-based line in the baseline file, when known


class Baseline(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: Path
    format: BaselineFormat
    groups: dict[str, list[BaselineRule]]
    vpcs: dict[str, str | None] = {}  # group id → VPC, when the baseline says (recommendation.json)
    group_lines: dict[str, int] = {}

    def rules_by_key(self, group_id: str) -> dict[RuleKey, BaselineRule]:
        """The group's baseline rules by normalised key (the first of duplicates wins)."""
        out: dict[RuleKey, BaselineRule] = {}
        for entry in self.groups.get(group_id, []):
            out.setdefault(entry.rule.key(), entry)
        return out

    @property
    def rule_count(self) -> int:
        return sum(len(rules) for rules in self.groups.values())


def load_baseline(path: Path) -> Baseline:
    """Read a baseline of any of the three shapes, recognised by content (and ``.tf`` by name)."""
    if path.is_dir() or path.suffix == ".tf":
        return _load_terraform(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(
            f"cannot read baseline {path}: {reason}",
            hint="pass --baseline with a recommendation.json, a .tf file or `terraform show -json` output",
        ) from None
    try:
        data = load_json_text(text, source=f"baseline {path}")
    except ValueError as exc:  # invalid JSON; hostile JSON is an InputError already
        raise InputError(
            f"baseline {path} is not JSON ({exc}) and not a .tf file",
            hint="a baseline is a recommendation.json, a .tf file or `terraform show -json` output",
        ) from None
    if isinstance(data, dict) and ("security_groups" in data or "schema_version" in data):
        return _from_recommendation(path, text)
    if isinstance(data, dict) and ("values" in data or "planned_values" in data or "format_version" in data):
        return _from_terraform_json(path, data, text)
    keys = ", ".join(sorted(data)[:8]) if isinstance(data, dict) else type(data).__name__
    raise InputError(
        f"baseline {path} is neither a recommendation.json nor `terraform show -json` output "
        f"(top level: {keys or 'empty'})",
        hint="a recommendation.json has security_groups; terraform show -json has values or planned_values",
    )


# ------------------------------------------------------------------------------ recommendation.json


def _from_recommendation(path: Path, text: str) -> Baseline:
    from sgadvisor.pipeline import load_recommendation

    return baseline_from_recommendation(load_recommendation(path), path, _group_lines(text))


def baseline_from_recommendation(
    recommendation: Recommendation, path: Path, lines: Mapping[str, int] | None = None
) -> Baseline:
    """The approved rules of a recommendation: each group's ``proposed_egress``."""
    lines = lines or {}
    groups: dict[str, list[BaselineRule]] = {}
    for group in recommendation.security_groups:
        entries = []
        for index, proposed in enumerate(group.proposed_egress):
            source = f"security_groups[{group.group_id}].proposed_egress[{index}]"
            rule = Rule.model_validate(proposed.model_dump(exclude={"evidence"}))
            try:
                rule.key()
            except ValueError as exc:
                raise InputError(f"baseline {path}: {source}: {exc}") from None
            entries.append(BaselineRule(rule=rule, source=source, line=lines.get(group.group_id)))
        groups[group.group_id] = entries
    return Baseline(
        path=path,
        format="recommendation",
        groups=groups,
        vpcs={g.group_id: g.vpc_id for g in recommendation.security_groups},
        group_lines=dict(lines),
    )


def _group_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.search(r'"group_id":\s*"([^"]+)"', line)
        if match:
            lines.setdefault(match.group(1), number)
    return lines


# ------------------------------------------------------------------------------ terraform show -json


def _from_terraform_json(path: Path, data: dict[str, Any], text: str) -> Baseline:
    section = "planned_values" if "planned_values" in data else "values"
    root = data.get(section, {}) if isinstance(data.get(section), dict) else {}
    module = root.get("root_module")
    if not isinstance(module, dict):
        raise InputError(
            f"baseline {path}: no {section}.root_module (an empty state or plan?)",
            hint="run `terraform show -json` in the directory whose state or plan holds the egress rules",
        )
    groups: dict[str, list[BaselineRule]] = {}
    problems: list[str] = []
    for resource in _walk_modules(module):
        address = str(resource.get("address", resource.get("name", "?")))
        values = resource.get("values")
        if not isinstance(values, dict):
            problems.append(f"{address}: no values")
            continue
        group_id = values.get("security_group_id")
        if not isinstance(group_id, str) or not group_id:
            problems.append(f"{address}: security_group_id is not known (computed at apply?)")
            continue
        fields = {name: values.get(name) for name in _RULE_FIELDS}
        try:
            rule = _make_rule(fields)
        except ValueError as exc:
            problems.append(f"{address}: {exc}")
            continue
        groups.setdefault(group_id, []).append(BaselineRule(rule=rule, source=address, line=None))
    if problems:
        raise InputError(
            f"baseline {path}: {len(problems)} {RESOURCE_TYPE} resource(s) cannot be read: "
            + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            hint="a plan leaves ids of resources it creates unknown: use the state after apply "
            "(`terraform show -json`) or the recommendation.json you approved",
        )
    if not groups:
        raise InputError(
            f"baseline {path}: no {RESOURCE_TYPE} resources in {section}",
            hint="the baseline must hold the approved egress rules as aws_vpc_security_group_egress_rule",
        )
    return Baseline(path=path, format="terraform-json", groups=groups)


def _walk_modules(module: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in module.get("resources", []) or []:
        if (
            isinstance(resource, dict)
            and resource.get("type") == RESOURCE_TYPE
            and resource.get("mode", "managed") == "managed"
        ):
            yield resource
    for child in module.get("child_modules", []) or []:
        if isinstance(child, dict):
            yield from _walk_modules(child)


# ------------------------------------------------------------------------------------------ .tf files


# The comment egress.tf carries for a group approved with no egress rules at all (see templates/egress.tf.j2).
NO_EGRESS_MARKER = re.compile(r"^# sgadvisor:no-egress (sg-[0-9a-zA-Z]+)\s*$", re.MULTILINE)


def _load_terraform(path: Path) -> Baseline:
    files = sorted(path.glob("*.tf")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"baseline {path}: no .tf files in this directory")
    groups: dict[str, list[BaselineRule]] = {}
    problems: list[str] = []
    for file in files:
        text, document = _parse_hcl(file)
        for match in NO_EGRESS_MARKER.finditer(text):
            # egress.tf marks a group whose approved egress is empty (no resource can say that).
            groups.setdefault(match.group(1), [])
        for name, body in _egress_resources(document):
            address = f"{RESOURCE_TYPE}.{name}"
            entry = _terraform_rule(file, text, address, name, body, problems)
            if entry is not None:
                group_id, rule = entry
                groups.setdefault(group_id, []).append(rule)
    if problems:
        raise InputError(
            f"baseline {path}: {len(problems)} value(s) are not literals: "
            + "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            hint=_TF_HINT,
        )
    if not groups:
        raise InputError(
            f"baseline {path}: no {RESOURCE_TYPE} resources (nor sgadvisor no-egress markers)",
            hint="pass the .tf file with the approved egress rules (e.g. the egress.tf sgadvisor wrote)",
        )
    return Baseline(path=path, format="terraform", groups=groups)


def _parse_hcl(file: Path) -> tuple[str, dict[str, Any]]:
    import hcl2

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot read baseline {file}: {reason}") from None
    try:
        document: dict[str, Any] = hcl2.loads(text)
    except Exception as exc:  # python-hcl2 raises lark errors of many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"baseline {file} is not valid HCL: {first}", hint=_TF_HINT) from None
    return text, document


def _egress_resources(document: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for block in document.get("resource", []) or []:
        for rtype, instances in block.items():
            if _unquote(rtype) != RESOURCE_TYPE or not isinstance(instances, dict):
                continue
            for name, body in instances.items():
                if isinstance(body, dict):
                    yield _unquote(name), body


def _terraform_rule(
    file: Path, text: str, address: str, name: str, body: dict[str, Any], problems: list[str]
) -> tuple[str, BaselineRule] | None:
    where = f"{file.name}: {address}"
    for meta in ("count", "for_each"):
        if meta in body:
            problems.append(f"{where}: {meta} (one resource, several rules)")
            return None
    fields: dict[str, Any] = {}
    literal_ok = True
    for field in ("security_group_id", *_RULE_FIELDS):
        if field not in body:
            continue
        value, ok = _literal_value(body[field], numeric=field in ("from_port", "to_port"))
        if isinstance(value, str) and has_surrogate(value):  # "\ud800": HCL and JSON escapes alike
            raise InputError(f"baseline {file}: {address}: {field} has a lone surrogate (not valid Unicode)")
        if not ok and field != "description":
            problems.append(f"{where}: {field} = {body[field]}")
            literal_ok = False
        fields[field] = value if ok else None
    if not literal_ok:
        return None
    group_id = fields.pop("security_group_id", None)
    if not isinstance(group_id, str) or not group_id:
        raise InputError(f"baseline {where}: security_group_id is missing", hint=_TF_HINT)
    try:
        rule = _make_rule(fields)
    except ValueError as exc:
        raise InputError(f"baseline {where}: {exc}") from None
    return group_id, BaselineRule(rule=rule, source=address, line=_resource_line(text, name))


def _literal_value(value: Any, *, numeric: bool) -> tuple[Any, bool]:
    """(value, True) for a literal (python-hcl2 ≥ 7 keeps a string's quotes; references and templates
    come as ``${…}``), else (None, False)."""
    if value is None:
        return None, True
    if isinstance(value, bool):
        return None, False
    if isinstance(value, int | float):
        return int(value), True
    if not isinstance(value, str):
        return None, False
    if not (len(value) >= 2 and value[0] == value[-1] == '"'):
        return None, False  # an expression: a reference, a function call, arithmetic
    inner = value[1:-1]
    if _INTERPOLATION.search(inner):
        return None, False
    try:
        text = json.loads(f'"{inner}"')
    except ValueError:
        text = inner
    text = text.replace("$${", "${").replace("%%{", "%{")
    if numeric:
        try:
            return int(text), True
        except ValueError:
            return None, False
    return text, True


def _resource_line(text: str, name: str) -> int | None:
    pattern = re.compile(rf'^[ \t]*resource\s+"{RESOURCE_TYPE}"\s+"{re.escape(name)}"', re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


# ------------------------------------------------------------------------------------------ shared


def _make_rule(fields: Mapping[str, Any]) -> Rule:
    """A Rule from Terraform's argument names; ValueError with the field at fault when it is not one."""
    present = {k: v for k, v in fields.items() if v is not None and v != ""}
    if "ip_protocol" not in present:
        raise ValueError("ip_protocol is missing")
    present["ip_protocol"] = str(present["ip_protocol"])
    try:
        rule = Rule.model_validate(present)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{where + ': ' if where else ''}{first['msg']}") from None
    rule.key()  # raises ValueError on an unknown protocol or a malformed CIDR
    return rule
