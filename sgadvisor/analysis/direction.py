"""Who initiated? Classify every accepted egress edge as initiated by the ENI, a reply, or unknown.

Security groups are stateful: a reply to allowed inbound traffic leaves whatever the egress rules say, so a
reply must never become an egress rule (the naive tool proposes rules to clients' ephemeral ports). The
evidence, strongest first (DESIGN §6 "Direction"):

1. tcp-flags (v3+): SYN without ACK on the ENI's egress record → initiated; SYN-ACK → reply.
2. the reverse record on the same ENI: the peer's SYN → reply; the peer's SYN-ACK → initiated.
3. listening evidence: a local port that accepts inbound connections is a service port → reply.
4. ports: local ephemeral and remote not → initiated; the reverse → reply (bucketed ports are 0 and
   were ephemeral); both or neither → the port that stays fixed across peers is the service (low).
ICMP carries no ports: egress ICMP to a peer that also sent ICMP to the ENI in the same period is
ambiguous; otherwise it is initiated.

Everything is vectorised over the edge table: the cost follows edges, never records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from sgadvisor.flowlogs.edges import EDGE_KEY, PortRange


class Klass(StrEnum):
    INITIATED = "initiated"
    REPLY = "reply"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _RANKS[self]  # a member is its value (StrEnum): no .value, slow to read per flow


_RANKS = {"low": 1, "medium": 2, "high": 3}


LINUX_EPHEMERAL = PortRange(32768, 60999)
WINDOWS_EPHEMERAL = PortRange(49152, 65535)
# NAT gateways, load balancers and Lambda use 1024-65535 for their own connections.
MANAGED_EPHEMERAL = PortRange(1024, 65535)


@dataclass(frozen=True, slots=True)
class EphemeralRanges:
    """Client port ranges by OS family; a port in any of them may be a client's (DESIGN §6)."""

    ranges: tuple[PortRange, ...] = (LINUX_EPHEMERAL, WINDOWS_EPHEMERAL)

    def expr(self, column: str) -> pl.Expr:
        col = pl.col(column)
        hit = pl.lit(False)
        for rng in self.ranges:
            hit = hit | col.is_between(rng.low, rng.high)
        return hit


# Reason codes -> the sentence shown as evidence ("why").
REASONS: dict[str, str] = {
    "flag_syn": "tcp-flags: SYN from the ENI",
    "flag_synack": "tcp-flags: SYN-ACK from the ENI (a reply)",
    "rev_syn": "reverse record: the peer sent SYN",
    "rev_synack": "reverse record: the peer answered SYN-ACK",
    "listening": "local port accepts inbound connections (a service port)",
    "port_client": "local port ephemeral, remote port not",
    "port_server": "remote port ephemeral, local port not",
    "fixed_remote": "remote port stays fixed across local ports (the service)",
    "fixed_local": "local port stays fixed across peers (the service)",
    "icmp_alone": "ICMP with no ICMP from the peer in the same period",
    "icmp_echoed": "ICMP both ways with the peer in the same period (may be an echo reply)",
    "no_evidence": "no evidence either way",
}

_TCP, _ICMP, _ICMPV6 = 6, 1, 58


