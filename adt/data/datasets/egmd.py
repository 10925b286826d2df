"""Expanded Groove MIDI Dataset (E-GMD) v1.0.0: drum-only audio with aligned MIDI.

E-GMD holds 444 hours of drum audio: the human performances of the Groove MIDI
Dataset (10 drummers, beats and fills in many styles) played back through a Roland
TD-17 module on 43 drum kits and recorded, each rendering with its own MIDI file,
aligned with the audio (within 2 ms, per the paper). ``e-gmd-v1.0.0.csv`` has one
row per (performance, kit) rendering: 45,537 rows = 1,059 performances (column
``id``) x 43 kits (``kit_name``); splits follow the performances (35,217 train /
5,031 validation / 5,289 test rows), so all kits of a performance share its split.

Layout (the extracted ``e-gmd-v1.0.0.zip``)::

    e-gmd-v1.0.0/
        e-gmd-v1.0.0.csv        drummer, session, id, style, bpm, beat_type,
                                time_signature, duration (s), split, midi_filename,
                                audio_filename, kit_name
        drummer1/session1/1_funk_80_beat_4-4_1.midi    one MIDI file per rendering
        drummer1/session1/1_funk_80_beat_4-4_1.wav     its audio (drums only)
        ...                                            (``_<k>``: the kit's number)

Tracks: ``egmd/<audio_filename without .wav>``, e.g.
``egmd/drummer1/eval_session/1_funk-groove1_138_beat_4-4_1``. The audio is a drum
recording, so it is the ``drum_path``; there is no mixture (``mix_path`` None).

Label mapping (GM note -> 5-class): :data:`adt.vocab.GM_TO_CLASS`. The MIDI uses the
Roland TD-11/TD-17 note set of the Groove MIDI Dataset:

| GM notes in E-GMD                                                   | 5-class |
| ------------------------------------------------------------------- | ------- |
| 36 kick                                                             | BD      |
| 37 snare x-stick, 38 snare head, 40 snare rim                       | SD      |
| 48/50 tom 1 head/rim, 45/47 tom 2 head/rim, 43/58 tom 3 head/rim    | TT      |
| 42/22 hi-hat closed bow/edge, 46/26 hi-hat open bow/edge, 44 pedal  | HH      |
| 49/55 crash 1 bow/edge, 57/52 crash 2 bow/edge, 51/59/53 ride bow/edge/bell | CY |
| anything else (e.g. 54 tambourine, aux pads of some kits)           | dropped |

Each rendering has its own MIDI file, and kits may map pads to other notes (e.g.
cross-stick sent as snare head on electronic kits, reported by users of the data),
so onsets are always read from the row's own MIDI file.

Selection (:func:`order_tracks`, :func:`build`): eligible are 4/4
(``time_signature == "4-4"``) beats and fills (``beat_type`` beat or fill) of at
least :data:`MIN_DURATION_S` seconds (``duration`` column). Within each split the
performances are taken drummer by drummer in turn (each drummer's performances in
natural ``id`` order), one kit rendering each, the kit least used so far; then a
second rendering of every performance, and so on. So a few tracks already span
drummers and kits, and a larger count only appends tracks. A track whose audio or
MIDI file is missing or unreadable is skipped with a logged warning naming the
file (the next one in the order takes its place) and listed in ``build``'s ``skipped``.

License: Creative Commons Attribution 4.0 International (CC BY 4.0).

Citation: Lee Callender, Curtis Hawthorne, Jesse Engel, "Improving Perceptual
Quality of Drum Transcription with the Expanded Groove MIDI Dataset",
arXiv:2004.00188, 2020 (:data:`CITATION`).

Source: https://magenta.tensorflow.org/datasets/e-gmd (archived on Zenodo, record
4300943: https://zenodo.org/records/4300943).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pretty_midi

from adt.audio import AudioReadError, cropped_copy, read_audio
from adt.config import DataSettings
from adt.data.datasets import (BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows,
                          natural_key, track_folder)
from adt.data.download import Remote
from adt.midi import MidiReadError, beats_from_midi, load_midi, onsets_from_midi

log = logging.getLogger(__name__)

NAME = "egmd"
HOMEPAGE = "https://magenta.tensorflow.org/datasets/e-gmd"
ACCESS = "open"
ZENODO_RECORD = "https://zenodo.org/records/4300943"

_BASE_URL = "https://storage.googleapis.com/magentadata/datasets/e-gmd/v1.0.0"

# Checksums: the publishers give none on the dataset page; Zenodo lists an MD5 per
# file, which could not be read from here (no network access). The SHA-256 digests
# below are the ones a third-party download script verifies its downloads of these
# URLs against (found with a code search; its repository is not named by the index):
# not published by the authors. If a genuine download fails the check, compare its
# MD5 with the one on the Zenodo record and add that as ``md5=``.
# Sizes: the exact byte counts were not found; the figures are estimates (about
# 90 GB zipped, about 132 GB unpacked, as reported by users), used for the free-disk
# check and, being far above pipelines.materialize.AUTO_DOWNLOAD_BYTES, so that
# ``make demo`` never starts this download on its own.
REMOTES = [
    Remote(
        "e-gmd-v1.0.0.zip",
        f"{_BASE_URL}/e-gmd-v1.0.0.zip",
        ("7d9a264fb4c9eabd9fec09d5f8e333192f529b1a1b845d170279a977ac436053",),
        size=90 * 10**9,
        extracted_size=132 * 10**9,
    )
]

#: The MIDI-only archive (about 100 MB: the CSV and the MIDI files, no audio). Not in
#: :data:`REMOTES` (``build`` needs the audio); for symbolic uses. SHA-256 from the
#: same third-party script as above.
MIDI_REMOTE = Remote(
    "e-gmd-v1.0.0-midi.zip",
    f"{_BASE_URL}/e-gmd-v1.0.0-midi.zip",
    ("5e70a6f4d760385a5e5ec986a2f02179d96f61181a920e592876b577a75844d3",),
)

LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"

CITATION = """@misc{callender2020improving,
    author = {Lee Callender and Curtis Hawthorne and Jesse Engel},
    title = {Improving Perceptual Quality of Drum Transcription with the Expanded Groove MIDI Dataset},
    year = {2020},
    eprint = {2004.00188},
    archivePrefix = {arXiv},
    primaryClass = {cs.SD},
}"""

#: Folder and index file inside the archive.
FOLDER = "e-gmd-v1.0.0"
CSV_NAME = "e-gmd-v1.0.0.csv"
#: Columns of ``e-gmd-v1.0.0.csv``, in the file's order.
CSV_COLUMNS = ["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature", "duration", "split",
               "midi_filename", "audio_filename", "kit_name"]
#: Performances shorter than this (seconds, ``duration`` column) are not selected.
MIN_DURATION_S = 5.0
#: Selected time signature and beat types.
TIME_SIGNATURE = "4-4"
BEAT_TYPES = ("beat", "fill")



def _egmd_folder(root: Path) -> Path:
    for base in (root / FOLDER, root):
        if (base / CSV_NAME).is_file():
            return base
    raise FileNotFoundError(f"{root}: no {FOLDER}/{CSV_NAME} (expected the extracted e-gmd-v1.0.0.zip)")


def _track_id(audio_filename: str) -> str:
    path = PurePosixPath(audio_filename.replace("\\", "/"))
    return f"{NAME}/{path.with_suffix('')}"


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """The dataset's ``e-gmd-v1.0.0.csv`` as a DataFrame, one row per kit rendering.

    Args:
        root: the extracted archive (the folder holding ``e-gmd-v1.0.0/``), or
            ``e-gmd-v1.0.0/`` itself.

    Returns:
        the CSV's columns (:data:`CSV_COLUMNS`; ``bpm`` and ``duration`` (seconds)
        numeric) plus ``midi_path`` and ``audio_path`` (absolute) and ``track_id``
        (``"egmd/" +`` audio_filename without ``.wav``), in the file's row order.

    Raises:
        FileNotFoundError: no ``e-gmd-v1.0.0.csv`` under ``root``.
        ValueError: the CSV lacks columns, has non-numeric bpm/duration, empty file
            names, an unknown split or duplicate audio files (names the file).
    """
    base = _egmd_folder(Path(root)).resolve()
    path = base / CSV_NAME
    text_columns = [c for c in CSV_COLUMNS if c not in ("bpm", "duration")]
    df = pd.read_csv(path, dtype={c: str for c in text_columns})
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    try:
        df["bpm"] = pd.to_numeric(df["bpm"])
        df["duration"] = pd.to_numeric(df["duration"]).astype(float)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: non-numeric bpm or duration ({exc})") from None
    for col in ("midi_filename", "audio_filename"):
        if df[col].isna().any():
            raise ValueError(f"{path}: empty {col} in rows {list(df.index[df[col].isna()][:5])}")
    unknown = set(df["split"]) - set(SPLITS)
    if unknown:
        raise ValueError(f"{path}: unknown split values {sorted(map(str, unknown))}")
    df["midi_path"] = [str(base / f) for f in df["midi_filename"]]
    df["audio_path"] = [str(base / f) for f in df["audio_filename"]]
    df["track_id"] = [_track_id(f) for f in df["audio_filename"]]
    dupes = df["track_id"][df["track_id"].duplicated()]
    if not dupes.empty:
        raise ValueError(f"{path}: audio files listed more than once: {sorted(set(dupes))[:5]}")
    return df


def is_eligible(index: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows :func:`build` may select: 4/4 beats and fills of at
    least :data:`MIN_DURATION_S` seconds."""
    return ((index["time_signature"] == TIME_SIGNATURE) & index["beat_type"].isin(BEAT_TYPES)
            & (index["duration"] >= MIN_DURATION_S))


