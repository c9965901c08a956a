"""A synthetic flow-log estate of many ENIs as CloudWatch Logs events, for the Insights runner's scaling
tests and bench/bench_insights.py.

Each ENI is a client of a few services (its own egress and the replies it receives, both logged on the
ENI as a flow log does) for ``days`` days of 10-minute intervals; the edge count per ENI is fixed by
``services``, so the total number of edges is ``enis * services * 2`` whatever the number of records. The
events are default-format flow-log lines in ``<eni>-all`` streams, stamped with their start.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import polars as pl

INTERVAL = 600
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class SyntheticEstate:
    enis: int
    services: int = 4
    days: int = 2
    connections_per_day: int = 6
    start: int = 1_793_491_200  # 2026-11-01T00:00:00Z
    seed: int = 7

    @property
    def end(self) -> int:
        return self.start + self.days * 86_400

    @property
    def edges(self) -> int:
        """Distinct edges the query should return: each service seen both ways on the client ENI."""
        return self.enis * self.services * 2

    def eni_id(self, index: int) -> str:
        return f"eni-{index:017x}"

    def streams(self) -> list[str]:
        return [f"{self.eni_id(i)}-all" for i in range(self.enis)]

    def events(self) -> pl.DataFrame:
        """Columns ``stream``, ``timestamp`` (ms), ``message``, sorted by stream then time."""
        rng = random.Random(self.seed)
        streams: list[str] = []
        stamps: list[int] = []
        messages: list[str] = []
        for index in range(self.enis):
            eni = self.eni_id(index)
            local = f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
            for service in range(self.services):
                remote = f"172.16.{service}.{index % 200 + 10}"
                port = (443, 5432, 6379, 53, 8080, 9092)[service % 6]
                for _ in range(self.days * self.connections_per_day):
                    start = self.start + rng.randrange(0, self.days * 86_400 - INTERVAL) // 60 * 60
                    client = rng.randint(32768, 60999)
                    for src, dst, sport, dport in (
                        (local, remote, client, port),
                        (remote, local, port, client),
                    ):
                        packets = rng.randint(1, 40)
                        line = (
                            f"2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} 6 {packets} {packets * 120} "
                            f"{start} {start + 59} ACCEPT OK"
                        )
                        streams.append(f"{eni}-all")
                        stamps.append(start * 1000)
                        messages.append(line)
        frame = pl.DataFrame({"stream": streams, "timestamp": stamps, "message": messages})
        return frame.sort(["stream", "timestamp"])
