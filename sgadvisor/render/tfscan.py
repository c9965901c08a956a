"""``--terraform-dir``: find groups whose egress is already managed in a way that fights egress.tf.

Terraform's AWS provider documents that ``aws_vpc_security_group_egress_rule`` must not be mixed with
inline ``egress`` blocks of ``aws_security_group`` or with ``aws_security_group_rule`` on the same group:
each side removes the other's rules on every apply (a perpetual diff). Existing
``aws_vpc_security_group_egress_rule`` resources for a group would be duplicated by the generated file.
Groups are matched by a literal ``sg-`` id, by ``name``/``tags.Name`` against the group name, or through
``terraform.tfstate`` in the directory when it is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgadvisor.errors import InputError
from sgadvisor.jsonload import load_json_text
from sgadvisor.models import Recommendation

_REFERENCE = re.compile(r"^\$\{aws_security_group\.([A-Za-z0-9_-]+)\.id\}$")
_SKIP_DIRS = {".terraform", ".git"}


@dataclass(frozen=True)
class Managed:
    """One place in the directory that manages some group's egress."""

    file: str
    address: str
    how: str  # "inline egress", "aws_security_group_rule", "aws_vpc_security_group_egress_rule"
    group_id: str | None
    group_name: str | None
    sg_resource: str | None = None  # for rules that point at an aws_security_group resource


def find_conflicts(directory: Path, recommendation: Recommendation) -> list[str]:
    """One warning per (group, place) that would fight the generated egress.tf; unreadable or unparsable
    files are warnings too (the directory is advisory, never a reason to fail the run)."""
    warnings: list[str] = []
    managed: list[Managed] = []
    sg_resources: dict[str, Managed] = {}
    if not directory.is_dir():
        return [f"--terraform-dir {directory}: not a directory, nothing checked"]
    for path in _tf_files(directory):
        try:
            document = _load(path)
        except Exception as exc:
            warnings.append(f"{path}: not checked for conflicting egress rules ({type(exc).__name__}: {exc})")
            continue
        for item in _resources(path.relative_to(directory).as_posix(), document):
            managed.append(item)
            if item.how == "aws_security_group":
                sg_resources[item.address] = item
    state_ids = _state_ids(directory / "terraform.tfstate")
    names = {g.group_name: g.group_id for g in recommendation.security_groups}
    in_scope = {g.group_id: g for g in recommendation.security_groups}
    for item in managed:
        if item.how == "aws_security_group":
            continue
        group_id = item.group_id
        if group_id is None and item.sg_resource is not None:
            owner = sg_resources.get(f"aws_security_group.{item.sg_resource}")
            group_id = state_ids.get(f"aws_security_group.{item.sg_resource}") or (
                _resolve(owner, names, state_ids) if owner else None
            )
        if group_id is None:
            group_id = _resolve(item, names, state_ids)
        if group_id in in_scope:
            warnings.append(_message(item, group_id, in_scope[group_id].group_name))
    return sorted(set(warnings))


def _message(item: Managed, group_id: str, name: str) -> str:
    if item.how == "aws_vpc_security_group_egress_rule":
        return (
            f"{group_id} ({name}) already has egress rules managed by {item.address} in {item.file}: "
            "replace those resources with egress.tf instead of adding it beside them (duplicate rules)"
        )
    return (
        f"{group_id} ({name}) is also managed by {item.how} in {item.file} ({item.address}): mixing it with "
        "aws_vpc_security_group_egress_rule causes perpetual diffs; move that group's egress to egress.tf"
    )


def _tf_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.tf")):
        if not _SKIP_DIRS.intersection(path.relative_to(directory).parts):
            yield path


def _load(path: Path) -> dict[str, Any]:
    import hcl2

    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = hcl2.load(handle)
    return document


def _resources(file: str, document: dict[str, Any]) -> Iterator[Managed]:
    for block in document.get("resource", []):
        for rtype, instances in block.items():
            rtype = _unquote(rtype)
            for rname, body in instances.items():
                address = f"{rtype}.{_unquote(rname)}"
                yield from _classify(file, rtype, address, body)


def _classify(file: str, rtype: str, address: str, body: dict[str, Any]) -> Iterable[Managed]:
    if rtype == "aws_security_group":
        tags = body.get("tags") if isinstance(body.get("tags"), dict) else {}
        name = _literal(body.get("name")) or _literal((tags or {}).get("Name"))
        yield Managed(file, address, "aws_security_group", None, name)
        if "egress" in body:
            yield Managed(file, address, "inline egress", None, name)
    elif rtype == "aws_security_group_rule" and _literal(body.get("type")) == "egress":
        yield _rule(file, address, "aws_security_group_rule", body.get("security_group_id"))
    elif rtype == "aws_vpc_security_group_egress_rule":
        yield _rule(file, address, rtype, body.get("security_group_id"))


def _rule(file: str, address: str, how: str, target: Any) -> Managed:
    text = target if isinstance(target, str) else ""
    reference = _REFERENCE.match(text)
    literal = _literal(target)
    group_id = literal if literal and literal.startswith("sg-") else None
    return Managed(file, address, how, group_id, None, reference.group(1) if reference else None)


def _resolve(item: Managed, names: dict[str, str], state_ids: dict[str, str]) -> str | None:
    if item.group_id:
        return item.group_id
    if item.address in state_ids:
        return state_ids[item.address]
    return names.get(item.group_name) if item.group_name else None


def _state_ids(path: Path) -> dict[str, str]:
    """``aws_security_group.web`` → ``sg-…`` from a local state file (best effort, never fatal)."""
    try:
        state = load_json_text(path.read_bytes(), source=str(path))
    except (OSError, ValueError, InputError):
        return {}
    ids: dict[str, str] = {}
    for resource in state.get("resources", []) if isinstance(state, dict) else []:
        if resource.get("mode") != "managed" or resource.get("type") != "aws_security_group":
            continue
        for instance in resource.get("instances", []):
            group_id = instance.get("attributes", {}).get("id")
            if isinstance(group_id, str):
                ids[f"aws_security_group.{resource.get('name')}"] = group_id
    return ids


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _literal(value: Any) -> str | None:
    """A literal string attribute (python-hcl2 ≥ 7 keeps the quotes, older versions drop them);
    None for expressions such as ``${var.name}``."""
    if not isinstance(value, str):
        return None
    text = _unquote(value)
    # "$${" is HCL's escaped literal "${", not an interpolation.
    return None if "${" in text.replace("$${", "") else text.replace("$${", "${")
