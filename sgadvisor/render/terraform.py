"""egress.tf and removals.sh: the recommendation as Terraform the user applies, and the revocations
Terraform cannot do here (DESIGN §7).

One ``aws_vpc_security_group_egress_rule`` per proposed rule (one destination each; ``ip_protocol = "-1"``
without ports). Kept rules are adopted with ``import {}`` blocks keyed by their ``sgr-`` ids and keep their
current description, so the plan shows imports, not replacements. The provider has no "exclusive egress
rules" resource, so the rules that go are revoked by ``removals.sh`` after the apply (or adopted and then
deleted in two Terraform steps, as the README shows).

With DNS evidence (``recommendation.dns`` with allowlists), egress-domains.tf is written beside them: a
Route 53 Resolver DNS Firewall allowlist per VPC (sgadvisor.render.terraform_domains).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sgadvisor import __version__
from sgadvisor.models import Change, GroupReport, Recommendation
from sgadvisor.render import RenderContext, Rendered
from sgadvisor.render.quoting import hcl_string
from sgadvisor.render.templating import text_environment
from sgadvisor.render.terraform_domains import DOMAINS_FILE, render_domains
from sgadvisor.rules import DestKind, Rule, describe_rule

TERRAFORM_FILE = "egress.tf"
REMOVALS_FILE = "removals.sh"
RESOURCE_TYPE = "aws_vpc_security_group_egress_rule"

_SLUG = re.compile(r"[^a-z0-9]+")
_SERVICE_PREFIX = re.compile(r"^com\.amazonaws\.(?:[a-z0-9-]+\.)?")


@dataclass(frozen=True)
class TfResource:
    """One resource block: its name, its aligned attribute lines, and the rule id to import, if kept."""

    name: str
    attributes: tuple[str, ...]
    import_id: str | None
    kept_without_id: bool


@dataclass(frozen=True)
class TfGroup:
    group: GroupReport
    title: str
    resources: tuple[TfResource, ...]


@dataclass(frozen=True)
class Revocation:
    """The rules of one group that go, as one ``revoke-security-group-egress`` call (or one per rule
    without an ``sgr-`` id, which must be named by its ``--ip-permissions``)."""

    group_id: str
    title: str
    notes: tuple[str, ...]
    rule_ids: tuple[str, ...]
    ip_permissions: tuple[str, ...]


def render(recommendation: Recommendation, context: RenderContext) -> Rendered:
    groups = plan_groups(recommendation)
    revocations = plan_revocations(recommendation)
    warnings = list(_import_warnings(groups))
    if context.terraform_dir is not None:
        from sgadvisor.render.tfscan import find_conflicts

        warnings.extend(find_conflicts(context.terraform_dir, recommendation))
    env = text_environment()
    header = {
        "version": __version__,
        "window": recommendation.window,
        "warnings": warnings,
    }
    terraform = env.get_template("egress.tf.j2").render(groups=groups, **header)
    removals = env.get_template("removals.sh.j2").render(revocations=revocations, **header)
    files = {TERRAFORM_FILE: terraform, REMOVALS_FILE: removals}
    domains = render_domains(recommendation)  # None without DNS evidence: then no egress-domains.tf
    if domains is not None:
        files[DOMAINS_FILE] = domains.text
        warnings.extend(domains.warnings)
    return Rendered(files, executable=frozenset({REMOVALS_FILE}), warnings=tuple(warnings))


# ------------------------------------------------------------------------------------------ egress.tf


def plan_groups(recommendation: Recommendation) -> list[TfGroup]:
    """Every group in scope with its proposed rules as resources, names unique across the file."""
    group_slugs = _group_slugs(recommendation.security_groups)
    taken: set[str] = set()
    planned = []
    for group in recommendation.security_groups:
        resources = []
        for rule in group.proposed_egress:
            base = f"{group_slugs[group.group_id]}_{rule_slug(rule, recommendation.labels)}"
            name = _unique(base, taken)
            resources.append(
                TfResource(
                    name=name,
                    attributes=tuple(align_attributes(resource_attributes(group.group_id, rule))),
                    import_id=rule.security_group_rule_id,
                    kept_without_id=rule.security_group_rule_id is None and _is_kept(group, rule),
                )
            )
        planned.append(TfGroup(group, _group_title(group), tuple(resources)))
    return planned


def resource_attributes(group_id: str, rule: Rule) -> list[tuple[str, str]]:
    """Attribute name → HCL expression, in the provider documentation's order."""
    attributes = [("security_group_id", hcl_string(group_id))]
    if rule.description:
        attributes.append(("description", hcl_string(rule.description)))
    attributes.append(("ip_protocol", hcl_string(rule.ip_protocol)))
    if rule.ip_protocol != "-1" and rule.from_port is not None and rule.to_port is not None:
        attributes += [("from_port", str(rule.from_port)), ("to_port", str(rule.to_port))]
    kind, value = rule.destination
    attributes.append((kind.value, hcl_string(value)))
    return attributes


def align_attributes(attributes: Sequence[tuple[str, str]]) -> list[str]:
    """``name = value`` lines with the equals signs aligned, as ``terraform fmt`` writes them."""
    width = max(len(name) for name, _ in attributes)
    return [f"{name.ljust(width)} = {value}" for name, value in attributes]


def rule_slug(rule: Rule, labels: dict[str, str]) -> str:
    """``tcp_443_to_app``, ``all_to_anywhere``, ``icmp_8_0_to_10_0_4_0_24``: what and where, readable."""
    return f"{_ports_slug(rule)}_to_{_destination_slug(rule, labels)}"


