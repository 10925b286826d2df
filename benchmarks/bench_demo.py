"""Cold and warm `make demo`: wall time, peak memory (RSS of the largest child) and console lines.

Usage: .venv/bin/python benchmarks/bench_demo.py [--profile demo] [--executor in_process|multiprocess]
Runs the pipeline twice in a fresh data folder (benchmarks/out/<profile>-data): the first run is
cold (nothing cached), the second warm (nothing changed, so no run is launched). The console lines are
counted as a log gets them (finished lines only: the lines a terminal keeps).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(env: dict) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MB so far, lines printed) of one `make demo`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.materialize"], cwd=ROOT, env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mb, done.stdout.count("\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--executor", default="in_process", choices=("in_process", "multiprocess"),
                        help="ADT_EXECUTOR: steps in the run's process, or a process per step, two at a time")
    args = parser.parse_args()
    data = ROOT / "benchmarks" / "out" / f"{args.profile}-data"
    shutil.rmtree(data, ignore_errors=True)
    env = {**os.environ, "ADT_PROFILE": args.profile, "ADT_DATA_DIR": str(data),
           "DAGSTER_HOME": str(data / "dagster"), "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
           "OMP_WAIT_POLICY": "PASSIVE", "ADT_EXECUTOR": args.executor}
    (data / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", data / "dagster" / "dagster.yaml")
    cold, cold_mb, cold_lines = run(env)
    warm, warm_mb, warm_lines = run(env)
    print(f"profile {args.profile}, executor {args.executor}, mirror {os.environ.get('ADT_DATA_MIRROR') or '(none)'}")
    print(f"cold make demo: {cold:7.1f} s, peak RSS {cold_mb:7.0f} MB, {cold_lines} console lines")
    print(f"warm make demo: {warm:7.1f} s ({warm / cold:.1%} of cold), peak RSS so far {warm_mb:7.0f} MB, "
          f"{warm_lines} console lines")


if __name__ == "__main__":
    main()
