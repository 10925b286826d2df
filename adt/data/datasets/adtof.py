"""ADTOF-YT: drum transcription targets on spectrograms of real (non-synthetic) music.

ADTOF (Zehren, Alunno, Bientinesi) derives drum annotations from crowdsourced
rhythm-game charts, cleaned and aligned automatically: ADTOF-RGW (the ISMIR 2021
set) and ADTOF-YT (Signals 2023), 359 hours in all. The music is copyrighted, so
the authors share the data on request only and as features: for every split a
``tf.data.Dataset.save`` export of training samples, each 400 frames (4 s) of
spectrogram with its 5-class frame targets (ADTOF README, ``Dataset.png`` and
``bin/importDataset.ipynb``). The samples are cut by ``adtof.model.track.Track.getSlice``,
whose generator shuffles (track, slice) pairs, so neighbouring samples need not be
neighbouring audio. There is no audio, no track name and no beat in the export: a
"track" here is one sample, named by split and position (``adtof/yt_train_000000``).

Layout (``tf.data.Dataset.save``, TensorFlow's snapshot format version 2), one folder
per split, ``adtof_yt_train``, ``adtof_yt_val`` (or ``_valid``, ``_validation``) and
``adtof_yt_test`` (the notebook loads ``adtof_rgw_test``: ``<subset>_<split>``)::

    adtof_yt_test/snapshot.metadata                   SnapshotMetadataRecord: run_id, version 2,
                                                      component dtypes, num_elements, finalized
    adtof_yt_test/dataset_spec.pb                     element spec (ignored here)
    adtof_yt_test/<run_id>/00000000.shard/00000000.snapshot   TFRecord file, more shards alike

Each element is ``({"x": x}, y)``, flattened to two TFRecord records holding
serialized ``TensorProto``s, x then y (:mod:`adt.data.tfrecord`); x is found as the
rank-3 float component, y as the rank-2 one with 5 columns. Shard files are read in
name order, elements in file order (``tf.data.Dataset.load`` interleaves shards).

* x: float32, (frames, 84, 1) -> (frames, 84) here. NOT our log-mel: ADTOF's
  ``adtof.io.mir.openMadmom``, i.e. madmom's LogarithmicFilteredSpectrogram of the
  mono mix at 44.1 kHz, frame size 2048 (Hann), hop 441 samples (100 frames/s), 12
  log-spaced triangular bands per octave from 20 Hz to 20 kHz (normalized, unique:
  84 bands), magnitude as log10(1 + |X|).
* y: float32, (frames, 5), columns in ADTOF's order (``config.LABELS_5``); an onset
  at t s sets frame round(100 t) to 1 and its two neighbours to 0.5
  (``Track.getDenseEncoding``, labelRadiation=1). Onsets are read back as the frames
  equal to 1, at frame / 100 s; two hits of a class one frame apart overlap in y.

Label mapping (y column, ADTOF class -> 5-class). ADTOF has already reduced the
charts' GM notes to one note per class with ``instrumentsMapping.MIDI_REDUCED_5``:

| y column | ADTOF class (note) | GM notes reduced to it              | 5-class |
| -------- | ------------------ | ----------------------------------- | ------- |
| 0        | BD (35)            | 35, 36                              | BD      |
| 1        | SD (38)            | 38, 40 (and 37 in some versions)    | SD      |
| 2        | TT (47)            | 41, 43, 45, 47, 48, 50              | TT      |
| 3        | HH (42)            | 42, 44, 46 (closed, pedal, open)    | HH      |
| 4        | CY+RD (49)         | 49, 51, 52, 53, 55, 57, 59          | CY      |

Splits: ADTOF's own, one folder each, made by band so that no artist is in two
splits (``DataLoader.getADTOF``: 10-fold GroupKFold over the bands of ADTOF-RGW and
-YT together, one fold for test, the next for validation, the rest for training).
``build`` takes the first ``data.tracks_per_split`` samples of each split and crops
them to ``data.max_duration_s`` (frames = 100 x seconds).

Placing the files: request access on the Zenodo record (:data:`RECORD`), then put
the ADTOF-YT split folders, zipped, as ``adtof_yt.zip`` into the downloads folder
(or the mirror folder). The record is restricted and its file names could not be
checked: any zip holding the three ``adtof_yt_*`` folders at any depth works (e.g.
``cd "export adtofv2" && zip -r adtof_yt.zip adtof_yt_*``). No digest is published,
so the archive's SHA-256 is logged, not checked.

License: the ADTOF repository is CC BY-NC-SA 4.0; the data's own terms are those
granted with the access request (not checked here).

Citation: Mickaël Zehren, Marco Alunno, Paolo Bientinesi, "ADTOF: A large dataset of
non-synthetic music for automatic drum transcription", ISMIR 2021; "High-Quality and
Reproducible Automatic Drum Transcription from Crowdsourced Data", Signals 4(4), 2023
(:data:`CITATION`).

Source: https://github.com/MZehren/ADTOF (data: https://doi.org/10.5281/zenodo.10084510)
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from adt.atomic import atomic_path
from adt.config import DataSettings
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows
from adt.data.download import Remote
from adt.data.tfrecord import count_records, packed_varints, parse_tensor, proto_fields, read_records

log = logging.getLogger(__name__)

NAME = "adtof"
VERSION = "1"
HOMEPAGE = "https://github.com/MZehren/ADTOF"
ACCESS = "on request"
#: The Zenodo record (concept DOI 10.5281/zenodo.10084510) where access is requested.
RECORD = "https://zenodo.org/records/10084511"
ARCHIVE = "adtof_yt.zip"

REMOTES = [
    # Restricted record: no public file list or digest; see the module docstring.
    Remote(ARCHIVE, RECORD, manual=RECORD),
]

LICENSE = ("CC BY-NC-SA 4.0 for the ADTOF repository (https://creativecommons.org/licenses/by-nc-sa/4.0/); "
           "the data is given out on request under the terms stated there")

CITATION = """@inproceedings{zehren2021adtof,
    author = {Micka{\\"e}l Zehren and Marco Alunno and Paolo Bientinesi},
    title = {{ADTOF}: A Large Dataset of Non-Synthetic Music for Automatic Drum Transcription},
    booktitle = {Proceedings of the 22nd International Society for Music Information Retrieval Conference (ISMIR)},
    pages = {818--824},
    year = {2021},
}
@article{zehren2023high,
    author = {Micka{\\"e}l Zehren and Marco Alunno and Paolo Bientinesi},
    title = {High-Quality and Reproducible Automatic Drum Transcription from Crowdsourced Data},
    journal = {Signals},
    volume = {4},
    number = {4},
    pages = {768--787},
    year = {2023},
    doi = {10.3390/signals4040042},
}"""

#: The export's subset (folder prefix ``<SUBSET>_<split>``); ``adtof_rgw`` is the ISMIR 2021 set.
SUBSET = "adtof_yt"
FPS = 100  # frames per second of x and y
SAMPLE_RATE = 44100  # Hz, the audio rate ADTOF computed x at
N_BINS = 84
#: ADTOF's classes in the order of y's columns (``config.LABELS_5TXT``) and their GM notes (``LABELS_5``).
CLASSES = ("BD", "SD", "TT", "HH", "CY+RD")
NOTES = (35, 38, 47, 42, 49)
CLASS_MAP: dict[str, str] = {"BD": "BD", "SD": "SD", "TT": "TT", "HH": "HH", "CY+RD": "CY"}
#: Split folder suffix -> our split.
SPLIT_SUFFIXES = {"train": "train", "val": "validation", "valid": "validation", "validation": "validation",
                  "test": "test"}
METADATA_FILE = "snapshot.metadata"
INDEX_COLUMNS = ["track_id", "name", "split", "path", "element"]


def split_folders(root: str | os.PathLike, subset: str = SUBSET) -> list[tuple[str, Path]]:
    """The export's split folders under ``root`` (searched at any depth), in split order.

    Returns:
        [(split, folder)]: folders named ``<subset>_<suffix>`` (suffix in :data:`SPLIT_SUFFIXES`)
        holding ``snapshot.metadata``.

    Raises:
        FileNotFoundError: none found, or two folders for one split.
    """
    pattern = re.compile(rf"{re.escape(subset)}_({'|'.join(SPLIT_SUFFIXES)})")
    found: dict[str, Path] = {}
    for meta in sorted(Path(root).rglob(METADATA_FILE)):
        match = pattern.fullmatch(meta.parent.name)
        if match:
            split = SPLIT_SUFFIXES[match.group(1)]
            if split in found:
                raise FileNotFoundError(f"{root}: two {split} folders, {found[split]} and {meta.parent}")
            found[split] = meta.parent
    if not found:
        raise FileNotFoundError(f"{root}: no {subset}_{{train,val,test}} folder holding {METADATA_FILE} "
                                f"(expected the tf.data.Dataset.save export of ADTOF, see adt.data.datasets.adtof)")
    return [(s, found[s]) for s in SPLITS if s in found]


def read_metadata(folder: str | os.PathLike) -> dict:
    """A save folder's ``snapshot.metadata`` (binary SnapshotMetadataRecord,
    ``tensorflow/core/protobuf/snapshot.proto``).

    Returns:
        {"run_id": str, "version": int, "dtypes": [TF DataType codes], "num_elements": int,
        "finalized": bool}.

    Raises:
        ValueError: unreadable, not format version 2, or not finalized (an interrupted save).
    """
    path = Path(folder) / METADATA_FILE
    meta = {"run_id": "", "version": 0, "dtypes": [], "num_elements": 0, "finalized": False}
    try:
        for field, wire, value in proto_fields(path.read_bytes()):
            if field == 2:
                meta["run_id"] = value.decode()
            elif field == 4:
                meta["version"] = value
            elif field == 5:  # repeated enum, packed or not
                meta["dtypes"] += [value] if wire == 0 else packed_varints(value)
            elif field == 6:
                meta["num_elements"] = value
            elif field == 1000:
                meta["finalized"] = bool(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable snapshot metadata file ({exc})") from None
    if meta["version"] != 2 or not meta["run_id"]:
        raise ValueError(f"{path}: snapshot format version {meta['version']} (run {meta['run_id']!r}); "
                         "only version 2 (tf.data.Dataset.save, TFRecord shards) is supported")
    if not meta["finalized"]:
        raise ValueError(f"{path}: the save was not finalized (interrupted); export the split again")
    return meta


def _shard_files(folder: Path, meta: dict) -> list[Path]:
    files = sorted((folder / meta["run_id"]).glob("*.shard/*.snapshot"))
    if not files and meta["num_elements"]:
        raise ValueError(f"{folder}: no shard files under {meta['run_id']}/ (expected *.shard/*.snapshot)")
    return files


def _components(meta: dict, folder: Path) -> int:
    n = len(meta["dtypes"])
    if n < 2:
        raise ValueError(f"{folder / METADATA_FILE}: elements of {n} component(s); expected x and y")
    return n


def _track_id(split: str, i: int) -> str:
    return f"{NAME}/{SUBSET.removeprefix('adtof_')}_{split}_{i:06d}"


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """One row per sample of the export, in reading order.

    Returns:
        DataFrame with columns track_id (``adtof/yt_<split>_<i>``, i counting from 0 per
        split), name, split, path (the shard file) and element (the sample's position in it).

    Raises:
        FileNotFoundError: no export under ``root``.
        ValueError: bad metadata, a corrupt shard file, or a shard with a partial element.
    """
    rows = []
    for split, folder in split_folders(root):
        meta = read_metadata(folder)
        n, i = _components(meta, folder), 0
        for path in _shard_files(folder, meta):
            records = count_records(path)
            if records % n:
                raise ValueError(f"{path}: {records} records do not make whole elements of {n} components")
            for element in range(records // n):
                track_id, i = _track_id(split, i), i + 1
                rows.append({"track_id": track_id, "name": track_id.split("/", 1)[1], "split": split,
                             "path": str(path.resolve()), "element": element})
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def _x_and_y(tensors: list[np.ndarray], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """x (frames, bins) and y (frames, 5), both float32, from one element's components."""
    xs = [t for t in tensors if t.ndim == 3 and t.dtype.kind == "f"]
    ys = [t for t in tensors if t.ndim == 2 and t.dtype.kind == "f" and t.shape[1] == len(CLASSES)]
    if not xs or not ys:
        raise ValueError(f"{path}: an element with components of shapes {[t.shape for t in tensors]}; expected "
                         f"x (frames, bins, channels) and y (frames, {len(CLASSES)})")
    x, y = xs[0], ys[0]
    if x.shape[2] != 1:
        raise ValueError(f"{path}: x has {x.shape[2]} channels; expected 1")
    x = x[:, :, 0]
    if len(x) > len(y):  # valid padding: x carries the encoder's context around y's frames
        start = (len(x) - len(y)) // 2
        x = x[start:start + len(y)]
    elif len(x) < len(y):
        raise ValueError(f"{path}: x has {len(x)} frames, fewer than y's {len(y)}")
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(y, dtype=np.float32)


def _elements(path: Path, n: int) -> Iterator[list[np.ndarray]]:
    """The elements of one shard file: ``n`` consecutive TensorProto records each."""
    element: list[bytes] = []
    for record in read_records(path):
        element.append(record)
        if len(element) == n:
            try:
                tensors = [parse_tensor(r) for r in element]
            except ValueError as exc:
                raise ValueError(f"{path}: records that are not TensorProtos ({exc})") from None
            yield tensors
            element = []
    if element:
        raise ValueError(f"{path}: ends inside an element ({len(element)} of {n} components)")


def _samples(folder: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    meta = read_metadata(folder)
    n = _components(meta, folder)
    for path in _shard_files(folder, meta):
        for tensors in _elements(path, n):
            yield _x_and_y(tensors, path)


def load_features(raw_dir: str | os.PathLike, tracks_per_split: int | None = None
                  ) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """The samples of the export, split by split, in :func:`load_index` order.

    Args:
        tracks_per_split: stop after this many samples per split (None = all).

    Yields:
        (track_id, split, x, y): x float32 (frames, 84), ADTOF's log-frequency spectrogram
        at 100 frames/s; y float32 (frames, 5), the targets in :data:`CLASSES` order.

    Raises:
        FileNotFoundError: no export under ``raw_dir``.
        ValueError: bad metadata or a corrupt/truncated shard file (names the file).
    """
    for split, folder in split_folders(raw_dir):
        for i, (x, y) in enumerate(itertools.islice(_samples(folder), tracks_per_split)):
            yield _track_id(split, i), split, x, y


def onsets_from_targets(y: np.ndarray) -> pd.DataFrame:
    """Onsets encoded in ADTOF targets: the frames where y is 1.

    Args:
        y: (frames, 5) targets in :data:`CLASSES` order.

    Returns:
        DataFrame with columns time_s (frame / 100, seconds), drum (5-class), label (ADTOF class)
        and velocity (NaN), sorted by time then column.
    """
    frames, cols = np.nonzero(np.asarray(y) >= 1.0 - 1e-6)
    order = np.lexsort((cols, frames))
    frames, cols = frames[order], cols[order]
    labels = np.array(CLASSES, dtype=object)[cols]
    return pd.DataFrame({"time_s": frames / FPS, "drum": [CLASS_MAP[c] for c in labels], "label": labels,
                         "velocity": np.full(len(frames), np.nan)})


def feature_paths(out_dir: str | os.PathLike, track_id: str) -> tuple[Path, Path]:
    """Where :func:`build` writes a track's x and y: ``<out_dir>/<name>/x.npy``, ``y.npy``."""
    folder = Path(out_dir) / track_id.split("/", 1)[1].replace("/", "__")
    return folder / "x.npy", folder / "y.npy"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """The ADTOF-YT samples as unified tables, their features written as NumPy files.

    ``skipped`` (the signature every dataset module shares) stays empty: this builder
    leaves no selected track out; a bad file raises an error naming it.

    Takes the first ``data.tracks_per_split`` samples of each split (None = all),
    cropped to ``data.max_duration_s`` (None = whole), and writes each one's x
    (frames, 84) and y (frames, 5), float32, to :func:`feature_paths` atomically.

    Returns:
        DatasetTables: tracks (mix_path, drum_path, midi_path None: there is no audio;
        duration_s = frames / 100; sample_rate 44100, the rate x was computed at; no
        style, drummer or kit), onsets from y (:func:`onsets_from_targets`; label = ADTOF
        class, velocity NaN) and no beats.

    Raises:
        FileNotFoundError: no export under ``raw_dir``.
        ValueError: bad metadata or a corrupt/truncated shard file (names the file).
    """
    out_dir = Path(out_dir).resolve()
    crop = None if data.max_duration_s is None else int(round(data.max_duration_s * FPS))
    tracks, onsets = [], []
    for track_id, split, x, y in load_features(raw_dir, data.tracks_per_split):
        if crop is not None:
            x, y = x[:crop], y[:crop]
        x_path, y_path = feature_paths(out_dir, track_id)
        _save_npy(x_path, x)
        _save_npy(y_path, y)
        tracks.append({"track_id": track_id, "dataset": NAME, "split": split, "duration_s": len(y) / FPS,
                       "sample_rate": SAMPLE_RATE, "mix_path": None, "drum_path": None, "midi_path": None,
                       "style": None, "drummer": None, "kit": None})
        onsets.append(onsets_from_targets(y).assign(track_id=track_id)[ONSET_COLUMNS])
    log.info("adtof: %d samples written under %s", len(tracks), out_dir)
    return DatasetTables(tracks=pd.DataFrame(tracks, columns=TRACK_COLUMNS), onsets=concat_rows(onsets, ONSET_COLUMNS),
                         beats=pd.DataFrame(columns=BEAT_COLUMNS))
