"""From classified edges to *the flows* of DESIGN §6: accepted egress the ENI initiated, per destination.

A flow is one (ENI, protocol, destination address, destination ports) with its evidence. Destination
ports are one port, or — when the remote port was bucketed (ephemeral) — the observed [min, max] range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import polars as pl

from sgadvisor.analysis.direction import REASONS, Confidence, reason_codes
from sgadvisor.analysis.permits import Addr, parse_addr

PROTOCOL_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}


def protocol_name(number: int) -> str:
    return PROTOCOL_NAMES.get(number, str(number))


@dataclass(frozen=True, slots=True)
class Flow:
    eni: str
    proto: int
    remote: str
    port_low: int
    port_high: int
    records: int
    bytes: int
    first: int | None
    last: int | None
    klass: str
    confidence: Confidence
    reasons: tuple[str, ...]
    service: str | None
    # Flows are dictionary keys and permission questions all through the synthesis: the hash (of the
    # flow's identity, the §6 key) and the parsed destination are kept, not recomputed per question.
    _hash: int = field(init=False, repr=False, compare=False)
    _addr: Addr = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        identity = (self.eni, self.proto, self.remote, self.port_low, self.port_high)
        object.__setattr__(self, "_hash", hash(identity))

    def __hash__(self) -> int:
        return self._hash

    @property
    def addr(self) -> Addr:
        try:
            return self._addr
        except AttributeError:  # parsed on first use: flows that are only listed never need it
            addr = parse_addr(self.remote)
            object.__setattr__(self, "_addr", addr)
            return addr

    @property
    def why(self) -> list[str]:
        return [REASONS.get(code, code) for code in self.reasons]


_FLOW_KEY = ["interface_id", "protocol", "remote_addr", "_port_low", "_port_high"]


def edges_to_flows(classified: pl.DataFrame) -> pl.DataFrame:
    """Merge classified egress edges into per-destination flows (local address/port differences fold)."""
    bucketed = pl.col("remote_port") == 0
    ported = pl.col("protocol").is_in([6, 17])
    with_ports = classified.with_columns(
        pl.when(bucketed & ported)
        .then(pl.col("remote_port_min"))
        .otherwise(pl.col("remote_port"))
        .alias("_port_low"),
        pl.when(bucketed & ported)
        .then(pl.col("remote_port_max"))
        .otherwise(pl.col("remote_port"))
        .alias("_port_high"),
        pl.col("confidence")
        .replace_strict({"low": 1, "medium": 2, "high": 3}, return_dtype=pl.Int8)
        .alias("_rank"),
        pl.col("class")
        .replace_strict({"reply": 0, "unknown": 1, "initiated": 2}, return_dtype=pl.Int8)
        .alias("_klass"),
    )
    return (
        with_ports.group_by(_FLOW_KEY)
        .agg(
            pl.col("records").sum(),
            pl.col("bytes").sum(),
            pl.col("first_start").min(),
            pl.col("last_end").max(),
            pl.col("_klass").max(),
            pl.col("_rank").max(),
            pl.col("reason_bits").bitwise_or(),  # the union of the edges' reasons
            pl.col("aws_service").max(),
        )
        .sort(_FLOW_KEY)
    )


_FLOW_COLUMNS = ("interface_id", "protocol", "remote_addr", "_port_low", "_port_high", "records", "bytes",
                 "first_start", "last_end", "_klass", "_rank", "reason_bits", "aws_service")  # fmt: skip
_CHUNK = 65_536  # rows turned into Python values at a time
_KLASS_NAMES = {0: "reply", 1: "unknown", 2: "initiated"}
_RANK_NAMES = {1: Confidence.LOW, 2: Confidence.MEDIUM, 3: Confidence.HIGH}


def iter_flows(frame: pl.DataFrame) -> Iterator[Flow]:
    """The flows of ``edges_to_flows``, in its order. Values that repeat across flows (an ENI's id in each
    of its flows, a destination reached by several, the same reasons and times) become one shared object
    each: a million flows hold far fewer distinct ones."""
    names: dict[str, str] = {}
    instants: dict[int | None, int | None] = {}
    reason_sets: dict[int, tuple[str, ...]] = {}  # bits → the codes, sorted by name
    addresses: dict[int, IPv4Address] = {}
    for offset in range(0, frame.height, _CHUNK):
        chunk = frame.slice(offset, _CHUNK)
        columns = [chunk.get_column(name).to_list() for name in _FLOW_COLUMNS]
        columns.append(_ipv4_values(chunk.get_column("remote_addr")).to_list())
        for row in zip(*columns, strict=True):
            eni, proto, remote, low, high, records, volume, first, last, klass, rank, bits, service, v4 = row
            codes = reason_sets.get(bits)
            if codes is None:
                codes = reason_sets[bits] = tuple(sorted(reason_codes(bits)))
            flow = Flow(
                eni=names.setdefault(eni, eni),
                proto=proto,
                remote=names.setdefault(remote, remote),
                port_low=low,
                port_high=high,
                records=records,
                bytes=volume or 0,
                first=instants.setdefault(first, first),
                last=instants.setdefault(last, last),
                klass=_KLASS_NAMES[klass],
                confidence=_RANK_NAMES[rank],
                reasons=codes,
                service=service,
            )
            if v4 is not None:  # parsed by the engine: the same address ipaddress would read from the text
                addr = addresses.get(v4)
                if addr is None:
                    addr = addresses[v4] = IPv4Address(v4)
                object.__setattr__(flow, "_addr", addr)
            yield flow


# A dotted quad as ipaddress reads it (decimal octets 0-255, no leading zero): only such text is parsed
# by the engine; anything else (IPv6) is left to ipaddress.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def _ipv4_values(addresses: pl.Series) -> pl.Series:
    """Each IPv4 address as its integer value (null for anything else), in one pass of the engine."""
    octets = addresses.str.extract_groups(_DOTTED_QUAD).struct.unnest().cast(pl.Int64)
    return octets.select(
        (pl.col("1") * 16777216 + pl.col("2") * 65536 + pl.col("3") * 256 + pl.col("4")).alias("v4")
    ).to_series()
