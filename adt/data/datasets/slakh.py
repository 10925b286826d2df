"""Slakh2100-redux: Lakh MIDI songs rendered with sample libraries, drum stems and MIDI aligned.

The Synthesized Lakh dataset (Slakh2100) holds 2,100 multitrack songs (145 hours):
MIDI files of the Lakh MIDI Dataset v0.1, every instrument rendered with
professional sample-based virtual instruments (187 patches in 34 classes) and
mixed. The "redux" release drops the songs found to be duplicates: 1,710 tracks
in the official folders ``train`` (1,289), ``validation`` (270) and ``test``
(151); the 390 duplicates sit in ``omitted``. All audio is mono 16-bit FLAC at
44.1 kHz, and the mixture is the sum of the rendered stems.

Layout (``slakh2100_flac_redux.tar.gz`` unpacks to ``slakh2100_flac_redux/``)::

    slakh2100_flac_redux/{train,validation,test,omitted}/TrackNNNNN/
        mix.flac          the mixture
        metadata.yaml     UUID, lmd_midi_dir, overall_gain, ... and ``stems``: per
                          stem ``SNN``: inst_class, is_drum, midi_program_name,
                          program_num, plugin_name, audio_rendered, midi_saved,
                          integrated_loudness (absent for stems not rendered)
        all_src.mid       the song's MIDI with every instrument and the tempo map
        MIDI/SNN.mid      one stem's MIDI
        stems/SNN.flac    one stem's audio; absent where ``audio_rendered`` is false

A drum stem is a stem with ``is_drum: true`` (the MIDI channel-10 flag; such stems
have program_num 128 and inst_class Drums). Only rendered drum stems count: an
unrendered one (``audio_rendered: false``) is not in the mix, so its MIDI is not
ground truth. Tracks without a rendered drum stem stay in :func:`load_index`
(``has_drums`` False) but are never built.

Ground truth: onsets from the rendered drum stems' MIDI files (``MIDI/SNN.mid``),
merged (label = GM note, velocity 1..127; onsets of the same 5-class drum at the
same time, e.g. a kick doubled by two kits, count once, the louder kept); beats from ``all_src.mid``'s
tempo map and time signatures (:func:`adt.midi.beats_from_midi`).

Label mapping (GM percussion note -> 5-class): :data:`adt.vocab.GM_TO_CLASS`, except
note 58, which is the vibraslap in General MIDI (the vocabulary maps it to TT for
Groove's Roland TD-11 tom rim):

| GM notes                                                              | 5-class |
| --------------------------------------------------------------------- | ------- |
| 35 acoustic bass drum, 36 bass drum 1                                 | BD      |
| 37 side stick, 38 acoustic snare, 39 hand clap, 40 electric snare     | SD      |
| 41/43 low/high floor tom, 45/47 low/low-mid, 48/50 hi-mid/high tom    | TT      |
| 42 closed, 44 pedal, 46 open hi-hat (22, 26: the TD-11's hi-hat edge) | HH      |
| 49/57 crash 1/2, 51/59 ride 1/2, 53 ride bell, 52 Chinese, 55 splash  | CY      |
| 58 vibraslap, 54 tambourine, 56 cowbell                               | dropped |
| 60-81 (bongos, congas, timbales, agogo, cabasa, maracas, whistles,    | dropped |
| guiro, claves, wood blocks, cuica, triangle), 27-34 and all others    | dropped |

Split: the official folders ``train``, ``validation``, ``test``; ``omitted`` is
excluded from :func:`build` (listed by :func:`load_index` with split ``omitted``).
Track ids are ``"slakh/TrackNNNNN"`` (track numbers are unique across folders).

License: Creative Commons Attribution 4.0 International (CC BY 4.0).

Citation: Ethan Manilow, Gordon Wichern, Prem Seetharaman, Jonathan Le Roux,
"Cutting Music Source Separation Some Slakh: A Dataset to Study the Impact of
Training Data Quality and Quantity", WASPAA 2019 (:data:`CITATION`).

Source: https://zenodo.org/records/4599666 (Slakh2100-redux), http://www.slakh.com/;
layout and metadata keys as in mirdata's ``slakh`` loader
(https://github.com/mir-dataset-loaders/mirdata, ``mirdata/datasets/slakh.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi
import soundfile as sf

from adt.atomic import atomic_path
from adt.audio import AudioReadError, cropped_copy, read_audio, write_audio
from adt.config import DataSettings
from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows
from adt.data.datasets.annotations import read_yaml_stems
from adt.data.download import Remote
from adt.midi import MidiReadError, beats_from_midi, load_midi, onsets_from_midi

log = logging.getLogger(__name__)

NAME = "slakh"
HOMEPAGE = "http://www.slakh.com/"
ACCESS = "open"

REMOTES = [
    Remote(
        "slakh2100_flac_redux.tar.gz",
        "https://zenodo.org/records/4599666/files/slakh2100_flac_redux.tar.gz?download=1",
        # MD5 as published by Zenodo for record 4599666 (Zenodo gives MD5 only); the
        # same digest is in mirdata's slakh loader (REMOTES["2100-redux"]).
        md5=("f4b71b6c45ac9b506f59788456b3f0c4",),
        # 104,322,767,708 bytes per the Zenodo record (quoted from the Zenodo API by
        # several public download scripts).
        size=104_322_767_708,
        # not published: an estimate for the free-disk check. The archive holds FLAC,
        # which gzip barely shrinks, so it unpacks to about its own size.
        extracted_size=105_000_000_000,
    )
]

LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"

CITATION = """@inproceedings{manilow2019cutting,
    author = {Ethan Manilow and Gordon Wichern and Prem Seetharaman and Jonathan Le Roux},
    title = {Cutting Music Source Separation Some {Slakh}: A Dataset to Study the Impact of
             Training Data Quality and Quantity},
    booktitle = {Proc. IEEE Workshop on Applications of Signal Processing to Audio and Acoustics (WASPAA)},
    year = {2019},
}"""

#: The archive's top folder.
TOP_FOLDER = "slakh2100_flac_redux"
#: The folders of the redux release, in order; ``omitted`` holds the duplicates.
FOLDERS = ("train", "validation", "test", "omitted")
#: GM notes dropped although :data:`adt.vocab.GM_TO_CLASS` maps them (58: vibraslap in GM).
DROPPED_NOTES = frozenset({58})

INDEX_COLUMNS = ["track_id", "name", "split", "track_dir", "mix_path", "all_src_path", "metadata_path", "n_stems",
                 "has_drums", "drum_stems", "drum_plugins", "drum_audio_paths", "drum_midi_paths",
                 "unrendered_drum_stems"]

_TRACK_RE = re.compile(r"Track\d{5}")


def _slakh_folder(root: Path) -> Path:
    for base in (root / TOP_FOLDER, root):
        if any((base / f).is_dir() for f in FOLDERS):
            return base
    raise FileNotFoundError(f"{root}: no {TOP_FOLDER}/{{train,validation,test,omitted}} folders (expected the "
                            "extracted slakh2100_flac_redux.tar.gz)")


def read_metadata(path: str | os.PathLike) -> dict:
    """A track's ``metadata.yaml``, parsed with ``yaml.safe_load`` and checked.

    Returns:
        the document: a mapping with ``stems``, a mapping ``SNN`` -> stem entry,
        each holding (at least) booleans ``is_drum`` and ``audio_rendered``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid YAML, or not the structure above (names the file and
            what is wrong).
    """
    path = Path(path)
    doc = read_yaml_stems(path, "metadata.yaml")
    for stem, entry in doc["stems"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: malformed metadata.yaml: stem {stem!r} is not a mapping")
        for key in ("is_drum", "audio_rendered"):
            if not isinstance(entry.get(key), bool):
                raise ValueError(f"{path}: malformed metadata.yaml: stem {stem!r} has no boolean {key!r} "
                                 f"(got {entry.get(key)!r})")
    return doc


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """One row per track folder of the raw dataset, ``omitted`` included.

    Args:
        root: the extracted archive (the folder holding ``slakh2100_flac_redux/``),
            or ``slakh2100_flac_redux/`` itself.

    Returns:
        DataFrame sorted by split (train, validation, test, omitted) then name, with
        columns :data:`INDEX_COLUMNS`: track_id (``"slakh/TrackNNNNN"``), name
        (``TrackNNNNN``), split (the folder), track_dir, mix_path, all_src_path,
        metadata_path (absolute paths as the layout names them; :func:`build`
        checks that the files exist), n_stems, has_drums (at least one rendered
        drum stem), drum_stems (ids ``SNN`` of the rendered drum stems, sorted),
        drum_plugins, drum_audio_paths (``stems/SNN.flac``), drum_midi_paths
        (``MIDI/SNN.mid``), lists aligned with drum_stems, and
        unrendered_drum_stems (drum stems with ``audio_rendered: false``: not in
        the mix, ignored).

    Raises:
        FileNotFoundError: no Slakh layout under ``root``, or a track folder
            without ``metadata.yaml``.
        ValueError: a malformed ``metadata.yaml`` (names the file).
    """
    base = _slakh_folder(Path(root)).resolve()
    rows = []
    for split in FOLDERS:
        folder = base / split
        if not folder.is_dir():
            continue
        for track_dir in sorted(p for p in folder.iterdir() if p.is_dir() and _TRACK_RE.fullmatch(p.name)):
            meta_path = track_dir / "metadata.yaml"
            stems = read_metadata(meta_path)["stems"]
            drums = sorted(s for s, e in stems.items() if e["is_drum"] and e["audio_rendered"])
            rows.append({
                "track_id": f"{NAME}/{track_dir.name}", "name": track_dir.name, "split": split,
                "track_dir": str(track_dir), "mix_path": str(track_dir / "mix.flac"),
                "all_src_path": str(track_dir / "all_src.mid"), "metadata_path": str(meta_path),
                "n_stems": len(stems), "has_drums": bool(drums), "drum_stems": drums,
                "drum_plugins": [str(stems[s].get("plugin_name")) for s in drums],
                "drum_audio_paths": [str(track_dir / "stems" / f"{s}.flac") for s in drums],
                "drum_midi_paths": [str(track_dir / "MIDI" / f"{s}.mid") for s in drums],
                "unrendered_drum_stems": sorted(s for s, e in stems.items()
                                                if e["is_drum"] and not e["audio_rendered"]),
            })
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


def merge_onsets(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Onset tables of several drum stems as one, sorted by time.

    Onsets of the same 5-class drum at the same time (to 0.1 ms) count once: the
    loudest is kept (two kits doubling a kick are one kick in the mix).
    """
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=ONSET_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    df = df.assign(_t=(df["time_s"] * 1e4).round().astype("int64"))
    df = df.sort_values(["_t", "drum", "velocity"], ascending=[True, True, False], kind="stable")
    df = df.drop_duplicates(["_t", "drum"]).drop(columns="_t")
    return df.sort_values(["time_s", "drum"], kind="stable").reset_index(drop=True)[ONSET_COLUMNS]


