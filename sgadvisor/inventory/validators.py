"""Field validators the snapshot readers share (the describe-* files and the ENI history files): an AWS id
of one kind, and one IP address in canonical text. A wrong value fails where it is read, with its key."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable


def aws_id(prefix: str) -> Callable[[str], str]:
    """A validator for an AWS id of one kind (``sg-…``), so a name passed for an id fails here."""

    def check(text: str) -> str:
        if not text.startswith(prefix) or len(text) == len(prefix):
            raise ValueError(f"expected an id starting with {prefix}")
        return text

    return check


def canonical_address(text: str) -> str:
    """Canonical text of one IP address (``2A05:…:0310A`` → ``2a05:…:310a``)."""
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError("expected an IP address") from None


def address_order(text: str) -> tuple[int, int]:
    """Sort key of an address: IPv4 before IPv6, then by value."""
    address = ipaddress.ip_address(text)
    return address.version, int(address)
