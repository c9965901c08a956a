"""Refuse an inventory that cannot be the one the user meant, before anything is judged on it.

An inventory without a single security group or network interface, or a scope (``--vpc``, ``--group``,
``--eni``, ``--tag``) that selects nothing in it, is almost always a mistake: the snapshot was made with
the wrong describe call or in another region, or ``--region``/``--vpc`` points elsewhere. Read as data it
would give "0 groups" (exit 0) from ``recommend`` and "no drift" from ``check`` — a drift gate passing on
nothing. So each is an :class:`InputError` (exit 2, one line and a hint), raised by the pipeline for
``recommend``/``check`` and by the AWS inventory for ``collect``.

An unattached group inside a valid scope is not an error: it is a group with coverage ``none``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sgadvisor.errors import InputError
from sgadvisor.inventory.model import Inventory

__all__ = ["InventorySource", "require_usable"]


@dataclass(frozen=True)
class InventorySource:
    """Where the inventory came from, for the message and the hint."""

    aws: bool = False  # read from the EC2 API (recommend/check without --inventory, collect)
    region: str | None = None

    def describe(self) -> str:
        if self.aws:
            return "the EC2 API" + (f" (region {self.region})" if self.region else "")
        return "the inventory snapshot"

    def hint(self, file: str, call: str) -> str:
        if self.aws:
            return (
                "is --region (or AWS_REGION / the profile's region) the region of your VPCs, and do the "
                "credentials belong to the right account?"
            )
        return f"{file} was it made with aws ec2 {call} in the right account and region (--region)?"


def _listed(values: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "") if values else "none"


def require_usable(
    inventory: Inventory,
    source: InventorySource,
    *,
    vpcs: Sequence[str] = (),
    groups: Sequence[str] = (),
    enis: Sequence[str] = (),
    tags: Sequence[tuple[str, str]] = (),
) -> None:
    """Raise :class:`InputError` when the inventory has no security group or no network interface, or
    when a scope value (or the scope as a whole) selects no security group of it."""
    where = source.describe()
    scoped = bool(vpcs or groups or enis or tags)
    if not inventory.groups and not scoped:
        raise InputError(
            f"{where} holds no security groups",
            hint=source.hint(
                "describe-security-groups.json holds no security groups:", "describe-security-groups"
            ),
        )
    _require_scope(inventory, source, vpcs=vpcs, groups=groups, enis=enis, tags=tags)
    if not inventory.interfaces:
        raise InputError(
            f"{where} holds no network interfaces (and {len(inventory.groups)} security groups): no group "
            "can be judged without its members",
            hint=source.hint(
                "describe-network-interfaces.json holds no interfaces:", "describe-network-interfaces"
            ),
        )


def _require_scope(
    inventory: Inventory,
    source: InventorySource,
    *,
    vpcs: Sequence[str],
    groups: Sequence[str],
    enis: Sequence[str],
    tags: Sequence[tuple[str, str]],
) -> None:
    """Every scope value must select at least one group, and so must the scope as a whole."""
    where = source.describe()
    known_vpcs = sorted({sg.vpc_id for sg in inventory.groups.values() if sg.vpc_id})
    region_hint = " (another region? check --region)" if source.aws or known_vpcs else ""
    for vpc in sorted(set(vpcs)):
        if vpc not in known_vpcs:
            raise InputError(
                f"--vpc {vpc}: no security group of {where} is in this VPC",
                hint=f"VPCs with groups there: {_listed(known_vpcs)}{region_hint}",
            )
    for gid in sorted(set(groups)):
        if gid not in inventory.groups:
            raise InputError(
                f"--group {gid}: no such security group in {where}",
                hint=f"check the group id{region_hint}; {len(inventory.groups)} groups are known",
            )
    for eni in sorted(set(enis)):
        itf = inventory.interfaces.get(eni)
        if itf is None:
            raise InputError(
                f"--eni {eni}: no such network interface in {where}",
                hint=f"check the ENI id{region_hint}; {len(inventory.interfaces)} interfaces are known",
            )
        if not any(gid in inventory.groups for gid in itf.group_ids):
            raise InputError(
                f"--eni {eni}: carries no security group of {where} ({itf.interface_type})",
                hint="scope by an ENI that has security groups, or by --group/--vpc",
            )
    for key, value in sorted(set(tags)):
        if not any(sg.tags.get(key) == value for sg in inventory.groups.values()):
            raise InputError(
                f"--tag {key}={value}: no security group of {where} carries this tag",
                hint=f"tags are matched exactly (key and value, case-sensitive){region_hint}",
            )
    if not (vpcs or groups or enis or tags):
        return
    selected = [
        gid
        for gid, sg in inventory.groups.items()
        if (not vpcs or sg.vpc_id in vpcs)
        and (not groups or gid in groups)
        and (not enis or set(inventory.members.get(gid, ())) & set(enis))
        and all(sg.tags.get(key) == value for key, value in tags)
    ]
    if not selected:
        raise InputError(
            "the scope (--vpc/--group/--eni/--tag together) selects no security group: each value matches "
            "some group, but no group matches all of them",
            hint="the scope options are combined with AND across kinds (and OR within a kind)",
        )
