"""A throwaway PostgreSQL server in a temporary folder, for the ``distributed`` tests, the scale-out
benchmark and local trials of several workers (docs/scale-out.md).

:func:`server` runs the system's ``initdb`` and ``postgres`` (``PATH`` or ``/usr/lib/postgresql/*/bin``;
``scripts/install.sh`` installs Debian's ``postgresql`` when apt-get is there) on a free TCP port of
127.0.0.1, trust authentication, no fsync; as root it runs them as the ``postgres`` user (PostgreSQL
refuses to run as root). :func:`create_database` makes one database per store (Optuna, MLflow, Dagster).
PostgreSQL is under the PostgreSQL License (permissive, MIT-like); the driver ``psycopg2-binary`` is
LGPL-3.0 with exceptions (used as a library, unmodified).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2

USER = "adt"


class Unavailable(RuntimeError):
    """No PostgreSQL server can run here (the reason is the message)."""


def bin_dir() -> Path | None:
    """The folder of ``initdb`` and ``postgres``: next to ``initdb`` on ``PATH``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian does not put them on ``PATH``), else None."""
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "postgres").is_file():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
                      if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner() -> list[str]:
    """The command prefix that runs the server as a non-root user (empty when not root)."""
    if os.geteuid() != 0:
        return []

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise Unavailable("running as root and there is no 'postgres' user to run the server as") from None
    runuser = shutil.which("runuser")
    if not runuser:
        raise Unavailable("running as root and runuser is missing")
    return [runuser, "-u", "postgres", "--"]


@contextlib.contextmanager
def server(timeout_s: float = 60.0) -> Iterator[str]:
    """Start PostgreSQL in a new temporary folder; yields its base URL ``postgresql://adt@127.0.0.1:<port>``
    (append ``/<database>``); stops it and deletes the folder on exit.

    Raises:
        Unavailable: no ``initdb``/``postgres``, no user to run them as, or the server did not start.
    """
    bins = bin_dir()
    if bins is None:
        raise Unavailable("no PostgreSQL server (initdb) installed: scripts/install.sh installs Debian's "
                          "postgresql where apt-get is available")
    prefix = _as_owner()
    root = Path(tempfile.mkdtemp(prefix="adt-pg-"))
    data, log = root / "data", root / "server.log"
    if prefix:
        shutil.chown(root, "postgres")
    port = free_port()
    proc = None
    try:
        out = subprocess.run([*prefix, str(bins / "initdb"), "-D", str(data), "-U", USER, "--auth=trust",
                              "-E", "UTF8", "--no-sync"], capture_output=True, text=True)
        if out.returncode:
            raise Unavailable(f"initdb failed: {out.stderr.strip()[-500:]}")
        with open(log, "w") as fh:
            if prefix:
                shutil.chown(log, "postgres")
            proc = subprocess.Popen([*prefix, str(bins / "postgres"), "-D", str(data), "-p", str(port),
                                     "-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
                                     "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                                     "-c", "max_connections=200"], stdout=fh, stderr=subprocess.STDOUT)
        url = f"postgresql://{USER}@127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s

        while True:
            try:
                psycopg2.connect(f"{url}/postgres", connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise Unavailable(f"PostgreSQL did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        if proc is not None and proc.poll() is None:
            subprocess.run([*prefix, str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(root, ignore_errors=True)


def create_database(base_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``base_url``; returns its SQLAlchemy URL
    ``postgresql+psycopg2://...`` (SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3, which is
    not installed), for Optuna, MLflow and Dagster alike."""
    conn = psycopg2.connect(f"{base_url}/postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return f"{base_url.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{name}"
