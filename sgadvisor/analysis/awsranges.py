"""AWS service labels for destination addresses, from a user-supplied ``ip-ranges.json``.

AWS publishes its address ranges as ip-ranges.json (``prefixes``/``ipv6_prefixes`` with ``service``).
Flow logs name the service only in v5 fields (pkt-dst-aws-service); with the file, any format gets the
label. Labels describe and group rules; they never widen one (that stays under --cidr-tolerance).
https://docs.aws.amazon.com/vpc/latest/userguide/aws-ip-ranges.html
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sgadvisor.errors import InputError
from sgadvisor.jsonload import load_json_text


@dataclass(frozen=True)
class ServiceRanges:
    """Most specific service label per address: a specific service (S3, EC2, …) wins over AMAZON."""

    blocks: dict[tuple[int, int, int], str]  # (version, network as int, prefix length) → service

    @lru_cache(maxsize=65536)  # noqa: B019 - few distinct destinations, and the object lives for one run
    def label(self, address: str) -> str | None:
        addr = ipaddress.ip_address(address)
        value, bits = int(addr), addr.max_prefixlen
        fallback = None
        for prefix in range(bits, -1, -1):
            network = value >> (bits - prefix) << (bits - prefix) if prefix < bits else value
            service = self.blocks.get((addr.version, network, prefix))
            if service is None:
                continue
            if service != "AMAZON":
                return service
            fallback = fallback or service
        return fallback

    def __hash__(self) -> int:
        return id(self)


def load_ip_ranges(path: Path) -> ServiceRanges:
    """Read ip-ranges.json; a specific service (S3, EC2, …) wins over the catch-all AMAZON."""
    try:
        document: Any = load_json_text(path.read_bytes(), source=str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: invalid JSON: not UTF-8 text ({exc.reason})") from None
    if not isinstance(document, dict) or not isinstance(document.get("prefixes"), list):
        raise InputError(f"{path}: not an ip-ranges.json (no 'prefixes' list)", hint="download it from AWS")
    blocks: dict[tuple[int, int, int], str] = {}
    entries = [(e, "ip_prefix") for e in document["prefixes"]]
    entries += [(e, "ipv6_prefix") for e in document.get("ipv6_prefixes") or []]
    for index, (entry, field) in enumerate(entries):
        try:
            net = ipaddress.ip_network(entry[field])
            service = str(entry["service"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{path}: {field.split('_')[0]} entry {index}: {exc}") from None
        block = (net.version, int(net.network_address), net.prefixlen)
        if blocks.get(block, "AMAZON") == "AMAZON":
            blocks[block] = service
    return ServiceRanges(blocks)
