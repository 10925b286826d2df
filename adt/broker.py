"""A throwaway Redis server in a temporary folder: the Celery broker of the ``distributed`` tests, the
celery benchmark and local trials of several workers (docs/scale-out.md), as :mod:`adt.postgres` is the
throwaway PostgreSQL server.

:func:`server` runs the system's ``redis-server`` (``PATH`` or ``/usr/bin``; ``scripts/install.sh``
installs Debian's ``redis-server`` when apt-get is there) on a free TCP port of 127.0.0.1, with no
persistence (no RDB snapshots, no append-only file) and protected mode on, its working folder a new
temporary one. Redis 7 is under the BSD-3-Clause license; the Python client ``redis`` (Celery's Redis
transport, the ``cluster`` extra) is MIT. Nothing here imports the client: readiness is a plain ``PING``.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from adt.postgres import free_port


class Unavailable(RuntimeError):
    """No Redis server can run here (the reason is the message)."""


def redis_binary() -> Path | None:
    """``redis-server`` on ``PATH``, else ``/usr/bin/redis-server`` (Debian's), else None."""
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file()
                                             else None)
    return Path(found) if found else None


def ping(port: int, timeout_s: float = 2.0) -> bool:
    """Whether a Redis server answers ``PING`` on 127.0.0.1:``port`` within ``timeout_s`` seconds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _start(binary: Path, root: Path, port: int) -> subprocess.Popen:
    log = root / "server.log"
    return subprocess.Popen([str(binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root),
                             "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
                             "--logfile", str(log), "--databases", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def server(timeout_s: float = 30.0, attempts: int = 3) -> Iterator[str]:
    """Start Redis in a new temporary folder; yields its URL ``redis://127.0.0.1:<port>/0`` (databases 0-3;
    the Celery result backend can take ``/1``); stops it (TERM, then KILL after 10 s) and deletes the folder
    on exit.

    Args:
        timeout_s: seconds to wait for the server to answer ``PING``.
        attempts: ports tried, one after another, when the free port chosen is taken before Redis binds it.

    Raises:
        Unavailable: no ``redis-server``, or the server did not start (the end of its log is in the message).
    """
    binary = redis_binary()
    if binary is None:
        raise Unavailable("no redis-server installed: scripts/install.sh installs Debian's redis-server where "
                          "apt-get is available")
    root = Path(tempfile.mkdtemp(prefix="adt-redis-"))
    proc = None
    try:
        for _ in range(attempts):
            port = free_port()
            proc = _start(binary, root, port)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and not ping(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            if proc.poll() is None and ping(port):
                break
            log = (root / "server.log").read_text()[-500:] if (root / "server.log").is_file() else ""
            _stop(proc)
            if "Address already in use" not in log:
                raise Unavailable(f"redis-server did not start within {timeout_s} s: {log or 'no log'}")
        else:
            raise Unavailable(f"redis-server found no free port in {attempts} attempts")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
