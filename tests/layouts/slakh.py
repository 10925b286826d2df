"""A tiny Slakh2100-redux archive in the official layout (``slakh2100_flac_redux.tar.gz``).

Six tracks over the four official folders, each ``TrackNNNNN/`` with ``mix.flac``
(the sum of the rendered stems, as in Slakh), ``metadata.yaml`` (the real keys),
``all_src.mid`` (every stem plus the tempo map), ``MIDI/SNN.mid`` and
``stems/SNN.flac``; audio is 5 s of mono 16-bit FLAC at 22050 Hz (decaying sines
and short noise bursts, so it compresses to a few kB), built deterministically.

| track      | folder     | stems (is_drum marked *)                          | note                                  |
| ---------- | ---------- | ------------------------------------------------- | ------------------------------------- |
| Track00001 | train      | S00 piano, S01 bass, S02 drums*                   | piano/bass pitches are GM drum notes  |
| Track00002 | train      | S00 drums*, S01 guitar, S02 percussion*           | two drum stems, one kick in both      |
| Track00003 | validation | S00 bass, S01 drums*, S02 drums* not rendered     | S02: MIDI but no flac, not in the mix |
| Track00004 | test       | S00 piano, S01 bass                               | no drum stem                          |
| Track00005 | test       | S00 drums*, S01 piano                             | 3/4 at 100 bpm                        |
| Track00006 | omitted    | S00 drums*, S01 bass                              | a duplicate: never used               |

All other tracks are 4/4 at 120 bpm. :data:`DRUM_NOTES` gives each drum stem's
notes, :data:`OTHER_NOTES` the pitched stems' notes (their pitches 36..50 would be
drum notes if they were read as drums).
"""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pretty_midi
import soundfile as sf
import yaml

ARCHIVE = "slakh2100_flac_redux.tar.gz"
TOP = "slakh2100_flac_redux"
SAMPLE_RATE = 22050
DURATION_S = 5.0


def _grid(step: float, start: float = 0.0, end: float = DURATION_S - 0.3) -> list[float]:
    return [round(float(t), 6) for t in np.arange(start, end, step)]


#: (track, stem) -> [(time s, GM note, velocity)] for every drum stem (rendered or not).
DRUM_NOTES: dict[tuple[str, str], list[tuple[float, int, int]]] = {
    ("Track00001", "S02"): sorted(
        [(t, 36, 110) for t in _grid(1.0)] + [(t, 38, 100) for t in _grid(1.0, 0.5)]
        + [(t, 42, 70) for t in _grid(0.25)] + [(0.0, 49, 120), (2.0, 56, 90)]),  # 56 cowbell: dropped
    ("Track00002", "S00"): sorted([(t, 36, 100) for t in _grid(1.0)] + [(t, 40, 95) for t in _grid(1.0, 0.5)]),
    ("Track00002", "S02"): sorted([(0.0, 36, 80), (0.75, 45, 90), (1.25, 47, 90), (1.75, 51, 60), (2.25, 54, 70),
                                   (2.75, 58, 70), (3.25, 53, 75)]),  # 54 tambourine, 58 vibraslap: dropped;
    # the kick at 0.0 is in S00 too
    ("Track00003", "S01"): sorted([(t, 35, 100) for t in _grid(1.0)] + [(t, 46, 80) for t in _grid(0.5, 0.25)]),
    ("Track00003", "S02"): [(t, 38, 100) for t in _grid(1.0, 0.75)],  # not rendered: not in the mix
    ("Track00005", "S00"): sorted([(t, 36, 100) for t in _grid(1.8)] + [(t, 38, 100) for t in _grid(1.8, 0.6)]
                                  + [(t, 44, 60) for t in _grid(0.6)]),
    ("Track00006", "S00"): [(t, 36, 100) for t in _grid(0.5)],
}

