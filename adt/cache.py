"""Content-keyed cache of stage outputs.

A stage's output folder is ``<data>/<stage>/<key>`` where the key hashes the
stage's code version, its configuration and its upstream content keys; the
folder counts as complete only once its ``manifest.json`` exists (written
last, atomically). Re-running with nothing changed finds the manifest and
recomputes nothing; a changed input gives a new key and a new folder.

Every stage uses the same three helpers: :func:`stage_cache` (the folder of a stage
for its version and upstream keys), :meth:`StageCache.get_or_compute` (load, or
compute into the folder and save the manifest) and :func:`track_file` (a per-track
file under a folder). Each stage names its version once, as a ``VERSION`` constant
of its library module, used both here and as the asset's Dagster ``code_version``.

Nothing cached is trusted on its name alone (issue 29). A manifest lists every file of its folder with its size
and content hash (XXH3-128, :func:`content_hash`), written with it; :meth:`StageCache.load` checks them, and a
file that differs is removed and recomputed with a warning naming it. Per-item files outside a manifest's folder
(features, drum stems, beat tables, renders) have their record under ``<data>/.digests/`` (:func:`seal`) and are
checked by :func:`intact` where a stage looks for them. :func:`verify` checks a whole data folder (``adt verify``;
``make demo`` before it plans) and says which stage would recompute what.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import xxhash

from adt.atomic import write_json
from adt.config import data_dir

logger = logging.getLogger(__name__)

#: Content hash of cached files: XXH3-128 (xxhash), about 4x SHA-256's speed here (2.7 vs 1.1 GB/s).
HASH = "xxh3_128"
#: Folder of ``<data>`` holding the records of per-item files (:func:`seal`), mirroring their paths.
DIGESTS = ".digests"
#: Top folder of ``<data>`` -> the stage (asset) that writes it: what :func:`verify` says would recompute.
FOLDER_STAGES = {
    "kits": "kit_catalogue", "datasets": "dataset_tables", "audio": "dataset_tables", "tables": "tracks",
    "separation_study": "drum_stems", "drum_stems": "drum_stems", "real_songs": "drum_stems",
    "beats": "beats", "beats_madmom": "beats", "tatums": "tatums", "quantization_stats": "quantization_stats",
    "groove_scores": "groove_scores", "drum_scores": "drum_scores", "lm_bigram": "lm_bigram", "lm_gru": "lm_gru",
    "features": "features", "shards": "features", "training_stats": "features", "training_stats_dataset": "features",
    "sweeps": "transcriber", "models": "zero_shot_matrix", "architecture_study": "architecture_study",
    "trimming": "trimmed_transcriber", "zero_shot_matrix": "zero_shot_matrix", "tatum_study": "tatum_study",
}


def cache_key(*parts: Any) -> str:
    """Short SHA-256 of the JSON of ``parts`` (order matters)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_key(path: str | Path) -> str:
    """Cheap content identity of a file: name, size and modification time."""
    st = Path(path).stat()
    return f"{Path(path).name}:{st.st_size}:{int(st.st_mtime_ns)}"


def content_hash(path: str | os.PathLike) -> str:
    """Hex XXH3-128 of a file's bytes (read in 1 MiB blocks)."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: str | os.PathLike) -> dict:
    """``{"bytes": size, "xxh3_128": hex}`` of a file (what manifests and :func:`seal` keep)."""
    return {"bytes": Path(path).stat().st_size, HASH: content_hash(path)}


def differs(path: str | os.PathLike, record: dict) -> str | None:
    """How ``path`` differs from its ``record`` (missing, size, content), or None when it is the file recorded.

    The size is compared first (no read); the content hash only when the sizes agree."""
    path = Path(path)
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != record.get("bytes"):
        return f"{size} bytes where {record.get('bytes')} were written"
    if content_hash(path) != record.get(HASH):
        return f"content differs from what was written ({HASH})"
    return None


def _folder_files(folder: Path) -> list[Path]:
    """Files under ``folder`` that its manifest records: all but the manifest and leftover temporaries."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / "manifest.json"
                  and not p.name.startswith((".tmp-", ".old-")))


