"""From classified edges to *the flows* of DESIGN §6: accepted egress the ENI initiated, per destination.

A flow is one (ENI, protocol, destination address, destination ports) with its evidence. Destination
ports are one port, or — when the remote port was bucketed (ephemeral) — the observed [min, max] range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl

from sgadvisor.analysis.direction import REASONS, Confidence
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

    @property
    def addr(self) -> Addr:
        return parse_addr(self.remote)

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
            pl.col("reasons").explode().unique().sort(),
            pl.col("aws_service").max(),
        )
        .sort(_FLOW_KEY)
    )


def iter_flows(frame: pl.DataFrame) -> Iterator[Flow]:
    klass_names = {0: "reply", 1: "unknown", 2: "initiated"}
    rank_names = {1: Confidence.LOW, 2: Confidence.MEDIUM, 3: Confidence.HIGH}
    for row in frame.iter_rows(named=True):
        yield Flow(
            eni=row["interface_id"],
            proto=row["protocol"],
            remote=row["remote_addr"],
            port_low=row["_port_low"],
            port_high=row["_port_high"],
            records=row["records"],
            bytes=row["bytes"] or 0,
            first=row["first_start"],
            last=row["last_end"],
            klass=klass_names[row["_klass"]],
            confidence=rank_names[row["_rank"]],
            reasons=tuple(row["reasons"]),
            service=row["aws_service"],
        )
