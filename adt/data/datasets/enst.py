"""ENST-Drums: three drummers on acoustic kits, 8 microphones, annotated onsets; the minus-one subset.

ENST-Drums (Gillet & Richard, ISMIR 2006) records three professional drummers, each
on their own acoustic kit, through eight close and overhead microphones plus a dry
and a wet (processed) mix, at 44.1 kHz / 16 bit: single hits, phrases in many
styles, soli, and the *minus-one* sequences, played along to a music accompaniment
that ships as its own file. Every stroke is annotated (``<time s> <label>`` text
files, detected automatically and corrected by hand). The public release holds 318
annotated tracks (drummer_1 97, drummer_2 105, drummer_3 116, as counted by
mimbres/YourMT3's ``preprocess_enstdrums.py``); 64 of them (21 + 22 + 21, the track
lists of MZehren/ADTOF ``adtof/ressources/splits.py``) are minus-one. The thesis
counts 1.02 hours over these 64 tracks.

Our use (thesis, Fosse, section 4.1): the minus-one subset only, input = wet mix +
accompaniment summed, the wet mix as the drum stem.

Layout (the field's code reads it under ``ENST-drums-public/``; :func:`load_index`
finds the ``drummer_N`` folders at the root it is given or up to two levels below;
channel folders as named there, not all listed)::

    ENST-drums-public/drummer_<1|2|3>/
        annotation/<name>.txt           # "<time s> <label>" per line
        audio/wet_mix/<name>.wav        # used: the drum stem
        audio/accompaniment/<name>.wav  # minus-one tracks only
        audio/dry_mix/, audio/kick/, audio/snare/, audio/hi-hat/, audio/overhead_L/,
        audio/overhead_R/, audio/tom_1/, audio/tom_2/ ...   # not used

Track names read ``<nnn>_<kind>_<style>_..._<implement>``, e.g.
``107_minus-one_salsa_sticks``, ``121_MIDI-minus-one_bigband_brushes``,
``045_phrase_rock_simple_medium_sticks``, ``001_hits_snare-drum_sticks_x6``. ``style``
is the third field for minus-one and phrase tracks, verbatim (``rock-60s``,
``blues-102``: some carry the tempo); ``implement`` is sticks, brushes, rods or mallets.

Minus-one = the track has an accompaniment file. Whether the mixes are mono or
stereo could not be checked here; the code sums either (see Mixing).

Split (thesis 4.1.1): drummer_1 and drummer_2 are ``train``; drummer_3 "is split in
half, each for validation and test" without saying which half: we sort its
minus-one tracks by name (the order of the track list in the thesis code,
``RunarFosse/automatic-drum-transcription``, ``io/convert_enst+mdb.py``) and put the
first ``n // 2`` in ``validation``, the rest in ``test`` (10 / 11 of 21).
drummer_3's drum-only tracks get split None (not used).

Labels: 20 base labels (list and meanings as in mimbres/YourMT3, ``config/vocabulary.py``,
``ENST_DRUM_NOTES``); a trailing digit names one cymbal of the kit (``rc3``, ``cr1``, ``c4``,
``spl2``, ``ch5``) and a trailing ``-`` marks a variant whose meaning our sources do not give
(``sd-``): both map like the base label and stay as they are in the ``label`` column. The
mapping goes through the General MIDI note of each label as in Vogl's ENST mapping (copied
in MZehren/ADTOF, ``adtof/ressources/instrumentsMapping.py``) and :data:`adt.vocab.GM_TO_CLASS`,
with the tom rim hits kept as toms as :mod:`adt.vocab` does for Groove's tom rims (GM 50/47/58):

| ENST label (meaning)                                            | 5-class |
| --------------------------------------------------------------- | ------- |
| bd bass drum                                                    | BD      |
| sd snare drum, sd- (variant), rs rim shot, cs cross stick       | SD      |
| lft low floor tom, lt low tom, lmt low-mid tom, mt mid tom      | TT      |
| ltr low tom rim hit, mtr mid tom rim hit                        | TT      |
| chh closed hi-hat, ohh open hi-hat                              | HH      |
| cr crash, rc ride, ch chinese, spl splash, c other cymbal       | CY      |
| numbered cymbals: cr1, cr2, cr5, rc1-rc4, c1, c4, ch1, ch5, spl2 | CY     |
| cb cowbell                                                      | dropped |
| sticks (sticks hit together), sweep (brush sweep)               | dropped |

Any other label is dropped with a warning naming the file. Where this differs from
the thesis code (``io/mapping.py``, "from ADTOF"): it maps sweep and sticks to SD
and cb to CY; we drop them as adt.vocab drops GM cowbell (56) and claves/sticks.
Where it differs from ADTOF/Vogl: they drop mtr and ltr; we keep them as toms.

Mixing (:func:`build`): wet mix + accompaniment, the shorter zero-padded to the
longer (their lengths differ), a mono file repeated to the other's channel count;
both files must share a sample rate. Gain rule: one gain for the whole track,
``g = min(1, 0.9 / peak)`` with ``peak`` the larger absolute sample of the summed
mix and of the wet mix over the whole track (before cropping, so every crop of a
track gets the same level); ``mix.wav = g * (wet + accompaniment)`` and
``drums.wav = g * wet``, so the drum stem stays exactly the mix's drum part.

License: research use only, non-commercial, under the ENST-Drums license agreement
signed when requesting the data (:data:`LICENSE`). Citation: Olivier Gillet, Gaël Richard,
"ENST-Drums: an extensive audio-visual database for drum signals processing", ISMIR 2006
(:data:`CITATION`).

Source: https://perso.telecom-paristech.fr/grichard/ENST-drums/ (request form and license
agreement); no checksum is published, so none is checked (:func:`adt.data.download.fetch`
logs the archive's SHA-256). Put ``ENST-drums-public.zip`` into the downloads folder
(``<ADT_DATA_DIR>/downloads``; until then :func:`adt.data.download.fetch` raises
:class:`adt.data.download.ManualDownloadRequired` naming the page, the file and that folder)
or into the mirror folder (``ADT_DATA_MIRROR``); :func:`adt.data.download.fetch_all` then
unpacks it. The name is the one the field's code uses (``ENST-drums-public``), unchecked
against a published file list; a copy under another name (a Zenodo copy is reported as
``ENST-drums-audio.tar.bz2``) works saved under this name: extraction goes by content, not
by suffix.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from adt.atomic import write_json
from adt.audio import read_audio, write_audio
from adt.config import DataSettings
from adt.data.datasets.annotations import read_time_value_lines
from adt.data.datasets import (BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows,
                          natural_key)
from adt.data.download import Remote
from adt.vocab import GM_TO_CLASS

log = logging.getLogger(__name__)

NAME = "enst"
#: Bump when the mixing recipe changes (part of the pipeline's cache key).
VERSION = "1"
HOMEPAGE = "https://perso.telecom-paristech.fr/grichard/ENST-drums/"
ACCESS = "on request"

REMOTES = [
    Remote(
        "ENST-drums-public.zip",
        HOMEPAGE,
        # no published checksum: fetch() accepts the placed file and logs its SHA-256
        sha256=(),
        manual=HOMEPAGE,
    )
]

LICENSE = ("ENST-Drums license agreement: research use only, no commercial use "
           "(signed on request at https://perso.telecom-paristech.fr/grichard/ENST-drums/)")

CITATION = """@inproceedings{gillet2006enst,
    author = {Olivier Gillet and Ga{\\"e}l Richard},
    title = {{ENST-Drums}: an extensive audio-visual database for drum signals processing},
    booktitle = {Proceedings of the 7th International Conference on Music Information Retrieval (ISMIR)},
    address = {Victoria, Canada},
    year = {2006},
}"""

#: ENST base label -> General MIDI note: Vogl's ENST mapping as copied in MZehren/ADTOF
#: (``ENST_MIDI``), plus the tom rim hits ltr/mtr on their tom's note.
ENST_TO_GM: dict[str, int] = {
    "bd": 35, "sd": 38, "rs": 38, "cs": 37,
    "lft": 41, "lt": 45, "lmt": 47, "mt": 48, "ltr": 45, "mtr": 48,
    "chh": 42, "ohh": 46,
    "cr": 49, "rc": 51, "ch": 52, "spl": 55, "c": 57,
    "cb": 56,
}
#: ENST base label -> 5-class; labels absent here are dropped.
CLASS_MAP: dict[str, str] = {lab: GM_TO_CLASS[n] for lab, n in ENST_TO_GM.items() if n in GM_TO_CLASS}
#: Known ENST base labels dropped on purpose (no warning): cowbell, sticks, brush sweep.
DROPPED: frozenset[str] = frozenset({"cb", "sticks", "sweep"})
#: The 20 base labels of the ENST annotations.
LABELS: frozenset[str] = frozenset(CLASS_MAP) | DROPPED

#: Splits: drummers whose tracks all go to train; the drummer whose minus-one
#: tracks are halved into validation and test.
TRAIN_DRUMMERS = ("drummer_1", "drummer_2")
HELD_OUT_DRUMMER = "drummer_3"
#: Peak level of the louder of mix and drum stem after scaling (see the gain rule above).
PEAK = 0.9
IMPLEMENTS = ("sticks", "brushes", "rods", "mallets")

INDEX_COLUMNS = ["track_id", "drummer", "name", "split", "minus_one", "kind", "style", "implement",
                 "annotation_path", "wet_mix_path", "accompaniment_path"]

_DRUMMER_RE = re.compile(r"drummer_\d+")
_LABEL_RE = re.compile(r"([a-z]+?)(\d+|-)?")


def base_label(label: str) -> str:
    """The ENST label without its cymbal number or variant mark: ``rc3`` -> ``rc``, ``sd-`` -> ``sd``."""
    m = _LABEL_RE.fullmatch(label)
    return m.group(1) if m else label


def label_class(label: str) -> str | None:
    """5-class of an ENST label (``rc3`` -> ``CY``), or None for a dropped or unknown label."""
    return CLASS_MAP.get(base_label(label))


def _enst_folder(root: Path) -> Path:
    """The folder holding ``drummer_N/annotation``: ``root`` or a folder up to two levels below it."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected the extracted ENST-drums-public archive)")
    level = [root]
    for _ in range(3):
        for base in level:
            if any(_DRUMMER_RE.fullmatch(d.name) and (d / "annotation").is_dir() for d in base.iterdir()):
                return base
        level = sorted(d for p in level for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    raise FileNotFoundError(f"{root}: no drummer_N/annotation folder here or up to two levels below "
                            "(expected the extracted ENST-drums-public archive)")


def parse_name(name: str) -> dict:
    """Kind, style and implement from a track name.

    ``121_MIDI-minus-one_bigband_brushes`` -> kind ``MIDI-minus-one``, style ``bigband``,
    implement ``brushes``. style is None except for minus-one and phrase tracks;
    implement None when no field is one of :data:`IMPLEMENTS`.
    """
    parts = name.split("_")
    kind = parts[1] if len(parts) > 1 else None
    style = parts[2] if len(parts) > 2 and kind is not None and ("minus-one" in kind or kind == "phrase") else None
    implement = next((p for p in parts[2:] if p in IMPLEMENTS), None)
    return {"kind": kind, "style": style, "implement": implement}


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """One row per annotated track.

    Args:
        root: the extracted archive (holding ``ENST-drums-public/``), that folder itself,
            or a folder up to two levels above the ``drummer_N`` folders.

    Returns:
        DataFrame (columns :data:`INDEX_COLUMNS`) sorted by drummer and name:
        track_id (``enst/drummer_1/107_minus-one_salsa_sticks``), drummer
        (``drummer_1``), name, split (train | validation | test, or None for
        drummer_3's drum-only tracks; see the module docstring), minus_one (the
        track has an accompaniment file), kind, style, implement (:func:`parse_name`),
        annotation_path, wet_mix_path, accompaniment_path (absolute paths; the
        audio ones missing (``isna``) where the file is absent).

    Raises:
        FileNotFoundError: no ``drummer_N/annotation`` folder under ``root``.
    """
    base = _enst_folder(Path(root)).resolve()
    rows = []
    for drummer_dir in sorted((d for d in base.iterdir() if _DRUMMER_RE.fullmatch(d.name)),
                              key=lambda d: natural_key(d.name)):
        drummer = drummer_dir.name
        for ann in sorted((drummer_dir / "annotation").glob("*.txt"), key=lambda p: p.name):
            name = ann.stem
            wet = drummer_dir / "audio" / "wet_mix" / f"{name}.wav"
            acc = drummer_dir / "audio" / "accompaniment" / f"{name}.wav"
            if "minus-one" in name and not acc.is_file():
                log.warning("%s: a minus-one track without %s; not in the minus-one subset", ann, acc)
            rows.append({
                "track_id": f"{NAME}/{drummer}/{name}", "drummer": drummer, "name": name, "split": None,
                "minus_one": acc.is_file(), **parse_name(name), "annotation_path": str(ann),
                "wet_mix_path": str(wet) if wet.is_file() else None,
                "accompaniment_path": str(acc) if acc.is_file() else None,
            })
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    index["split"] = assign_splits(index)
    return index


def assign_splits(index: pd.DataFrame) -> pd.Series:
    """Split per row of an index (drummer, name, minus_one): see the module docstring."""
    split = pd.Series([None] * len(index), index=index.index, dtype=object)
    split[index["drummer"].isin(TRAIN_DRUMMERS)] = "train"
    held = index[(index["drummer"] == HELD_OUT_DRUMMER) & index["minus_one"]].sort_values("name")
    half = len(held) // 2
    split[held.index[:half]] = "validation"
    split[held.index[half:]] = "test"
    return split


def read_annotation(path: str | os.PathLike) -> pd.DataFrame:
    """An ENST annotation file as columns time_s (seconds), label (as written), sorted by time.

    Lines are ``<time s> <label>``, whitespace-separated; blank lines are skipped.

    Raises:
        ValueError: a line that is not ``<time> <label>`` with a finite, non-negative
            time (names the file and the line number).
    """
    return read_time_value_lines(path, "label")


def annotation_onsets(path: str | os.PathLike, track_id: str, end_s: float | None = None) -> pd.DataFrame:
    """Onsets (ONSET_COLUMNS) of an annotation file: drum from :data:`CLASS_MAP`, label the
    ENST label as written, velocity NaN; :data:`DROPPED` labels removed, unknown labels
    removed with a warning naming the file; only onsets before ``end_s`` seconds if given.

    Raises:
        ValueError: a malformed line (see :func:`read_annotation`).
    """
    ann = read_annotation(path)
    bases = ann["label"].map(base_label)
    unknown = sorted(set(ann["label"][~bases.isin(list(LABELS))]))
    if unknown:
        log.warning("%s: unknown ENST labels %s dropped", path, unknown)
    drum = bases.map(CLASS_MAP)
    keep = drum.notna()
    if end_s is not None:
        keep &= ann["time_s"] < end_s
    return pd.DataFrame({
        "track_id": track_id, "time_s": ann["time_s"][keep].to_numpy(dtype=float),
        "drum": drum[keep].to_numpy(dtype=object), "label": ann["label"][keep].to_numpy(dtype=object),
        "velocity": np.full(int(keep.sum()), np.nan),
    }, columns=ONSET_COLUMNS)


def mix_arrays(wet: np.ndarray, accompaniment: np.ndarray, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Wet mix and accompaniment (channels, samples) brought to one shape and summed.

    The shorter is zero-padded to the longer; a mono one is repeated to the other's
    channel count.

    Returns:
        (mix, wet): float32 arrays of the same shape (channels, samples), mix = wet + accompaniment.

    Raises:
        ValueError: channel counts that neither match nor include a mono file.
    """
    c_w, c_a = wet.shape[0], accompaniment.shape[0]
    if c_w != c_a:
        if min(c_w, c_a) != 1:
            raise ValueError(f"{what}: wet mix has {c_w} channels, accompaniment {c_a}: cannot sum")
        channels = max(c_w, c_a)
        wet = np.repeat(wet, channels // c_w, axis=0)
        accompaniment = np.repeat(accompaniment, channels // c_a, axis=0)
    n = max(wet.shape[1], accompaniment.shape[1])
    wet = np.pad(wet, ((0, 0), (0, n - wet.shape[1])))
    accompaniment = np.pad(accompaniment, ((0, 0), (0, n - accompaniment.shape[1])))
    return (wet + accompaniment).astype(np.float32), wet.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Track:
    """One annotated ENST-Drums track (a row of :func:`load_index`); audio and onsets load lazily."""

    track_id: str
    drummer: str
    name: str
    annotation_path: str
    wet_mix_path: str | None = None
    accompaniment_path: str | None = None
    split: str | None = None
    style: str | None = None

    @property
    def minus_one(self) -> bool:
        return self.accompaniment_path is not None

    @functools.cached_property
    def onsets(self) -> pd.DataFrame:
        """Annotated onsets (ONSET_COLUMNS), see :func:`annotation_onsets`.

        Raises:
            ValueError: a malformed annotation line (names the file and line).
        """
        return annotation_onsets(self.annotation_path, self.track_id)

    @property
    def beats(self) -> pd.DataFrame:
        """ENST-Drums has no beat annotations: an empty BEAT_COLUMNS table."""
        return pd.DataFrame(columns=BEAT_COLUMNS)

    def drum_audio(self) -> tuple[np.ndarray, int]:
        """The wet mix: (audio (channels, samples) float32, sample rate Hz).

        Raises:
            FileNotFoundError: the track has no wet mix file.
            adt.audio.AudioReadError: it cannot be read.
        """
        if self.wet_mix_path is None:
            raise FileNotFoundError(f"{self.track_id}: no audio/wet_mix/{self.name}.wav in this copy")
        return read_audio(self.wet_mix_path)

    def mix_audio(self) -> tuple[np.ndarray, int]:
        """Wet mix + accompaniment, unscaled (:func:`mix_arrays`; samples may exceed 1):
        (audio (channels, samples) float32, sample rate Hz), as long as the longer file.

        Raises:
            FileNotFoundError: not a minus-one track (no accompaniment) or no wet mix.
            ValueError: the two files differ in sample rate or in channels (neither mono).
            adt.audio.AudioReadError: a file cannot be read.
        """
        mix, _, sr = self._mix_and_wet()
        return mix, sr

    def _mix_and_wet(self) -> tuple[np.ndarray, np.ndarray, int]:
        """(mix, wet mix padded to the mix's shape, sample rate): both files read once."""
        if self.accompaniment_path is None:
            raise FileNotFoundError(f"{self.track_id}: not a minus-one track (no accompaniment file)")
        wet, sr = self.drum_audio()
        acc, sr_acc = read_audio(self.accompaniment_path)
        if sr != sr_acc:
            raise ValueError(f"{self.wet_mix_path} ({sr} Hz) and {self.accompaniment_path} ({sr_acc} Hz): "
                             "sample rates differ")
        mix, wet = mix_arrays(wet, acc, self.track_id)
        return mix, wet, sr


def _track(row: dict) -> Track:
    """A Track from an index row (missing values -> None)."""
    return Track(**{f.name: (None if pd.isna(row[f.name]) else row[f.name]) for f in dataclasses.fields(Track)})


def load_tracks(root: str | os.PathLike) -> dict[str, Track]:
    """Every annotated track by track_id (``enst/<drummer>/<name>``); see :func:`load_index`."""
    return {row["track_id"]: _track(row) for row in load_index(root).to_dict("records")}


def select_tracks(index: pd.DataFrame, per_split: int | None) -> pd.DataFrame:
    """The minus-one tracks of each split, the first ``per_split`` of each (None = all).

    Order within a split: drummers in turn (each drummer's tracks by name; the first of
    every drummer, then the second, ...), so a small train selection spans drummer_1
    and drummer_2. Splits come in the order train, validation, test.
    """
    parts = []
    for split in SPLITS:
        sub = index[index["minus_one"] & (index["split"] == split)].sort_values(["drummer", "name"])
        rank = sub.groupby("drummer").cumcount()
        sub = sub.assign(_rank=rank).sort_values(["_rank", "drummer"]).drop(columns="_rank")
        parts.append(sub if per_split is None else sub.head(int(per_split)))
    return pd.concat(parts) if parts else index.iloc[:0]


def _mix_track(track: Track, crop_s: float | None, track_dir: Path) -> tuple[Path, Path, float, int]:
    """Write ``mix.wav`` and ``drums.wav`` for one minus-one track (gain rule in the module
    docstring), reusing files made with the same recipe.

    Returns:
        (mix wav, drums wav, duration in seconds, sample rate in Hz).
    """
    mix_wav, drum_wav, meta = track_dir / "mix.wav", track_dir / "drums.wav", track_dir / "mix.json"
    if track.wet_mix_path is None:
        raise FileNotFoundError(f"{track.track_id}: minus-one track without audio/wet_mix/{track.name}.wav")
    sources = (track.wet_mix_path, track.accompaniment_path)
    recipe = {"max_duration_s": crop_s, "peak": PEAK, "version": VERSION,
              "sources": [[Path(p).name, os.path.getsize(p)] for p in sources]}
    if mix_wav.is_file() and drum_wav.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text()).get("recipe") == recipe:
                info = sf.info(str(mix_wav))
                return mix_wav, drum_wav, info.frames / info.samplerate, int(info.samplerate)
        except (ValueError, RuntimeError, OSError):
            pass  # unreadable cache: mix again

    meta.unlink(missing_ok=True)  # until the new pair is complete
    mix, wet, sr = track._mix_and_wet()
    peak = float(max(np.abs(mix).max(), np.abs(wet).max()))
    gain = min(1.0, PEAK / peak) if peak > 0 else 1.0
    n = mix.shape[1] if crop_s is None else min(mix.shape[1], int(round(crop_s * sr)))
    write_audio(drum_wav, wet[:, :n] * gain, sr)
    write_audio(mix_wav, mix[:, :n] * gain, sr)
    write_json(meta, {"recipe": recipe, "gain": gain})  # last: its presence marks a complete pair
    return mix_wav, drum_wav, n / sr, sr


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """The ENST-Drums minus-one tracks as unified tables.

    ``skipped`` (the signature every dataset module shares) stays empty: this builder
    leaves no selected track out; a bad file raises an error naming it.

    Selection: :func:`select_tracks` with ``data.tracks_per_split`` (None = all 64
    in the public release). Each track is mixed (wet mix + accompaniment, gain rule in
    the module docstring) and cropped to ``data.max_duration_s`` seconds (None =
    whole) into ``<out_dir>/<drummer>__<name>/``: ``mix.wav`` (mix_path), ``drums.wav``
    (the wet mix with the same gain; drum_path), 16-bit at the source rate (44.1 kHz),
    and ``mix.json`` (recipe and gain); files with the same recipe are reused.

    Returns:
        DatasetTables: tracks (style from the name, drummer ``drummer_N``, no MIDI or
        kit), onsets from the annotations before the end of the audio (label = ENST
        label, velocity NaN), and an empty beats table (no beat annotations).

    Raises:
        FileNotFoundError: no ENST layout under ``raw_dir``, or a selected track lacks its wet mix.
        ValueError: a malformed annotation line (file and line number), or a track whose
            wet mix and accompaniment differ in sample rate or channels.
        adt.audio.AudioReadError: an audio file cannot be read.
    """
    out_dir = Path(out_dir).resolve()
    index = load_index(raw_dir)
    selected = select_tracks(index, data.tracks_per_split)
    tracks, onsets = [], []
    for row in selected.to_dict("records"):
        track = _track(row)
        ons = annotation_onsets(track.annotation_path, track.track_id)  # malformed files fail before mixing
        mix_wav, drum_wav, duration, sr = _mix_track(track, data.max_duration_s,
                                                     out_dir / f"{track.drummer}__{track.name}")
        tracks.append({
            "track_id": track.track_id, "dataset": NAME, "split": row["split"], "duration_s": float(duration),
            "sample_rate": sr, "mix_path": str(mix_wav), "drum_path": str(drum_wav), "midi_path": None,
            "style": track.style, "drummer": track.drummer, "kit": None,
        })
        onsets.append(ons[ons["time_s"] < duration])
        log.debug("enst: %s (%s, %.1f s)", track.track_id, row["split"], duration)
    return DatasetTables(
        tracks=pd.DataFrame(tracks, columns=TRACK_COLUMNS),
        onsets=concat_rows(onsets, ONSET_COLUMNS),
        beats=pd.DataFrame(columns=BEAT_COLUMNS),
    )