@dataclasses.dataclass
class Track:
    """One Slakh track: paths from :func:`load_index`, data loaded lazily.

    Attributes:
        track_id: ``"slakh/TrackNNNNN"``; name: ``TrackNNNNN``; split: the folder.
        mix_path, all_src_path, metadata_path: absolute paths.
        drum_stems, drum_plugins, drum_audio_paths, drum_midi_paths: the rendered
            drum stems (aligned tuples); has_drums: whether there is one.
    """

    track_id: str
    name: str
    split: str
    mix_path: str
    all_src_path: str
    metadata_path: str
    drum_stems: tuple[str, ...]
    drum_plugins: tuple[str, ...]
    drum_audio_paths: tuple[str, ...]
    drum_midi_paths: tuple[str, ...]
    has_drums: bool

    @functools.cached_property
    def onsets(self) -> pd.DataFrame:
        """Drum onsets of the rendered drum stems' MIDI, merged (:func:`merge_onsets`).

        Returns:
            DataFrame with :data:`adt.data.datasets.ONSET_COLUMNS`: time_s (seconds), drum
            (5-class), label (GM note as text), velocity (1..127); notes outside the
            mapping (see the module docstring) dropped. Empty without drum stems.

        Raises:
            adt.midi.MidiReadError: a drum MIDI file is missing or broken.
        """
        frames = []
        for path in self.drum_midi_paths:
            o = onsets_from_midi(load_midi(path), self.track_id)
            frames.append(o[~o["label"].isin([str(n) for n in DROPPED_NOTES])])
        return merge_onsets(frames)

    @functools.cached_property
    def beats(self) -> pd.DataFrame:
        """Beats of ``all_src.mid``'s tempo map (up to its end): :data:`adt.data.datasets.BEAT_COLUMNS`.

        Raises:
            adt.midi.MidiReadError: ``all_src.mid`` is missing or broken.
        """
        return beats_from_midi(load_midi(self.all_src_path), self.track_id)

    def drum_midi(self) -> pretty_midi.PrettyMIDI:
        """The rendered drum stems' MIDI in one file: the first stem's file (tempo map
        included) with the other stems' instruments added, all flagged as drums.

        Raises:
            ValueError: the track has no rendered drum stem.
            adt.midi.MidiReadError: a drum MIDI file is missing or broken.
        """
        if not self.drum_midi_paths:
            raise ValueError(f"{self.track_id}: no rendered drum stem")
        merged = copy.deepcopy(load_midi(self.drum_midi_paths[0]))
        for path in self.drum_midi_paths[1:]:
            merged.instruments.extend(load_midi(path).instruments)
        for inst in merged.instruments:
            inst.is_drum = True
        return merged

    def mix_audio(self) -> tuple[np.ndarray, int]:
        """``(audio (channels, samples) float32, sample rate Hz)`` of ``mix.flac``.

        Raises:
            adt.audio.AudioReadError: the file is missing or unreadable.
        """
        return read_audio(self.mix_path)

    def drum_audio(self) -> tuple[np.ndarray, int]:
        """The sum of the rendered drum stems: ``(audio (channels, samples) float32, Hz)``.

        Stems of different lengths are zero-padded to the longest.

        Raises:
            ValueError: no rendered drum stem, or the stems' sample rates or channel
                counts differ (names the file).
            adt.audio.AudioReadError: a stem is missing or unreadable.
        """
        if not self.drum_audio_paths:
            raise ValueError(f"{self.track_id}: no rendered drum stem")
        total, sr = None, None
        for path in self.drum_audio_paths:
            audio, rate = read_audio(path)
            if total is None:
                total, sr = audio.astype(np.float64), rate
                continue
            if rate != sr:
                raise ValueError(f"{path}: sample rate {rate} Hz, other drum stems have {sr} Hz")
            if audio.shape[0] != total.shape[0]:
                raise ValueError(f"{path}: {audio.shape[0]} channels, other drum stems have {total.shape[0]}")
            n = max(total.shape[1], audio.shape[1])
            total = np.pad(total, ((0, 0), (0, n - total.shape[1])))
            total[:, : audio.shape[1]] += audio
        return total.astype(np.float32), int(sr)


