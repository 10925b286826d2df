"""Independent jobs of one stage in worker processes, so that both cores work where each job trains on one
thread (FrameCRNN: :data:`adt.cpu.TRAINING_THREADS`).

The standard library's :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start method (a
fresh interpreter per worker: no forked torch or onnxruntime threads, no inherited locks). A worker is a
descendant of its parent, so it shares the parent's data-folder lock (:mod:`adt.lock`); each job writes its
own cache folder (:mod:`adt.cache`: temp folder, then rename), so jobs whose process dies leave nothing a
re-run would trust, and a re-run finds the finished ones cached.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

#: Processes for a stage's jobs (``ADT_JOBS``; default: the cores this process may use).
JOBS_ENV = "ADT_JOBS"


def silent(message: str) -> None:
    """A ``log`` for jobs in worker processes (picklable; their messages would bypass the run's logger)."""


def die_with_parent(parent_pid: int, poll_s: float = 2.0) -> None:
    """End this worker process (exit status 3) once ``parent_pid`` is no longer its parent: a worker whose
    stage was killed (``kill -9``, a terminated Dagster run) stops instead of working on for nobody.
    Starts a daemon thread; call it first thing in a worker."""
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(3)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


def cores() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def jobs(threads_per_job: int = 1) -> int:
    """Worker processes for jobs of ``threads_per_job`` torch threads each: ``ADT_JOBS``, else cores // threads.

    Raises:
        ValueError: ``ADT_JOBS`` is not a positive integer.
    """
    value = os.environ.get(JOBS_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{JOBS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return max(1, cores() // max(1, int(threads_per_job)))


def _worker_start(parent_pid: int, threads: int) -> None:
    """Each worker process: ends with its parent, runs torch on ``threads`` threads."""
    die_with_parent(parent_pid)
    torch.set_num_threads(threads)


def _listed(names: Sequence[str], most: int = 6) -> str:
    """``names`` joined by commas, the middle ones elided beyond ``most``."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join([*names[:most - 1], f"... ({len(names) - most} more)", names[-1]])


def run_jobs(fn: Callable[..., Any], calls: Sequence[dict], threads_per_job: int = 1,
             log: Callable[[str], None] = lambda msg: None, names: Sequence[str] | None = None,
             job_log: str | None = None, every: int = 1, one_wave: bool = False) -> list:
    """``fn(**kwargs)`` for each ``kwargs`` of ``calls`` in up to :func:`jobs` ``(threads_per_job)`` worker
    processes, each running torch on ``threads_per_job`` threads; results in order.

    With one worker or one call they run here, one after the other, on this process's threads. ``fn`` must
    be a module-level function and its arguments picklable. ``log`` reports every ``every``-th finished job
    and the last (a stage of many short jobs, e.g. one render per track, logs a line per 10); ``job_log``:
    the name of ``fn``'s own log argument, given ``log`` when the job runs here and :func:`silent` in a
    worker (whose messages would bypass the run's logger). ``one_wave``: jobs of about equal length (the tatum
    study's three models, the trimming lines) all at once when there are at most 1.5x as many as workers: 3 jobs
    on 2 cores finish together after 1.5 job-lengths instead of 2 (a second wave on one core, the other idle).

    Raises:
        ValueError: ``ADT_JOBS`` is not a positive integer.
        whatever a job raised (the first failed one, after the others finished or were cancelled).
    """
    names = list(names) if names is not None else [f"job {k + 1}" for k in range(len(calls))]
    workers = jobs(threads_per_job)
    if workers <= 1 or len(calls) <= 1:
        out = []
        for done, (name, kwargs) in enumerate(zip(names, calls), 1):
            out.append(fn(**kwargs, **({job_log: log} if job_log else {})))
            if done % every == 0 or done == len(calls):
                log(f"{name} done")
        return out
    n = len(calls) if one_wave and len(calls) <= 1.5 * workers else min(workers, len(calls))
    log(f"{len(calls)} jobs in {n} processes: {_listed(names)}")
    with concurrent.futures.ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_worker_start,
                                                initargs=(os.getpid(), int(threads_per_job))) as pool:
        futures = {pool.submit(fn, **kwargs, **({job_log: silent} if job_log else {})): k
                   for k, kwargs in enumerate(calls)}
        results: dict[int, Any] = {}
        try:
            for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
                k = futures[future]
                results[k] = future.result()
                if done % every == 0 or done == len(calls):
                    log(f"{names[k]} done ({done}/{len(calls)})")
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [results[k] for k in range(len(calls))]