def _split_order(sub: pd.DataFrame) -> list[int]:
    """Positions (into ``sub``, one split's eligible rows) in selection order."""
    ids, drummers = sub["id"].tolist(), sub["drummer"].tolist()
    kits, audio = sub["kit_name"].tolist(), sub["audio_filename"].tolist()
    renders: dict[str, list[int]] = defaultdict(list)
    drummer_of: dict[str, str] = {}
    for pos, perf in enumerate(ids):
        renders[perf].append(pos)
        drummer_of.setdefault(perf, drummers[pos])
    # performances: drummers in turn, each drummer's in natural id order
    per_drummer: dict[str, list[str]] = defaultdict(list)
    for perf in sorted(renders, key=natural_key):
        per_drummer[drummer_of[perf]].append(perf)
    rank = {perf: r for perfs in per_drummer.values() for r, perf in enumerate(perfs)}
    performances = sorted(renders, key=lambda p: (rank[p], natural_key(drummer_of[p]), natural_key(p)))
    # renderings: one per performance per pass, the kit used least so far
    kit_rank = {k: i for i, k in enumerate(sorted(set(kits), key=natural_key))}
    used: Counter = Counter()
    left = {p: sorted(renders[p], key=lambda i: natural_key(audio[i])) for p in performances}
    order: list[int] = []
    while len(order) < len(sub):
        for perf in performances:
            if not left[perf]:
                continue
            best = min(left[perf], key=lambda i: (used[kits[i]], kit_rank[kits[i]]))
            left[perf].remove(best)
            used[kits[best]] += 1
            order.append(best)
    return order