def load_tracks(root: str | os.PathLike) -> dict[str, Track]:
    """Every track of :func:`load_index` (``omitted`` included) as a :class:`Track`, by track_id.

    Raises:
        as :func:`load_index`.
    """
    index = load_index(root)
    tracks = {}
    for row in index.to_dict("records"):
        tracks[row["track_id"]] = Track(
            track_id=row["track_id"], name=row["name"], split=row["split"], mix_path=row["mix_path"],
            all_src_path=row["all_src_path"], metadata_path=row["metadata_path"],
            drum_stems=tuple(row["drum_stems"]), drum_plugins=tuple(row["drum_plugins"]),
            drum_audio_paths=tuple(row["drum_audio_paths"]), drum_midi_paths=tuple(row["drum_midi_paths"]),
            has_drums=bool(row["has_drums"]))
    return tracks


def _audio_info(path: str):
    """``soundfile.info`` of ``path``; AudioReadError naming the file when it cannot be read."""
    try:
        return sf.info(path)
    except Exception as exc:  # missing file, unknown format (LibsndfileError, RuntimeError, ...)
        raise AudioReadError(f"{path}: cannot read audio ({exc})") from exc


def _write_drums(track: Track, dst: Path, n: int, sr: int) -> None:
    """``dst``: the drum stems' sum, first ``n`` samples at ``sr`` Hz; a copy already
    there with that length, rate and channel count is kept."""
    channels = _audio_info(track.drum_audio_paths[0]).channels
    if dst.is_file():
        try:
            info = sf.info(str(dst))
            if info.frames == n and info.samplerate == sr and info.channels == channels:
                return
        except RuntimeError:
            pass  # unreadable: write it again
    audio, rate = track.drum_audio()
    if rate != sr:
        raise ValueError(f"{track.drum_audio_paths[0]}: sample rate {rate} Hz, the mix has {sr} Hz")
    write_audio(dst, audio[:, :n], sr)


