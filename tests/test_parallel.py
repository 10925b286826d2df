"""adt.parallel: a stage's independent jobs in worker processes (issue 14: both cores busy)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adt.parallel import jobs, run_jobs

ROOT = Path(__file__).resolve().parents[1]


def _pid_and_square(x: int) -> tuple[int, int]:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return os.getpid(), x * x


def test_jobs_run_in_worker_processes_and_come_back_in_order(monkeypatch):
    monkeypatch.setenv("ADT_JOBS", "2")
    logs = []
    out = run_jobs(_pid_and_square, [{"x": k} for k in range(5)], log=logs.append)
    assert [sq for _, sq in out] == [0, 1, 4, 9, 16]
    assert os.getpid() not in {pid for pid, _ in out}  # not in this process
    assert sum("done (" in line for line in logs) == 5
    here = run_jobs(_pid_and_square, [{"x": 3}])  # one job: no process to start
    assert here == [(os.getpid(), 9)]
    with pytest.raises(ValueError, match="negative: -1"):
        run_jobs(_pid_and_square, [{"x": 1}, {"x": -1}])


def _sleep_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def test_one_wave_runs_up_to_one_and_a_half_times_the_workers_at_once(monkeypatch):
    """3 equal jobs on 2 workers: one wave of 3 processes (they finish together), not 2 + 1."""
    monkeypatch.setenv("ADT_JOBS", "2")
    logs = []
    pids = run_jobs(_sleep_pid, [{"seconds": 1.0}] * 3, log=logs.append, one_wave=True)
    assert len(set(pids)) == 3 and logs[0].startswith("3 jobs in 3 processes")
    logs.clear()
    run_jobs(_sleep_pid, [{"seconds": 0.1}] * 4, log=logs.append, one_wave=True)  # 4 > 1.5 x 2: two waves
    assert logs[0].startswith("4 jobs in 2 processes")


def test_jobs_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADT_JOBS", "3")
    assert jobs(2) == 3
    monkeypatch.setenv("ADT_JOBS", "")
    assert jobs(1) == len(os.sched_getaffinity(0)) and jobs(10**6) == 1
    monkeypatch.setenv("ADT_JOBS", "two")
    with pytest.raises(ValueError, match="ADT_JOBS"):
        jobs()


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


@pytest.mark.faults
def test_a_worker_ends_when_its_parent_is_killed():
    """kill -9 of a stage's process: its worker (die_with_parent) exits within seconds instead of working on."""
    child = ("import sys, time; from adt.parallel import die_with_parent; "
             "die_with_parent(int(sys.argv[1]), 0.1); time.sleep(120)")
    parent = ("import os, subprocess, sys, time; "
              f"c = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())]); "
              "print(c.pid, flush=True); time.sleep(120)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env)
    worker = int(proc.stdout.readline())
    time.sleep(1.0)
    assert _state(worker) not in (None, "Z")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _state(worker) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _state(worker) in (None, "Z")  # gone (or a zombie its new parent has not reaped)
