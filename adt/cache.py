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
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adt.atomic import write_json
from adt.config import data_dir


def cache_key(*parts: Any) -> str:
    """Short SHA-256 of the JSON of ``parts`` (order matters)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_key(path: str | Path) -> str:
    """Cheap content identity of a file: name, size and modification time."""
    st = Path(path).stat()
    return f"{Path(path).name}:{st.st_size}:{int(st.st_mtime_ns)}"


class StageCache:
    """The output folder of one stage for one key."""

    def __init__(self, stage: str, key: str):
        self.stage, self.key = stage, key
        self.dir = data_dir() / stage / key

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def load(self) -> dict | None:
        """The manifest of a complete earlier run, or None."""
        if self.manifest_path.is_file():
            return json.loads(self.manifest_path.read_text())
        return None

    def save(self, manifest: dict) -> dict:
        """Mark the folder complete with ``manifest`` (which gets the key added)."""
        manifest = {**manifest, "key": self.key, "stage": self.stage}
        write_json(self.manifest_path, manifest)
        return manifest

    def get_or_compute(self, compute: Callable[[Path], dict]) -> dict:
        """The manifest of a complete earlier run, else ``compute(self.dir)``'s, saved.

        ``compute`` writes its files into the folder (atomically) and returns the
        JSON-able manifest; the folder counts as complete only after it returns.
        """
        manifest = self.load()
        if manifest is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            manifest = self.save(compute(self.dir))
        return manifest


def stage_cache(stage: str, version: str, *upstream: Any) -> StageCache:
    """The cache folder ``<data>/<stage>/<key>`` with key = hash of (stage, version, *upstream).

    ``upstream``: everything the output depends on (upstream content keys, settings,
    profile fields), JSON-able.
    """
    return StageCache(stage, cache_key(stage, version, *upstream))


def safe_name(track_id: str) -> str:
    """A track id as a file name: ``"groove/drummer1/x"`` -> ``"groove__drummer1__x"``."""
    return track_id.replace("/", "__")


def track_file(folder: str | Path, track_id: str, suffix: str) -> Path:
    """Per-track file ``<folder>/<safe track id><suffix>`` (e.g. ``suffix=".wav"``)."""
    return Path(folder) / f"{safe_name(track_id)}{suffix}"