@dataclasses.dataclass(frozen=True)
class Corrupt:
    """A cached file that is not what its stage wrote (:func:`verify`)."""

    path: Path
    why: str
    stage: str
    #: the manifest folder it belongs to, or None for a per-item file (:func:`seal`)
    folder: Path | None = None

    def __str__(self) -> str:
        where = f"{self.folder.name} of " if self.folder else ""
        return f"{self.path}: {self.why} -> {self.stage} recomputes it ({where}{self.path.relative_to(data_dir()).parts[0]})"


def _stage_of(path: Path) -> str:
    try:
        top = path.resolve().relative_to(data_dir()).parts[0]
    except (ValueError, IndexError):
        return "?"
    return FOLDER_STAGES.get(top, top)


class StageCache:
    """The output folder of one stage for one key."""

    def __init__(self, stage: str, key: str, folder: Path | None = None):
        self.stage, self.key = stage, key
        self.dir = folder or data_dir() / stage / key

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def read_manifest(self) -> dict | None:
        """The manifest as written, or None when there is none or it is not a manifest (warned)."""
        if not self.manifest_path.is_file():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            logger.warning("%s: not a readable manifest (%s): recomputing %s", self.manifest_path, exc, self.stage)
            return None
        return manifest if isinstance(manifest, dict) else None

    def corrupt(self, manifest: dict) -> list[Corrupt]:
        """The files of ``manifest`` (its folder's and its ``external_files``) that differ from their records."""
        out = []
        for group, root in (("files", self.dir), ("external_files", data_dir())):
            for rel, record in (manifest.get(group) or {}).items():
                why = differs(root / rel, record)
                if why:
                    out.append(Corrupt(root / rel, why, _stage_of(self.dir), self.dir))
        return out

    def load(self) -> dict | None:
        """The manifest of a complete earlier run whose files are all as written, else None.

        A file that differs from its record (:func:`differs`) is removed with a warning naming it, and so is the
        manifest: the stage then recomputes into the same folder (resumable stages keep their intact files). A
        manifest from before the records (no ``files``) gets them now, from the files as they are."""
        manifest = self.read_manifest()
        if manifest is None:
            return None
        if "files" not in manifest:
            logger.info("%s: recording the content hashes of %s's files (made before they were kept)",
                        self.manifest_path, self.stage)
            return self._write(manifest, [data_dir() / rel for rel in manifest.get("external_files") or {}])
        bad = self.corrupt(manifest)
        for item in bad:
            logger.warning("%s: %s: recomputing it (%s)", item.path, item.why, self.stage)
            item.path.unlink(missing_ok=True)
        if bad:
            self.manifest_path.unlink(missing_ok=True)
            return None
        return manifest

    def save(self, manifest: dict, external_files: Iterable[str | os.PathLike] = ()) -> dict:
        """Mark the folder complete with ``manifest``, which gets the key, the stage name and the record of every
        file in the folder (``files``) and of ``external_files`` (files under the data folder elsewhere that
        this output stands for, e.g. a dataset's renders: ``external_files``) added."""
        return self._write({**manifest, "key": self.key, "stage": self.stage}, external_files)

    def _write(self, manifest: dict, external_files: Iterable[str | os.PathLike]) -> dict:
        root = data_dir()
        manifest = {**manifest, "files": {str(p.relative_to(self.dir)): file_record(p)
                                          for p in _folder_files(self.dir)}}
        external = {str(Path(p).resolve().relative_to(root)): file_record(p)
                    for p in external_files if Path(p).resolve().is_relative_to(root) and Path(p).is_file()}
        if external:
            manifest["external_files"] = external
        write_json(self.manifest_path, manifest)
        return manifest

    def get_or_compute(self, compute: Callable[[Path], dict]) -> dict:
        """The manifest of a complete earlier run, else ``compute(self.dir)``'s, saved.

        ``compute`` writes its files into the folder (atomically) and returns the
        JSON-able manifest; the folder counts as complete only after it returns. A list of paths under its
        ``external_files`` key names files it wrote elsewhere under the data folder, recorded and checked
        with the folder's (:meth:`save`).
        """
        manifest = self.load()
        if manifest is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            manifest = compute(self.dir)
            manifest = self.save(manifest, external_files=manifest.pop("external_files", ()))
        return manifest