def classify_edges(edges: pl.DataFrame, ephemeral: EphemeralRanges | None = None) -> pl.DataFrame:
    """Add ``class``, ``confidence`` and ``reasons`` (list of reason codes) to every ACCEPT egress edge.

    ``edges`` is the §4.2 edge table (all directions and actions, they are evidence); the result holds
    the ACCEPT egress edges only.
    """
    ephemeral = ephemeral or EphemeralRanges()
    accepted = edges.filter(pl.col("action") == "ACCEPT")
    egress = accepted.filter(pl.col("direction") == "egress")
    ingress = accepted.filter(pl.col("direction") == "ingress")

    # 2. the reverse record: the ingress edge with the same 5-tuple swapped (same orientation here, since
    #    both are keyed local/remote relative to the ENI).
    five = ["interface_id", "protocol", "local_addr", "remote_addr", "local_port", "remote_port"]
    reverse = ingress.select(
        *five,
        pl.col("syn_records").alias("_rev_syn"),
        pl.col("synack_records").alias("_rev_synack"),
    )
    # 3. listening evidence: local ports that inbound connections reach (peer's SYN, or several peers).
    listening = (
        ingress.filter(pl.col("local_port") > 0)
        .group_by("interface_id", "protocol", "local_port")
        .agg(
            (pl.col("syn_records").fill_null(0).sum() > 0).alias("_in_syn"),
            pl.col("remote_addr").n_unique().alias("_in_peers"),
            (pl.col("remote_port") == 0).any().alias("_in_bucketed"),
            pl.col("synack_records").fill_null(0).sum().alias("_in_synack"),
        )
        .filter(
            (pl.col("_in_syn") | (pl.col("_in_peers") >= 2) | pl.col("_in_bucketed"))
            & ~((pl.col("_in_synack") > 0) & ~pl.col("_in_syn"))
        )
        .select("interface_id", "protocol", "local_port", pl.lit(True).alias("_listening"))
    )
    # 4b. fixed-port evidence for ambiguous port pairs: how many distinct counterparts a port has.
    remote_fixed = egress.group_by("interface_id", "protocol", "remote_port").agg(
        (pl.col("local_port").n_unique() + pl.col("local_port_distinct").max() - 1).alias(
            "_locals_per_remote"
        )
    )
    local_fixed = egress.group_by("interface_id", "protocol", "local_port").agg(
        (pl.struct("remote_addr", "remote_port").n_unique()).alias("_remotes_per_local")
    )
    # ICMP both ways with the same peer in overlapping periods: the egress side may be echo replies.
    icmp_in = ingress.filter(pl.col("protocol").is_in([_ICMP, _ICMPV6])).select(
        "interface_id", "protocol", "remote_addr", pl.col("first_start").alias("_in_first"),
        pl.col("last_end").alias("_in_last"),
    )  # fmt: skip
    key = list(EDGE_KEY)
    icmp_echoed_edges = (
        egress.filter(pl.col("protocol").is_in([_ICMP, _ICMPV6]))
        .join(icmp_in, on=["interface_id", "protocol", "remote_addr"], how="inner")
        .filter((pl.col("_in_first") <= pl.col("last_end")) & (pl.col("first_start") <= pl.col("_in_last")))
        .select(key)
        .unique()
        .with_columns(pl.lit(True).alias("_icmp_echoed"))
    )

    out = (
        egress.join(reverse, on=five, how="left", nulls_equal=True)
        .join(listening, on=["interface_id", "protocol", "local_port"], how="left")
        .join(remote_fixed, on=["interface_id", "protocol", "remote_port"], how="left")
        .join(local_fixed, on=["interface_id", "protocol", "local_port"], how="left")
        .join(icmp_echoed_edges, on=key, how="left", nulls_equal=True)
        .with_columns(pl.col("_icmp_echoed").fill_null(False))
    )

    is_tcp = pl.col("protocol") == _TCP
    is_icmp = pl.col("protocol").is_in([_ICMP, _ICMPV6])
    local_eph = (pl.col("local_port") == 0) | ephemeral.expr("local_port")
    remote_eph = (pl.col("remote_port") == 0) | ephemeral.expr("remote_port")
    syn = is_tcp & (pl.col("syn_records").fill_null(0) > 0)
    synack = is_tcp & (pl.col("synack_records").fill_null(0) > 0)
    rev_syn = is_tcp & (pl.col("_rev_syn").fill_null(0) > 0)
    rev_synack = is_tcp & (pl.col("_rev_synack").fill_null(0) > 0)
    listening_hit = pl.col("_listening").fill_null(False) & ~is_icmp
    ports_both = ~is_icmp & (local_eph == remote_eph)
    fixed_remote = ports_both & (pl.col("_locals_per_remote").fill_null(1) >= 3)
    fixed_local = ports_both & (pl.col("_remotes_per_local").fill_null(1) >= 3)

    # Votes: +1 initiated, -1 reply, with a strength; the strongest tier that has votes decides.
    strong_init = syn | rev_synack
    strong_reply = synack | rev_syn
    medium_init = ~is_icmp & local_eph & ~remote_eph
    medium_reply = (~is_icmp & remote_eph & ~local_eph) | listening_hit
    weak_init = fixed_remote & ~fixed_local
    weak_reply = fixed_local & ~fixed_remote

    klass = (
        pl.when(is_icmp)
        .then(pl.when(pl.col("_icmp_echoed")).then(pl.lit("unknown")).otherwise(pl.lit("initiated")))
        .when(strong_init & ~strong_reply)
        .then(pl.lit("initiated"))
        .when(strong_reply & ~strong_init)
        .then(pl.lit("reply"))
        .when(medium_init & ~medium_reply)
        .then(pl.lit("initiated"))
        .when(medium_reply & ~medium_init)
        .then(pl.lit("reply"))
        .when(weak_init)
        .then(pl.lit("initiated"))
        .when(weak_reply)
        .then(pl.lit("reply"))
        .otherwise(pl.lit("unknown"))
    )
    strong_agrees = (strong_init & ~strong_reply) | (strong_reply & ~strong_init)
    medium_agrees = (medium_init & ~medium_reply) | (medium_reply & ~medium_init)
    confidence = (
        pl.when(is_icmp)
        .then(pl.when(pl.col("_icmp_echoed")).then(pl.lit("low")).otherwise(pl.lit("medium")))
        .when(strong_agrees)
        .then(
            # Flags that agree with the ports are the strongest case.
            pl.when((strong_init & medium_init) | (strong_reply & medium_reply) | ~medium_agrees)
            .then(pl.lit("high"))
            .otherwise(pl.lit("medium"))
        )
        .when(medium_agrees)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )
    codes = [
        ("flag_syn", syn),
        ("flag_synack", synack),
        ("rev_syn", rev_syn),
        ("rev_synack", rev_synack),
        ("listening", listening_hit),
        ("port_client", ~is_icmp & local_eph & ~remote_eph),
        ("port_server", ~is_icmp & remote_eph & ~local_eph),
        ("fixed_remote", weak_init),
        ("fixed_local", weak_reply),
        ("icmp_alone", is_icmp & ~pl.col("_icmp_echoed")),
        ("icmp_echoed", is_icmp & pl.col("_icmp_echoed")),
    ]
    bits = pl.sum_horizontal([pl.when(cond).then(REASON_BITS[code]).otherwise(0) for code, cond in codes])
    out = out.with_columns(
        klass.alias("class"),
        confidence.alias("confidence"),
        pl.when(bits == 0)
        .then(REASON_BITS["no_evidence"])
        .otherwise(bits)
        .cast(pl.UInt16)
        .alias("reason_bits"),
    )
    out = out.drop(
        "_rev_syn", "_rev_synack", "_listening", "_locals_per_remote", "_remotes_per_local", "_icmp_echoed"
    ).sort(["interface_id", "protocol", "remote_addr", "remote_port", "local_addr", "local_port"])
    return out.with_columns(reasons_of(out.get_column("reason_bits")))


# Each reason code as one bit, in the order a classified edge lists them: the engine combines bits (one
# integer per edge, OR-ed across a flow's edges) far faster than lists of text.
REASON_BITS: dict[str, int] = {
    code: 1 << i
    for i, code in enumerate(
        ["flag_syn", "flag_synack", "rev_syn", "rev_synack", "listening", "port_client", "port_server",
         "fixed_remote", "fixed_local", "icmp_alone", "icmp_echoed", "no_evidence"]
    )
}  # fmt: skip


def reason_codes(bits: int) -> tuple[str, ...]:
    """The reason codes of a bit set, in the order a classified edge lists them."""
    return tuple(code for code, bit in REASON_BITS.items() if bits & bit)


def reasons_of(bits: pl.Series) -> pl.Series:
    """The ``reasons`` column (lists of codes) for a column of reason bits: one list per distinct set."""
    distinct = bits.unique().sort().to_list()
    table = pl.Series("reasons", [list(reason_codes(b)) for b in distinct], dtype=pl.List(pl.String))
    index = bits.replace_strict(distinct, list(range(len(distinct))), return_dtype=pl.UInt32)
    return table.gather(index)
