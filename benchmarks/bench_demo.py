"""Cold and warm `make demo`: wall time and peak memory (RSS of the largest child).

Usage: .venv/bin/python benchmarks/bench_demo.py [--profile demo]
Runs the pipeline twice in a fresh data folder (benchmarks/out/demo-data): the first run is
cold (nothing cached), the second warm (nothing changed, so nothing is recomputed).
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


def run(env: dict) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.materialize"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args()
    data = ROOT / "benchmarks" / "out" / f"{args.profile}-data"
    shutil.rmtree(data, ignore_errors=True)
    env = {**os.environ, "ADT_PROFILE": args.profile, "ADT_DATA_DIR": str(data),
           "DAGSTER_HOME": str(data / "dagster"), "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}",
           "OMP_WAIT_POLICY": "PASSIVE"}
    (data / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", data / "dagster" / "dagster.yaml")
    cold, cold_mb = run(env)
    warm, warm_mb = run(env)
    print(f"profile {args.profile}, mirror {os.environ.get('ADT_DATA_MIRROR') or '(none)'}")
    print(f"cold make demo: {cold:7.1f} s, peak RSS {cold_mb:7.0f} MB")
    print(f"warm make demo: {warm:7.1f} s ({warm / cold:.1%} of cold), peak RSS so far {warm_mb:7.0f} MB")


if __name__ == "__main__":
    main()
