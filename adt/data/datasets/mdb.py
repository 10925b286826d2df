"""MDB Drums: drum annotations for 23 MedleyDB tracks, used as a test-only set.

MDB Drums annotates the drums of 23 "MusicDelta" tracks of MedleyDB: 7,994 onsets
in 6 instrument classes (``annotations/class``) and 21 playing-technique subclasses
(``annotations/subclass``), plus beat annotations (``annotations/beats``), with the
drum-only stems (``audio/drum_only``), full mixes (``audio/full_mix``) and
multitracks of the original recordings (``audio/multi-tracks``).

Our mirror holds two extracts of the GitHub archive, both in its layout
``MDBDrums-master/MDB Drums/...`` (:data:`REMOTES`):

* ``mdb-drums-subset.zip``: annotations for 19 of the 23 tracks and real drum-only
  recordings (mono, 16-bit, 44.1 kHz) for 9 of them; no full mixes. Only tracks with
  both a drum-only recording and a class annotation are used. With the official
  archive the full mixes are picked up as ``mix_path`` too.
* ``mdb-drums-multitracks.zip``: the MedleyDB multitracks of those 9 songs,
  ``audio/multi-tracks/MusicDelta_<song>/`` with ``MusicDelta_<song>_METADATA.yaml``
  (stems, their instrument, their raw files) and ``MusicDelta_<song>_RAW/*.wav``
  (mono, 44.1 kHz, as long as the song; 47 files: the drum set, whose raw is the
  drum-only recording, bass, guitars, voices). The archive also holds the
  METADATA of other MDB songs without a RAW folder: ignored.

:func:`adt.data.download.fetch_all` unpacks each archive into
``<raw>/<archive name without .zip>/``; :func:`load_index` finds the layout there,
in a single extracted archive, or in ``MDB Drums/`` itself. A copy without the
multitracks (an older raw folder) works as before: ``multitrack_dir`` is None.

Real mixes and stems (:mod:`adt.data.datasets.mdb_multitrack`): per song, the unity-gain
sum of its raws by role (``drums``, ``bass``, ``other``) and in all, one peak-safe gain per
song; :func:`build` writes ``<out>/<name>/mix.wav`` and ``<out>/<name>/stems/*.wav`` for
every track with multitracks; the real mix becomes ``mix_path`` only with
``DataSettings.mdb_real_mix``.

Real-song folds (:mod:`adt.data.datasets.mdb_folds`): the 9 songs with multitracks in 3
fixed folds of 3 for k-fold training/testing on real songs.

Splits (``DataSettings.mdb_split``):

* ``mirex2017`` (default): every track in ``test``, as in the MIREX 2017 drum
  transcription task, whose MEDLEY set is MDB Drums used whole for evaluation;
  the zero-shot matrix tests on it.
* ``genre``: the thesis (Fosse, section 4.1.1) splits MDB "on specific genres" but
  its Table 4.1 names only one track (``MusicDelta_Punk``, train). We use the
  field's three genre-balanced folds (:data:`GENRE_FOLDS`) as train, validation
  and test (7/8/8 tracks).

File formats (as found): class/subclass files hold ``<time s> \\t <label>`` lines with
extra spaces around the tab and label, not always in time order (simultaneous hits);
beat files (``<name>_MIX.beats``) hold ``<time s>\\t<beat in bar>`` lines, aligned with
the mix and so with the drum-only audio.

Label mapping (MDB class -> 5-class):

| MDB class                          | 5-class  |
| ---------------------------------- | -------- |
| KD kick drum                       | BD       |
| SD snare drum                      | SD       |
| HH hi-hat                          | HH       |
| TT toms                            | TT       |
| CY cymbals (ride, crash, ...)      | CY       |
| OT other (cowbell, shaker, ...)    | dropped  |

License: Creative Commons Attribution-NonCommercial-ShareAlike 4.0 (CC BY-NC-SA 4.0).

Citation: Carl Southall, Chih-Wei Wu, Alexander Lerch, Jason Hockman, "MDB Drums - An
Annotated Subset of MedleyDB for Automatic Drum Transcription", ISMIR 2017; for the
multitracks also Rachel Bittner, Justin Salamon, Mike Tierney, Matthias Mauch, Chris
Cannam, Juan Bello, "MedleyDB: A Multitrack Dataset for Annotation-Intensive MIR
Research", ISMIR 2014 (:data:`CITATION`).

Source: https://github.com/CarlSouthall/MDBDrums
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from adt.audio import cropped_copy, read_audio
from adt.config import DataSettings
from adt.data.datasets.annotations import read_time_value_lines
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows
from adt.data.archives import archive_stem
# re-exported: documented and used as adt.data.datasets.mdb.* (docs/real-songs.md, docs/separation.md, model cards)
from adt.data.datasets.mdb_folds import REAL_SONG_FOLDS, fold_of, folds_for, validation_songs  # noqa: F401
from adt.data.datasets.mdb_multitrack import (MIX_PEAK, multitrack_raws, render_multitrack,  # noqa: F401
                                              stem_paths, stem_role, write_multitrack)
from adt.data.download import Remote

log = logging.getLogger(__name__)

NAME = "mdb"
HOMEPAGE = "https://github.com/CarlSouthall/MDBDrums"
ACCESS = "open"

REMOTES = [
    Remote(
        "mdb-drums-subset.zip",
        "https://github.com/CarlSouthall/MDBDrums/archive/refs/heads/master.zip",
        (
            # our mirror's subset (shared/datasets/README.md). The official URL serves
            # the whole repository (audio, mixes, multitracks) with a different and,
            # as a branch archive generated by GitHub, not guaranteed stable digest,
            # so only the mirror's digest is accepted: add the official one here
            # after checking a download by hand.
            "1fff65b221c6b212f0023c1337916d7b6632d9b566d2bb27f7c8b9d92f94f913",
        ),
    ),
    Remote(
        "mdb-drums-multitracks.zip",
        "https://github.com/CarlSouthall/MDBDrums/archive/refs/heads/master.zip",
        (
            # our mirror's extract of the same archive: the MedleyDB multitracks (METADATA
            # and RAW folders) of the 9 songs with a drum-only recording (shared/datasets/
            # README.md). As above, only the mirror's digest is accepted: the official URL
            # serves the whole repository under a digest GitHub does not keep stable.
            "0a9bcba11609dbf84f5338b0c30afe339af1e4f9a4bab099ab2c0837fe4e3715",
        ),
    ),
]

LICENSE = "CC BY-NC-SA 4.0 (https://creativecommons.org/licenses/by-nc-sa/4.0/)"

CITATION = """@inproceedings{southall2017mdb,
    author = {Carl Southall and Chih-Wei Wu and Alexander Lerch and Jason Hockman},
    title = {{MDB Drums} -- An Annotated Subset of {MedleyDB} for Automatic Drum Transcription},
    booktitle = {Proceedings of the 18th International Society for Music Information Retrieval Conference (ISMIR)},
    year = {2017},
}
@inproceedings{bittner2014medleydb,
    author = {Rachel M. Bittner and Justin Salamon and Mike Tierney and Matthias Mauch and Chris Cannam and
              Juan Pablo Bello},
    title = {{MedleyDB}: A Multitrack Dataset for Annotation-Intensive {MIR} Research},
    booktitle = {Proceedings of the 15th International Society for Music Information Retrieval Conference (ISMIR)},
    year = {2014},
}"""

#: MDB class -> 5-class (OT is dropped).
CLASS_MAP: dict[str, str] = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}

#: The three genre-balanced folds of MDB Drums as used by ADTOF (MZehren/ADTOF,
#: ``adtof/config.py``, ``MDB_SPLITS_DRUM_ONLY``): 7 + 8 + 8 tracks, no genre in
#: two folds. We take fold 1 as train (it holds ``MusicDelta_Punk``, the one track
#: the thesis's Table 4.1 names for train), fold 2 as validation, fold 3 as test.
GENRE_FOLDS: tuple[tuple[str, ...], ...] = (
    ("Punk", "CoolJazz", "Disco", "SwingJazz", "Rockabilly", "Gospel", "BebopJazz"),
    ("FunkJazz", "FreeJazz", "Reggae", "LatinJazz", "Britpop", "FusionJazz", "Shadows", "80sRock"),
    ("Beatles", "Grunge", "Zeppelin", "ModalJazz", "Country1", "SpeedMetal", "Rock", "Hendrix"),
)
GENRE_SPLIT: dict[str, str] = {f"MusicDelta_{g}": split for fold, split in zip(GENRE_FOLDS, SPLITS)
                               for g in fold}
SPLIT_SCHEMES = ("mirex2017", "genre")


def split_of(name: str, scheme: str = "mirex2017") -> str:
    """The split of track ``name`` (e.g. ``MusicDelta_Punk``) under ``scheme``.

    Raises:
        ValueError: an unknown scheme, or a track the genre split does not list.
    """
    if scheme == "mirex2017":
        return "test"
    if scheme != "genre":
        raise ValueError(f"unknown MDB split scheme {scheme!r}; choose one of {SPLIT_SCHEMES}")
    try:
        return GENRE_SPLIT[name]
    except KeyError:
        raise ValueError(f"{name}: not in adt.data.datasets.mdb.GENRE_SPLIT") from None


INDEX_COLUMNS = ["name", "drum_path", "class_path", "subclass_path", "beats_path", "mix_path", "multitrack_dir"]


def _tops(root: Path) -> list[Path]:
    """``root`` and the folders :func:`adt.data.download.fetch_all` unpacks each of several archives into."""
    return [root] + [root / archive_stem(r.filename) for r in REMOTES]


def _bases(root: Path) -> list[Path]:
    return [base for top in _tops(root) for base in (top / "MDBDrums-master" / "MDB Drums", top / "MDB Drums", top)]


def _mdb_folder(root: Path) -> Path:
    for base in _bases(root):
        if (base / "annotations" / "class").is_dir():
            return base
    raise FileNotFoundError(f"{root}: no 'MDB Drums/annotations/class' folder (expected the extracted "
                            "MDBDrums-master archive)")


def _multitracks_folder(root: Path) -> Path | None:
    for base in _bases(root):
        if (base / "audio" / "multi-tracks").is_dir():
            return base / "audio" / "multi-tracks"
    return None


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """Tracks that have both a drum-only recording and a class annotation.

    Args:
        root: the raw folder of :func:`adt.data.download.fetch_all` (each archive in
            ``<root>/<archive name without .zip>/``), one extracted archive (holding
            ``MDBDrums-master/``), or ``MDB Drums/``.

    Returns:
        DataFrame sorted by name, columns name (e.g. ``MusicDelta_Punk``),
        drum_path, class_path (absolute), subclass_path, beats_path, mix_path
        (absolute, or None where the file is absent) and multitrack_dir (absolute
        ``.../multi-tracks/<name>`` holding ``<name>_METADATA.yaml`` and a
        ``<name>_RAW`` folder, or None).

    Raises:
        FileNotFoundError: no MDB Drums layout under ``root``.
    """
    base = _mdb_folder(Path(root)).resolve()
    multitracks = _multitracks_folder(Path(root))
    multitracks = multitracks.resolve() if multitracks is not None else None
    rows = []
    for class_path in sorted((base / "annotations" / "class").glob("*_class.txt")):
        name = class_path.name[: -len("_class.txt")]
        drum = base / "audio" / "drum_only" / f"{name}_Drum.wav"
        if not drum.is_file():
            continue
        optional = {
            "subclass_path": base / "annotations" / "subclass" / f"{name}_subclass.txt",
            "beats_path": base / "annotations" / "beats" / f"{name}_MIX.beats",
            "mix_path": base / "audio" / "full_mix" / f"{name}_MIX.wav",
        }
        folder = multitracks / name if multitracks is not None else None
        has_multitrack = (folder is not None and (folder / f"{name}_METADATA.yaml").is_file()
                          and (folder / f"{name}_RAW").is_dir())
        rows.append({"name": name, "drum_path": str(drum), "class_path": str(class_path),
                     **{k: (str(p) if p.is_file() else None) for k, p in optional.items()},
                     "multitrack_dir": str(folder) if has_multitrack else None})
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    for col in ("subclass_path", "beats_path", "mix_path", "multitrack_dir"):  # None where absent, not NaN
        index[col] = pd.Series([r[col] for r in rows], index=index.index, dtype=object)
    return index


def read_class_annotation(path: str | os.PathLike) -> pd.DataFrame:
    """An MDB class (or subclass) file as columns time_s (seconds), label, sorted by time.

    Raises:
        ValueError: a line that is not ``<time> <label>`` (names the file and line).
    """
    return read_time_value_lines(path, "label", str, "label")


def read_beats(path: str | os.PathLike) -> pd.DataFrame:
    """An MDB ``.beats`` file as columns time_s (seconds), position (beat in bar, 1-based).

    Raises:
        ValueError: a line that is not ``<time> <beat in bar>`` (names the file and line).
    """
    return read_time_value_lines(path, "position", lambda v: int(float(v)), "beat in bar")


@dataclasses.dataclass(frozen=True)
class Track:
    """One MDB Drums track (a row of :func:`load_index`); annotations and audio load lazily."""

    name: str
    drum_path: str
    class_path: str
    subclass_path: str | None = None
    beats_path: str | None = None
    mix_path: str | None = None
    multitrack_dir: str | None = None

    @property
    def track_id(self) -> str:
        return f"{NAME}/{self.name}"

    @functools.cached_property
    def onsets(self) -> pd.DataFrame:
        """Onsets (ONSET_COLUMNS) from the class annotation, OT dropped, velocity NaN."""
        return _onsets(self.track_id, self.class_path, None)

    @functools.cached_property
    def beats(self) -> pd.DataFrame:
        """Annotated beats (BEAT_COLUMNS); empty when the track has no beat file."""
        return _beats(self.track_id, self.beats_path, None)

    def drum_audio(self) -> tuple[np.ndarray, int]:
        """The drum-only recording: (audio (channels, samples) float32, sample rate Hz)."""
        return read_audio(self.drum_path)

    def mix_audio(self) -> tuple[np.ndarray, int]:
        """The full mix (official archive only). Raises FileNotFoundError without one."""
        if self.mix_path is None:
            raise FileNotFoundError(f"{self.track_id}: no full mix in this copy of MDB Drums")
        return read_audio(self.mix_path)

    def _multitrack_dir(self) -> str:
        if self.multitrack_dir is None:
            raise FileNotFoundError(f"{self.track_id}: no multitracks in this copy of MDB Drums "
                                    "(mdb-drums-multitracks.zip)")
        return self.multitrack_dir

    def raws(self) -> list[tuple[str, str]]:
        """[(raw WAV path, role "drums" | "bass" | "other")] (:func:`multitrack_raws`).

        Raises:
            FileNotFoundError: no multitracks, or a raw named in the METADATA is missing.
        """
        return multitrack_raws(self._multitrack_dir())

    def stems(self) -> dict[str, np.ndarray]:
        """Role -> (samples,) float32 mono at 44.1 kHz, each the sum of its role's raws
        times the song's gain (:func:`render_multitrack`); they sum to :meth:`real_mix`.

        Raises:
            FileNotFoundError, ValueError, AudioReadError: as :func:`render_multitrack`.
        """
        return render_multitrack(self._multitrack_dir()).stems

    def real_mix(self) -> np.ndarray:
        """(samples,) float32 mono at 44.1 kHz: the sum of all raws times the song's gain
        (peak <= :data:`MIX_PEAK`).

        Raises:
            FileNotFoundError, ValueError, AudioReadError: as :func:`render_multitrack`.
        """
        return render_multitrack(self._multitrack_dir()).mix


def load_tracks(root: str | os.PathLike) -> dict[str, Track]:
    """Every indexed track by track_id (``mdb/<name>``)."""
    return {f"{NAME}/{row['name']}": Track(**row) for row in load_index(root).to_dict("records")}


def multitrack_tracks(root: str | os.PathLike) -> list[Track]:
    """The tracks with MedleyDB multitracks under ``root``, sorted by name.

    Raises:
        FileNotFoundError: no MDB layout, or no song with multitracks (names ``root``).
    """
    out = sorted((t for t in load_tracks(root).values() if t.multitrack_dir is not None), key=lambda t: t.name)
    if not out:
        raise FileNotFoundError(f"{root}: no MDB Drums song with multitracks (mdb-drums-multitracks.zip)")
    return out


def _onsets(track_id: str, class_path: str, duration: float | None) -> pd.DataFrame:
    ann = read_class_annotation(class_path)
    unknown = set(ann["label"]) - set(CLASS_MAP) - {"OT"}
    if unknown:
        log.warning("%s: unknown MDB classes %s dropped", class_path, sorted(unknown))
    keep = ann["label"].isin(list(CLASS_MAP))
    if duration is not None:
        keep &= ann["time_s"] < duration
    ann = ann[keep]
    return pd.DataFrame({
        "track_id": track_id, "time_s": ann["time_s"].to_numpy(dtype=float),
        "drum": ann["label"].map(CLASS_MAP).to_numpy(), "label": ann["label"].to_numpy(),
        "velocity": np.full(len(ann), np.nan),
    }, columns=ONSET_COLUMNS)


def _beats(track_id: str, beats_path: str | None, duration: float | None) -> pd.DataFrame:
    if beats_path is None:
        return pd.DataFrame(columns=BEAT_COLUMNS)
    b = read_beats(beats_path)
    if duration is not None:
        b = b[b["time_s"] < duration]
    return pd.DataFrame({"track_id": track_id, "time_s": b["time_s"].to_numpy(dtype=float),
                         "position": b["position"].to_numpy(dtype=int)}, columns=BEAT_COLUMNS)


def _style(name: str) -> str:
    """MedleyDB genre tag from the track name: ``MusicDelta_Country1`` -> ``Country``."""
    return re.sub(r"\d+$", "", name.split("_", 1)[-1])


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """The MDB Drums test tracks as unified tables.

    ``skipped`` (the signature every dataset module shares) stays empty: this builder
    leaves no selected track out; a bad file raises an error naming it.

    Takes the first ``data.mdb_tracks`` tracks of :func:`load_index` (sorted by
    name; None = all), split by ``data.mdb_split`` (:func:`split_of`). Audio longer than
    ``data.max_duration_s`` is cropped into ``<out_dir>/<name>/drums.wav`` (and
    ``full_mix.wav`` when the archive has the official mix); otherwise the original file
    is used. A track with multitracks always gets ``<out_dir>/<name>/mix.wav`` and
    ``stems/{drums,bass,other}.wav`` (:func:`render_multitrack`, same crop; float32
    WAV, mono, 44.1 kHz; :func:`stem_paths`), kept when already there.

    Returns:
        DatasetTables: tracks (drum_path the drum-only recording; mix_path the real
        mix of a track with multitracks under ``data.mdb_real_mix``, else the
        official mix if present, else None; style the MedleyDB genre tag, e.g.
        ``Punk``; no drummer or kit), onsets from the class annotation (label = MDB
        class, OT dropped, velocity NaN) and beats from the ``.beats`` file, all
        before the end of the audio.

    Raises:
        FileNotFoundError: no MDB Drums layout under ``raw_dir``; a raw file named in a
            METADATA is missing.
        adt.audio.AudioReadError: a drum-only recording or a raw cannot be read.
        ValueError: a malformed annotation line or METADATA, raws of different lengths.
        OSError: a rendered file cannot be written.
    """
    out_dir = Path(out_dir).resolve()
    index = load_index(raw_dir)
    if data.mdb_tracks is not None:
        index = index.head(int(data.mdb_tracks))
    crop_s = data.max_duration_s
    scheme = data.mdb_split
    real_mix = bool(data.mdb_real_mix)

    tracks, onsets, beats = [], [], []
    for row in index.itertuples(index=False):
        track_id = f"{NAME}/{row.name}"
        drum_path, duration, sr = cropped_copy(row.drum_path, out_dir / row.name / "drums.wav", crop_s)
        mix_path = None
        if row.multitrack_dir is not None:  # written either way; the table's mix only under mdb_real_mix
            real_path, real_duration = write_multitrack(row.multitrack_dir, out_dir / row.name, crop_s)
            if real_mix:
                mix_path, duration = real_path, min(duration, real_duration)
        if mix_path is None and row.mix_path is not None:
            mix_path, mix_duration, _ = cropped_copy(row.mix_path, out_dir / row.name / "full_mix.wav", crop_s)
            duration = min(duration, mix_duration)
        tracks.append({
            "track_id": track_id, "dataset": NAME, "split": split_of(row.name, scheme), "duration_s": float(duration),
            "sample_rate": sr, "mix_path": mix_path, "drum_path": drum_path, "midi_path": None,
            "style": _style(row.name), "drummer": None, "kit": None,
        })

        onsets.append(_onsets(track_id, row.class_path, duration))
        if row.beats_path is None:
            log.warning("%s: no beat annotation", track_id)
        beats.append(_beats(track_id, row.beats_path, duration))

    return DatasetTables(
        tracks=pd.DataFrame(tracks, columns=TRACK_COLUMNS),
        onsets=concat_rows(onsets, ONSET_COLUMNS),
        beats=concat_rows(beats, BEAT_COLUMNS),
    )

