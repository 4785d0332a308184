"""``harness demo`` at an earlier commit and at this one, measured in one run (issue 13).

Exports both commits with ``git archive`` into a scratch directory (so each has its own
``mlruns/`` and ``reports/``: nothing is reused across them), runs ``python -m harness demo``
in each, one after the other, with the same interpreter and packages (this checkout's
virtual environment; ``PYTHONPATH`` selects each copy's ``harness`` and ``models``), the same
``--jobs`` and the same dataset cache, and prints one table: per claim and in all, the
seconds each took and their ratio (> 1: this commit is faster).

Usage::

    python benchmarks/demo_vs_commit.py --base a709e26            # base, then HEAD
    python benchmarks/demo_vs_commit.py --base a709e26 --head-first

The two runs share the machine one after the other, not at once: run it on a quiet machine
(the load average before each run is printed) and read the ratio, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _export(commit: str, dest: Path) -> str:
    """The tree of ``commit`` under ``dest``; returns the full hash."""
    full = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", full], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    return full


def _run_demo(tree: Path, jobs: int, log: Path) -> tuple[float, dict[str, float], str]:
    """Wall seconds of the whole demo, per-claim seconds (reports/index.json), load before it."""
    # each copy's own store (sqlite:///mlruns/mlflow.db under its tree), not a shared one
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = str(tree)  # before the editable install's finder on sys.path
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    t0 = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "harness", "demo", "--jobs", str(jobs), "--no-progress"],
            cwd=tree,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        ).returncode
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"harness demo failed in {tree} (exit {code}); see {log}")
    per_claim = {}
    index = tree / "reports" / "index.json"  # the report book's rows: one per claim
    if index.is_file():
        for row in json.loads(index.read_text()).get("claims", []):
            if "claim" in row and row.get("wall_time_s") is not None:
                per_claim[str(row["claim"])] = float(row["wall_time_s"])
    return wall, per_claim, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the earlier commit (e.g. a709e26)")
    parser.add_argument("--head", default="HEAD", help="the commit to compare (default HEAD)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--head-first", action="store_true", help="run HEAD's demo first")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="demo_vs_commit_"))
    trees = {"base": scratch / "base", "head": scratch / "head"}
    hashes = {name: _export(getattr(args, name), tree) for name, tree in trees.items()}
    order = ["head", "base"] if args.head_first else ["base", "head"]
    results = {}
    for name in order:
        print(f"{name} {hashes[name][:10]}: harness demo --jobs {args.jobs} ...", flush=True)
        results[name] = _run_demo(trees[name], args.jobs, scratch / f"{name}.log")
        print(f"  {results[name][0]:.1f} s (load before: {results[name][2]})", flush=True)

    claims = sorted(set(results["base"][1]) | set(results["head"][1]))
    print(
        f"\n`harness demo --jobs {args.jobs}`, base {hashes['base'][:10]} vs head "
        f"{hashes['head'][:10]}, run in the order {' then '.join(order)}:\n"
    )
    print("| part | base s | head s | base / head |")
    print("|---|---:|---:|---:|")
    for claim in claims:
        b, h = results["base"][1].get(claim), results["head"][1].get(claim)
        ratio = f"**{b / h:.2f}×**" if b and h else "n/a"
        print(f"| {claim} | {b or float('nan'):.1f} | {h or float('nan'):.1f} | {ratio} |")
    b, h = results["base"][0], results["head"][0]
    print(f"| whole demo (wall) | {b:.1f} | {h:.1f} | **{b / h:.2f}×** |")
    if args.keep:
        print(f"\nscratch kept: {scratch}")
    else:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
