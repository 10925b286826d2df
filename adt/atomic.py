"""Atomic writes: a file or folder appears under its final name only when complete.

A crash leaves at most a ``.tmp-<name>-<pid>-*`` sibling behind, which no reader trusts; the
next write of the same name removes those whose process is gone (a half-extracted dataset can
be tens of GB). Files and folders get the permissions a plain ``open``/``mkdir`` would
give under the process's umask (``mkstemp``/``mkdtemp`` create them owner-only).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def umask() -> int:
    """The process's umask, read without changing it (Linux ``/proc``; elsewhere set and restored)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts; a reused pid looks alive)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (the process's start, in clock ticks since boot), or None."""
    try:
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[19])  # after "pid (comm) ": fields 3.., so 22 is [19]
    except (OSError, ValueError, IndexError):
        return None


def process_start(pid: int) -> str | None:
    """Which process ``pid`` is: ``"<boot id>:<start ticks>"`` (Linux ``/proc``), a value another process
    given the same pid later (a reused pid) or the same pid after a reboot does not have. None when the
    process does not exist or there is no ``/proc`` (not Linux)."""
    ticks = _start_ticks(pid)
    if ticks is None:
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "?"
    return f"{boot}:{ticks}"


def process_started_at(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (Linux ``/proc``: boot time plus its start
    ticks; follows the wall clock, so a clock step moves it), or None (no such process, not Linux)."""
    ticks = _start_ticks(pid)
    try:
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime "))
    except (OSError, StopIteration, ValueError):
        return None
    return None if ticks is None else btime + ticks / os.sysconf("SC_CLK_TCK")


def same_process(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` still runs and is the one whose :func:`process_start` was ``start``
    (None: unknown, any live process with that pid counts, as :func:`process_alive`)."""
    if not process_alive(pid):
        return False
    now = process_start(pid) if start else None
    return now is None or now == start  # no /proc to tell (not Linux): alive is all there is


def _remove_stale(path: Path) -> None:
    """Remove the temporary siblings of ``path`` left by processes that no longer run."""
    for stale in path.parent.glob(f".tmp-{glob.escape(path.name)}-*"):
        parts = stale.name[len(f".tmp-{path.name}-"):].split("-")
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) == os.getpid():
            continue  # another name's temporary (e.g. of "<name>-2"), or this process's
        if process_alive(int(parts[0])):
            continue  # still running: another writer's file
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    ``suffix`` keeps the extension some writers need (e.g. ``".wav"``). On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-{os.getpid()}-", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; swap it in for ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-{os.getpid()}-", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())
        if path.exists():
            old = path.with_name(f".old-{path.name}-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    return Path(path)


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)
    return Path(path)