def stage_cache(stage: str, version: str, *upstream: Any) -> StageCache:
    """The cache folder ``<data>/<stage>/<key>`` with key = hash of (stage, version, *upstream).

    ``upstream``: everything the output depends on (upstream content keys, settings,
    profile fields), JSON-able.
    """
    return StageCache(stage, cache_key(stage, version, *upstream))


def record_path(path: str | os.PathLike) -> Path | None:
    """Where the record of a per-item file under the data folder is (``<data>/.digests/<its path>.json``); None
    for a file outside the data folder (not a cached output)."""
    root, path = data_dir(), Path(path).resolve()
    if not path.is_relative_to(root):
        return None
    return root / DIGESTS / f"{path.relative_to(root)}.json"


def seal(path: str | os.PathLike) -> None:
    """Record a per-item cached file's size and content hash (:func:`record_path`), once it is written."""
    record = record_path(path)
    if record is not None:
        write_json(record, file_record(path))


def intact(path: str | os.PathLike) -> bool:
    """Whether a per-item cached file can be used as it is: it exists and matches its record (:func:`seal`).

    A file that differs is removed with a warning naming it (the caller recomputes it); a file without a
    record (written before records were kept, or by a process that died before sealing it: files appear only
    complete, :mod:`adt.atomic`) is sealed as it is."""
    path = Path(path)
    record = record_path(path)
    if not path.is_file():
        if record is not None:
            record.unlink(missing_ok=True)
        return False
    if record is None:
        return True
    try:
        why = differs(path, json.loads(record.read_text()))
    except FileNotFoundError:
        seal(path)  # no record yet
        return True
    except (OSError, ValueError) as exc:
        why = f"its record {record} is unreadable ({exc})"
    if why is None:
        return True
    logger.warning("%s: %s: recomputing it (%s)", path, why, _stage_of(path))
    path.unlink(missing_ok=True)
    record.unlink(missing_ok=True)
    return False


def verify(stages: Iterable[str] | None = None) -> list[Corrupt]:
    """Every cached file of the data folder (or of ``stages``' folders, :data:`FOLDER_STAGES`) that is not what its
    stage wrote: the files listed in each stage manifest and the per-item files with a record. Reads everything it
    checks (XXH3-128); removes nothing (the stages do, when they next run).

    Raises:
        ValueError: an unknown stage name.
    """
    root = data_dir()
    wanted = set(stages) if stages is not None else None
    if wanted is not None and wanted - set(FOLDER_STAGES.values()):
        raise ValueError(f"unknown stage {sorted(wanted - set(FOLDER_STAGES.values()))}: "
                         f"choose from {sorted(set(FOLDER_STAGES.values()))}")
    out: list[Corrupt] = []
    for top, stage in FOLDER_STAGES.items():
        if (wanted is None or stage in wanted) and (root / top).is_dir():
            for manifest_path in sorted((root / top).rglob("manifest.json")):
                cache = StageCache(top, manifest_path.parent.name, manifest_path.parent)
                manifest = cache.read_manifest()
                if manifest is not None and "files" in manifest:
                    out += cache.corrupt(manifest)
    records = root / DIGESTS
    if records.is_dir():
        for record in sorted(records.rglob("*.json")):
            path = root / str(record.relative_to(records))[: -len(".json")]
            stage = _stage_of(path)
            if wanted is not None and stage not in wanted:
                continue
            try:
                why = differs(path, json.loads(record.read_text()))
            except (OSError, ValueError) as exc:
                why = f"unreadable record {record} ({exc})"
            if why and why != "missing":  # a removed item is simply recomputed: nothing wrong is used
                out.append(Corrupt(path, why, stage))
    return out


def safe_name(track_id: str) -> str:
    """A track id as a file name: ``"groove/drummer1/x"`` -> ``"groove__drummer1__x"``."""
    return track_id.replace("/", "__")


def track_file(folder: str | Path, track_id: str, suffix: str) -> Path:
    """Per-track file ``<folder>/<safe track id><suffix>`` (e.g. ``suffix=".wav"``)."""
    return Path(folder) / f"{safe_name(track_id)}{suffix}"