def _write_midi(pm: pretty_midi.PrettyMIDI, dst: Path) -> None:
    """Write ``pm`` to ``dst`` atomically, unless the file already holds the same bytes."""
    buf = io.BytesIO()
    pm.write(buf)
    data = buf.getvalue()
    if dst.is_file() and dst.read_bytes() == data:
        return
    with atomic_path(dst, suffix=".mid") as tmp:
        tmp.write_bytes(data)


def _build_track(track: Track, track_dir: Path, crop_s: float | None) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """One track's rows; raises AudioReadError, MidiReadError or ValueError naming a bad file."""
    mix_info = _audio_info(track.mix_path)
    sr = int(mix_info.samplerate)
    frames = 0
    for path in track.drum_audio_paths:
        info = _audio_info(path)
        if int(info.samplerate) != sr:
            raise ValueError(f"{path}: sample rate {info.samplerate} Hz, the mix has {sr} Hz")
        frames = max(frames, info.frames)
    onsets, beats = track.onsets, track.beats  # parse the MIDI before writing anything

    n = frames if crop_s is None else min(frames, int(round(crop_s * sr)))
    drum_wav = track_dir / "drums.wav"
    _write_drums(track, drum_wav, n, sr)
    mix_path, mix_duration, _ = cropped_copy(track.mix_path, track_dir / "mix.wav", crop_s)
    duration = min(n / sr, mix_duration)

    if len(track.drum_midi_paths) == 1:
        midi_path = track.drum_midi_paths[0]
    else:
        midi_path = str(track_dir / "drums.mid")
        _write_midi(track.drum_midi(), Path(midi_path))

    row = {"track_id": track.track_id, "dataset": NAME, "split": track.split, "duration_s": float(duration),
           "sample_rate": sr, "mix_path": str(mix_path), "drum_path": str(drum_wav), "midi_path": midi_path,
           "style": None, "drummer": None, "kit": "+".join(track.drum_plugins)}
    return row, onsets[onsets["time_s"] < duration], beats[beats["time_s"] < duration]


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """The selected Slakh tracks with drums as unified tables.

    Selection: per official split (``omitted`` excluded), the tracks with a rendered
    drum stem in name order, the first ``data.tracks_per_split`` (None = all)
    that build; a skipped track does not count, the next one is taken. Into
    ``<out_dir>/<TrackNNNNN>/`` go ``drums.wav`` (the sum of the rendered drum
    stems, 16-bit WAV at the mix's rate, cropped to ``data.max_duration_s``
    seconds; None = whole), ``mix.wav`` (the cropped mix; without a crop, or for a
    mix that is short enough, ``mix_path`` is ``mix.flac`` itself) and, for a track
    with several drum stems, ``drums.mid`` (their merged MIDI, uncropped). Files
    already there with the right length (or bytes) are reused; all are written
    atomically.

    Skipped tracks: a selected track whose mix, drum stem, drum MIDI or
    ``all_src.mid`` is missing or unreadable (or whose stems' sample rates differ)
    is left out; a warning naming the file is logged, and when ``skipped`` (a list)
    is given, ``{"track_id", "split", "reason"}`` is appended to it.

    Args:
        raw_dir: the extracted archive (holding ``slakh2100_flac_redux/``).
        out_dir: where the cropped and summed audio goes.
        data: the profile's :class:`adt.config.DataSettings`.
        skipped: optional list that collects the skipped tracks.

    Returns:
        DatasetTables: tracks (drum_path drums.wav; midi_path the drum MIDI, uncropped;
        kit the drum stems' plugin names joined by ``+``; no style or drummer),
        onsets from the drum MIDI (label = GM note, velocity 1..127) and beats from
        ``all_src.mid``, both before the end of the audio.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_index` (no layout, a missing or
            malformed metadata.yaml).
    """
    out_dir = Path(out_dir).resolve()
    tracks = load_tracks(raw_dir)
    limit = data.tracks_per_split
    crop_s = data.max_duration_s

    rows, onsets, beats = [], [], []
    for split in SPLITS:
        taken = 0
        for track in sorted((t for t in tracks.values() if t.split == split and t.has_drums), key=lambda t: t.name):
            if limit is not None and taken >= limit:
                break
            try:
                row, o, b = _build_track(track, out_dir / track.name, crop_s)
            except (AudioReadError, MidiReadError, ValueError, OSError) as exc:
                log.warning("slakh: skipped %s (%s): %s", track.track_id, split, exc)
                if skipped is not None:
                    skipped.append({"track_id": track.track_id, "split": split, "reason": str(exc)})
                continue
            taken += 1
            rows.append(row)
            onsets.append(o)
            beats.append(b)
            log.debug("slakh: %s (%s, %.1f s, %d onsets)", track.track_id, split, row["duration_s"], len(o))

    return DatasetTables(
        tracks=pd.DataFrame(rows, columns=TRACK_COLUMNS),
        onsets=concat_rows(onsets, ONSET_COLUMNS),
        beats=concat_rows(beats, BEAT_COLUMNS),
    )