#: (track, stem) -> [(start s, end s, pitch)] for the pitched stems.
OTHER_NOTES: dict[tuple[str, str], list[tuple[float, float, int]]] = {
    ("Track00001", "S00"): [(t, t + 0.4, p) for t, p in zip(_grid(0.5, 0.125), [48, 50, 60, 64] * 3)],
    ("Track00001", "S01"): [(t, t + 0.9, p) for t, p in zip(_grid(1.0, 0.375), [36, 38, 40, 43, 36])],
    ("Track00002", "S01"): [(t, t + 0.5, p) for t, p in zip(_grid(1.0, 0.1), [52, 55, 57, 59, 52])],
    ("Track00003", "S00"): [(t, t + 0.8, p) for t, p in zip(_grid(1.0, 0.1), [38, 40, 41, 43, 38])],
    ("Track00004", "S00"): [(t, t + 0.4, p) for t, p in zip(_grid(0.5, 0.05), [60, 62, 64, 65, 67] * 2)],
    ("Track00004", "S01"): [(t, t + 0.9, p) for t, p in zip(_grid(1.0, 0.05), [36, 41, 43, 36, 38])],
    ("Track00005", "S01"): [(t, t + 0.5, p) for t, p in zip(_grid(0.6, 0.3), [60, 64, 67] * 3)],
    ("Track00006", "S01"): [(t, t + 0.9, p) for t, p in zip(_grid(1.0, 0.2), [36, 38, 40, 41, 43])],
}

_PIANO = {"inst_class": "Piano", "midi_program_name": "Acoustic Grand Piano", "program_num": 0,
          "plugin_name": "grandeur.nkm", "is_drum": False}
_BASS = {"inst_class": "Bass", "midi_program_name": "Electric Bass (finger)", "program_num": 33,
         "plugin_name": "scarbee_rickenbacker_bass.nkm", "is_drum": False}
_GUITAR = {"inst_class": "Guitar", "midi_program_name": "Electric Guitar (clean)", "program_num": 27,
           "plugin_name": "jazz_guitar2.nkm", "is_drum": False}


def _drums(plugin: str) -> dict:
    return {"inst_class": "Drums", "midi_program_name": "Drums", "program_num": 128, "plugin_name": plugin,
            "is_drum": True}


#: track -> (folder, tempo bpm, beats per bar, {stem: (metadata, audio_rendered)}).
TRACKS: dict[str, tuple[str, float, int, dict[str, tuple[dict, bool]]]] = {
    "Track00001": ("train", 120.0, 4, {"S00": (_PIANO, True), "S01": (_BASS, True),
                                       "S02": (_drums("session_kit_full.nkm"), True)}),
    "Track00002": ("train", 120.0, 4, {"S00": (_drums("garage_kit_lite.nkm"), True), "S01": (_GUITAR, True),
                                       "S02": (_drums("stadium_kit.nkm"), True)}),
    "Track00003": ("validation", 120.0, 4, {"S00": (_BASS, True), "S01": (_drums("funk_kit.nkm"), True),
                                            "S02": (_drums("session_kit_full.nkm"), False)}),
    "Track00004": ("test", 120.0, 4, {"S00": (_PIANO, True), "S01": (_BASS, True)}),
    "Track00005": ("test", 100.0, 3, {"S00": (_drums("studio_drummer.nkm"), True), "S01": (_PIANO, True)}),
    "Track00006": ("omitted", 120.0, 4, {"S00": (_drums("session_kit_full.nkm"), True), "S01": (_BASS, True)}),
}


