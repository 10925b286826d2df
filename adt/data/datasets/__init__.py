"""Datasets, one module each (mirdata style), all unified into three tables.

Every module ``adt.data.datasets.<name>`` exposes:

* ``NAME`` (the partition key), ``HOMEPAGE``, ``ACCESS`` (``"open"`` or
  ``"on request"``), ``LICENSE``, ``CITATION`` (BibTeX);
* ``REMOTES``: :class:`adt.data.download.Remote` entries with the official URLs and
  checksums as published (a ``manual`` page for datasets given out on request);
  :func:`adt.data.download.fetch_all` fetches and unpacks them into one raw folder;
* ``load_index(root) -> DataFrame``: one row per track of the raw folder, with at
  least ``track_id`` and ``split``; ``load_tracks(root) -> dict[str, Track]``
  where ``Track`` holds the paths and loads lazily (``onsets``, ``beats``,
  ``mix_audio()``, ``drum_audio()``, where the dataset has them);
* ``build(raw_dir, out_dir, data, skipped=None) -> DatasetTables`` (``data``: the profile's
  :class:`adt.config.DataSettings`): reads the
  dataset's own layout under ``raw_dir``, writes any audio it renders, mixes or crops
  under ``out_dir`` (atomically) and returns the unified tables below; tracks it leaves
  out (unreadable files) are appended to ``skipped`` as {track_id, split, reason}. The module
  docstring holds the label mapping to 5 classes as a table.

Schemas (all paths absolute):

* tracks: track_id (str, ``"<dataset>/<name>"``), dataset, split (train |
  validation | test), duration_s (float, seconds), sample_rate (int, Hz),
  mix_path (str or None: a mixture with accompaniment), drum_path (str or None:
  drum stem or drum-only recording), midi_path (str or None), style, drummer,
  kit (str or None).
* onsets: track_id, time_s (float, seconds), drum (5-class: BD SD TT HH CY),
  label (the source's own label: GM note or MDB class), velocity (float 1..127,
  NaN when the source has none).
* beats (ground truth): track_id, time_s (seconds), position (beat in bar, 1-based; 0 unknown).
"""

from __future__ import annotations

import dataclasses
import importlib
import re

import pandas as pd

TRACK_COLUMNS = ["track_id", "dataset", "split", "duration_s", "sample_rate", "mix_path", "drum_path",
                 "midi_path", "style", "drummer", "kit"]
ONSET_COLUMNS = ["track_id", "time_s", "drum", "label", "velocity"]
BEAT_COLUMNS = ["track_id", "time_s", "position"]
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class DatasetTables:
    """The unified tables of one dataset (see the module docstring for schemas)."""

    tracks: pd.DataFrame
    onsets: pd.DataFrame
    beats: pd.DataFrame

    def __post_init__(self) -> None:
        for name, cols in (("tracks", TRACK_COLUMNS), ("onsets", ONSET_COLUMNS), ("beats", BEAT_COLUMNS)):
            df = getattr(self, name)
            missing = [c for c in cols if c not in df.columns]
            if missing:
                raise ValueError(f"{name} table lacks columns {missing}")
            setattr(self, name, df[cols].reset_index(drop=True))


#: Every dataset module, in build order.
DATASETS = ("demo", "groove", "egmd", "slakh", "enst", "mdb", "adtof")


def natural_key(text) -> tuple:
    """Sort key that orders digit runs numerically (``"session2" < "session10"``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(text)))


def track_folder(track_id: str) -> str:
    """Folder name for a track's audio under its dataset's output folder: the id without
    the ``<dataset>/`` prefix, ``/`` -> ``__``, other unsafe characters -> ``_``."""
    name = track_id.split("/", 1)[1] if "/" in track_id else track_id
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__"))


def concat_rows(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """Concatenate per-track tables (empty ones skipped) into one with ``columns``."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def get_module(name: str):
    """The dataset module called ``name`` (imported lazily).

    Raises:
        ValueError: an unknown dataset name.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {DATASETS}")
    return importlib.import_module(f"adt.data.datasets.{name}")
