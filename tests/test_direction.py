"""Initiator inference (DESIGN §6 "Direction"): replies must never be mistaken for connections."""

from __future__ import annotations

from typing import Any

import polars as pl

from sgadvisor.analysis.direction import EphemeralRanges, classify_edges
from sgadvisor.flowlogs.edges import EDGE_SCHEMA, PortRange

ENI, ME, PEER = "eni-01", "10.0.1.10", "10.0.2.15"


def edge(direction: str, proto: int, local_port: int, remote_port: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(EDGE_SCHEMA)
    row.update(
        interface_id=ENI, direction=direction, action="ACCEPT", protocol=proto, local_addr=ME,
        remote_addr=extra.pop("remote", PEER), local_port=local_port, remote_port=remote_port, records=5,
        packets=10, bytes=1000, first_start=100, last_end=200,
        local_port_min=local_port or 40000, local_port_max=local_port or 40010, local_port_distinct=1,
        remote_port_min=remote_port or 40000, remote_port_max=remote_port or 40010, remote_port_distinct=1,
    )  # fmt: skip
    row.update(extra)
    return row


def classify(
    *rows: dict[str, Any], ephemeral: EphemeralRanges | None = None
) -> list[tuple[str, str, list[str]]]:
    frame = pl.DataFrame(list(rows), schema=EDGE_SCHEMA)
    out = classify_edges(frame, ephemeral)
    return [(r["class"], r["confidence"], r["reasons"]) for r in out.iter_rows(named=True)]


def test_tcp_flags_decide_and_agree_with_ports() -> None:
    assert classify(edge("egress", 6, 0, 443, syn_records=5, synack_records=0))[0][:2] == (
        "initiated",
        "high",
    )
    assert classify(edge("egress", 6, 443, 0, syn_records=0, synack_records=5))[0][:2] == ("reply", "high")


def test_a_service_on_a_high_port_is_recognised_by_listening_evidence() -> None:
    """gRPC on 50051: both ports look ephemeral; inbound connections to 50051 make egress from it a reply."""
    rows = [edge("ingress", 6, 50051, 40000 + i, remote=f"10.0.3.{i}") for i in range(3)]
    rows.append(edge("egress", 6, 50051, 40001, remote="10.0.3.1"))
    klass, _, reasons = classify(*rows)[0]
    assert klass == "reply" and "listening" in reasons


def test_the_reverse_record_decides_without_own_flags() -> None:
    rows = [edge("egress", 6, 0, 8080), edge("ingress", 6, 0, 8080, syn_records=0, synack_records=5)]
    klass, confidence, reasons = classify(*rows)[0]
    assert (klass, confidence) == ("initiated", "high") and "rev_synack" in reasons


def test_ports_alone_give_medium_confidence_and_windows_ranges_count() -> None:
    assert classify(edge("egress", 17, 0, 53))[0][:2] == ("initiated", "medium")
    # A Windows client's source port 50000 is not in the Linux range but is ephemeral for Windows.
    windows = classify(edge("egress", 6, 50000, 3389))[0]
    assert windows[0] == "initiated"
    linux_only = classify(
        edge("egress", 6, 50000, 3389), ephemeral=EphemeralRanges((PortRange(32768, 49151),))
    )
    assert linux_only[0][0] == "unknown"


def test_icmp_both_ways_is_ambiguous_and_alone_is_initiated() -> None:
    alone = classify(edge("egress", 1, 0, 0))[0]
    assert alone[:2] == ("initiated", "medium")
    echoed = classify(edge("egress", 1, 0, 0), edge("ingress", 1, 0, 0))[0]
    assert echoed[:2] == ("unknown", "low") and "icmp_echoed" in echoed[2]