def _midi(tempo: float, beats_per_bar: int, stems: dict[str, tuple[dict, bool]], track: str,
          only: str | None = None) -> bytes:
    """A MIDI file with the tempo map and one instrument per stem (or only stem ``only``)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(beats_per_bar, 4, 0.0))
    for stem, (meta, _) in stems.items():
        if only is not None and stem != only:
            continue
        if meta["is_drum"]:
            inst = pretty_midi.Instrument(program=0, is_drum=True, name=meta["midi_program_name"])
            inst.notes = [pretty_midi.Note(v, p, t, t + 0.1) for t, p, v in DRUM_NOTES[(track, stem)]]
        else:
            inst = pretty_midi.Instrument(program=meta["program_num"], name=meta["midi_program_name"])
            inst.notes = [pretty_midi.Note(90, p, s, e) for s, e, p in OTHER_NOTES[(track, stem)]]
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def _render(track: str, stem: str, is_drum: bool, seed: int) -> np.ndarray:
    """Mono float audio of one stem: noise bursts/low thumps for drums, decaying sines otherwise."""
    n = int(DURATION_S * SAMPLE_RATE)
    out = np.zeros(n)
    rng = np.random.default_rng(seed)
    if is_drum:
        for t, pitch, vel in DRUM_NOTES[(track, stem)]:
            i, m = int(round(t * SAMPLE_RATE)), int(0.02 * SAMPLE_RATE)
            k = np.arange(m) / SAMPLE_RATE
            hit = np.sin(2 * np.pi * 60 * k) if pitch in (35, 36) else rng.uniform(-1, 1, m)
            out[i:i + m] += 0.25 * vel / 127 * hit[: n - i] * np.exp(-k / 0.005)[: n - i]
    else:
        for start, end, pitch in OTHER_NOTES[(track, stem)]:
            i = int(round(start * SAMPLE_RATE))
            j = min(n, i + int(round(min(end - start, 0.2) * SAMPLE_RATE)))  # short plucks compress well
            k = np.arange(j - i) / SAMPLE_RATE
            out[i:j] += 0.15 * np.sin(2 * np.pi * pretty_midi.note_number_to_hz(pitch) * k) * np.exp(-k / 0.05)
    return np.round(out * 32767) / 32767  # on the 16-bit grid, so the mix is exactly the stems' sum


def _flac(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _metadata(track_no: int, stems: dict[str, tuple[dict, bool]]) -> bytes:
    uuid = f"{track_no:032x}"
    doc = {
        "UUID": uuid, "audio_dir": "stems", "midi_dir": "MIDI",
        "lmd_midi_dir": f"lmd_matched/A/B/C/TRABC{track_no:013d}/{uuid}.mid",
        "normalization_factor": -13.0, "normalized": True, "overall_gain": 0.25, "target_peak": -1.0,
        "stems": {},
    }
    for no, (stem, (meta, rendered)) in enumerate(stems.items()):
        entry = {**meta, "audio_rendered": rendered, "midi_saved": True}
        if rendered:
            entry["integrated_loudness"] = -20.0 - no - 0.125 * track_no
        doc["stems"][stem] = entry
    return yaml.safe_dump(doc, sort_keys=True).encode()


def track_files() -> dict[str, bytes]:
    """Archive member path -> bytes, for every file of the tiny dataset."""
    files: dict[str, bytes] = {}
    for track_no, (track, (folder, tempo, beats_per_bar, stems)) in enumerate(TRACKS.items(), 1):
        base = f"{TOP}/{folder}/{track}"
        files[f"{base}/metadata.yaml"] = _metadata(track_no, stems)
        files[f"{base}/all_src.mid"] = _midi(tempo, beats_per_bar, stems, track)
        mix = np.zeros(int(DURATION_S * SAMPLE_RATE))
        for stem_no, (stem, (meta, rendered)) in enumerate(stems.items()):
            files[f"{base}/MIDI/{stem}.mid"] = _midi(tempo, beats_per_bar, stems, track, only=stem)
            if rendered:
                audio = _render(track, stem, meta["is_drum"], seed=100 * track_no + stem_no)
                files[f"{base}/stems/{stem}.flac"] = _flac(audio)
                mix += audio
        files[f"{base}/mix.flac"] = _flac(mix)
    return files


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A gzip-compressed tar with folder entries, fixed times and owners (byte-identical runs)."""
    folders = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, tarfile.open(fileobj=gz, mode="w") as tf:
        for name in folders:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tf.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def archive_files() -> dict[str, bytes]:
    """``{"slakh2100_flac_redux.tar.gz": <bytes>}``: the tiny archive (deterministic)."""
    return {ARCHIVE: _tar_gz(track_files())}
