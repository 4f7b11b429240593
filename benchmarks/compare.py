"""Is this checkout's figure no worse than an older commit's? One benchmark, run on both in turn.

    .venv/bin/python benchmarks/compare.py --against REV --only overhead [--rounds 10] [-- --runs 40]

(What follows ``--`` goes to the benchmark, on both sides: ``-- --quick``.)

REV is checked out in a temporary git worktree, and the benchmark runs there (with REV's own
script and code) and here alternately, round after round: a machine whose speed drifts (a
shared 2-core box can lose two thirds of its speed for half an hour) then slows both sides
alike, which two runs an hour apart cannot promise. Each run's figures are ratios against a
baseline of the same run; printed per figure: the median, mean and range of the ratio on each
side over the rounds, and how often each met its target.

Uncommitted changes here are measured as they are; REV must be a commit. Exits 0 whatever was
measured, like every benchmark.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from _common import ROOT, Figure, figure_in, load_average
from run_all import SCRIPTS

Side = str  # "this checkout" or the revision given


def run_once(root: Path, script: str, extra: list[str]) -> list[Figure]:
    """One run of ``script`` with the code of ``root``; its figures (none if it broke)."""
    # The checkout first on the path: the benchmark must import this tree's package, not the
    # editable install the virtual environment points at.
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / script), *extra],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    figures = [fig for line in done.stdout.splitlines() if (fig := figure_in(line)) is not None]
    if done.returncode != 0 or not figures:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        print(f"  {root}: {script} exited with {done.returncode}, no figures:\n{tail}", flush=True)
    return figures


def package_root(root: Path) -> Path:
    """Where ``elegere_widgets`` is imported from when a benchmark runs in ``root``."""
    done = subprocess.run(
        [sys.executable, "-c", "import elegere_widgets; print(elegere_widgets.__file__)"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip()).resolve().parents[1]


def summary(figures: list[Figure]) -> str:
    """One side's runs of one figure: its ratio over the rounds, how often the target was met,
    and the medians of what was measured and of the baseline."""
    ratios = [f.ratio for f in figures if f.ratio is not None]
    baselines = [f.baseline for f in figures if f.baseline is not None]
    text = (
        f"median {statistics.median(ratios):.3f}×, mean {statistics.fmean(ratios):.3f}×, "
        f"{min(ratios):.3f}–{max(ratios):.3f}×; target met in {sum(f.met for f in figures)} of "
        f"{len(figures)}; medians {statistics.median(f.measured for f in figures):.4g}"
    )
    if baselines:
        text += f" against {statistics.median(baselines):.4g}"
    return f"{text} {figures[0].unit}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog='What follows "--" goes to the benchmark on both sides: -- --runs 40, -- --quick.',
    )
    parser.add_argument("--against", required=True, help="the commit to compare with (REV)")
    parser.add_argument("--only", required=True, choices=sorted(SCRIPTS), help="the benchmark")
    parser.add_argument("--rounds", type=int, default=10, help="runs on each side (default 10)")
    argv = sys.argv[1:]
    # What follows "--" is the benchmark's: its options start with "--" too.
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    script = SCRIPTS[args.only]
    resolved = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.against}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        parser.error(f"{args.against!r} is not a commit of {ROOT}: see `git log --oneline`")
    commit = resolved.stdout.strip()

    with tempfile.TemporaryDirectory(prefix="elegere-compare-") as tmp:
        other = Path(tmp) / "worktree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(other), commit],
            check=True,
        )
        try:
            if not (other / "benchmarks" / script).exists():
                print(f"{args.against} has no benchmarks/{script}: nothing to compare.")
                return 0
            sides: dict[Side, Path] = {"this checkout": ROOT, args.against: other}
            for side, root in sides.items():
                found = package_root(root)
                if found != root.resolve():
                    print(f"{side} would import elegere_widgets from {found}, not {root}: stopped.")
                    return 0
            runs: dict[tuple[str, Side], list[Figure]] = defaultdict(list)
            print(
                f"{script} {' '.join(extra)}: {args.rounds} rounds, {args.against} "
                f"({commit[:10]}) and this checkout in turn",
                flush=True,
            )
            for n in range(1, args.rounds + 1):
                # Who goes first alternates too: a run can warm or cool the machine for the next.
                order = list(sides.items()) if n % 2 else list(reversed(sides.items()))
                said: list[str] = []
                for side, root in order:
                    got: list[str] = []
                    for fig in run_once(root, script, extra):
                        if fig.ratio is not None:
                            runs[fig.name, side].append(fig)
                            got.append(f"{fig.ratio:.3f}×")
                    said.append(f"{side} {' / '.join(got) or 'no figures'}")
                print(f"  round {n}/{args.rounds} [load {load_average()}]: {'; '.join(said)}")
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False
            )

    print()
    for name in dict.fromkeys(name for name, _side in runs):  # in the order they came
        print(name)
        for side in sides:
            if runs[name, side]:
                print(f"  {side}: {summary(runs[name, side])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
