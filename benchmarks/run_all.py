"""Run every benchmark, each in a process of its own, and print one table of their figures.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only list,failing,overhead,load,...]

(``--help`` lists every benchmark's name.)

Exits 0 whatever was measured: benchmarks inform, they never fail a build. A benchmark that
crashes is reported as such in the table and the others still run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import ROOT, Figure, figure_in, load_average, machine, table

HERE = Path(__file__).resolve().parent
SCRIPTS = {
    "list": "bench_list_servers.py",
    "failing": "bench_failing_test.py",
    "overhead": "bench_test_overhead.py",
    "load": "bench_service_load.py",
    "dashboard": "bench_dashboard_cold_start.py",
    "deliveries": "bench_deliveries_frame.py",
    "panel": "bench_panel_refresh.py",
    "worker": "bench_worker_throughput.py",
    "recovery": "bench_worker_recovery.py",
    "submit": "bench_submission_latency.py",
    "health": "bench_health_sweep.py",
}


def run(script: str, quick: bool) -> tuple[list[Figure], str | None]:
    """Run one benchmark, echo its output, and collect its figures (or why it broke)."""
    command = [sys.executable, str(HERE / script), *(["--quick"] if quick else [])]
    print(f"\n=== {script} (load {load_average()})", flush=True)
    started = time.monotonic()
    # The repository first on the path, absolute: a benchmark that starts a process elsewhere
    # (the dashboard's, from a temporary directory) must still run this checkout's code, not
    # whatever `PYTHONPATH=.` or an editable install of another checkout points at.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    figures: list[Figure] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        fig = figure_in(line)
        if fig is not None:
            figures.append(fig)
        else:
            print(line, end="", flush=True)
    code = proc.wait()
    print(f"=== {script}: {time.monotonic() - started:.0f} s", flush=True)
    return figures, None if code == 0 else f"{script} exited with {code}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark in its quick mode")
    parser.add_argument(
        "--only", default=",".join(SCRIPTS), help=f"comma-separated, of: {', '.join(SCRIPTS)}"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    figures: list[Figure] = []
    broken: list[str] = []
    for name in chosen:
        found, problem = run(SCRIPTS[name], args.quick)
        figures.extend(found)
        if problem:
            broken.append(problem)

    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {machine()} · {'quick' if args.quick else 'full'} run"
    )
    print(table(figures))
    missed = [f.name for f in figures if not f.met]
    print(f"\n{len(figures) - len(missed)} of {len(figures)} targets met.")
    for problem in broken:
        print(f"BROKEN: {problem}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
