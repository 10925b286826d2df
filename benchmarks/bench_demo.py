"""Cold and warm `make demo`: wall time, peak memory (RSS of the largest child) and console lines.

Usage: .venv/bin/python benchmarks/bench_demo.py [--profile demo] [--executor in_process|multiprocess]
Runs the pipeline twice in a fresh data folder (benchmarks/out/<profile>-data): the first run is
cold (nothing cached), the second warm (nothing changed, so no run is launched). The console lines are
counted as a log gets them (finished lines only: the lines a terminal keeps). During the cold run the
machine's CPU use is sampled (``/proc/stat``, every second: run it on an otherwise idle machine) and reported per
Dagster step (its start and end from the run's step stats): the cores busy on average, so the steps that leave
cores idle show.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class CpuSampler(threading.Thread):
    """Busy cores of the whole machine, sampled from ``/proc/stat`` every second: ``(time, busy cores)``."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    @staticmethod
    def _jiffies() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    def run(self) -> None:
        cores = os.cpu_count() or 1
        total, idle = self._jiffies()
        while not self.stopped.wait(1.0):
            t, i = self._jiffies()
            if t > total:
                self.samples.append((time.time(), cores * (1 - (i - idle) / (t - total))))
            total, idle = t, i

    def mean(self, start: float, end: float) -> float:
        inside = [busy for t, busy in self.samples if start < t <= end + 1.0]
        return sum(inside) / len(inside) if inside else float("nan")


def step_use(dagster_home: Path, sampler: CpuSampler) -> list[tuple[str, float, float]]:
    """``(run job/partition: step, seconds, busy cores)`` of every step of the instance's runs, longest first."""
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    import dagster as dg

    instance = dg.DagsterInstance.get()
    rows = []
    for r in instance.get_runs():
        part = r.tags.get("dagster/partition")
        for s in instance.get_run_step_stats(r.run_id):
            if s.start_time and s.end_time:
                rows.append((f"{r.job_name}{'/' + part if part else ''}: {s.step_key}", s.end_time - s.start_time,
                             sampler.mean(s.start_time, s.end_time)))
    return sorted(rows, key=lambda row: -row[1])


def run(env: dict) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS MB so far, lines printed, the output) of one `make demo`."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipelines.materialize"], cwd=ROOT, env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return wall, peak_mb, done.stdout.count("\n"), done.stdout


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
    sampler = CpuSampler()
    sampler.start()
    t0 = time.time()
    cold, cold_mb, cold_lines, cold_out = run(env)
    sampler.stopped.set()
    warm, warm_mb, warm_lines, _ = run(env)
    print(f"profile {args.profile}, executor {args.executor}, mirror {os.environ.get('ADT_DATA_MIRROR') or '(none)'}")
    print(f"cold make demo: {cold:7.1f} s, peak RSS {cold_mb:7.0f} MB, {cold_lines} console lines, "
          f"{sampler.mean(t0, time.time()):.2f} of {os.cpu_count()} cores busy on average")
    for name, seconds, busy in step_use(data / "dagster", sampler):
        print(f"  {name:45s} {seconds:7.1f} s  {busy:4.2f} cores busy")
    print(f"warm make demo: {warm:7.1f} s ({warm / cold:.1%} of cold), peak RSS so far {warm_mb:7.0f} MB, "
          f"{warm_lines} console lines")
    print("\ncold run's summary:" + cold_out[cold_out.rfind("\n== Zero-shot matrix"):])


if __name__ == "__main__":
    main()
