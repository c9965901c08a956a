"""Ingestion benchmark: sgadvisor's read_flows against a bare polars and a bare DuckDB group-by.

Run ``python bench/generate_flows.py`` first. Every measurement runs in its own subprocess, so its peak
RSS is its own (``ru_maxrss`` of that child, from ``os.wait4``; it includes the interpreter and the
imports, whose share is reported separately as "RSS after imports"). Times cover the work only
(interpreter start and imports excluded). Rows/s is records read per second of wall time.

Engines:
- ``sgadvisor``: ``read_flows([file])`` -> edges, coverage, accounting (our path: a clean file in one
  streaming polars query, typed, validated and aggregated to §4.2 edges; a damaged one in 32 MB blocks,
  every bad line located);
- ``polars``: ``scan_csv(...).group_by(interface-id, srcaddr, dstaddr, dstport, protocol)
  .agg(len, sum(bytes)).collect()``; for ``.gz`` files ``read_csv`` with the same columns (polars
  decompresses the whole file in memory first);
- ``duckdb``: the same group-by over ``read_csv(..., delim=' ', header=true)``, materialised into a
  temporary table.

Both bare engines get ``-`` as the null value: NODATA/SKIPDATA rows print ``-`` for ports and addresses,
and without it type inference fails on the first such row past the sample.

Writes the Markdown report to stdout and to ``bench/results.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
FILES = ("default.log", "default.log.gz", "default-headerless.log", "custom-v5.log.gz", "damaged.log.gz")
ENGINES = ("sgadvisor", "polars", "duckdb", "polars-streaming", "polars-edge-columns")
GROUP_KEY = ("interface-id", "srcaddr", "dstaddr", "dstport", "protocol")
# The columns a §4.2 edge is built from, grouped as they are with no bucketing, validation or orientation:
# what the engine alone needs for the same aggregation (a reference row, not the target's yardstick).
EDGE_KEY_COLUMNS = ("interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action")
DEFAULT_FORMAT = (
    "version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
    "packets", "bytes", "start", "end", "action", "log-status",
)  # fmt: skip
ENGINE_LABEL = {
    "sgadvisor": "sgadvisor `read_flows`",
    "polars": "polars group-by (bare)",
    "duckdb": "DuckDB group-by (bare)",
    "polars-streaming": "polars group-by (bare, streaming engine)",
    "polars-edge-columns": "polars group-by on the edge's columns (bare, reference)",
}
MAX_ISSUES_SHOWN = 8
INGEST_PATHS = ("sgadvisor/flowlogs", "sgadvisor/accounting.py", "sgadvisor/errors.py")


# ---------------------------------------------------------------------------------------------- worker


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _has_header(path: Path) -> bool:
    return "headerless" not in path.name


def _work_sgadvisor(path: Path) -> dict[str, Any]:
    from sgadvisor.errors import SgAdvisorError
    from sgadvisor.flowlogs.fields import parse_log_format
    from sgadvisor.flowlogs.ingest import IngestOptions, read_flows

    # A header-less file is read as a user would: with --log-format (here the default format, spelled out).
    log_format = (
        None if _has_header(path) else parse_log_format(" ".join(f"${{{f}}}" for f in DEFAULT_FORMAT))
    )
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        flows = read_flows([path], IngestOptions(log_format=log_format))
    except SgAdvisorError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc.message}", "baseline_kib": baseline}
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    accounting = flows.accounting
    return {
        "ok": True,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": accounting.records,
        "groups": flows.edges.height,
        "coverage_rows": flows.coverage.height,
        "baseline_kib": baseline,
        "accounting": accounting.model_dump(mode="json"),
    }


def _work_polars(
    path: Path, engine: Literal["auto", "streaming"] = "auto", *, edge_columns: bool = False
) -> dict[str, Any]:
    import polars as pl

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    header = _has_header(path)
    options: dict[str, Any] = {"separator": " ", "has_header": header, "null_values": "-"}
    if not header:
        options["new_columns"] = list(DEFAULT_FORMAT)
    key = list(EDGE_KEY_COLUMNS if edge_columns else GROUP_KEY)
    aggs = [pl.len(), pl.col("bytes").sum()]
    if edge_columns:
        aggs += [pl.col("packets").sum(), pl.col("start").min(), pl.col("end").max()]
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        if path.suffix == ".gz":
            # scan_csv streams plain files; for gzip, read_csv (which inflates the whole file in memory)
            # with the same projection the lazy scan pushes down.
            columns = [*key, *(["bytes", "packets", "start", "end"] if edge_columns else ["bytes"])]
            if header:
                frame = pl.read_csv(path, columns=columns, **options)
            else:
                frame = pl.read_csv(path, **options).select(columns)
            result = frame.lazy().group_by(key).agg(aggs).collect(engine=engine)
        else:
            result = pl.scan_csv(path, **options).group_by(key).agg(aggs).collect(engine=engine)
    except Exception as exc:  # the engine's own error is the result (a damaged file)
        return {"ok": False, "error": _first_line(f"{type(exc).__name__}: {exc}"), "baseline_kib": baseline}
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    rows = int(result["len"].sum())
    return {
        "ok": True,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": rows,
        "groups": result.height,
        "baseline_kib": baseline,
    }


def _work_duckdb(path: Path) -> dict[str, Any]:
    import duckdb

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    literal = "'" + str(path).replace("'", "''") + "'"
    if _has_header(path):
        source = f"read_csv({literal}, delim=' ', header=true, nullstr='-')"
    else:
        names = ", ".join(f"'{name}'" for name in DEFAULT_FORMAT)
        source = f"read_csv({literal}, delim=' ', header=false, nullstr='-', names=[{names}])"
    key = ", ".join(f'"{name}"' for name in GROUP_KEY)
    select = f"SELECT {key}, count(*) AS n, sum(bytes) AS bytes FROM {source} GROUP BY {key}"
    started, cpu = time.perf_counter(), _cpu_seconds()
    try:
        con = duckdb.connect()
        con.execute(f"CREATE TEMP TABLE g AS {select}")
        groups, rows = con.execute("SELECT count(*), sum(n) FROM g").fetchone() or (0, 0)
    except Exception as exc:  # the engine's own error is the result (a damaged file)
        return {"ok": False, "error": _first_line(f"{type(exc).__name__}: {exc}"), "baseline_kib": baseline}
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "ok": True,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": int(rows),
        "groups": int(groups),
        "baseline_kib": baseline,
    }


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _work_polars_streaming(path: Path) -> dict[str, Any]:
    return _work_polars(path, engine="streaming")


def _work_polars_edge_columns(path: Path) -> dict[str, Any]:
    return _work_polars(path, edge_columns=True)


WORKERS = {
    "sgadvisor": _work_sgadvisor,
    "polars": _work_polars,
    "duckdb": _work_duckdb,
    "polars-streaming": _work_polars_streaming,
    "polars-edge-columns": _work_polars_edge_columns,
}


def worker(engine: str, path: Path) -> int:
    result = WORKERS[engine](path)
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------- driver


@dataclass
class Measurement:
    file: str
    engine: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    peaks_kib: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(run.get("ok") for run in self.runs)

    @property
    def seconds(self) -> float:
        return statistics.median(float(run["seconds"]) for run in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return statistics.median(float(run["cpu_seconds"]) for run in self.runs)

    @property
    def rows(self) -> int:
        return int(self.runs[-1]["rows"])

    @property
    def groups(self) -> int:
        return int(self.runs[-1]["groups"])

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def peak_mib(self) -> float:
        return max(self.peaks_kib) / 1024

    @property
    def baseline_mib(self) -> float:
        return max(int(run.get("baseline_kib", 0)) for run in self.runs) / 1024

    @property
    def other_cpu(self) -> float:
        return max(float(run.get("other_cpu", 0.0)) for run in self.runs)

    @property
    def error(self) -> str:
        for run in self.runs:
            if not run.get("ok"):
                return str(run.get("error", "failed"))
        return ""


def _busy_seconds() -> float:
    """CPU-busy seconds of the whole machine so far (all cores), from /proc/stat; 0 where unavailable."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    # cpu user nice system idle iowait irq softirq steal ...
    busy = sum(int(v) for i, v in enumerate(fields[1:9]) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait`` s) until the rest of the machine uses under ``threshold`` cores over a
    one-second sample; return the last sample (cores busy)."""
    deadline = time.monotonic() + max_wait
    while True:
        before = _busy_seconds()
        time.sleep(1.0)
        busy = _busy_seconds() - before
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        time.sleep(2.0)


def run_one(engine: str, path: Path, timeout: float) -> tuple[dict[str, Any], int]:
    """Run one measurement in a fresh interpreter; return its result and its peak RSS in KiB.

    The child is reaped with ``wait4`` to get *its* rusage (``RUSAGE_CHILDREN`` would be the maximum over
    all children so far, not this measurement's peak); this process stays small (no engine imported),
    since a child's high-water mark starts at its parent's RSS at fork time. The result also says how busy
    the rest of the machine was meanwhile (``other_cpu``: CPU-seconds of other processes per wall second,
    in cores), since a shared machine makes timings unreliable.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, str(path)]
    busy_before, wall_before = _busy_seconds(), time.monotonic()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        chunks: dict[str, bytes] = {}

        def drain(name: str, pipe: Any) -> None:
            chunks[name] = pipe.read()

        readers = [
            threading.Thread(target=drain, args=("out", proc.stdout), daemon=True),
            threading.Thread(target=drain, args=("err", proc.stderr), daemon=True),
        ]
        for reader in readers:
            reader.start()
        deadline = time.monotonic() + timeout
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline and not timed_out:
                proc.kill()  # our own child, by its pid
                timed_out = True
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for reader in readers:
            reader.join()
    peak_kib = int(usage.ru_maxrss)
    wall = max(time.monotonic() - wall_before, 1e-9)
    other_cpu = max(0.0, _busy_seconds() - busy_before - usage.ru_utime - usage.ru_stime) / wall
    out, err = chunks.get("out", b""), chunks.get("err", b"")
    if timed_out:
        return {"ok": False, "error": f"timed out after {timeout:.0f}s"}, peak_kib
    if proc.returncode != 0 or not out.strip():
        lines = err.decode("utf-8", "replace").strip().splitlines()
        return {
            "ok": False,
            "error": f"exit {proc.returncode}: {_first_line(lines[-1] if lines else '')}",
        }, peak_kib
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["other_cpu"] = other_cpu
    return result, peak_kib