def order_tracks(index: pd.DataFrame) -> pd.DataFrame:
    """Every eligible row (:func:`is_eligible`) in selection order.

    Per split (train, validation, test): performances drummer by drummer in turn,
    one kit rendering each (the kit used least so far in the split, ties by kit name),
    then further renderings pass by pass. Deterministic; taking the first ``n`` rows
    of a split is :func:`select_tracks`.

    Returns:
        the eligible rows of ``index``, splits in the order train, validation, test.
    """
    eligible = index[is_eligible(index)]
    parts = []
    for split in SPLITS:
        sub = eligible[eligible["split"] == split]
        if not sub.empty:
            parts.append(sub.iloc[_split_order(sub)])
    return pd.concat(parts) if parts else eligible.iloc[:0]


def select_tracks(index: pd.DataFrame, per_split: int | None) -> pd.DataFrame:
    """The first ``per_split`` rows of each split of :func:`order_tracks` (None: all)."""
    ordered = order_tracks(index)
    if per_split is None:
        return ordered
    return ordered.groupby("split", sort=False).head(int(per_split))


@dataclasses.dataclass
class Track:
    """One E-GMD rendering (a performance on one kit); annotations load lazily.

    Attributes:
        track_id: ``egmd/<audio_filename without .wav>``.
        performance: the CSV ``id`` (shared by the 43 kit renderings).
        duration_s: the CSV ``duration`` (seconds).
        kit: the CSV ``kit_name`` (TD-17 kit).
        midi_path, audio_path: absolute paths.
    """

    track_id: str
    split: str
    drummer: str
    session: str
    performance: str
    style: str
    bpm: float
    beat_type: str
    time_signature: str
    duration_s: float
    kit: str
    midi_path: str
    audio_path: str

    @property
    def drum_path(self) -> str:
        """The recording (E-GMD audio is drums only)."""
        return self.audio_path

    @property
    def mix_path(self) -> None:
        """None: E-GMD has no mixtures."""
        return None

    def midi(self) -> pretty_midi.PrettyMIDI:
        """The parsed MIDI file (adt.midi.MidiReadError when missing or broken)."""
        return load_midi(self.midi_path)

    @functools.cached_property
    def onsets(self) -> pd.DataFrame:
        """Onsets table rows (ONSET_COLUMNS): time_s (seconds), drum (5-class), label
        (GM note), velocity (1..127), from the MIDI notes, sorted by time."""
        return onsets_from_midi(self.midi(), self.track_id)[ONSET_COLUMNS]

    @functools.cached_property
    def beats(self) -> pd.DataFrame:
        """Beats table rows (BEAT_COLUMNS) from the MIDI tempo map and time signature."""
        return beats_from_midi(self.midi(), self.track_id)[BEAT_COLUMNS]

    def drum_audio(self) -> tuple[np.ndarray, int]:
        """``(audio, sample_rate)``: float32 (channels, samples), Hz
        (adt.audio.AudioReadError when missing or unreadable)."""
        return read_audio(self.audio_path)


