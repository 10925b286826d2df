"""The data folder through an artifact store: what a step wrote on one machine, a step on another finds.

Steps of one Dagster run on several machines (the Celery or Kubernetes executor, docs/scale-out.md) share the
stores (PostgreSQL for runs, values and studies; MLflow) but no folder, while a stage's value names files in the
data folder (Parquet tables, checkpoints, stems, renders: :mod:`adt.results`). With ``ADT_DATA_STORE`` set
(:data:`STORE_ENV`: an MLflow artifact URI, e.g. ``mlflow-artifacts:/adt-data`` through the tracking server's
proxied artifact storage, ``s3://bucket/adt-data``, or ``file:///srv/adt-data``), each step

* **pulls** before it runs (:meth:`DataStore.pull`): the files the store holds of the stages upstream of it
  (:data:`adt.cache.FOLDER_STAGES`: a data folder's top folder -> the stage that writes it; a folder of no known
  stage is always pulled) that this folder lacks, or holds in an older version it has not changed since, each
  checked against its content hash (a file changed here and not pushed yet is never overwritten);
* **pushes** after it ran, before its value is stored (:meth:`DataStore.push`): the files of the data folder that
  changed since this folder last pushed or pulled (size and modification time, then the content hash).

The store holds ``store.json`` (the data folder's path), ``objects/<xx>/<xxh3_128>`` (each content once) and
``index/<time>-<host>-<pid>.json`` (one per push: path -> ``{"bytes", "xxh3_128"}``, ``{"link": target}`` or
``{"deleted": true}`` for a file removed since: a step's transient files, e.g. per-epoch checkpoints, are not
brought back; later pushes win). What this folder pushed and pulled is kept in ``<data>/.store/state.json``, under
a file lock (two steps on one machine share the folder). Left out, on every machine its own: the SQLite databases
and lock of a single-machine setup, Dagster's home, the download cache and temporaries (:data:`LOCAL_ONLY`,
:data:`SQLITE_SUFFIXES`).

**One path on every machine.** Values and tables name files by absolute path (a track's audio, a checkpoint), so
every machine uses the same data folder path (``ADT_DATA_DIR``: ``/data`` in deploy/k8s) and the same mirror path;
a folder at another path is refused (:class:`StoreMismatch`), naming both. Objects are never deleted (stale cache
folders cost storage, not correctness). The MLflow artifact repositories (``mlflow``, Apache-2.0) move the bytes.

``python -m adt.data_store pull|push|status`` does the same by hand (fetch a run's results to a laptop; seed a
store from a folder computed on one machine).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import filelock

from adt import tracking
from adt.atomic import write_json
from adt.cache import DIGESTS, FOLDER_STAGES, HASH, content_hash, file_record
from adt.config import data_dir

#: The environment variable naming the store (an MLflow artifact URI); unset: no store, nothing moves.
STORE_ENV = "ADT_DATA_STORE"
#: The store's format tag (``store.json``, index files).
FORMAT = "adt-data-store/1"
#: Top-level names of the data folder that stay on their machine: this folder's own record, the lock, Dagster's
#: home (``make demo``), the single-machine MLflow and Optuna stores, the download cache (refetched from the mirror).
LOCAL_ONLY = frozenset({".store", ".lock", ".lock.holder.json", "dagster", "mlartifacts", "mlruns", "optuna",
                        "downloads"})
#: SQLite databases and their journals, anywhere (``mlflow.db``, ``optuna.db``): live stores of one machine, which
#: a copy would corrupt while their process writes; several machines share PostgreSQL instead.
SQLITE_SUFFIXES = (".db", ".db-journal", ".db-wal", ".db-shm", ".sqlite", ".sqlite3")
#: Top folders that :data:`adt.cache.FOLDER_STAGES` leaves out -> the stage that writes them (``raw`` is not there:
#: ``adt verify`` would read the unpacked archives' own ``manifest.json`` files as stage manifests).
MORE_FOLDER_STAGES = {"raw": "raw_dataset"}

Log = Callable[[str], None]
#: The index record of a file removed since it was pushed (a pull removes it where it is unchanged, never fetches it).
DELETED = {"deleted": True}


class StoreMismatch(RuntimeError):
    """The store belongs to a data folder at another path (the message names both)."""


@dataclasses.dataclass(frozen=True)
class Transfer:
    """What a push or pull moved: ``files`` (links, and removals pushed) recorded, ``bytes`` uploaded or downloaded,
    ``seconds``."""

    files: int
    bytes: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.files} files, {self.bytes / 2**20:.1f} MiB in {self.seconds:.1f} s"


def stage_of(relpath: str) -> str | None:
    """The stage that writes ``relpath`` (relative to the data folder; a record under ``.digests`` counts as its
    file's), or None for a folder of no known stage."""
    parts = relpath.split("/")
    top = parts[1] if parts[0] == DIGESTS and len(parts) > 1 else parts[0]
    return FOLDER_STAGES.get(top) or MORE_FOLDER_STAGES.get(top)


def _shared(relpath: str) -> bool:
    """Whether ``relpath`` travels: not :data:`LOCAL_ONLY`, not a SQLite database (:data:`SQLITE_SUFFIXES`), not in
    or under a temporary of :mod:`adt.atomic` (a ``.tmp-`` file or folder being written by a running step, an
    ``.old-`` folder being replaced)."""
    parts = relpath.split("/")
    return (parts[0] not in LOCAL_ONLY and not parts[-1].endswith(SQLITE_SUFFIXES)
            and not any(part.startswith((".tmp-", ".old-")) for part in parts))


def _record(path: Path) -> dict:
    """The index record of ``path``: ``{"link": target}`` for a symlink, else :func:`adt.cache.file_record`."""
    return {"link": os.readlink(path)} if path.is_symlink() else file_record(path)


def _stamp(path: Path) -> list:
    """What says a file is unchanged since it was recorded: size and modification time (ns), not followed."""
    st = path.lstat()
    return [st.st_size, st.st_mtime_ns]


class DataStore:
    """The store at ``uri`` for the data folder ``folder`` (default: :func:`adt.config.data_dir`)."""

    def __init__(self, uri: str, folder: str | os.PathLike | None = None):
        tracking.setup()  # mlflow-artifacts: URIs resolve against the tracking server
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per file otherwise
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository  # lazy: after setup()

        self.uri = uri.rstrip("/")
        self.folder = Path(folder or data_dir()).resolve()
        self.repo = get_artifact_repository(self.uri)
        self._state_path = self.folder / ".store" / "state.json"

    # -- this folder's record -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _state(self) -> Iterator[dict]:
        """This folder's record, under its lock, written back at the end: ``local`` path -> [size, mtime_ns,
        record] of what it pushed or pulled; ``remote`` path -> record, merged from the ``seen`` index files."""
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(self._state_path.with_suffix(".lock"))):
            try:
                state = json.loads(self._state_path.read_text())
            except (OSError, ValueError):
                state = {}
            if state.get("uri") != self.uri:  # another store: nothing of the old record holds
                state = {"uri": self.uri, "local": {}, "remote": {}, "seen": []}
            yield state
            write_json(self._state_path, state)

    def _check_folder(self, create: bool) -> bool:
        """Whether the store exists (``create``: make it, for this folder's path).

        Raises:
            StoreMismatch: the store's data folder has another path.
            OSError, mlflow.exceptions.MlflowException: the store cannot be reached.
        """
        with self._scratch() as tmp:
            if "store.json" not in {Path(f.path).name for f in self.repo.list_artifacts() if not f.is_dir}:
                if not create:
                    return False
                doc = Path(tmp, "store.json")
                doc.write_text(json.dumps({"format": FORMAT, "data_dir": str(self.folder)}))
                self.repo.log_artifact(str(doc))
                return True
            got = json.loads(Path(self.repo.download_artifacts("store.json", tmp)).read_text())
        if got.get("data_dir") != str(self.folder):
            raise StoreMismatch(f"{STORE_ENV}={self.uri} holds the data folder {got.get('data_dir')}, this one is "
                                f"{self.folder}: every machine must use the same path (ADT_DATA_DIR), as the values "
                                "and tables name files by absolute path")
        return True

    def _scratch(self) -> tempfile.TemporaryDirectory:
        """A temporary folder on the data folder's filesystem (under ``.store``: a download is renamed into place,
        an upload is a hard link)."""
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix="tmp-", dir=self._state_path.parent)

    def _merge_index(self, state: dict) -> None:
        """Read the index files not seen yet, in their order, into ``state["remote"]``."""
        seen = set(state["seen"])
        names = sorted(Path(f.path).name for f in self.repo.list_artifacts("index") if not f.is_dir)
        with self._scratch() as tmp:
            for name in names:
                if name in seen:
                    continue
                state["remote"].update(self._index_file(name, tmp)["files"])
                state["seen"].append(name)

    def _index_file(self, name: str, tmp: str) -> dict:
        """The index file ``name``; read again once a second later if it is not whole yet (another machine may
        be uploading it as it is listed).

        Raises:
            OSError: it is still not an index file (named).
        """
        for wait_s in (1.0, None):
            try:
                doc = json.loads(Path(self.repo.download_artifacts(f"index/{name}", tmp)).read_text())
                if doc.get("format") == FORMAT and isinstance(doc.get("files"), dict):
                    return doc
            except ValueError:
                pass
            if wait_s:
                time.sleep(wait_s)
        raise OSError(f"{STORE_ENV}={self.uri}: index/{name} is not an index file of {FORMAT}")

    # -- the two directions ---------------------------------------------------------------------------------
    def push(self, log: Log = print) -> Transfer:
        """Upload what changed in the data folder since it last pushed or pulled (module docstring).

        Raises:
            StoreMismatch: the store belongs to a folder at another path.
            OSError, mlflow.exceptions.MlflowException: the store cannot be written.
        """
        start = time.monotonic()
        self._check_folder(create=True)
        with self._state() as state:
            self._merge_index(state)
            changed: dict[str, dict] = {}
            here = set()
            for path in self._files():
                rel = path.relative_to(self.folder).as_posix()
                here.add(rel)
                known = state["local"].get(rel)
                if known and known[:2] == _stamp(path):
                    continue
                record = _record(path)
                state["local"][rel] = [*_stamp(path), record]
                if state["remote"].get(rel) != record:
                    changed[rel] = record
            for rel in [r for r in state["local"] if r not in here and _shared(r)]:  # removed here since
                del state["local"][rel]
                if not state["remote"].get(rel, DELETED).get("deleted"):
                    changed[rel] = DELETED
            stored = {r[HASH] for r in state["remote"].values() if HASH in r}
            sent = 0
            with self._scratch() as tmp:
                for rel, record in changed.items():
                    if HASH not in record or record[HASH] in stored:
                        continue
                    digest = record[HASH]
                    staged = Path(tmp, digest)
                    try:
                        os.link(self.folder / rel, staged)
                    except OSError:
                        shutil.copyfile(self.folder / rel, staged)
                    self.repo.log_artifact(str(staged), f"objects/{digest[:2]}")
                    staged.unlink()
                    stored.add(digest)
                    sent += record["bytes"]
                if changed:
                    name = f"{time.time_ns():020d}-{socket.gethostname()}-{os.getpid()}.json"
                    Path(tmp, name).write_text(json.dumps({"format": FORMAT, "files": changed}, sort_keys=True))
                    self.repo.log_artifact(str(Path(tmp, name)), "index")
                    state["remote"].update(changed)
                    state["seen"].append(name)
        done = Transfer(len(changed), sent, time.monotonic() - start)
        if changed:
            log(f"data store: pushed {done} to {self.uri}")
        return done

    def pull(self, stages: Iterable[str] | None = None, log: Log = print) -> Transfer:
        """Download the files of ``stages`` (default: all) that the store holds and this folder lacks or holds
        otherwise; each is checked against its content hash and written atomically.

        Raises:
            StoreMismatch: the store belongs to a folder at another path.
            OSError: a downloaded file is not what the store recorded (named); the store cannot be read.
        """
        start = time.monotonic()
        if not self._check_folder(create=False):
            return Transfer(0, 0, time.monotonic() - start)
        wanted = None if stages is None else set(stages)
        files = got = 0
        with self._state() as state, self._scratch() as tmp:
            self._merge_index(state)
            for rel, record in sorted(state["remote"].items()):
                if not _shared(rel) or (wanted is not None and stage_of(rel) not in wanted | {None}):
                    continue
                path = self.folder / rel
                if record.get("deleted"):
                    self._forget(state, rel, path)
                    continue
                if self._holds(state, rel, path, record):
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                if "link" in record:
                    path.unlink(missing_ok=True)
                    os.symlink(record["link"], path)
                else:
                    fetched = Path(self.repo.download_artifacts(f"objects/{record[HASH][:2]}/{record[HASH]}", tmp))
                    if content_hash(fetched) != record[HASH]:
                        raise OSError(f"{STORE_ENV}={self.uri}: the object of {rel} is not what was pushed "
                                      f"({HASH} {record[HASH]})")
                    os.chmod(fetched, 0o644)
                    os.replace(fetched, path)
                    got += record["bytes"]
                state["local"][rel] = [*_stamp(path), record]
                files += 1
        done = Transfer(files, got, time.monotonic() - start)
        if files:
            log(f"data store: pulled {done} from {self.uri}")
        return done

    def _holds(self, state: dict, rel: str, path: Path, record: dict) -> bool:
        """Whether ``path`` is to stay as it is: it is ``record`` already, or it changed here since this folder last
        pushed or pulled it (a step on this machine may be writing it: a local change is never overwritten; the
        next push sends it). Only a missing file, or one unchanged here that the store holds newer, is fetched."""
        if not path.exists() and not path.is_symlink():
            return False
        known = state["local"].get(rel)
        if known and known[:2] == _stamp(path):
            return known[2] == record
        if _record(path) == record:
            state["local"][rel] = [*_stamp(path), record]
        return True

    def _forget(self, state: dict, rel: str, path: Path) -> None:
        """A file removed elsewhere: removed here too if this folder has not changed it since it last synced it."""
        known = state["local"].pop(rel, None)
        if known and (path.exists() or path.is_symlink()) and known[:2] == _stamp(path):
            path.unlink()

    def _files(self) -> Iterator[Path]:
        """Every file and symlink of the data folder that travels (:func:`_shared`)."""
        for root, dirs, names in os.walk(self.folder):
            rel_root = Path(root).relative_to(self.folder).as_posix()
            if rel_root == ".":
                dirs[:] = [d for d in dirs if d not in LOCAL_ONLY]
                names = [n for n in names if n not in LOCAL_ONLY]
            for name in names + [d for d in dirs if Path(root, d).is_symlink()]:
                rel = name if rel_root == "." else f"{rel_root}/{name}"
                if _shared(rel):
                    yield self.folder / rel

    def status(self) -> dict[str, Any]:
        """What the store holds and how this folder stands: files in the store, files here unpushed."""
        with self._state() as state:
            exists = self._check_folder(create=False)
            if exists:
                self._merge_index(state)
            unpushed = sum(1 for p in self._files()
                           if (k := state["local"].get(p.relative_to(self.folder).as_posix())) is None
                           or k[:2] != _stamp(p))
            return {"store": self.uri, "data_dir": str(self.folder), "exists": exists,
                    "files_in_store": sum(1 for r in state["remote"].values() if not r.get("deleted")),
                    "index_files": len(state["seen"]), "changed_here": unpushed}


def from_env() -> DataStore | None:
    """The store named by ``ADT_DATA_STORE``, or None where it is unset."""
    uri = os.environ.get(STORE_ENV, "")
    return DataStore(uri) if uri else None


def main(argv: list[str] | None = None) -> int:
    """``python -m adt.data_store pull [--stage S] | push | status`` for ``ADT_DATA_STORE`` and ``ADT_DATA_DIR``."""
    parser = argparse.ArgumentParser(prog="python -m adt.data_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("pull", "push", "status"))
    parser.add_argument("--stage", action="append", help="pull only these stages' folders (repeatable)")
    args = parser.parse_args(argv)
    store = from_env()
    if store is None:
        print(f"{STORE_ENV} is not set: no store", file=sys.stderr)
        return 2
    try:
        if args.action == "push":
            print(store.push())
        elif args.action == "pull":
            print(store.pull(args.stage))
        else:
            print(json.dumps(store.status(), indent=1))
    except StoreMismatch as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