def warm(path: Path) -> None:
    """Read the file once so every engine starts from the page cache."""
    with path.open("rb") as handle:
        while handle.read(1 << 24):
            pass


def code_state() -> str:
    """A digest of the ingest code as it is on disk (tracked or not, committed or not): runs are
    comparable only within one state, and others may be editing the code while the benchmark runs."""
    digest = hashlib.sha256()
    root = BENCH_DIR.parent
    files: list[Path] = []
    for name in INGEST_PATHS:
        path = root / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:10]


def head_commit() -> str:
    return subprocess.run(
        ["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    # Versions from package metadata: importing the engines here would grow this process, and a child
    # forked from it starts with the parent's RSS as its ru_maxrss high-water mark.
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu or platform.processor() or "?",
        "memory": mem or "?",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "polars": _version("polars"),
        "duckdb": _version("duckdb"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": head_commit() or "?",
    }


def _mib(value: float) -> str:
    return f"{value:,.0f}"


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f}M"


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "/") for cell in cells) + " |"


TABLE_HEAD = (
    "file", "size MB", "engine", "rows read", "rows/s", "wall s", "CPU s", "peak RSS MiB",
    "RSS after imports MiB", "groups (edges)", "vs bare polars", "other load",
)  # fmt: skip
TABLE_ALIGN = ("---", "---:", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")


def _table_row(m: Measurement, bare: Measurement | None, size_mb: float) -> str:
    head = [m.file, f"{size_mb:,.0f}", ENGINE_LABEL[m.engine]]
    tail = [_mib(m.peak_mib), _mib(m.baseline_mib)]
    if not m.ok:
        return _row([*head, "failed", "-", "-", "-", *tail, "-", m.error, f"{m.other_cpu:.2f}"])
    if m.engine == "polars":
        ratio = "1.00x"
    elif bare is not None and bare.ok:
        ratio = f"{m.rows_per_second / bare.rows_per_second:.2f}x"
    else:
        ratio = "n/a"
    body = [f"{m.rows:,}", _rate(m.rows_per_second), f"{m.seconds:.1f}", f"{m.cpu_seconds:.1f}"]
    return _row([*head, *body, *tail, f"{m.groups:,}", ratio, f"{m.other_cpu:.2f}"])


def _damaged_section(damaged: Measurement, expected: dict[str, Any], lines_total: int) -> list[str]:
    out = ["## damaged.log.gz: what sgadvisor accounted", ""]
    garbage_kept = int(expected.get("garbage_lines_before_truncation", 0))
    complete = int(expected.get("complete_lines_before_truncation", 0))
    if expected:
        out += [
            f"Generated: {expected.get('garbage_lines', 0):,} garbage lines in {lines_total:,}; the last "
            f"{expected.get('truncated_bytes', 0):,} bytes of the gzip stream cut off. {complete:,} complete "
            f"data lines precede the cut, {garbage_kept:,} of them garbage.",
            "",
        ]
    run = damaged.runs[-1]
    if not run.get("ok"):
        return [*out, f"read_flows failed: {run.get('error')}"]
    acc = run["accounting"]
    filtered = ", ".join(f"{k}: {v:,}" for k, v in acc["filtered"].items()) or "-"
    out += [
        _row(("records", "used", "nodata", "skipdata", "malformed", "filtered", "issues kept (omitted)")),
        _row(("---:", "---:", "---:", "---:", "---:", "---", "---:")),
        _row(
            (
                f"{acc['records']:,}",
                f"{acc['used']:,}",
                f"{acc['nodata']:,}",
                f"{acc['skipdata']:,}",
                f"{acc['malformed']:,}",
                filtered,
                f"{len(acc['issues'])} ({acc['issues_omitted']:,})",
            )
        ),
        "",
    ]
    accounted = (
        acc["used"] + acc["nodata"] + acc["skipdata"] + acc["malformed"] + sum(acc["filtered"].values())
    )
    want_malformed, want_records = garbage_kept + 1, complete + 1
    out += [
        f"Expected malformed = garbage lines before the cut + 1 for the truncation = {want_malformed:,} "
        f"({'matches' if acc['malformed'] == want_malformed else 'DIFFERS'}); expected records = "
        f"{want_records:,} ({'matches' if acc['records'] == want_records else 'DIFFERS'}); the accounting "
        f"{'balances' if acc['records'] == accounted else 'does NOT balance'}.",
        "",
        "First issues:",
        "",
    ]
    shown = acc["issues"][:MAX_ISSUES_SHOWN]
    cut = [i for i in acc["issues"] if ("gzip" in i["reason"] or "truncat" in i["reason"]) and i not in shown]
    for issue in [*shown, *cut[:1]]:
        line = issue.get("line")
        where = Path(issue["file"]).name + (f":{line}" if line is not None else "")
        out.append(f"- `{where}` {issue['reason']}")
    return out


TARGET_RATIO = 0.5


def paired_ratios(ours: Measurement, bare: Measurement) -> list[float]:
    """sgadvisor's throughput over the bare engine's, run by run, sorted. Within a repeat the engines take
    turns, so run i of each saw the same minute of a shared host: the spread of these pairs says how
    far the ratio of the medians can be trusted."""
    pairs = zip(ours.runs, bare.runs, strict=False)
    return sorted(float(b["seconds"]) / float(o["seconds"]) for o, b in pairs)


def report(
    measurements: list[Measurement], info: dict[str, str], manifest: dict[str, Any], data: Path, repeat: int
) -> str:
    lines_total = int(manifest.get("lines", 0))
    states = sorted(
        {str(run.get("code", "?")) for m in measurements if m.engine == "sgadvisor" for run in m.runs}
    )
    out = [
        "# Ingestion benchmark",
        "",
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['memory']} RAM, {info['os']}; "
        f"Python {info['python']}, polars {info['polars']}, DuckDB {info['duckdb']}; "
        f"{info['date']}.",
        f"sgadvisor at commit {info.get('commit', '?')}; ingest code measured (digest of "
        f"{', '.join(INGEST_PATHS)}): {', '.join(states)}"
        + (
            " - WARNING: the ingest code changed during the run; sgadvisor rows are not comparable."
            if len(states) > 1
            else "."
        ),
        f"Data: `bench/generate_flows.py --lines {lines_total} --seed {manifest.get('seed')}` "
        f"({manifest.get('enis')} ENIs, {manifest.get('intervals')} ten-minute intervals). "
        f"Times are the median of {repeat} run(s), each in a fresh process; peak RSS is the maximum "
        "(whole process, interpreter and imports included).",
        "",
        _row(TABLE_HEAD),
        _row(TABLE_ALIGN),
    ]
    by_key = {(m.file, m.engine): m for m in measurements}
    for m in measurements:
        out.append(_table_row(m, by_key.get((m.file, "polars")), (data / m.file).stat().st_size / 1e6))
    out += [
        "",
        "Groups: the bare engines group by (interface-id, srcaddr, dstaddr, dstport, protocol) without "
        "bucketing ephemeral ports; sgadvisor's edges are the §4.2 edges (direction, action, local/remote "
        "address and port, ephemeral side bucketed to 0), so the counts differ by design. "
        "Other load: CPU cores used by other processes during the run (worst run; from /proc/stat): above "
        "~0.1 the machine was shared and the timing is pessimistic.",
        "",
    ]
    damaged = by_key.get(("damaged.log.gz", "sgadvisor"))
    if damaged is not None and damaged.runs:
        expected = manifest.get("files", {}).get("damaged.log.gz", {})
        out += [*_damaged_section(damaged, expected, lines_total), ""]
    out += ["## Fractions against the targets", ""]
    for name in FILES:
        ours, bare, duck = (by_key.get((name, e)) for e in ("sgadvisor", "polars", "duckdb"))
        if ours is None or not ours.ok:
            continue
        parts = [f"`{name}`: sgadvisor {_rate(ours.rows_per_second)} rows/s"]
        if bare is not None and bare.ok:
            parts.append(f"{ours.rows_per_second / bare.rows_per_second:.2f}x bare polars")
            pairs = paired_ratios(ours, bare)
            if len(pairs) > 1:
                above = sum(r >= TARGET_RATIO for r in pairs)
                parts.append(
                    f"paired runs {' '.join(f'{r:.3f}' for r in pairs)} ({above} of {len(pairs)} at or above "
                    f"{TARGET_RATIO}x)"
                )
        if duck is not None and duck.ok:
            parts.append(f"{ours.rows_per_second / duck.rows_per_second:.2f}x bare DuckDB")
        parts.append(f"peak RSS {_mib(ours.peak_mib)} MiB")
        out.append("- " + ", ".join(parts))
    out += [
        "",
        "Targets: ≥ 0.5x the bare engine on the clean default-format file; peak RSS < 1.5 GB at 5M lines.",
    ]
    return "\n".join(out) + "\n"