def _ports_slug(rule: Rule) -> str:
    proto = rule.ip_protocol
    if proto == "-1":
        return "all"
    name = proto if not proto.isdigit() else f"proto{proto}"
    low, high = rule.from_port, rule.to_port
    if low is None or high is None:
        return name
    if proto in ("icmp", "icmpv6"):
        if low == -1:
            return f"{name}_all"
        return f"{name}_{low}" if high == -1 else f"{name}_{low}_{high}"
    if (low, high) == (0, 65535):
        return f"{name}_all"
    return f"{name}_{low}" if low == high else f"{name}_{low}_{high}"


def _destination_slug(rule: Rule, labels: dict[str, str]) -> str:
    kind, value = rule.destination
    if kind in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
        if value in ("0.0.0.0/0", "::/0"):
            return "anywhere" if kind is DestKind.CIDR_IPV4 else "anywhere_ipv6"
        return slugify(value)
    label = labels.get(value)
    if label is None:
        return slugify(value)
    if kind is DestKind.PREFIX_LIST:
        label = _SERVICE_PREFIX.sub("", label)
    return slugify(label.split(" (")[0]) or slugify(value)


def slugify(text: str) -> str:
    """Lower-case letters, digits and single underscores: a valid, readable Terraform name part."""
    return _SLUG.sub("_", text.lower()).strip("_")


def _group_slugs(groups: Iterable[GroupReport]) -> dict[str, str]:
    """Group name slugs; a slug shared by several groups (``default`` in every VPC) gets the id."""
    groups = list(groups)
    slugs = {g.group_id: slugify(g.group_name) or slugify(g.group_id) for g in groups}
    counts = Counter(slugs.values())
    for group in groups:
        slug = slugs[group.group_id]
        if counts[slug] > 1:
            slug = f"{slug}_{slugify(group.group_id.removeprefix('sg-'))}"
        if not slug[0].isalpha():
            slug = f"sg_{slug}"
        slugs[group.group_id] = slug
    return slugs


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _is_kept(group: GroupReport, rule: Rule) -> bool:
    key = rule.key()
    return any(c.action == "keep" and c.rule.key() == key for c in group.changes)


def _group_title(group: GroupReport) -> str:
    actions = Counter(c.action for c in group.changes)
    name = group.group_name + (
        f" ({group.name_tag})" if group.name_tag and group.name_tag != group.group_name else ""
    )
    counts = ", ".join(f"{actions[a]} {a}" for a in ("keep", "narrow", "remove", "add") if actions[a])
    where = group.vpc_id or "no VPC"
    return f"{group.group_id} {name}, {where}: coverage {group.coverage.status}; {counts or 'no rules'}"


def _import_warnings(groups: Iterable[TfGroup]) -> Iterable[str]:
    missing = [r.name for g in groups for r in g.resources if r.kept_without_id]
    if missing:
        yield (
            f"{len(missing)} kept rules have no sgr- id (the inventory lacks describe-security-group-rules): "
            f"their import blocks are omitted, so import them by hand before applying egress.tf, or the "
            f"apply fails on duplicate rules (e.g. {RESOURCE_TYPE}.{missing[0]})"
        )


# ---------------------------------------------------------------------------------------- removals.sh


def plan_revocations(recommendation: Recommendation) -> list[Revocation]:
    """The removed and narrowed rules of each group, in the order of its current rules."""
    revocations = []
    for group in recommendation.security_groups:
        going = [c for c in group.changes if c.action in ("remove", "narrow")]
        if not going:
            continue
        notes = tuple(_revocation_note(c, group) for c in going)
        ids = tuple(c.security_group_rule_id for c in going if c.security_group_rule_id)
        without_id = tuple(ip_permissions(c.rule) for c in going if not c.security_group_rule_id)
        revocations.append(Revocation(group.group_id, _group_title(group), notes, ids, without_id))
    return revocations


def ip_permissions(rule: Rule) -> str:
    """The ``--ip-permissions`` JSON naming one rule exactly (for rules without an ``sgr-`` id)."""
    permission: dict[str, object] = {"IpProtocol": rule.ip_protocol}
    if rule.ip_protocol != "-1" and rule.from_port is not None and rule.to_port is not None:
        permission["FromPort"] = rule.from_port
        permission["ToPort"] = rule.to_port
    kind, value = rule.destination
    if kind is DestKind.CIDR_IPV4:
        permission["IpRanges"] = [{"CidrIp": value}]
    elif kind is DestKind.CIDR_IPV6:
        permission["Ipv6Ranges"] = [{"CidrIpv6": value}]
    elif kind is DestKind.PREFIX_LIST:
        permission["PrefixListIds"] = [{"PrefixListId": value}]
    else:
        permission["UserIdGroupPairs"] = [{"GroupId": value}]
    return json.dumps([permission], separators=(",", ":"))


def _revocation_note(change: Change, group: GroupReport) -> str:
    rule_id = change.security_group_rule_id or "(no rule id)"
    text = f"{change.action} {rule_id}: {describe_rule(change.rule)}"
    if change.rule.description:
        text += f" [{change.rule.description}]"
    text += f" - {change.reason}"
    if change.replaced_by:
        names = [describe_rule(group.proposed_egress[i]) for i in change.replaced_by]
        text += f"; replaced by: {'; '.join(names)}"
    return text
