"""Shared test setup: hypothesis profiles, the ../shared fixtures, small flow-file writers."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"

# CI runs derandomised so a red build is reproducible; locally hypothesis explores.
settings.register_profile(
    "ci", derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.load_profile("ci" if IN_CI else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

DEFAULT_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action "
    "log-status"
)


def shared_path(*parts: str) -> Path:
    """A file under ../shared: skip where it is absent, but fail under CI=true (CI always has it)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing: CI must have ../shared beside the clone")
        pytest.skip(f"{path} not present (../shared is absent outside CI)")
    return path


@pytest.fixture
def fast_path_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each flow file read took the one-pass fast path (True) or fell back to the careful one."""
    from sgadvisor.flowlogs import ingest

    taken: list[bool] = []
    real = ingest.scan_clean_text  # type: ignore[attr-defined]

    def spy(*args: Any, **kwargs: Any) -> bool:
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr(ingest, "scan_clean_text", spy)
    return taken


def write_lines(path: Path, lines: Iterable[str], *, gz: bool = False, header: str | None = None) -> Path:
    """Write flow-log lines (with an optional header line), gzipped when asked."""
    text = "".join(f"{line}\n" for line in ([header] if header else []) + list(lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
            handle.write(text.encode())
    else:
        path.write_text(text)
    return path


def default_line(
    src: str = "10.0.1.10",
    dst: str = "10.0.2.15",
    sport: int | str = 40000,
    dport: int | str = 443,
    *,
    eni: str = "eni-0aaa",
    proto: int | str = 6,
    start: int = 1_793_491_200,
    action: str = "ACCEPT",
    status: str = "OK",
    packets: int = 10,
    nbytes: int = 840,
) -> str:
    """One record in the AWS default format."""
    return (
        f"2 123456789012 {eni} {src} {dst} {sport} {dport} {proto} {packets} {nbytes} "
        f"{start} {start + 60} {action} {status}"
    )


def nodata_lines(
    eni: str, start: int, end: int, *, busy: Sequence[int] = (), interval: int = 600
) -> list[str]:
    """NODATA records as AWS writes them for an idle interface under an active flow log: one per
    aggregation interval in [start, end) that has no traffic (``busy``: starts of intervals with some)."""
    idle = [t for t in range(start, end, interval) if not any(t <= b < t + interval for b in busy)]
    return [f"2 123456789012 {eni} - - - - - - - {t} {t + interval} - NODATA" for t in idle]


@pytest.fixture(scope="session")
def sample_recommendation() -> Any:
    """The main job's recommendation on the bundled sample_data (what the renderers are tested on): flows,
    inventory with its ENI history, and the Resolver query logs, as the README's first command runs it."""
    from dataclasses import replace

    from sgadvisor.analysis.internet import InternetOptions, InternetPolicy
    from sgadvisor.analysis.recommend import AnalysisOptions, build_recommendation
    from sgadvisor.dnslogs.reader import read_dns_logs
    from sgadvisor.flowlogs.ingest import read_flows
    from sgadvisor.inventory.snapshot import load_snapshot

    inventory = load_snapshot([REPO / "sample_data" / "inventory"])
    flows = read_flows([REPO / "sample_data" / "flows"], addresses=inventory.addresses)
    assert flows.window is not None
    dns = read_dns_logs([REPO / "sample_data" / "dns"], flows.window.start, flows.window.end)
    internet = replace(InternetOptions(policy=InternetPolicy.auto), dns=dns)
    return build_recommendation(flows, inventory, AnalysisOptions(internet=internet))


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with no AWS configuration at all (the newcomer's laptop, CI): no region, no credentials."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