def load_tracks(root: str | os.PathLike) -> dict[str, Track]:
    """Every rendering of :func:`load_index` as a :class:`Track`, by track_id (CSV order).

    Raises:
        the errors of :func:`load_index`.
    """
    index = load_index(root)
    return {
        r.track_id: Track(track_id=r.track_id, split=r.split, drummer=r.drummer, session=r.session,
                          performance=r.id, style=r.style, bpm=float(r.bpm), beat_type=r.beat_type,
                          time_signature=r.time_signature, duration_s=float(r.duration), kit=r.kit_name,
                          midi_path=r.midi_path, audio_path=r.audio_path)
        for r in index.itertuples(index=False)
    }


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """The selected E-GMD renderings as unified tables.

    Selection: per split, the first ``data.tracks_per_split`` tracks (None: all)
    of :func:`order_tracks` that can be read. A track whose audio or MIDI file is
    missing or unreadable is skipped with a warning naming the file, and the next
    one in the order is taken; each is appended to ``skipped`` (when given) as
    ``{"track_id", "split", "reason"}``. Audio
    longer than ``data.max_duration_s`` seconds is cropped into
    ``<out_dir>/<track_folder>/drums.wav`` (16-bit WAV, original sample rate, written
    atomically, reused when already there); otherwise the original file is used.

    Args:
        raw_dir: the extracted archive (holding ``e-gmd-v1.0.0/``).
        out_dir: where cropped audio goes.
        data: the profile's :class:`adt.config.DataSettings`.

    Returns:
        DatasetTables: tracks (drum_path the recording or its crop, mix_path None,
        midi_path the original MIDI, style, drummer and kit from the CSV), onsets from
        the MIDI notes (label = GM note, velocity 1..127) and beats from the tempo map,
        all before the end of the (cropped) audio.

    Raises:
        FileNotFoundError: no ``e-gmd-v1.0.0.csv`` under ``raw_dir``.
        ValueError: a malformed CSV (see :func:`load_index`).
    """
    out_dir = Path(out_dir).resolve()
    ordered = order_tracks(load_index(raw_dir))
    per_split = data.tracks_per_split
    crop_s = data.max_duration_s

    tracks, onsets, beats = [], [], []
    skipped = [] if skipped is None else skipped
    for split in SPLITS:
        taken = 0
        for row in ordered[ordered["split"] == split].itertuples(index=False):
            if per_split is not None and taken >= per_split:
                break
            track_id = row.track_id
            try:
                pm = load_midi(row.midi_path)
                drum_path, duration, sr = cropped_copy(row.audio_path, out_dir / track_folder(track_id) / "drums.wav",
                                                       crop_s)
            except (MidiReadError, AudioReadError) as exc:
                log.warning("egmd: skipping %s: %s", track_id, exc)
                skipped.append({"track_id": track_id, "split": split, "reason": str(exc)})
                continue
            taken += 1
            tracks.append({
                "track_id": track_id, "dataset": NAME, "split": split, "duration_s": float(duration),
                "sample_rate": int(sr), "mix_path": None, "drum_path": str(drum_path),
                "midi_path": row.midi_path, "style": row.style, "drummer": row.drummer, "kit": row.kit_name,
            })
            o = onsets_from_midi(pm, track_id, max_time_s=duration)
            onsets.append(o[o["time_s"] < duration])
            b = beats_from_midi(pm, track_id, end_time_s=duration)
            beats.append(b[b["time_s"] < duration])
        if per_split is not None and taken < per_split:
            log.info("egmd: %s: %d of %d tracks (no more eligible readable tracks)", split, taken, per_split)

    if skipped:
        log.warning("egmd: %d track(s) skipped (missing or unreadable files): %s", len(skipped),
                    ", ".join(s["track_id"] for s in skipped))
    return DatasetTables(
        tracks=pd.DataFrame(tracks, columns=TRACK_COLUMNS),
        onsets=concat_rows(onsets, ONSET_COLUMNS),
        beats=concat_rows(beats, BEAT_COLUMNS),
    )
