"""Destinations that security groups do not filter and VPC Flow Logs do not record.

AWS documents both lists:

* VPC user guide, "Flow log limitations"
  (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-limitations.html): flow logs do not capture
  traffic to the Amazon DNS server (traffic to a DNS server of your own is logged), Windows license
  activation, instance metadata (169.254.169.254), Amazon Time Sync (169.254.169.123), DHCP, and the
  reserved IP address of the default VPC router.
* VPC user guide, "Security group rules"
  (https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html): security groups do not
  filter traffic to and from Amazon DNS, Amazon DHCP, EC2 instance metadata, ECS task metadata endpoints,
  Windows license activation, Amazon Time Sync and the reserved addresses of the default VPC router.
  The Amazon DNS server is 169.254.169.253, fd00:ec2::253 (Nitro) and the VPC's IPv4 base + 2 ("Amazon
  DNS server", "Subnet CIDR blocks": the first addresses of a range are reserved, base + 1 for the VPC
  router, base + 2 for DNS).

So a rule whose only destinations are these can never be seen used in flow logs, and it does nothing
either: the traffic passes whatever the rules say. sgadvisor still proposes removing such a rule (it is
harmless: that traffic stays allowed), but says so in the reason instead of "no initiated traffic used
it", so that a reviewer does not mistake it for a rule that breaks DNS, NTP or metadata when it goes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Sequence
from typing import Final

from sgadvisor.inventory.model import Vpc
from sgadvisor.rules import DestKind, RuleKey

__all__ = ["unlogged_destination"]

_FIXED: Final[dict[str, str]] = {
    "169.254.169.253": "the Amazon DNS server",
    "fd00:ec2::253": "the Amazon DNS server",
    "169.254.169.254": "the instance metadata service",
    "fd00:ec2::254": "the instance metadata service",
    "169.254.170.2": "the ECS task metadata endpoint",
    "169.254.169.123": "the Amazon Time Sync Service",
    "fd00:ec2::123": "the Amazon Time Sync Service",
    "169.254.169.250": "Windows license activation",
    "169.254.169.251": "Windows license activation",
}
# A wider CIDR is "only such destinations" when every address in it is one: never more than this many.
_MAX_ADDRESSES: Final = 4
_DHCP_PORTS: Final = (67, 68)
_WHY: Final = (
    "security groups do not filter that traffic and VPC Flow Logs do not record it, so no flow can show the "
    "rule used, and removing it changes nothing for that traffic (it stays allowed)"
)


def _vpc_addresses(vpcs: Sequence[Vpc]) -> dict[str, tuple[str, str]]:
    """Base + 1 (the VPC router) and base + 2 (the Amazon DNS server) of every IPv4 block of the VPCs."""
    out: dict[str, tuple[str, str]] = {}
    for vpc in vpcs:
        for cidr in vpc.cidrs:
            network = ipaddress.ip_network(cidr)
            if network.version != 4 or network.num_addresses < 4:
                continue
            base = network.network_address
            out[str(base + 1)] = ("the VPC router's reserved address", f"base + 1 of {vpc.vpc_id} {cidr}")
            out[str(base + 2)] = ("the Amazon DNS server", f"base + 2 of {vpc.vpc_id} {cidr}")
    return out


def unlogged_destination(key: RuleKey, vpcs: Sequence[Vpc], eni_addresses: Collection[str]) -> str | None:
    """The removal reason for a rule whose only destinations are traffic SGs do not filter and flow logs
    do not record (named), or None.

    ``vpcs`` are the VPCs of the rule's group (their blocks give base + 1 and base + 2);
    ``eni_addresses`` are the inventory's ENI addresses (a DHCP rule to one of them is a DHCP server of
    your own, which flow logs do record)."""
    if key.kind not in (DestKind.CIDR_IPV4, DestKind.CIDR_IPV6):
        return None
    network = ipaddress.ip_network(key.value)
    if (
        key.ip_protocol == "udp"
        and key.from_port is not None
        and key.to_port is not None
        and _DHCP_PORTS[0] <= key.from_port <= key.to_port <= _DHCP_PORTS[1]
        and network.version == 4
        and not (network.num_addresses == 1 and str(network.network_address) in eni_addresses)
    ):
        ports = str(key.from_port) if key.from_port == key.to_port else f"{key.from_port}-{key.to_port}"
        return f"its only traffic is DHCP (udp {ports}) to Amazon's DHCP service: {_WHY}"
    if network.num_addresses > _MAX_ADDRESSES:
        return None
    known = {address: (name, "") for address, name in _FIXED.items()} | _vpc_addresses(vpcs)
    named: dict[str, list[str]] = {}
    for address in network:
        found = known.get(str(address))
        if found is None:
            return None
        name, detail = found
        named.setdefault(name, []).append(f"{address}, {detail}" if detail else str(address))
    where = "; ".join(f"{name} ({', '.join(items)})" for name, items in named.items())
    return f"its only destination is {where}: {_WHY}"
