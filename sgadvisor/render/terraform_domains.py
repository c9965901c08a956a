"""egress-domains.tf: the DNS names the flows justify as a Route 53 Resolver DNS Firewall allowlist, per VPC.

A security group names addresses; an internet service rotates them. With DNS evidence (``--dns-logs``) the
names that resolved to the destinations of internet rules are known, and DNS Firewall can hold the VPC to
exactly those names whatever addresses they move to. Per VPC allowlist of ``recommendation.dns``:

- ``aws_route53_resolver_firewall_domain_list``: the names, then their CNAME-chain targets, at most
  MAX_DOMAINS_PER_LIST per list (the provider sends a whole list in one UpdateFirewallDomains call, which
  takes 1,000 domains: hashicorp/terraform-provider-aws#41433), so a long allowlist is split;
- one ``aws_route53_resolver_firewall_domain_list`` holding ``*`` (shared by every VPC): everything else;
- ``aws_route53_resolver_firewall_rule_group`` with an ALLOW rule per list (priority 100, 200, …) that
  trusts CNAME redirection, and a last rule for ``*`` that ALERTs, or BLOCKs (NODATA) with
  ``--dns-firewall-action block``;
- ``aws_route53_resolver_firewall_rule_group_association`` with the VPC (priority ASSOCIATION_PRIORITY).

Names DNS Firewall would refuse (anything but letters, digits, hyphens and dots; a ``*``, which it reads as
a wildcard; longer than 255 characters) are left out and listed in a comment, never pasted: every value
goes through ``hcl`` (a string literal) or ``comment`` (one inert comment line). Nothing is written without
DNS evidence (``render_domains`` returns None), so outputs without ``--dns-logs`` do not change.

No ``terraform`` or ``provider`` block, as in egress.tf: a module may declare ``required_providers`` only
once, so the file validates alone (hashicorp/aws is implied by the ``aws_`` resource types), beside
egress.tf, and beside the user's own provider configuration.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sgadvisor import __version__
from sgadvisor.models import DnsOut, DomainAllowlist, Recommendation
from sgadvisor.render.quoting import clip, hcl_string
from sgadvisor.render.templating import text_environment

DOMAINS_FILE = "egress-domains.tf"
TEMPLATE = "egress-domains.tf.j2"
MAX_DOMAINS_PER_LIST = 1000  # UpdateFirewallDomains takes 1,000 domains per call; the provider makes one
ASSOCIATION_PRIORITY = 9800  # customers may use 100-9900; lower numbers (their own groups) are checked first
RULE_PRIORITY_STEP = 100
MAX_DOMAIN_LENGTH = 255
DROPPED_LISTED = 20  # dropped names listed per VPC in the file, each cut to DROPPED_CLIP characters
DROPPED_CLIP = 120
REDIRECTION = "TRUST_REDIRECTION_DOMAIN"
BLOCK_RESPONSE = "NODATA"

_LABEL = re.compile(r"[a-z0-9-]{1,63}")
_AWS_NAME = re.compile(r"[^0-9A-Za-z_-]+")  # DNS Firewall names: letters, digits, '-', '_' and ' ' (max 64)
_TF_NAME = re.compile(r"[^a-z0-9]+")


def firewall_domain(name: str) -> tuple[str | None, str]:
    """``name`` as DNS Firewall stores it (lower case, no trailing dot), or None and why it would refuse it.

    DNS Firewall accepts A-Z, a-z, 0-9, ``-`` and dots, 1 to 255 characters, with an optional leading
    ``*`` that makes the entry a wildcard. A name seen in a query log is never a wildcard, so a ``*`` in
    one is refused here too: listing it would allow every subdomain."""
    domain = name.strip().lower()
    if domain.endswith("."):
        domain = domain[:-1]  # the provider strips the trailing dot AWS returns: keep plans stable
    if not domain:
        return None, "empty name"
    if "*" in domain:
        return None, "a '*' would be read as a wildcard"
    if len(domain) > MAX_DOMAIN_LENGTH:
        return None, f"longer than {MAX_DOMAIN_LENGTH} characters"
    if not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        return None, "only letters, digits, hyphens and dots are accepted"
    return domain, ""


@dataclass(frozen=True)
class Dropped:
    name: str
    reason: str


@dataclass(frozen=True)
class DomainListPlan:
    """One ``aws_route53_resolver_firewall_domain_list``: the names that back rules, then CNAME targets."""

    resource: str
    name: str
    domains: tuple[str, ...]
    cname_targets: tuple[str, ...]


@dataclass(frozen=True)
class RulePlan:
    resource: str
    attributes: tuple[str, ...]  # aligned ``name = value`` lines


@dataclass(frozen=True)
class VpcFirewall:
    """Everything written for one VPC."""

    vpc_id: str
    slug: str
    title: str
    group_name: str
    lists: tuple[DomainListPlan, ...]
    rules: tuple[RulePlan, ...]
    association: tuple[str, ...]
    names: int
    cname_targets: int
    dropped: tuple[Dropped, ...]


@dataclass(frozen=True)
class SkippedVpc:
    """An allowlist with no name DNS Firewall accepts: no rule group (it would only ALERT/BLOCK)."""

    vpc_id: str
    dropped: tuple[Dropped, ...]


@dataclass(frozen=True)
class FirewallPlan:
    action: str
    vpcs: tuple[VpcFirewall, ...]
    skipped: tuple[SkippedVpc, ...]

    @property
    def dropped(self) -> int:
        return sum(len(v.dropped) for v in self.vpcs) + sum(len(s.dropped) for s in self.skipped)

    @property
    def names(self) -> int:
        return sum(v.names for v in self.vpcs)


@dataclass(frozen=True)
class RenderedDomains:
    text: str
    warnings: tuple[str, ...]


def render_domains(recommendation: Recommendation) -> RenderedDomains | None:
    """egress-domains.tf, or None without DNS allowlists (then no file is written)."""
    plan = plan_firewall(recommendation)
    if plan is None:
        return None
    text = (
        text_environment()
        .get_template(TEMPLATE)
        .render(
            version=__version__,
            window=recommendation.window,
            plan=plan,
            labels=recommendation.labels,
            everything=EVERYTHING_LIST,
            priority=ASSOCIATION_PRIORITY,
            max_per_list=MAX_DOMAINS_PER_LIST,
            dropped_listed=DROPPED_LISTED,
            dropped_clip=DROPPED_CLIP,
            clip=clip,
        )
    )
    warnings = []
    if plan.dropped:
        warnings.append(
            f"{DOMAINS_FILE}: {plan.dropped} DNS name(s) left out, DNS Firewall would refuse them "
            f"(listed in the file)"
        )
    for skipped in plan.skipped:
        warnings.append(
            f"{DOMAINS_FILE}: no rule group for {skipped.vpc_id}: "
            "none of its names is one DNS Firewall accepts"
        )
    return RenderedDomains(text, tuple(warnings))


EVERYTHING_LIST = "everything_else"


def plan_firewall(recommendation: Recommendation) -> FirewallPlan | None:
    """The resources of egress-domains.tf, or None when there is no DNS allowlist at all."""
    dns = recommendation.dns
    if dns is None or not dns.allowlists:
        return None
    vpcs: list[VpcFirewall] = []
    skipped: list[SkippedVpc] = []
    taken_slugs: set[str] = {EVERYTHING_LIST}
    taken_names: set[str] = set()
    for vpc_id, domains, targets in _merged(dns.allowlists):
        accepted, dropped = _accepted(domains)
        accepted_targets, dropped_targets = _accepted(targets)
        accepted_targets = [t for t in accepted_targets if t not in set(accepted)]
        dropped_all = tuple(dropped + dropped_targets)
        if not accepted:
            skipped.append(SkippedVpc(vpc_id, dropped_all))
            continue
        slug = _unique(_tf_slug(vpc_id), taken_slugs)
        aws_slug = _unique(_AWS_NAME.sub("-", vpc_id).strip("-")[:40] or "vpc", taken_names)
        vpcs.append(_vpc_firewall(dns, vpc_id, slug, aws_slug, accepted, accepted_targets, dropped_all))
    return FirewallPlan(dns.action, tuple(vpcs), tuple(skipped))


def _merged(allowlists: Iterable[DomainAllowlist]) -> list[tuple[str, list[str], list[str]]]:
    """One entry per VPC (two allowlists of one VPC would need two associations at one priority)."""
    merged: dict[str, tuple[list[str], list[str]]] = {}
    for allowlist in allowlists:
        domains, targets = merged.setdefault(allowlist.vpc_id, ([], []))
        domains.extend(allowlist.domains)
        targets.extend(allowlist.cname_targets)
    return [(vpc_id, domains, targets) for vpc_id, (domains, targets) in sorted(merged.items())]


def _accepted(names: Iterable[str]) -> tuple[list[str], list[Dropped]]:
    accepted: set[str] = set()
    dropped: dict[str, Dropped] = {}
    for name in names:
        domain, reason = firewall_domain(name)
        if domain is None:
            dropped.setdefault(name, Dropped(name, reason))
        else:
            accepted.add(domain)
    return sorted(accepted), [dropped[name] for name in sorted(dropped)]


def _vpc_firewall(
    dns: DnsOut,
    vpc_id: str,
    slug: str,
    aws_slug: str,
    domains: Sequence[str],
    targets: Sequence[str],
    dropped: tuple[Dropped, ...],
) -> VpcFirewall:
    entries = [(d, False) for d in domains] + [(t, True) for t in targets]
    lists = []
    for n, start in enumerate(range(0, len(entries), MAX_DOMAINS_PER_LIST), start=1):
        chunk = entries[start : start + MAX_DOMAINS_PER_LIST]
        suffix = "" if n == 1 else f"_{n}"
        lists.append(
            DomainListPlan(
                resource=f"{slug}_allowed{suffix}",
                name=f"sgadvisor-{aws_slug}-allowed{suffix.replace('_', '-')}",
                domains=tuple(d for d, is_target in chunk if not is_target),
                cname_targets=tuple(d for d, is_target in chunk if is_target),
            )
        )
    group_ref = f"aws_route53_resolver_firewall_rule_group.{slug}.id"
    rules = []
    for n, domain_list in enumerate(lists, start=1):
        suffix = "" if n == 1 else f"_{n}"
        rules.append(
            RulePlan(
                resource=f"{slug}_allow{suffix}",
                attributes=tuple(
                    align(
                        [
                            ("name", _hcl(f"allow-observed-names{suffix.replace('_', '-')}")),
                            ("action", _hcl("ALLOW")),
                            ("priority", str(n * RULE_PRIORITY_STEP)),
                            ("firewall_rule_group_id", group_ref),
                            (
                                "firewall_domain_list_id",
                                f"aws_route53_resolver_firewall_domain_list.{domain_list.resource}.id",
                            ),
                            ("firewall_domain_redirection_action", _hcl(REDIRECTION)),
                        ]
                    )
                ),
            )
        )
    last: list[tuple[str, str]] = [
        ("name", _hcl(f"{dns.action.lower()}-everything-else")),
        ("action", _hcl(dns.action)),
        ("priority", str((len(lists) + 1) * RULE_PRIORITY_STEP)),
        ("firewall_rule_group_id", group_ref),
        ("firewall_domain_list_id", f"aws_route53_resolver_firewall_domain_list.{EVERYTHING_LIST}.id"),
    ]
    if dns.action == "BLOCK":
        last.append(("block_response", _hcl(BLOCK_RESPONSE)))
    rules.append(RulePlan(f"{slug}_{EVERYTHING_LIST}", tuple(align(last))))
    group_name = f"sgadvisor-egress-{aws_slug}"
    association = align(
        [
            ("name", _hcl(group_name)),
            ("firewall_rule_group_id", group_ref),
            ("vpc_id", _hcl(vpc_id)),
            ("priority", str(ASSOCIATION_PRIORITY)),
        ]
    )
    title = (
        f"{vpc_id}: {len(domains)} name{'s' if len(domains) != 1 else ''} and {len(targets)} CNAME-chain "
        f"target{'s' if len(targets) != 1 else ''} allowed; every other name: {dns.action}"
    )
    return VpcFirewall(
        vpc_id=vpc_id,
        slug=slug,
        title=title,
        group_name=group_name,
        lists=tuple(lists),
        rules=tuple(rules),
        association=tuple(association),
        names=len(domains),
        cname_targets=len(targets),
        dropped=dropped,
    )


def _hcl(value: str) -> str:
    return hcl_string(value)


def align(attributes: Sequence[tuple[str, str]]) -> list[str]:
    """``name = value`` lines with the equals signs aligned, as ``terraform fmt`` writes them."""
    width = max(len(name) for name, _ in attributes)
    return [f"{name.ljust(width)} = {value}" for name, value in attributes]


def _tf_slug(vpc_id: str) -> str:
    slug = _TF_NAME.sub("_", vpc_id.lower()).strip("_") or "vpc"
    return slug if slug[0].isalpha() else f"vpc_{slug}"


def _unique(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name
