"""One writer per data folder: an exclusive lock on ``<data>/.lock`` while a pipeline run writes.

Two runs writing the same data folder at once break each other (the MLflow and Optuna databases
created twice, the same cache folders written by both, a sweep's trial budget overrun), so a
second writer fails at once, naming the holder (pid, host, what, since), instead of racing. Taken
by ``make demo`` (:func:`pipelines.materialize.run_all`) and by every Dagster run through the
``AdtSettings`` resource; re-entrant within a process (``make demo``'s runs execute in its own
process) and shared with the holder's descendants (the step processes of Dagster's multiprocess
executor, started by the run that holds the lock). ``adt.stages.run_stages`` (notebooks, benchmarks)
does not take it: benchmarks may run disjoint parts of one study in several processes on purpose
(``benchmarks/bench_trimming.py``).

The lock is ``filelock`` (Unlicense; ``fcntl.flock`` on POSIX): the kernel drops it when the holder
dies, so a ``kill -9`` never leaves the folder locked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock

from adt.atomic import process_start, same_process, write_json
from adt.config import data_dir

LOCK_NAME = ".lock"
HOLDER_NAME = ".lock.holder.json"

_held: dict[str, list] = {}  # lock path -> [FileLock (None: an ancestor's), depth] held by this process


class DataFolderBusy(RuntimeError):
    """Another process writes this data folder (the message names it)."""


def holder(folder: Path | None = None) -> dict:
    """What the lock file's holder wrote about itself (pid, host, what, command, since), or {}."""
    try:
        return json.loads(((folder or data_dir()) / HOLDER_NAME).read_text())
    except (OSError, ValueError):
        return {}


def live_holder(folder: Path | None = None) -> dict:
    """:func:`holder` when the lock is held by a live process other than this one, else {}. The holder file
    outlives a killed holder (the kernel drops the lock, not the file), so its process is checked: by pid and
    start (:func:`adt.atomic.same_process`); a holder on another host (a shared folder) counts as live."""
    h = holder(folder)
    if not isinstance(h.get("pid"), int) or h["pid"] == os.getpid() and h.get("host") == socket.gethostname():
        return {}
    if h.get("host") != socket.gethostname() or same_process(h["pid"], h.get("start")):
        return h
    return {}


def ancestors(pid: int | None = None) -> set[int]:
    """The pids above ``pid`` (default: this process) up to init, from Linux's ``/proc``; empty elsewhere."""
    out, pid = set(), pid or os.getpid()
    while pid > 1:
        try:
            with open(f"/proc/{pid}/status") as f:
                pid = int(next(line for line in f if line.startswith("PPid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            break
        out.add(pid)
    return out


def acquire(what: str) -> Path:
    """Take the data folder's lock for ``what`` (e.g. "make demo", "Dagster run <id>"); returns its path.
    A process started by the holder (a step of its run) shares the holder's lock.

    Raises:
        DataFolderBusy: another process holds it.
    """
    folder = data_dir()
    path = folder / LOCK_NAME
    if str(path) in _held:
        _held[str(path)][1] += 1
        return path
    lock = filelock.FileLock(str(path), timeout=0, is_singleton=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        h = holder(folder)
        if h.get("host") == socket.gethostname() and h.get("pid") in ancestors():
            _held[str(path)] = [None, 1]  # the holder's descendant: its lock, its holder file
            return path
        who = (f"pid {h.get('pid')} on {h.get('host')} ({h.get('what')}: {h.get('command')}), since "
               f"{h.get('since')}") if h else "another process"
        raise DataFolderBusy(f"{folder} is in use by {who}; one writer per data folder: wait for it to end, "
                             f"stop it, or set ADT_DATA_DIR to another folder") from None
    _held[str(path)] = [lock, 1]
    write_json(folder / HOLDER_NAME, {"pid": os.getpid(), "start": process_start(os.getpid()),
                                      "host": socket.gethostname(), "what": what,
                                      "command": " ".join(sys.argv)[:300],
                                      "since": time.strftime("%Y-%m-%d %H:%M:%S")})
    return path


def release(path: Path | None = None) -> None:
    """Give back one :func:`acquire` of this process (the lock goes at the last one)."""
    key = str(path or data_dir() / LOCK_NAME)
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        if entry[0] is None:  # an ancestor's lock: it gives it back
            return
        with contextlib.suppress(OSError):
            (Path(key).parent / HOLDER_NAME).unlink()
        entry[0].release()


@contextlib.contextmanager
def data_lock(what: str) -> Iterator[Path]:
    """:func:`acquire` for the block, then :func:`release`."""
    path = acquire(what)
    try:
        yield path
    finally:
        release(path)
