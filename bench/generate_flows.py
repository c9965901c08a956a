"""Generate large, realistic VPC Flow Log files for the ingestion benchmark (bench/bench_ingest.py).

Writes into ``bench/data/`` (gitignored):

- ``default.log``            S3 text: header line + the AWS default (version 2) format, plain
- ``default.log.gz``         the same bytes, gzipped
- ``default-headerless.log`` the same records without the header line (read with the default format)
- ``custom-v5.log.gz``       header + a custom version-5 order (tcp-flags, flow-direction, pkt-*addr,
                             pkt-*-aws-service, vpc/subnet/instance ids, type, traffic-path, ...)
- ``damaged.log.gz``         the default file with ~0.1% garbage lines (wrong field counts, non-numeric
                             ports, invalid addresses, binary bytes) and a truncated gzip tail
- ``manifest.json``          line counts, garbage-line counts and the truncation, for the benchmark

Everything is vectorised in polars (no per-line Python): random numbers come from splitmix64 over a row
index, so the output depends only on ``--seed`` and ``--lines``, not on the polars version.

The traffic model: ~2,000 ENIs in 8 VPCs (web tier, NAT gateways, app/db servers, dual-stack ones),
connections in 10-minute intervals over 8 days. A connection is logged at each end that is an ENI of the
estate: the client side logs its request (egress) and the reply (ingress), the server side the request
(ingress) and its reply (egress). Kinds: outbound HTTPS/HTTP to a long-tailed internet peer pool, AWS
services (S3, DynamoDB, ...), east-west to database/cache/queue servers (a few on high ports such as
gRPC 50051), DNS/NTP, inbound web clients from a large pool (their ports are ephemeral: bucketed),
ICMP, ~1% REJECTed scans, and a few NODATA/SKIPDATA rows.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

DATA_DIR = Path(__file__).resolve().parent / "data"

DEFAULT_FIELDS: tuple[str, ...] = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip
CUSTOM_FIELDS: tuple[str, ...] = (
    "version", "account-id", "vpc-id", "subnet-id", "instance-id", "interface-id", "type", "srcaddr",
    "dstaddr", "srcport", "dstport", "pkt-srcaddr", "pkt-dstaddr", "protocol", "packets", "bytes",
    "start", "end", "action", "tcp-flags", "log-status", "flow-direction", "traffic-path",
    "pkt-src-aws-service", "pkt-dst-aws-service", "region", "az-id", "sublocation-type", "sublocation-id",
)  # fmt: skip

N_ENIS = 2000
N_VPCS = 8
N_SUBNETS = 12  # per VPC
WEB_ENIS = range(300)  # receive inbound web traffic from the internet
NAT_ENIS = range(300, 316)  # NAT gateways: pkt-srcaddr is the instance behind them
SERVER_ENIS = range(316, 900)  # databases, caches, queues, internal APIs (east-west servers)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
INTERVAL = 600  # 10-minute aggregation
N_INTERVALS = 8 * 24 * 6  # 8 days
CHUNK_RECORDS = 1_000_000
INTERNET_PEERS = 400_000  # outbound destinations: each ENI has its own few hundred, plus popular ones
POPULAR_PEERS = 40  # CDNs, SaaS APIs, package mirrors: shared by all ENIs
PEERS_PER_ENI = 20
INTERNET_CLIENTS = 3_000  # inbound web clients that reach instances directly (the rest come via ALB nodes)
AWS_ADDRESSES = 40  # S3, DynamoDB, ... endpoint addresses seen
ALB_NODES = 6  # load-balancer nodes per VPC in front of the web tier
SCANNERS = 100_000
SERVERS_PER_CLIENT = 8  # east-west: the databases/caches/queues one ENI talks to
PUBLIC_FIRST_OCTETS = (3, 13, 18, 23, 34, 35, 44, 52, 54, 64, 66, 72, 91, 104, 142, 151, 172, 185, 198, 203)

U64 = pl.UInt64
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


# ------------------------------------------------------------------------------------------ random


def _mix(x: pl.Expr) -> pl.Expr:
    """splitmix64 finaliser over a UInt64 expression (wrapping arithmetic, version-stable)."""
    z = x + pl.lit(_GOLDEN, U64)
    z = (z ^ (z // pl.lit(1 << 30, U64))) * pl.lit(_M1, U64)
    z = (z ^ (z // pl.lit(1 << 27, U64))) * pl.lit(_M2, U64)
    return z ^ (z // pl.lit(1 << 31, U64))


def _mix_int(x: int) -> int:
    mask = (1 << 64) - 1
    z = (x + _GOLDEN) & mask
    z = ((z ^ (z >> 30)) * _M1) & mask
    z = ((z ^ (z >> 27)) * _M2) & mask
    return z ^ (z >> 31)


@dataclass(frozen=True)
class Rng:
    """Independent random streams over a UInt64 row-index column (``idx``)."""

    seed: int
    idx: str = "i"

    def bits(self, stream: int) -> pl.Expr:
        key = ((self.seed & 0xFFFF) << 48) | ((stream & 0xFF) << 40)
        return _mix(pl.col(self.idx).cast(U64) + pl.lit(key, U64))

    def unif(self, stream: int) -> pl.Expr:
        return (self.bits(stream) // pl.lit(1 << 11, U64)).cast(pl.Float64) * (1.0 / (1 << 53))

    def randint(self, stream: int, low: int, high: int) -> pl.Expr:
        """Uniform integer in [low, high]."""
        return (self.bits(stream) % pl.lit(high - low + 1, U64)).cast(pl.Int64) + low

    def skewed(self, stream: int, n: int, power: float) -> pl.Expr:
        """An index in [0, n) concentrated near 0 (power > 1: a few hot values and a long tail)."""
        return (self.unif(stream).pow(power) * n).floor().cast(pl.Int64).clip(0, n - 1)

    def choice(self, stream: int, values: Sequence[Any], weights: Sequence[float]) -> pl.Expr:
        return _weighted(self.unif(stream), values, weights)


def _weighted(u: pl.Expr, values: Sequence[Any], weights: Sequence[float]) -> pl.Expr:
    """Pick from ``values`` with ``weights`` by a uniform [0, 1) expression."""
    total = float(sum(weights))
    acc = 0.0
    expr: Any = pl
    for value, weight in zip(values[:-1], weights[:-1], strict=True):
        acc += weight / total
        expr = expr.when(u < acc).then(pl.lit(value))
    return expr.otherwise(pl.lit(values[-1]))  # type: ignore[no-any-return]


def _hash_unif(key: pl.Expr, salt: int) -> pl.Expr:
    """A fixed uniform [0, 1) value per key (e.g. an ENI's favourite peers, a server's port)."""
    return (_mix(key.cast(U64) + pl.lit(salt << 40, U64)) // pl.lit(1 << 11, U64)).cast(pl.Float64) * (
        1.0 / (1 << 53)
    )


def _ipv4(n: pl.Expr) -> pl.Expr:
    """Dotted-quad text of a 32-bit integer expression."""
    return pl.concat_str([((n // (1 << s)) % 256).cast(pl.String) for s in (24, 16, 8, 0)], separator=".")


def _public_ipv4_int(key: pl.Expr) -> pl.Expr:
    """A public-looking IPv4 address (as an integer) for a pool key: first octet from a list of public
    /8s, the low 24 bits a bijective scramble of the key."""
    scrambled = _mix(key.cast(U64))
    first = (
        (scrambled % pl.lit(len(PUBLIC_FIRST_OCTETS), U64))
        .cast(pl.Int64)
        .replace_strict(dict(enumerate(PUBLIC_FIRST_OCTETS)), return_dtype=pl.Int64)
    )
    low24 = ((key.cast(U64) * pl.lit(2654435761, U64)) % pl.lit(1 << 24, U64)).cast(pl.Int64)
    return first * (1 << 24) + low24


def _public_ipv6(index: pl.Expr) -> pl.Expr:
    groups = [((index // (9_999**k)) % 9_999 + 1).cast(pl.String) for k in (0, 1)]
    return pl.concat_str([pl.lit("2600:9000"), groups[1], groups[0], pl.lit(":1")], separator=":")


# ------------------------------------------------------------------------------------------ estate


def _hex_id(prefix: str, salt: int, k: int, digits: int = 17) -> str:
    return f"{prefix}{_mix_int(salt * 1_000_003 + k):016x}{_mix_int(salt + k):x}"[: len(prefix) + digits]


def estate(seed: int) -> pl.DataFrame:
    """The ENI table (2,000 rows, built once: this loop is per ENI, not per line)."""
    rows: list[dict[str, Any]] = []
    accounts = [f"{(_mix_int(seed + a) % 10**12):012d}" for a in range(3)]
    for k in range(N_ENIS):
        vpc = k % N_VPCS
        subnet = (k // N_VPCS) % N_SUBNETS
        host = 10 + k // (N_VPCS * N_SUBNETS)
        rows.append(
            {
                "eni": k,
                "eni_id": "eni-0" + _hex_id("", seed + 1, k, 16),
                "instance_id": None if k in NAT_ENIS else "i-0" + _hex_id("", seed + 2, k, 16),
                "vpc_id": "vpc-0" + _hex_id("", seed + 3, vpc, 16),
                "subnet_id": "subnet-0" + _hex_id("", seed + 4, vpc * 100 + subnet, 16),
                "account": accounts[vpc % len(accounts)],
                "az": f"use1-az{1 + subnet % 6}",
                "ip4": f"10.{vpc + 1}.{subnet * 4}.{host}",
                "ip6": f"2600:1f18:{vpc + 1:x}{subnet:02x}:{k:x}::a" if k % 10 == 0 else None,
                "resolver": f"10.{vpc + 1}.0.2",
                "windows": k % 7 == 3,
            }
        )
    return pl.DataFrame(rows)


# ------------------------------------------------------------------------------------------ traffic

KINDS = ("out_web", "out_aws", "east_west", "dns_ntp", "in_web", "scan", "icmp")
KIND_WEIGHTS = (0.28, 0.08, 0.16, 0.12, 0.27, 0.02, 0.005)
AWS_SERVICES = ("S3", "DYNAMODB", "AMAZON", "EC2")
EAST_WEST_PORTS = (5432, 3306, 6379, 9092, 2049, 8080, 8443, 27017, 11211, 9200, 50051, 61616)
EAST_WEST_WEIGHTS = (20, 12, 15, 8, 4, 14, 6, 5, 4, 4, 3, 1)
SCAN_PORTS = (22, 23, 3389, 445, 1433, 80, 8080, -1)
SCAN_WEIGHTS = (25, 10, 15, 10, 5, 5, 5, 25)


OUT_WEB, OUT_AWS, EAST_WEST, DNS_NTP, IN_WEB, SCAN, ICMP = range(len(KINDS))
_POOL_PEER, _POOL_CLIENT, _POOL_AWS, _POOL_SCAN = 1, 2, 3, 4


def connections(rng: Rng, enis: pl.DataFrame, start: int, count: int, iv_lo: int, iv_hi: int) -> pl.DataFrame:
    """``count`` connections with global indices from ``start``, in intervals [iv_lo, iv_hi).

    Built in stages (random draws, then addresses, then the record fields), each materialised, so no
    random expression is evaluated more than once per row.
    """
    # Stage 1: every random draw, as plain columns.
    draws = pl.select(pl.int_range(start, start + count, dtype=pl.UInt64).alias("i")).with_columns(
        rng.choice(1, range(len(KINDS)), KIND_WEIGHTS).cast(pl.Int8).alias("kind"),
        (iv_lo + (rng.unif(2) * (iv_hi - iv_lo)).floor().cast(pl.Int64)).alias("iv"),
        rng.unif(3).alias("u_nat"),
        rng.unif(4).alias("u_v6"),
        rng.unif(5).alias("u_flags"),
        rng.skewed(6, N_ENIS, 1.6).alias("any_eni"),
        (rng.skewed(7, len(WEB_ENIS), 1.5) + WEB_ENIS.start).alias("web_eni"),
        rng.randint(8, NAT_ENIS.start, NAT_ENIS.stop - 1).alias("nat_eni"),
        rng.skewed(9, SERVERS_PER_CLIENT, 1.5).alias("server_rank"),
        rng.randint(10, 0, N_ENIS - 1).alias("inner_eni"),  # the instance behind a NAT gateway
        rng.skewed(11, PEERS_PER_ENI, 1.5).alias("peer_rank"),
        rng.skewed(25, POPULAR_PEERS, 3.0).alias("popular_idx"),
        (rng.unif(26) < 0.5).alias("popular"),
        (rng.unif(27) < 0.9).alias("via_alb"),
        rng.randint(28, 0, ALB_NODES - 1).alias("alb_node"),
        rng.skewed(12, INTERNET_CLIENTS, 3.0).alias("client_idx"),
        rng.skewed(13, AWS_ADDRESSES, 2.5).alias("aws_idx"),
        rng.skewed(21, SCANNERS, 1.5).alias("scan_idx"),
        rng.choice(15, (443, 80, 22), (80, 17, 3)).alias("in_port"),
        (rng.unif(17) < 0.85).alias("dns"),
        rng.choice(18, SCAN_PORTS, SCAN_WEIGHTS).alias("scan_port"),
        rng.randint(22, 1, 65535).alias("any_port"),
        rng.randint(19, 32768, 60999).alias("linux_eph"),
        rng.randint(19, 49152, 65535).alias("windows_eph"),
        (rng.unif(20) < 0.3).alias("client_windows"),
        rng.choice(23, AWS_SERVICES, (50, 30, 15, 5)).alias("svc"),
        (rng.unif(24) < 0.002).alias("nacl_reject"),
    )
    k = pl.col("kind")
    inbound = k.is_in([IN_WEB, SCAN])
    # Stage 2: which ENI is ours (client for outbound kinds, server for inbound), and the remote pool.
    # An ENI talks to its own few servers and internet peers (fixed per ENI by hashing), plus popular ones.
    n_srv, own_peers = len(SERVER_ENIS), INTERNET_PEERS - POPULAR_PEERS
    frame = (
        draws.with_columns(
            pl.when(k == IN_WEB)
            .then(pl.col("web_eni"))
            .when((k == OUT_WEB) & (pl.col("u_nat") < 0.12))
            .then(pl.col("nat_eni"))
            .otherwise(pl.col("any_eni"))
            .alias("eni"),
            pl.when(k.is_in([OUT_WEB, ICMP]) & pl.col("popular"))
            .then(pl.col("popular_idx") + _POOL_PEER * (1 << 25))
            .when(k.is_in([OUT_WEB, ICMP]))
            .then(pl.col("peer_rank") + _POOL_PEER * (1 << 25))  # made ENI-specific below
            .when(k == IN_WEB)
            .then(pl.col("client_idx") + _POOL_CLIENT * (1 << 25))
            .when(k == SCAN)
            .then(pl.col("scan_idx") + _POOL_SCAN * (1 << 25))
            .otherwise(pl.col("aws_idx") + _POOL_AWS * (1 << 25))
            .alias("remote_key"),
        )
        .with_columns(
            (
                SERVER_ENIS.start
                + (_hash_unif(pl.col("eni") * 64 + pl.col("server_rank"), 1) * n_srv).cast(pl.Int64)
            ).alias("peer_eni"),
            pl.when(k.is_in([OUT_WEB, ICMP]) & ~pl.col("popular"))
            .then(
                _POOL_PEER * (1 << 25)
                + POPULAR_PEERS
                + (_hash_unif(pl.col("eni") * 1024 + pl.col("peer_rank"), 2) * own_peers).cast(pl.Int64)
            )
            .otherwise(pl.col("remote_key"))
            .alias("remote_key"),
        )
        .with_columns(
            pl.when(pl.col("peer_eni") == pl.col("eni"))
            .then(pl.col("peer_eni") + 1)
            .otherwise(pl.col("peer_eni"))
            .alias("peer_eni"),
        )
        .with_columns(
            # a server listens on one port (a few on high ports, e.g. gRPC 50051)
            _weighted(_hash_unif(pl.col("peer_eni"), 3), EAST_WEST_PORTS, EAST_WEST_WEIGHTS).alias("ew_port"),
            _weighted(_hash_unif(pl.col("remote_key"), 4), (443, 80), (85, 15)).alias("web_port"),
        )
    )
    me = enis.select(
        pl.col("eni"),
        pl.col("ip4").alias("me4"),
        pl.col("ip6").alias("me6"),
        pl.col("resolver"),
        pl.col("windows").alias("me_windows"),
    )
    peer = enis.select(pl.col("eni").alias("peer_eni"), pl.col("ip4").alias("peer4"))
    inner = enis.select(pl.col("eni").alias("inner_eni"), pl.col("ip4").alias("inner4"))
    frame = (
        frame.join(me, on="eni", how="left")
        .join(peer, on="peer_eni", how="left")
        .join(inner, on="inner_eni", how="left")
    )
    v6 = pl.col("me6").is_not_null() & (pl.col("u_v6") < 0.3) & k.is_in([OUT_WEB, IN_WEB])
    frame = frame.with_columns(
        v6.alias("v6"), _public_ipv4_int(pl.col("remote_key")).alias("remote_int")
    ).with_columns(
        pl.when((k == IN_WEB) & pl.col("via_alb") & ~pl.col("v6"))
        .then(
            pl.format("10.{}.250.{}", pl.col("eni") % N_VPCS + 1, pl.col("alb_node") + 10)
        )  # the ALB's nodes in the ENI's VPC (enis.ip4 puts ENI k in VPC k % N_VPCS)
        .when(pl.col("v6"))
        .then(_public_ipv6(pl.col("remote_key")))
        .otherwise(_ipv4(pl.col("remote_int")))
        .alias("remote"),
        pl.when(pl.col("v6")).then(pl.col("me6")).otherwise(pl.col("me4")).alias("mine"),
    )
    # Stage 3: the connection's two ends and what the records carry.
    is_nat = pl.col("eni").is_between(NAT_ENIS.start, NAT_ENIS.stop - 1) & (k == OUT_WEB)
    client_windows = pl.when(inbound).then(pl.col("client_windows")).otherwise(pl.col("me_windows"))
    frame = frame.with_columns(
        pl.when(k == ICMP).then(1).when(k == DNS_NTP).then(17).otherwise(6).alias("proto"),
        # client side
        pl.when(inbound).then(pl.col("remote")).otherwise(pl.col("mine")).alias("c_ip"),
        pl.when(inbound).then(None).otherwise(pl.col("eni")).alias("c_eni"),
        pl.when(k == ICMP)
        .then(0)
        .when(client_windows)
        .then(pl.col("windows_eph"))
        .otherwise(pl.col("linux_eph"))
        .alias("c_port"),
        pl.when(is_nat).then(pl.col("inner4")).alias("c_pkt"),  # pkt-srcaddr behind a NAT gateway
        # server side
        pl.when(inbound)
        .then(pl.col("mine"))
        .when(k == EAST_WEST)
        .then(pl.col("peer4"))
        .when(k == DNS_NTP)
        .then(pl.when(pl.col("dns")).then(pl.col("resolver")).otherwise(pl.lit("169.254.169.123")))
        .otherwise(pl.col("remote"))
        .alias("s_ip"),
        pl.when(inbound).then(pl.col("eni")).when(k == EAST_WEST).then(pl.col("peer_eni")).alias("s_eni"),
        pl.when(k == OUT_WEB)
        .then(pl.col("web_port"))
        .when(k == OUT_AWS)
        .then(443)
        .when(k == EAST_WEST)
        .then(pl.col("ew_port"))
        .when(k == DNS_NTP)
        .then(pl.when(pl.col("dns")).then(53).otherwise(123))
        .when(k == IN_WEB)
        .then(pl.col("in_port"))
        .when(k == SCAN)
        .then(pl.when(pl.col("scan_port") < 0).then(pl.col("any_port")).otherwise(pl.col("scan_port")))
        .otherwise(0)
        .alias("s_port"),
        pl.when(k == OUT_AWS).then(pl.col("svc")).alias("s_svc"),
        pl.when((k == SCAN) | ((k == OUT_WEB) & pl.col("nacl_reject")))  # scans; a few NACL rejects
        .then(pl.lit("REJECT"))
        .otherwise(pl.lit("ACCEPT"))
        .alias("action"),
        pl.when(pl.col("v6")).then(pl.lit("IPv6")).otherwise(pl.lit("IPv4")).alias("type"),
        pl.when(k.is_in([OUT_WEB, ICMP, IN_WEB]))
        .then(8)
        .when(k == OUT_AWS)
        .then(7)
        .otherwise(1)
        .alias("path"),
        # flags: closed in the interval (SYN|FIN), opened only (SYN), or mid-flow (none)
        pl.when(pl.col("u_flags") < 0.65)
        .then(3)
        .when(pl.col("u_flags") < 0.9)
        .then(2)
        .otherwise(0)
        .alias("syn"),
        (pl.col("iv") * INTERVAL + T0).alias("t"),
    )
    return frame.select(
        "i", "kind", "proto", "c_ip", "c_eni", "c_port", "c_pkt", "s_ip", "s_eni", "s_port", "s_svc",
        "action", "type", "path", "syn", "t",
    )  # fmt: skip


def records(rng: Rng, conns: pl.DataFrame, enis: pl.DataFrame) -> pl.DataFrame:
    """Expand connections into the records each ENI end logs (request and reply)."""
    tcp = pl.col("proto") == 6
    accept = pl.col("action") == "ACCEPT"
    request_flags = pl.when(tcp).then(pl.col("syn")).otherwise(0)
    reply_flags = pl.when(tcp & (pl.col("syn") != 0)).then(pl.col("syn") + 16).otherwise(0)

    def side(at: str, forward: bool, direction: str, variant: int) -> pl.DataFrame:
        src, dst = ("c", "s") if forward else ("s", "c")
        out = conns.filter(pl.col(f"{at}_eni").is_not_null())
        if not forward:
            out = out.filter(accept)
        svc_col = "s_svc"
        return out.select(
            (pl.col("i") * 4 + variant).alias("i"),
            pl.col(f"{at}_eni").alias("eni"),
            pl.col(f"{src}_ip").alias("srcaddr"),
            pl.col(f"{dst}_ip").alias("dstaddr"),
            pl.col(f"{src}_port").alias("srcport"),
            pl.col(f"{dst}_port").alias("dstport"),
            pl.coalesce(pl.col(f"{src}_pkt"), pl.col(f"{src}_ip")).alias("pkt-srcaddr")
            if src == "c"
            else pl.col(f"{src}_ip").alias("pkt-srcaddr"),
            pl.coalesce(pl.col(f"{dst}_pkt"), pl.col(f"{dst}_ip")).alias("pkt-dstaddr")
            if dst == "c"
            else pl.col(f"{dst}_ip").alias("pkt-dstaddr"),
            pl.col("proto").alias("protocol"),
            pl.col("action"),
            (request_flags if forward else reply_flags).alias("tcp-flags"),
            pl.lit(direction).alias("flow-direction"),
            pl.when(pl.lit(direction) == "egress").then(pl.col("path")).alias("traffic-path"),
            (pl.col(svc_col) if not forward else pl.lit(None, pl.String)).alias("pkt-src-aws-service"),
            (pl.col(svc_col) if forward else pl.lit(None, pl.String)).alias("pkt-dst-aws-service"),
            pl.col("type"),
            pl.col("t"),
        )

    parts = [
        side("c", True, "egress", 0),
        side("c", False, "ingress", 1),
        side("s", True, "ingress", 2),
        side("s", False, "egress", 3),
    ]
    rec = pl.concat(parts).with_columns(
        (1 + (2.0 / (rng.unif(30).pow(1.5) + 1e-4)).floor().cast(pl.Int64)).clip(1, 250_000).alias("packets"),
    )
    # Only the NAT gateway's own records carry the inner address in pkt-*addr, and AWS-service names
    # are known only for the ENI that talks to the service.
    rec = rec.with_columns(
        (pl.col("packets") * rng.randint(31, 52, 1460)).alias("bytes"),
        (pl.col("t") + rng.randint(32, 0, 59)).alias("start"),
        (pl.col("t") + INTERVAL + rng.randint(33, 0, 59)).alias("end"),
        pl.when(pl.col("action") == "REJECT")
        .then(pl.lit(2))
        .otherwise(pl.col("tcp-flags"))
        .alias("tcp-flags"),
    )
    info = enis.select(
        "eni",
        pl.col("eni_id").alias("interface-id"),
        pl.col("account").alias("account-id"),
        pl.col("vpc_id").alias("vpc-id"),
        pl.col("subnet_id").alias("subnet-id"),
        pl.col("instance_id").alias("instance-id"),
        pl.col("az").alias("az-id"),
    )
    return rec.join(info, on="eni", how="left").drop("t")


def coverage_rows(
    rng: Rng, enis: pl.DataFrame, start: int, count: int, iv_lo: int, iv_hi: int
) -> pl.DataFrame:
    """NODATA (no traffic in the interval) and SKIPDATA (records dropped by AWS) rows."""
    if count <= 0:
        return pl.DataFrame()
    frame = pl.select(pl.int_range(start, start + count, dtype=pl.UInt64).alias("i")).with_columns(
        rng.randint(40, 0, N_ENIS - 1).alias("eni"),
        (iv_lo + (rng.unif(41) * (iv_hi - iv_lo)).floor().cast(pl.Int64)).alias("iv"),
        pl.when(rng.unif(42) < 0.85).then(pl.lit("NODATA")).otherwise(pl.lit("SKIPDATA")).alias("log-status"),
    )
    info = enis.select(
        "eni",
        pl.col("eni_id").alias("interface-id"),
        pl.col("account").alias("account-id"),
        pl.col("vpc_id").alias("vpc-id"),
        pl.col("subnet_id").alias("subnet-id"),
        pl.col("instance_id").alias("instance-id"),
        pl.col("az").alias("az-id"),
    )
    return frame.join(info, on="eni", how="left").with_columns(
        (T0 + pl.col("iv") * INTERVAL + rng.randint(43, 0, 59)).alias("start"),
        (T0 + (pl.col("iv") + 1) * INTERVAL + rng.randint(44, 0, 59)).alias("end"),
        (pl.col("i") + (1 << 39)).alias("i"),
    )


def chunk(seed: int, enis: pl.DataFrame, index: int, n_chunks: int, n: int, first_conn: int) -> pl.DataFrame:
    """Exactly ``n`` records (time-ordered) covering this chunk's share of the 8 days."""
    rng = Rng(seed)
    iv_lo = index * N_INTERVALS // n_chunks
    iv_hi = max(iv_lo + 1, (index + 1) * N_INTERVALS // n_chunks)
    n_cov = max(1, n // 20_000)
    n_flow = n - n_cov
    parts: list[pl.DataFrame] = []
    have = 0
    conn = first_conn
    while have < n_flow:
        count = max(1000, int((n_flow - have) / 2.3 * 1.03))
        conns = connections(rng, enis, conn, count, iv_lo, iv_hi)
        conn += count
        rec = records(rng, conns, enis)
        # Not every record survives (flows straddling intervals, partial captures): keep a random subset.
        parts.append(rec)
        have += rec.height
    flows = pl.concat(parts).with_columns(rng.bits(50).alias("_k"))
    if flows.height > n_flow:
        threshold = flows.select(pl.col("_k").bottom_k(n_flow).max()).item()
        flows = flows.filter(pl.col("_k") <= threshold)
    flows = flows.drop("_k")
    cov = coverage_rows(rng, enis, (index << 24), n_cov, iv_lo, iv_hi)
    allrec = pl.concat([flows.with_columns(pl.lit("OK").alias("log-status")), cov], how="diagonal_relaxed")
    return allrec.sort("start", "i").with_columns(
        pl.lit("us-east-1").alias("region"),
        pl.lit(None, pl.String).alias("sublocation-type"),
        pl.lit(None, pl.String).alias("sublocation-id"),
    )


# ------------------------------------------------------------------------------------------ output


_TRAFFIC_FIELDS = frozenset(
    {
        "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action", "type",
        "pkt-srcaddr", "pkt-dstaddr", "tcp-flags", "flow-direction", "traffic-path", "pkt-src-aws-service",
        "pkt-dst-aws-service",
    }
)  # fmt: skip


def render(frame: pl.DataFrame, fields: Sequence[str], version: int) -> bytes:
    """The records as space-separated lines in ``fields`` order, ``-`` for absent values."""
    ok = pl.col("log-status") == "OK"
    cols: list[pl.Expr] = []
    for name in fields:
        if name == "version":
            cols.append(pl.lit(version).alias(name))
        elif name in _TRAFFIC_FIELDS:  # NODATA/SKIPDATA rows: AWS prints "-" for everything about traffic
            cols.append(pl.when(ok).then(pl.col(name)).alias(name))
        else:
            cols.append(pl.col(name))
    buf = io.BytesIO()
    frame.select(cols).write_csv(
        buf, include_header=False, separator=" ", null_value="-", quote_style="never"
    )
    return buf.getvalue()


GARBAGE_KINDS = 5


def _garbage(line: bytes, number: int) -> bytes:
    """One damaged line: a field missing or one too many, a non-numeric port, an invalid address, or
    binary bytes (NUL, invalid UTF-8, control characters; never a newline)."""
    kind = _mix_int(number) % GARBAGE_KINDS
    fields = line.split(b" ")
    if kind == 0:
        return b" ".join(fields[:-1])
    if kind == 1:
        return line + b" extra-field"
    if kind == 2:
        fields[6] = b"https"
        return b" ".join(fields)
    if kind == 3:
        fields[3] = b"10.0.300.7"
        return b" ".join(fields)
    out = bytearray()
    state = number
    for _ in range(16 + number % 96):
        state = _mix_int(state)
        byte = state & 0xFF
        out.append(byte if byte not in (0x0A, 0x0D) else 0x00)
    return bytes(out)


def damage(plain: bytes, seed: int, first_line: int, rate: float) -> tuple[bytes, list[int]]:
    """Replace ~``rate`` of the lines of ``plain`` (whose first line is file line ``first_line``) with
    garbage; return the bytes and the damaged file line numbers. Lines up to 2000 (the first ~200 KB)
    are left alone: a NUL in the first 64 KiB makes the whole file look binary to the reader."""
    lines = plain.split(b"\n")
    count = len(lines) - (1 if plain.endswith(b"\n") else 0)
    rng = Rng(seed ^ 0x5A5A, idx="n")
    numbers = pl.select(pl.int_range(first_line, first_line + count, dtype=pl.UInt64).alias("n"))
    picked: list[int] = numbers.filter((rng.unif(60) < rate) & (pl.col("n") > 2000))["n"].to_list()
    for number in picked:  # ~0.1% of the lines: this loop is not per line of the file
        lines[number - first_line] = _garbage(lines[number - first_line], number)
    return b"\n".join(lines), picked


# ------------------------------------------------------------------------------------------ writer


@dataclass
class GzipWriter:
    handle: BinaryIO
    level: int
    comp: Any = None
    written: int = 0

    def __post_init__(self) -> None:
        self.comp = zlib.compressobj(self.level, zlib.DEFLATED, 31)

    def write(self, data: bytes) -> None:
        out: bytes = self.comp.compress(data)
        self.handle.write(out)
        self.written += len(data)

    def close(self) -> None:
        self.handle.write(self.comp.flush())
        self.handle.close()


@dataclass
class Outputs:
    out: Path
    level: int
    files: dict[str, Any] = field(default_factory=dict)

    def open(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        self.files = {
            "default.log": (self.out / "default.log").open("wb"),
            "default-headerless.log": (self.out / "default-headerless.log").open("wb"),
            "default.log.gz": GzipWriter((self.out / "default.log.gz").open("wb"), self.level),
            "custom-v5.log.gz": GzipWriter((self.out / "custom-v5.log.gz.part").open("wb"), self.level),
            "damaged.log.gz": GzipWriter((self.out / "damaged.log.gz.part").open("wb"), self.level),
        }


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()[:16]


def _surviving_lines(path: Path) -> tuple[int, int]:
    """Complete lines a streaming reader can recover from a truncated gzip, and the decompressed bytes."""
    decomp = zlib.decompressobj(wbits=31)
    newlines = 0
    total = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            out = decomp.decompress(block)
            newlines += out.count(b"\n")
            total += len(out)
    return newlines, total


def generate(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    out: Path = args.out
    enis = estate(args.seed)
    n_total: int = args.lines
    n_chunks = max(1, -(-n_total // CHUNK_RECORDS))
    outputs = Outputs(out, args.gzip_level)
    outputs.open()
    f = outputs.files
    header = (" ".join(DEFAULT_FIELDS) + "\n").encode()
    f["default.log"].write(header)
    f["default.log.gz"].write(header)
    f["damaged.log.gz"].write(header)
    f["custom-v5.log.gz"].write((" ".join(CUSTOM_FIELDS) + "\n").encode())
    bad_lines: list[int] = []
    stats = {"records": 0, "reject": 0, "nodata": 0, "skipdata": 0}
    done = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[Future[None]] = []
        for index in range(n_chunks):
            n = (n_total - done) // (n_chunks - index)
            frame = chunk(args.seed, enis, index, n_chunks, n, index << 30)
            plain = render(frame, DEFAULT_FIELDS, 2)
            custom = render(frame, CUSTOM_FIELDS, 5)
            damaged, bad = damage(plain, args.seed, done + 2, args.damage_rate)
            bad_lines += bad
            for fut in pending:
                fut.result()
            f["default.log"].write(plain)
            f["default-headerless.log"].write(plain)
            pending = [
                pool.submit(f["default.log.gz"].write, plain),
                pool.submit(f["custom-v5.log.gz"].write, custom),
                pool.submit(f["damaged.log.gz"].write, damaged),
            ]
            counts = frame.select(
                (pl.col("action") == "REJECT").sum().alias("reject"),
                (pl.col("log-status") == "NODATA").sum().alias("nodata"),
                (pl.col("log-status") == "SKIPDATA").sum().alias("skipdata"),
            ).row(0, named=True)
            for key, value in counts.items():
                stats[key] += int(value)
            stats["records"] += frame.height
            done += n
            log(f"  chunk {index + 1}/{n_chunks}: {done:,} lines, {time.perf_counter() - started:.1f}s")
        for fut in pending:
            fut.result()
    for handle in f.values():
        handle.close()
    (out / "custom-v5.log.gz.part").replace(out / "custom-v5.log.gz")

    # The truncated tail: cut the gzip stream (trailer and the last deflate blocks) as an interrupted
    # upload or copy would.
    part = out / "damaged.log.gz.part"
    size = part.stat().st_size
    cut = min(args.truncate_bytes, size // 4)
    with part.open("r+b") as handle:
        handle.truncate(size - cut)
    part.replace(out / "damaged.log.gz")
    surviving, _ = _surviving_lines(out / "damaged.log.gz")
    # ``surviving`` counts the header too; lines are 1-based and the header is line 1.
    garbage_kept = sum(1 for n in bad_lines if n <= surviving)
    manifest: dict[str, Any] = {
        "seed": args.seed,
        "lines": n_total,
        "enis": N_ENIS,
        "intervals": N_INTERVALS,
        "records": stats,
        "files": {
            "default.log": {"header": True, "data_lines": n_total, "format": list(DEFAULT_FIELDS)},
            "default.log.gz": {"header": True, "data_lines": n_total, "format": list(DEFAULT_FIELDS)},
            "default-headerless.log": {
                "header": False,
                "data_lines": n_total,
                "format": list(DEFAULT_FIELDS),
            },
            "custom-v5.log.gz": {"header": True, "data_lines": n_total, "format": list(CUSTOM_FIELDS)},
            "damaged.log.gz": {
                "header": True,
                "data_lines": n_total,
                "format": list(DEFAULT_FIELDS),
                "garbage_lines": len(bad_lines),
                "complete_lines_before_truncation": surviving - 1,
                "garbage_lines_before_truncation": garbage_kept,
                "truncated_bytes": cut,
            },
        },
    }
    for name, info in manifest["files"].items():
        path = out / name
        info["bytes"] = path.stat().st_size
        if args.checksums:
            info["sha256_16"] = _sha(path)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=5_000_000, help="records per file (default 5,000,000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help=f"output folder (default {DATA_DIR})")
    parser.add_argument(
        "--gzip-level",
        type=int,
        default=1,
        help="gzip level (default 1: level 6 is 4x slower to write, no faster to read)",
    )
    parser.add_argument(
        "--damage-rate", type=float, default=0.001, help="share of garbage lines in damaged.log.gz (0.001)"
    )
    parser.add_argument(
        "--truncate-bytes", type=int, default=256 * 1024, help="bytes cut off damaged.log.gz (262144)"
    )
    parser.add_argument("--checksums", action="store_true", help="record sha256 prefixes in the manifest")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.lines < 1000:
        parser.error("--lines must be at least 1000")

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    log(f"generating {args.lines:,} lines per file into {args.out}")
    manifest = generate(args, log)
    elapsed = time.perf_counter() - started
    for name, info in manifest["files"].items():
        log(f"  {name:24} {info['bytes'] / 1e6:9.1f} MB")
    damaged = manifest["files"]["damaged.log.gz"]
    log(
        f"  damaged.log.gz: {damaged['garbage_lines']:,} garbage lines, "
        f"{damaged['truncated_bytes']:,} bytes cut; {damaged['complete_lines_before_truncation']:,} complete "
        f"lines before the damage ({damaged['garbage_lines_before_truncation']:,} of them garbage)"
    )
    log(f"done in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
