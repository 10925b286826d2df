"""MDB Drums' MedleyDB multitracks: each song's real mix and stems from its raw recordings.

Each raw is read as recorded (MedleyDB's raws are unmastered) and its role taken from its
instrument (:func:`stem_role`): ``drums`` ("drum set"), ``bass`` ("electric bass", "double
bass", ...), else ``other``. A stem is the unity-gain sum of its role's raws, the real mix
the sum of all raws. Then ONE gain per song, ``gain = min(1, MIX_PEAK / peak(mix))`` with
:data:`MIX_PEAK` = 0.891 (-1 dBFS), scales the mix and every stem alike: the stems still sum
to the mix (float rounding) and the mix never clips. The gain comes from the whole song,
before any crop. Nothing else is scaled: ``drum_path`` stays the drum-only recording as it
is (its level is the drums stem's divided by the gain). :func:`adt.data.datasets.mdb.build`
writes ``<out>/<name>/mix.wav`` and ``<out>/<name>/stems/{drums,bass,other}.wav`` (float32
WAV, cropped like the drum audio; :func:`write_multitrack`) for every track with
multitracks; :func:`stem_paths` finds the stems.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from adt.atomic import atomic_path
from adt.audio import AudioReadError, read_audio
from adt.data.datasets.annotations import read_yaml_stems

log = logging.getLogger(__name__)


#: Peak of a real mix after its song's gain: -1 dBFS (10 ** (-1 / 20) = 0.891).
MIX_PEAK = 0.891


#: Stem roles of a multitrack, in this order (:func:`stem_role`).
STEM_ROLES = ("drums", "bass", "other")


#: Sample rate of the MDB multitracks, Hz.
MULTITRACK_SAMPLE_RATE = 44100


def stem_role(instrument: str) -> str:
    """The stem role of a MedleyDB instrument label: ``"drums"`` for "drum set", ``"bass"``
    for a bass instrument (the word "bass", as in "electric bass", "double bass"; not
    "bass drum" nor "bassoon"), else ``"other"``."""
    label = str(instrument).strip().lower()
    if label == "drum set":
        return "drums"
    if re.search(r"\bbass\b", label) and "drum" not in label:
        return "bass"
    return "other"


def read_multitrack_metadata(path: str | os.PathLike) -> dict:
    """A song's ``MusicDelta_<song>_METADATA.yaml`` (MedleyDB), parsed with ``yaml.safe_load`` and checked.

    Returns:
        the document: a mapping with ``stems``, a mapping ``SNN`` -> stem (``instrument``,
        ``raw``: a mapping ``RNN`` -> {``filename`` (a plain file name), ``instrument``}).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid YAML, or not the structure above (names the file and what is wrong).
    """
    path = Path(path)
    doc = read_yaml_stems(path, "METADATA.yaml", nonempty=True)
    for key, stem in doc["stems"].items():
        if not isinstance(stem, dict) or not isinstance(stem.get("raw"), dict):
            raise ValueError(f"{path}: malformed METADATA.yaml: stem {key!r} is not a mapping with a 'raw' mapping")
        for raw_key, raw in stem["raw"].items():
            name = raw.get("filename") if isinstance(raw, dict) else None
            if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
                raise ValueError(f"{path}: malformed METADATA.yaml: raw {key}/{raw_key} has no plain 'filename' "
                                 f"(got {name!r})")
    return doc


def multitrack_raws(multitrack_dir: str | os.PathLike) -> list[tuple[str, str]]:
    """The raw recordings of one song's multitrack, in METADATA order (stems, then raws).

    Args:
        multitrack_dir: the ``MusicDelta_<song>`` folder (``multitrack_dir`` of :func:`load_index`).

    Returns:
        [(absolute path of the raw WAV in ``<song>_RAW/``, role)], role from the raw's
        instrument (else its stem's) by :func:`stem_role`.

    Raises:
        FileNotFoundError: no METADATA, or a raw file it names is missing (names the file).
        ValueError: a malformed METADATA, or no "drum set" raw.
    """
    folder = Path(multitrack_dir)
    meta_path = folder / f"{folder.name}_METADATA.yaml"
    doc = read_multitrack_metadata(meta_path)
    raw_dir = folder / f"{folder.name}_RAW"
    raws = []
    for key in sorted(doc["stems"]):
        stem = doc["stems"][key]
        for raw_key in sorted(stem["raw"]):
            raw = stem["raw"][raw_key]
            path = raw_dir / raw["filename"]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: raw file named in {meta_path} (stem {key}, raw {raw_key}) is missing")
            raws.append((str(path), stem_role(raw.get("instrument") or stem.get("instrument") or "")))
    if not any(role == "drums" for _, role in raws):
        raise ValueError(f"{meta_path}: no 'drum set' raw among {[Path(p).name for p, _ in raws]}")
    return raws


@dataclasses.dataclass(frozen=True)
class Multitrack:
    """One song's real mix and stems (:func:`render_multitrack`).

    Attributes:
        stems: role (:data:`STEM_ROLES` order; ``bass``/``other`` absent without such a
            raw) -> (samples,) float32, after ``gain``.
        mix: (samples,) float32, the sum of the stems (= of all raws, after ``gain``).
        gain: the song's one factor, ``min(1, MIX_PEAK / peak of the unscaled mix)``.
        sample_rate: Hz (44100).
    """

    stems: dict[str, np.ndarray]
    mix: np.ndarray
    gain: float
    sample_rate: int


def render_multitrack(multitrack_dir: str | os.PathLike) -> Multitrack:
    """A song's real mix and stems from its raws (the module docstring's gains).

    Raws are read as mono (channels averaged), summed at unity gain per role and in
    all, then the mix and every stem are scaled by one factor so the mix peaks at
    :data:`MIX_PEAK` at most.

    Raises:
        FileNotFoundError, ValueError: as :func:`multitrack_raws`.
        adt.audio.AudioReadError: a raw cannot be read.
        ValueError: a raw not at 44100 Hz, or raws of different lengths (names the song and files).
    """
    folder = Path(multitrack_dir)
    raws = multitrack_raws(folder)
    sums: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for path, role in raws:
        audio, sr = read_audio(path, mono=True)
        if sr != MULTITRACK_SAMPLE_RATE:
            raise ValueError(f"{path}: sample rate {sr} Hz; the MDB multitracks are {MULTITRACK_SAMPLE_RATE} Hz")
        lengths[Path(path).name] = len(audio)
        if len(set(lengths.values())) > 1:
            raise ValueError(f"{folder.name}: raws of different lengths (samples): {lengths}")
        sums[role] = sums[role] + audio if role in sums else audio.astype(np.float64)
    mix = sum(sums.values())
    peak = float(np.abs(mix).max())
    gain = min(1.0, MIX_PEAK / peak) if peak > 0 else 1.0
    stems = {role: (sums[role] * gain).astype(np.float32) for role in STEM_ROLES if role in sums}
    # the mix from the scaled float32 stems: they sum to it up to float32 rounding
    mix = np.sum([s.astype(np.float64) for s in stems.values()], axis=0).astype(np.float32)
    return Multitrack(stems=stems, mix=mix, gain=gain, sample_rate=MULTITRACK_SAMPLE_RATE)


def stem_paths(path: str | os.PathLike) -> dict[str, str]:
    """The stems :func:`adt.data.datasets.mdb.build` wrote beside a real mix.

    Args:
        path: the real mix (``<out>/<name>/mix.wav``, a ``mix_path`` under
            ``DataSettings.mdb_real_mix``) or the track's folder ``<out>/<name>``.

    Returns:
        role (:data:`STEM_ROLES` order) -> absolute path of ``<folder>/stems/<role>.wav``
        (float32 WAV, mono, 44.1 kHz, summing to the mix), for the files present;
        empty for a track without multitracks.
    """
    path = Path(path).resolve()
    folder = path.parent if path.suffix.lower() == ".wav" else path
    files = {role: folder / "stems" / f"{role}.wav" for role in STEM_ROLES}
    return {role: str(f) for role, f in files.items() if f.is_file()}


def _write_float_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """(samples,) float32 as a 32-bit float WAV, atomically (exact: the stems keep summing to the mix)."""
    try:
        with atomic_path(path, suffix=".wav") as tmp:
            sf.write(str(tmp), np.asarray(audio, dtype=np.float32), sample_rate, subtype="FLOAT", format="WAV")
    except (sf.LibsndfileError, RuntimeError) as exc:  # libsndfile's "System error." names no file
        raise OSError(f"{path}: cannot write audio ({exc}): is the disk full or the folder read-only?") from exc


def _has_frames(path: Path, frames: int, sample_rate: int) -> bool:
    """Whether ``path`` is a readable mono audio file of ``frames`` samples at ``sample_rate`` Hz."""
    if not path.is_file():
        return False
    try:
        info = sf.info(str(path))
    except RuntimeError:
        return False  # unreadable: write it again
    return info.frames == frames and info.samplerate == sample_rate and info.channels == 1


def write_multitrack(multitrack_dir: str, folder: Path, crop_s: float | None) -> tuple[str, float]:
    """``<folder>/mix.wav`` and ``<folder>/stems/<role>.wav``: the song's real mix and stems
    (:func:`render_multitrack`), first ``crop_s`` seconds; files already there with that
    length and rate are kept. Returns (mix path, its duration in seconds)."""
    raws = multitrack_raws(multitrack_dir)
    sr = MULTITRACK_SAMPLE_RATE
    try:
        frames = sf.info(raws[0][0]).frames
    except RuntimeError as exc:
        raise AudioReadError(f"{raws[0][0]}: cannot read audio ({exc})") from exc
    n = frames if crop_s is None else min(frames, int(round(crop_s * sr)))
    mix_wav = folder / "mix.wav"
    roles = [r for r in STEM_ROLES if any(role == r for _, role in raws)]
    if all(_has_frames(f, n, sr) for f in [mix_wav, *(folder / "stems" / f"{r}.wav" for r in roles)]):
        return str(mix_wav), n / sr
    song = render_multitrack(multitrack_dir)
    n = min(n, len(song.mix))
    for role, stem in song.stems.items():
        _write_float_wav(folder / "stems" / f"{role}.wav", stem[:n], sr)
    _write_float_wav(mix_wav, song.mix[:n], sr)
    log.info("%s: real mix and stems written (gain %.3f)", folder, song.gain)
    return str(mix_wav), n / sr