def measure(args: argparse.Namespace, data: Path) -> list[Measurement]:
    """Measure every engine on every file. The engines take turns within each repeat (sgadvisor, polars,
    …, then again), so that on a shared machine a burst of other load hits both sides of a ratio."""
    measurements: list[Measurement] = []
    for name in args.files:
        path = data / name
        warm(path)
        row = {engine: Measurement(name, engine) for engine in args.engines}
        for attempt in range(args.repeat):
            for engine, measurement in row.items():
                if measurement.runs and not measurement.runs[-1].get("ok"):
                    continue  # a failure is deterministic: do not repeat it
                if args.wait_quiet > 0:
                    wait_quiet(args.wait_quiet)
                code = code_state()
                result, peak = run_one(engine, path, args.timeout)
                result["code"] = code
                measurement.runs.append(result)
                measurement.peaks_kib.append(peak)
                status = (
                    f"{result['seconds']:.1f}s, {result['rows'] / result['seconds'] / 1e6:.2f}M rows/s"
                    if result.get("ok")
                    else f"failed: {result.get('error')}"
                )
                where = f"{name:24} {engine:16} run {attempt + 1}/{args.repeat}"
                print(f"  {where}: {status}, peak {peak / 1024:,.0f} MiB", file=sys.stderr, flush=True)
        measurements.extend(row.values())
    return measurements


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="sgadvisor ingestion benchmark (see bench/README.md)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help=f"generated files (default {DATA_DIR})")
    parser.add_argument("--files", nargs="+", default=list(FILES), help="file names under --data")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is reported")
    parser.add_argument("--timeout", type=float, default=1800.0, help="kill a run after this many seconds")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to go quiet (shared machines)",
    )
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.md", help="Markdown report file")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results as JSON")
    parser.add_argument(
        "--from-json", type=Path, default=None, help="re-render the report from --json output"
    )
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        engine, file = args.worker
        return worker(engine, Path(file))

    data: Path = args.data
    manifest_path = data / "manifest.json"
    manifest: dict[str, Any] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        info, repeat = saved["info"], int(saved["repeat"])
        measurements = [Measurement(**m) for m in saved["measurements"]]
    else:
        missing = [name for name in args.files if not (data / name).exists()]
        if missing:
            print(
                f"missing in {data}: {', '.join(missing)}; run python bench/generate_flows.py",
                file=sys.stderr,
            )
            return 2
        info, repeat = machine_info(), args.repeat
        measurements = measure(args, data)
        if head_commit() != info["commit"]:
            info["commit"] += f" (HEAD moved to {head_commit()} during the run)"
    text = report(measurements, info, manifest, data, repeat)
    print(text)
    args.out.write_text(text)
    if args.json is not None:
        raw = {
            "info": info,
            "repeat": repeat,
            "measurements": [
                {"file": m.file, "engine": m.engine, "runs": m.runs, "peaks_kib": m.peaks_kib}
                for m in measurements
            ],
        }
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
