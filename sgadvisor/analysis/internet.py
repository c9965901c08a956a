"""Internet destinations that survive address rotation (DESIGN §6 "Internet destinations").

SaaS and CDN endpoints rotate their addresses: a /32 pinned from two weeks of flows breaks production at
the partner's next DNS change. So an internet destination (a public address in no managed prefix list and
no AWS service range) is named, per ``--internet``:

* ``port`` (the default without DNS evidence): the observed protocol and ports to the widest CIDR among
  the group's current rules that permit the flow — ``0.0.0.0/0`` / ``::/0`` when that is what the group
  has today, never anything the current rules do not already admit for every member;
* ``address``: today's /32 (/128), labelled "pinned";
* ``auto`` (the default with ``--dns-logs``): the names that resolved to the address for the ENI's own
  addresses; a *stable* name's whole address set is pinned and named, every other address is port-scoped
  and named by its domains.

A ``[[fixed]]`` config table states that a partner's address is fixed: it gets its /32 under any policy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from sgadvisor.config import FixedAddress
from sgadvisor.models import DnsAccounting, DnsOut, DomainAllowlist, GroupReport


class InternetPolicy(StrEnum):
    port = "port"
    address = "address"
    auto = "auto"


class FirewallAction(StrEnum):
    alert = "alert"
    block = "block"


class NameMatch(Protocol):
    """What the DNS evidence says about one address for one ENI (sgadvisor.dnslogs)."""

    @property
    def names(self) -> Sequence[str]: ...  # names the ENI's own queries resolved to it (query names first)

    @property
    def forwarded(self) -> Sequence[str]: ...  # names only queries of a forwarding resolver resolved to it


class Stability(Protocol):
    @property
    def stable(self) -> bool: ...

    @property
    def addresses(self) -> frozenset[str]: ...


class DnsEvidence(Protocol):
    """The Route 53 Resolver query logs read (sgadvisor.dnslogs.DnsLog)."""

    @property
    def sources(self) -> Sequence[str]: ...

    @property
    def accounting(self) -> DnsAccounting: ...

    def names_for(
        self,
        clients: Iterable[str],
        address: str,
        *,
        forwarders: Iterable[str] = (),
        vpc_id: str | None = None,
    ) -> NameMatch: ...

    def stability(self, name: str, family: int) -> Stability: ...

    def chain_targets(self, name: str) -> tuple[str, ...]: ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class InternetOptions:
    policy: InternetPolicy = InternetPolicy.port
    fixed: tuple[FixedAddress, ...] = ()
    dns: DnsEvidence | None = None
    firewall_action: Literal["ALERT", "BLOCK"] = "ALERT"  # for every domain outside the allowlist
    # Addresses of ENIs that answer DNS for others (accepted inbound udp/tcp 53): their queries are kept
    # apart, never taken as their own (set by the analysis from the flows).
    forwarders: tuple[str, ...] = ()
    show_all_names: bool = False  # the query logs name everything the workloads asked for: sensitive


def dns_section(
    options: InternetOptions,
    reports: Sequence[GroupReport],
    forwarded: Iterable[str],
    needed: Mapping[str, set[str]],
) -> DnsOut | None:
    """What the DNS evidence contributed: per VPC, the names the flows justify (the domain allowlist of
    egress-domains.tf) with their CNAME chains' targets: the names of every destination the initiated
    flows of an ``ok`` group reached — a prefix list's bucket, an endpoint, a private zone's host as much
    as an internet partner — since a firewall that blocks every other name must not cut those."""
    dns = options.dns
    if dns is None:
        return None
    by_vpc: dict[str, set[str]] = {vpc: set(names) for vpc, names in needed.items()}
    for report in reports:
        if report.coverage.status != "ok" or report.vpc_id is None:
            continue
        for rule in report.proposed_egress:
            if rule.evidence is not None and rule.evidence.names:
                by_vpc.setdefault(report.vpc_id, set()).update(rule.evidence.names)
    allowlists = []
    for vpc_id in sorted(by_vpc):
        domains = sorted(by_vpc[vpc_id])
        targets = sorted({t for name in domains for t in dns.chain_targets(name)} - set(domains))
        allowlists.append(DomainAllowlist(vpc_id=vpc_id, domains=domains, cname_targets=targets))
    said = sorted(set(forwarded))
    return DnsOut(
        sources=list(dns.sources),
        accounting=dns.accounting,
        action=options.firewall_action,
        allowlists=allowlists,
        forwarded=[
            f"{len(said)} names resolved to flow destinations only in queries of a forwarding resolver "
            f"(the asking host is unknown): they name port-scoped rules and are never pinned: "
            + ", ".join(said[:20]) + (f" and {len(said) - 20} more" if len(said) > 20 else "")
        ] if said else [],
        all_names=dns.names() if options.show_all_names else None,
    )  # fmt: skip


@dataclass
class Naming:
    """How one internet flow is named: ``pinned`` addresses (each a /32 or /128), or port-scoped."""

    pinned: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    why: str | None = None
    forwarded: tuple[str, ...] = field(default_factory=tuple)


# Not the internet: private (RFC 1918, shared CGNAT space that VPCs use as secondary CIDRs, IPv6 ULA),
# link-local (instance metadata, Time Sync), loopback, multicast and reserved blocks. Documentation ranges
# (TEST-NET, 2001:db8::/32) count as the internet: examples and tests stand them in for public addresses.
_NOT_INTERNET = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
        "::/127", "fc00::/7", "fe80::/10", "ff00::/8",
    )
)  # fmt: skip


_NOT_INTERNET_SPANS = tuple(
    (net.version, int(net.network_address), int(net.broadcast_address)) for net in _NOT_INTERNET
)


def is_internet(
    address: str, vpc_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
) -> bool:
    """A public address outside every VPC of the inventory (a VPC's IPv6 block is globally routable, and
    so is a BYOIP IPv4 block): what is left once ENIs, prefix lists and AWS services are named."""
    return is_internet_address(ipaddress.ip_address(address), vpc_networks)


def is_internet_address(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
    vpc_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
) -> bool:
    """``is_internet`` of a parsed address (the synthesis asks it of every flow)."""
    version, value = ip.version, int(ip)
    if any(v == version and low <= value <= high for v, low, high in _NOT_INTERNET_SPANS):
        return False
    return not any(ip.version == net.version and ip in net for net in vpc_networks)


def fixed_network(address: str, fixed: Sequence[FixedAddress]) -> FixedAddress | None:
    if not fixed:
        return None
    ip = ipaddress.ip_address(address)
    for entry in fixed:
        net = ipaddress.ip_network(entry.address)
        if net.version == ip.version and ip in net:
            return entry
    return None


def names_needed(
    flows: Iterable[tuple[Iterable[str], str, str | None]], options: InternetOptions
) -> dict[str, set[str]]:
    """Per VPC, every name that resolved to a destination of ``flows`` ((clients, destination, VPC)),
    the ENI's own queries and its forwarders' alike."""
    out: dict[str, set[str]] = {}
    dns = options.dns
    if dns is None:
        return out
    for clients, address, vpc_id in flows:
        if vpc_id is None:
            continue
        own = [c for c in clients if c not in options.forwarders]
        match = dns.names_for(own, address, forwarders=options.forwarders, vpc_id=vpc_id)
        out.setdefault(vpc_id, set()).update([*match.names, *match.forwarded])
    return out


def name_flow(
    address: str, clients: Iterable[str], options: InternetOptions, vpc_id: str | None = None
) -> Naming:
    """The naming of one internet destination of one ENI (whose own addresses are ``clients``, in
    ``vpc_id``)."""
    fixed = fixed_network(address, options.fixed)
    if fixed is not None:
        return Naming(pinned=(address,), why=f"pinned: fixed address ({fixed.reason})")
    if options.policy is InternetPolicy.address:
        return Naming(pinned=(address,), why="pinned: --internet address")
    if options.policy is InternetPolicy.port or options.dns is None:
        return Naming()
    clients = [c for c in clients if c not in options.forwarders]  # a forwarder's queries are not its own
    match = options.dns.names_for(clients, address, forwarders=options.forwarders, vpc_id=vpc_id)
    names = tuple(match.names)
    forwarded = tuple(n for n in match.forwarded if n not in names)
    family = ipaddress.ip_address(address).version
    for name in names:
        stability = options.dns.stability(name, family)
        if stability.stable and address in stability.addresses:
            return Naming(
                pinned=tuple(sorted(stability.addresses, key=_address_key)),
                names=(name,),
                why=f"pinned: {name} resolved to the same addresses throughout the window",
                forwarded=forwarded,
            )
    if not names and forwarded:
        # Only a forwarding resolver asked: the names say where the traffic may go, not who asked,
        # so they name the port-scoped rule but never pin it.
        why = "named from queries of a forwarding resolver (the asking host is not known)"
        return Naming(names=forwarded, forwarded=forwarded, why=why)
    return Naming(names=names, forwarded=forwarded)


def _address_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)
