"""Groove MIDI Dataset (GMD) v1.0.0, MIDI only, rendered to audio with accompaniment.

The Groove MIDI Dataset holds 1,150 MIDI files (13.6 hours, over 22,000 measures)
of expressive drumming played by 10 professional drummers to a click track on a
Roland TD-11 electronic kit, in many styles, as beats and fills. ``groove/info.csv``
gives each performance's drummer, session, style, tempo (bpm), beat_type (beat or
fill), time signature, MIDI file, duration (seconds) and the official split
(897 train / 124 validation / 129 test).

This module selects 4/4 beats per official split, crops them, renders each with
:func:`adt.data.corpus.render_track` (a drum kit plus a generated
accompaniment) and takes the ground truth straight from the MIDI: onsets from the
notes, beats from the tempo map and time signature.

Label mapping (GM note -> 5-class): :data:`adt.vocab.GM_TO_CLASS` restricted to
the 22 notes the Groove MIDI files use (all of them are mapped; note names are the
TD-11's as documented with the dataset):

| GM notes in Groove                                                  | 5-class |
| ------------------------------------------------------------------- | ------- |
| 36 kick                                                             | BD      |
| 37 snare x-stick, 38 snare head, 40 snare rim                       | SD      |
| 48/50 tom 1 head/rim, 45/47 tom 2 head/rim, 43/58 tom 3 head/rim    | TT      |
| 42/22 hi-hat closed bow/edge, 46/26 hi-hat open bow/edge, 44 pedal  | HH      |
| 49/55 crash 1 bow/edge, 57/52 crash 2 bow/edge, 51/59/53 ride bow/edge/bell | CY |

License: Creative Commons Attribution 4.0 International (CC BY 4.0).

Citation: Jon Gillick, Adam Roberts, Jesse Engel, Douglas Eck, David Bamman,
"Learning to Groove with Inverse Sequence Transformations", ICML 2019 (:data:`CITATION`).

Source: https://magenta.tensorflow.org/datasets/groove
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from adt.atomic import atomic_path, write_json
from adt.audio import write_audio
from adt.config import DataSettings
from adt.data.datasets import (BEAT_COLUMNS, ONSET_COLUMNS, SPLITS, TRACK_COLUMNS, DatasetTables, concat_rows,
                          natural_key, track_folder)
from adt.data.download import Remote
from adt.data.kits.catalogue import choose_kits
from adt.data.renders import render_in_processes
from adt.midi import beats_from_midi, load_midi, onsets_from_midi, without_class
from adt.vocab import CLASSES_5

log = logging.getLogger(__name__)

NAME = "groove"
HOMEPAGE = "https://magenta.tensorflow.org/datasets/groove"
ACCESS = "open"

REMOTES = [
    Remote(
        "groove-v1.0.0-midionly.zip",
        "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip",
        (
            # official archive (3,260,318 bytes), as recorded by TensorFlow Datasets
            # (tensorflow_datasets/url_checksums/groove.txt)
            "651cbc524ffb891be1a3e46d89dc82a1cecb09a57c748c7b45b844c4841dcc1e",
            # our mirror (3,191,850 bytes): the same groove/ folder re-zipped, macOS
            # Icon files dropped (shared/datasets/README.md)
            "7c8dc6622966eebb702cd6c3847dd03b932b6f4f83e9fa665c5fbf2dd59b7c2b",
        ),
        size=3260318,
    )
]

LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"

CITATION = """@inproceedings{groove2019,
    author = {Jon Gillick and Adam Roberts and Jesse Engel and Douglas Eck and David Bamman},
    title = {Learning to Groove with Inverse Sequence Transformations},
    booktitle = {International Conference on Machine Learning (ICML)},
    year = {2019},
}"""

#: The GM notes that occur in the Groove MIDI files (all in adt.vocab.GM_TO_CLASS).
GM_NOTES_USED: tuple[int, ...] = (22, 26, 36, 37, 38, 40, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 55, 57,
                                  58, 59)

#: Rendered audio sample rate, Hz.
SAMPLE_RATE = 44100
#: Peak level of the louder of mix and drum stem after joint scaling.
PEAK = 0.9
#: Performances shorter than this (seconds) are not selected: 64 of the 4/4 beats
#: are 1 to 5 s snippets, too short for beat tracking.
MIN_DURATION_S = 5.0
#: Bump when the rendering recipe changes, so cached renders are redone.
RENDER_VERSION = 1


def _groove_folder(root: Path) -> Path:
    for base in (root / "groove", root):
        if (base / "info.csv").is_file():
            return base
    raise FileNotFoundError(f"{root}: no groove/info.csv (expected the extracted groove-v1.0.0-midionly.zip)")


def load_index(root: str | os.PathLike) -> pd.DataFrame:
    """The dataset's ``info.csv`` as a DataFrame, one row per performance.

    Args:
        root: the extracted archive (the folder holding ``groove/``), or ``groove/`` itself.

    Returns:
        info.csv's columns (drummer, session, id, style, bpm, beat_type,
        time_signature, midi_filename, audio_filename, duration in seconds, split)
        plus ``midi_path`` (absolute) and ``track_id`` (``"groove/" +`` midi_filename
        without ``.mid``, e.g. ``groove/drummer1/session1/1_funk_80_beat_4-4``), in
        the file's row order.

    Raises:
        FileNotFoundError: no ``info.csv`` under ``root``.
    """
    base = _groove_folder(Path(root)).resolve()
    df = pd.read_csv(base / "info.csv", dtype={"bpm": "int64", "duration": "float64"})
    df["midi_path"] = [str(base / f) for f in df["midi_filename"]]
    df["track_id"] = [NAME + "/" + f[: -len(".mid")] if f.endswith(".mid") else NAME + "/" + f
                      for f in df["midi_filename"]]
    return df


@dataclasses.dataclass(frozen=True)
class Track:
    """One Groove MIDI performance (a row of :func:`load_index`); the MIDI loads lazily."""

    track_id: str
    midi_path: str
    split: str
    drummer: str
    style: str
    beat_type: str
    time_signature: str
    bpm: int
    duration_s: float

    @functools.cached_property
    def midi(self):
        """The parsed MIDI (pretty_midi). Raises adt.midi.MidiReadError."""
        return load_midi(self.midi_path)

    @functools.cached_property
    def onsets(self) -> pd.DataFrame:
        """Onsets (ONSET_COLUMNS) from the notes: label = GM note, velocity 1..127."""
        return onsets_from_midi(self.midi, self.track_id)

    @functools.cached_property
    def beats(self) -> pd.DataFrame:
        """Beats (BEAT_COLUMNS) from the tempo map and time signatures."""
        return beats_from_midi(self.midi, self.track_id)


def load_tracks(root: str | os.PathLike) -> dict[str, Track]:
    """Every performance of ``info.csv`` by track_id (MIDI only: Groove has no audio;
    :func:`build` renders it)."""
    index = load_index(root)
    return {row.track_id: Track(row.track_id, row.midi_path, row.split, row.drummer, row.style, row.beat_type,
                                row.time_signature, int(row.bpm), float(row.duration))
            for row in index.itertuples(index=False)}


def select_tracks(index: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    """The first ``counts[split]`` eligible tracks of each official split.

    Eligible: ``beat_type == "beat"``, time signature 4-4, duration at least
    :data:`MIN_DURATION_S`. The order is deterministic and takes drummers in
    turn (each drummer's performances in natural file-name order; then the first
    of every drummer, the second of every drummer, ...), so a small selection
    already spans drummers and styles, and a larger count only appends tracks.

    Returns:
        the selected rows of ``index``, splits in the order train, validation, test.
    """
    ok = (index["beat_type"] == "beat") & (index["time_signature"] == "4-4") & (index["duration"] >= MIN_DURATION_S)
    eligible = index[ok]
    parts = []
    for split in SPLITS:
        n = int(counts.get(split, 0) or 0)
        sub = eligible[eligible["split"] == split]
        if n <= 0 or sub.empty:
            continue
        sub = sub.iloc[sorted(range(len(sub)), key=lambda i: natural_key(sub["midi_filename"].iloc[i]))]
        rank = sub.groupby("drummer", sort=False).cumcount()
        order = sorted(range(len(sub)), key=lambda i: (int(rank.iloc[i]), natural_key(sub["drummer"].iloc[i])))
        parts.append(sub.iloc[order[:n]])
    return pd.concat(parts) if parts else eligible.iloc[:0]


def crop_midi(pm, end_s: float | None):
    """A copy of ``pm`` without notes starting at or after ``end_s`` (seconds); note
    ends, controller changes and pitch bends are cut at ``end_s``. Tempo map and
    time signatures are kept."""
    pm = copy.deepcopy(pm)
    if end_s is None:
        return pm
    for inst in pm.instruments:
        inst.notes = [n for n in inst.notes if n.start < end_s]
        for n in inst.notes:
            n.end = min(n.end, end_s)
        inst.control_changes = [c for c in inst.control_changes if c.time < end_s]
        inst.pitch_bends = [b for b in inst.pitch_bends if b.time < end_s]
    return pm


def _as_stereo(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = np.stack([x, x])
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"renderer returned {what} of shape {x.shape}, expected (2, n)")
    return np.repeat(x, 2, axis=0) if x.shape[0] == 1 else x


def _recipe(kit: str, seed: int, crop_s: float | None, accompaniment: bool = True, augment: bool = False,
            donors: tuple[str, ...] = (), accompaniment_soundfont: str | None = None,
            dropped: str | None = None) -> dict:
    """What a render depends on, as stored in its ``render.json`` (a cached render counts when equal)."""
    recipe = {"kit": kit, "seed": int(seed), "max_duration_s": crop_s, "sample_rate": SAMPLE_RATE,
              "peak": PEAK, "version": RENDER_VERSION}
    if not accompaniment:
        recipe["accompaniment"] = False
    if augment:
        recipe.update(augment=True, donors=list(donors), accompaniment_soundfont=accompaniment_soundfont)
    if dropped:
        recipe["dropped_class"] = dropped
    return recipe


def _cached_render(track_dir: Path, recipe: dict, accompaniment: bool = True) -> tuple[Path, Path, Path, float] | None:
    """(drum wav, mix wav, cropped MIDI, duration in seconds) of a complete render in ``track_dir`` made
    with ``recipe``, else None (missing files, another recipe, an unreadable ``render.json``)."""
    drum_wav, mix_wav, midi_out, meta = (track_dir / "drums.wav", track_dir / "mix.wav",
                                         track_dir / "drums.mid", track_dir / "render.json")
    wanted = [drum_wav, mix_wav, midi_out, meta] + ([track_dir / "bass.wav", track_dir / "other.wav"]
                                                    if accompaniment else [])
    if all(p.is_file() for p in wanted):
        try:
            if json.loads(meta.read_text()).get("recipe") == recipe:
                info = sf.info(str(drum_wav))
                return drum_wav, mix_wav, midi_out, info.frames / info.samplerate
        except (ValueError, RuntimeError, OSError):
            pass  # unreadable cache: render again
    return None


def _cached_call(call: dict) -> tuple[Path, Path, Path, float] | None:
    """:func:`_cached_render` of the arguments of a :func:`_render` call."""
    recipe = _recipe(**{k: v for k, v in call.items() if k not in ("pm", "track_dir")})
    return _cached_render(call["track_dir"], recipe, call.get("accompaniment", True))


def _render(pm, kit: str, seed: int, crop_s: float | None, track_dir: Path, accompaniment: bool = True,
            augment: bool = False, donors: tuple[str, ...] = (),
            accompaniment_soundfont: str | None = None, dropped: str | None = None) -> tuple[Path, Path, Path, float]:
    """Render one track into ``track_dir``; reuse a cached render with the same recipe (:func:`_recipe`).

    Module-level with picklable arguments: :func:`build` runs it in worker processes. Every file is
    written atomically and ``render.json`` last, so a render cut short is rendered again.

    Returns:
        (drum wav, mix wav, cropped MIDI, duration in seconds).

    Raises:
        ValueError: the renderer returned no samples, or an unknown kit.
    """
    drum_wav, mix_wav, midi_out, meta = (track_dir / "drums.wav", track_dir / "mix.wav",
                                         track_dir / "drums.mid", track_dir / "render.json")
    stem_wavs = {"bass": track_dir / "bass.wav", "other": track_dir / "other.wav"}
    recipe = _recipe(kit, seed, crop_s, accompaniment, augment, donors, accompaniment_soundfont, dropped)
    cached = _cached_render(track_dir, recipe, accompaniment)
    if cached is not None:
        return cached

    from adt.data.corpus import render_track  # lazy: tests/test_groove.py swaps this module in sys.modules

    cropped = crop_midi(pm, crop_s)
    stems = render_track(cropped, kit=kit, seed=int(seed), sample_rate=SAMPLE_RATE, accompaniment=accompaniment,
                         augment=augment, donors=donors,
                         accompaniment_soundfont=accompaniment_soundfont)
    parts = {"drums": _as_stereo(stems.drums, "drums"), "bass": _as_stereo(stems.bass, "bass"),
             "other": _as_stereo(stems.other, "other")}
    n = max(p.shape[1] for p in parts.values())
    if crop_s is not None:
        n = min(n, int(round(crop_s * SAMPLE_RATE)))
    if n == 0:
        raise ValueError(f"{track_dir.name}: the renderer returned no samples")
    parts = {k: np.pad(v, ((0, 0), (0, max(0, n - v.shape[1]))))[:, :n] for k, v in parts.items()}
    mix = parts["drums"] + parts["bass"] + parts["other"]
    peak = float(max(np.abs(mix).max(), np.abs(parts["drums"]).max()))
    gain = min(1.0, PEAK / peak) if peak > 0 else 1.0  # one gain for all: the stems still sum to the mix
    write_audio(drum_wav, parts["drums"] * gain, SAMPLE_RATE)
    write_audio(mix_wav, mix * gain, SAMPLE_RATE)
    if accompaniment:
        for stem, path in stem_wavs.items():
            write_audio(path, parts[stem] * gain, SAMPLE_RATE)
    with atomic_path(midi_out, suffix=".mid") as tmp:
        cropped.write(str(tmp))
    write_json(meta, {"recipe": recipe, "gain": gain})
    return drum_wav, mix_wav, midi_out, n / SAMPLE_RATE


def _plan_renders(selected: pd.DataFrame, data: DataSettings, kits_of: dict[str, list[str]], ranked_kits: bool,
                  out_dir: Path) -> tuple[list[tuple], list[dict]]:
    """The renders of the selected tracks (:func:`build`'s kits, seeds and dropped classes): per render,
    (index row, track_id, kit, MIDI played, MIDI as recorded, end s) for the tables and the keyword
    arguments of :func:`_render`. ``ranked_kits``: the profile chose kits (``corpus_kits``)."""
    crop_s = data.max_duration_s
    accompaniment = bool(data.render_accompaniment)
    augment = bool(data.render_augment)
    drop_share = float(data.drop_class_share)
    acc_soundfont = data.accompaniment_soundfont
    plans, calls = [], []  # per render: what the tables need; the arguments of _render
    position = {s: 0 for s in SPLITS}
    for row_no, row in selected.iterrows():
        split = row["split"]
        pm = load_midi(row["midi_path"])
        end = crop_s if crop_s is not None else pm.get_end_time()
        kits, n_kits = kits_of[split], int(data.render_kits_per_track)
        ranked = choose_kits(row["track_id"], kits, n_kits) if ranked_kits else None
        for j in range(max(1, min(n_kits, len(kits)))):
            kit = ranked[j] if ranked else kits[(position[split] + j) % len(kits)]
            track_id = row["track_id"] if j == 0 else f"{row['track_id']}@{kit.replace(':', '-')}"
            seed = data.seed + int(row_no) + 7919 * j
            played, dropped = pm, None
            if split == "train" and drop_share > 0:
                rng = np.random.default_rng([seed, 17])
                if rng.random() < drop_share:
                    dropped = str(rng.choice(CLASSES_5))
                    played = without_class(pm, dropped)
            plans.append((row, track_id, kit, played, pm, end))
            calls.append(dict(pm=played, kit=kit, seed=seed, crop_s=crop_s,
                              track_dir=out_dir / track_folder(track_id), accompaniment=accompaniment,
                              augment=augment, donors=tuple(kits), accompaniment_soundfont=acc_soundfont,
                              dropped=dropped))
        position[split] += 1
    return plans, calls


def _tables(plans: list[tuple], rendered: list[tuple], accompaniment: bool) -> DatasetTables:
    """:func:`build`'s tables from its render plans and their rendered files (drums, mix, MIDI, duration s)."""
    tracks, onsets, beats = [], [], []
    for (row, track_id, kit, played, pm, end), (drum_wav, mix_wav, midi_out, duration) in zip(plans, rendered):
        tracks.append({
            "track_id": track_id, "dataset": NAME, "split": row["split"], "duration_s": float(duration),
            "sample_rate": SAMPLE_RATE, "mix_path": str(mix_wav) if accompaniment else None,
            "drum_path": str(drum_wav), "midi_path": str(midi_out), "style": row["style"],
            "drummer": row["drummer"], "kit": kit,
        })
        o = onsets_from_midi(played, track_id, max_time_s=end)
        onsets.append(o[o["time_s"] < duration])
        b = beats_from_midi(pm, track_id, end_time_s=end)
        beats.append(b[b["time_s"] < duration])
        log.debug("groove: %s (%s, kit %s, %.1f s)", track_id, row["split"], kit, duration)

    return DatasetTables(
        tracks=pd.DataFrame(tracks, columns=TRACK_COLUMNS),
        onsets=concat_rows(onsets, ONSET_COLUMNS),
        beats=concat_rows(beats, BEAT_COLUMNS),
    )


def build(raw_dir: str | os.PathLike, out_dir: str | os.PathLike, data: DataSettings,
          skipped: list[dict] | None = None) -> DatasetTables:
    """Render the selected Groove tracks and return the unified tables.

    ``skipped`` (the signature every dataset module shares) stays empty: this builder
    leaves no selected track out; a bad file raises an error naming it.

    Selection: :func:`select_tracks` with ``data.groove_tracks`` (tracks per
    official split). Each track is cropped to ``data.max_duration_s`` seconds
    (None: whole) and rendered at 44100 Hz into ``<out_dir>/<track_folder>/``:
    ``drums.wav`` (drum stem) and ``mix.wav`` (drums + accompaniment), both
    stereo 16-bit and scaled by one gain so neither peaks above 0.9, plus
    ``drums.mid`` (the cropped MIDI that was rendered; ``midi_path``). Tracks
    whose files exist with the same recipe (kit, seed, crop) are not rendered
    again; the others are rendered in worker processes, one track per job
    (:func:`adt.data.renders.render_in_processes`: the same audio as in one process).
    Kit: ``data.corpus_kits[split]`` (kit-disjoint splits; ``h2:<kit>`` a recorded
    Hydrogen kit, :mod:`adt.data.kits`) or, when the profile sets none, the SoundFont's
    ``sorted(KITS)``, cycled by position within the split (with ``corpus_kits``: the top-ranked
    kits of :func:`adt.data.kits.catalogue.choose_kits`, so adding a kit moves only the
    performances it lands on); with
    ``data.render_kits_per_track`` = n > 1 each performance is also rendered on
    the next n - 1 kits, as further tracks ``<track_id>@<kit>`` of the same split
    (E-GMD style). ``data.render_accompaniment`` False renders drums only
    (``mix_path`` None); otherwise the accompaniment's stems are kept beside them as
    ``bass.wav`` and ``other.wav`` (drums + bass + other = mix, for separation training).
    ``data.render_augment`` varies the kit and adds room, EQ, compression, a drawn mix ratio
    and noise (:func:`adt.data.corpus.render_track`; pieces swapped in from the split's other
    kits only, so splits stay kit-disjoint); ``data.drop_class_share`` of the training renders
    lose one drum class, audio and onsets alike (:func:`adt.midi.without_class`; drawn per
    render, seeded: real songs play a snare without a hi-hat, a ride instead, a tambourine for one,
    which a corpus where the hi-hat always plays never shows); ``data.accompaniment_soundfont`` names the package
    whose SoundFont plays the accompaniment. Seed: ``data.seed`` + the track's row in ``info.csv``
    (+ 7919 x the kit's position for the extra kits)
    (stable across profiles).

    Args:
        raw_dir: the extracted archive (holding ``groove/``).
        out_dir: where renders go.
        data: the profile's :class:`adt.config.DataSettings`.

    Returns:
        DatasetTables: tracks (style from info.csv, drummer, kit), onsets from the
        MIDI notes (label = GM note, velocity 1..127) and beats from the tempo map,
        all before the end of the audio.

    Raises:
        FileNotFoundError: no ``groove/info.csv`` under ``raw_dir``.
        adt.midi.MidiReadError: a selected MIDI file is missing or broken.
    """
    from adt.data.render import KITS  # lazy: tests/test_groove.py swaps this module in sys.modules

    out_dir = Path(out_dir).resolve()
    index = load_index(raw_dir)
    selected = select_tracks(index, dict(data.groove_tracks))
    chosen = data.corpus_kits
    kits_of = {s: list(chosen.get(s) or []) if chosen else sorted(KITS) for s in SPLITS}
    if not all(kits_of[s] for s in set(selected.split)):
        raise ValueError(f"no kit to render Groove with for a split: {kits_of}")
    accompaniment = bool(data.render_accompaniment)
    acc_soundfont = data.accompaniment_soundfont
    plans, calls = _plan_renders(selected, data, kits_of, bool(chosen), out_dir)
    every_kit = sorted({k for s in set(selected.split) for k in kits_of[s]})
    rendered = render_in_processes(_render, calls, [p[1] for p in plans], _cached_call, every_kit, acc_soundfont)

    return _tables(plans, rendered, accompaniment)

