"""A tiny ``e-gmd-v1.0.0.zip`` in the official layout (see adt.data.datasets.egmd).

``e-gmd-v1.0.0/e-gmd-v1.0.0.csv`` with the real header and 7 rows (2 drummers, 3
kits, all three splits; one 3/4 beat and one 3 s fill that the selection rule
excludes), and per row a MIDI file (pretty_midi: tempo, time signature, a
kick/snare/hi-hat groove with a crash, a tom, an open hi-hat and one unmapped
cowbell note) and a mono 22,050 Hz 16-bit WAV with a decaying click at every note.
Built in memory, byte-for-byte deterministic.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

import numpy as np
import pretty_midi
import soundfile as sf

FOLDER = "e-gmd-v1.0.0"
HEADER = ["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature", "duration", "split",
          "midi_filename", "audio_filename", "kit_name"]
SAMPLE_RATE = 22050
#: The unmapped note put into every performance (GM cowbell; not in adt.vocab.GM_TO_CLASS).
UNMAPPED_NOTE = 56
_DATE = (2020, 12, 1, 0, 0, 0)


@dataclass(frozen=True)
class Row:
    drummer: str
    session: str
    number: int
    style: str
    bpm: int
    beat_type: str
    time_signature: str
    duration: float
    split: str
    kit_number: int
    kit_name: str

    @property
    def stem(self) -> str:
        """File path without extension, as E-GMD names it."""
        style = self.style.replace("/", "-")
        return (f"{self.drummer}/{self.session}/{self.number}_{style}_{self.bpm}_{self.beat_type}_"
                f"{self.time_signature}_{self.kit_number}")

    @property
    def performance(self) -> str:
        return f"{self.drummer}/{self.session}/{self.number}"

    @property
    def track_id(self) -> str:
        return "egmd/" + self.stem


ROWS = [
    Row("drummer1", "session1", 1, "funk", 120, "beat", "4-4", 6.0, "train", 1, "Acoustic Kit"),
    Row("drummer1", "session1", 1, "funk", 120, "beat", "4-4", 6.0, "train", 2, "60s Rock"),
    Row("drummer1", "session1", 2, "jazz", 120, "beat", "3-4", 6.0, "train", 1, "Acoustic Kit"),
    Row("drummer2", "session1", 4, "rock", 105, "beat", "4-4", 6.0, "train", 1, "Acoustic Kit"),
    Row("drummer2", "session1", 5, "rock", 105, "fill", "4-4", 3.0, "train", 2, "60s Rock"),
    Row("drummer1", "session2", 3, "hiphop", 95, "beat", "4-4", 6.0, "validation", 3, "808 Simple"),
    Row("drummer2", "eval_session", 1, "funk/groove1", 138, "beat", "4-4", 5.5, "test", 1, "Acoustic Kit"),
]


def notes(row: Row) -> list[tuple[float, int, int]]:
    """The (start s, GM note, velocity) of a row's performance, sorted by time."""
    beats_per_bar = int(row.time_signature.split("-")[0])
    eighth = 30.0 / row.bpm
    out = []
    k, t = 0, 0.0
    while t < row.duration - 0.1:
        beat, on_beat = divmod(k, 2)
        pos = beat % beats_per_bar
        out.append((t, 42, 50 + (k * 7) % 40) if k % 8 != 7 else (t, 46, 70))
        if on_beat == 0 and pos in (0, 2):
            out.append((t, 36, 100))
        if on_beat == 0 and pos in (1, 3):
            out.append((t, 38, 90 + row.number))
        if k == 0:
            out.append((t, 49, 110))
        if k == 5:
            out.append((t, 45, 80))
            out.append((t, UNMAPPED_NOTE, 64))
        k += 1
        t = k * eighth
    return sorted(out)


def midi_bytes(row: Row) -> bytes:
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=float(row.bpm))
    num = int(row.time_signature.split("-")[0])
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, 4, 0.0))
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="Drums")
    for start, pitch, velocity in notes(row):
        drums.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=start + 0.05))
    pm.instruments.append(drums)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def wav_bytes(row: Row) -> bytes:
    n = int(round(row.duration * SAMPLE_RATE))
    audio = np.zeros(n, np.float64)
    click_t = np.arange(int(0.02 * SAMPLE_RATE)) / SAMPLE_RATE
    for start, pitch, velocity in notes(row):
        i = int(round(start * SAMPLE_RATE))
        click = 0.4 * velocity / 127 * np.sin(2 * np.pi * (100 + 20 * pitch) * click_t) * np.exp(-click_t / 0.004)
        m = min(len(click), n - i)
        audio[i:i + m] += click[:m]
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def csv_bytes() -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for r in ROWS:
        writer.writerow([r.drummer, f"{r.drummer}/{r.session}", r.performance, r.style, r.bpm, r.beat_type,
                         r.time_signature, f"{r.duration:.6f}", r.split, r.stem + ".midi", r.stem + ".wav",
                         r.kit_name])
    return buf.getvalue().encode()


def archive_files() -> dict[str, bytes]:
    """``{"e-gmd-v1.0.0.zip": bytes}``: the tiny archive described in the module docstring."""
    members = {f"{FOLDER}/{FOLDER}.csv": csv_bytes()}
    for r in ROWS:
        members[f"{FOLDER}/{r.stem}.midi"] = midi_bytes(r)
        members[f"{FOLDER}/{r.stem}.wav"] = wav_bytes(r)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return {"e-gmd-v1.0.0.zip": buf.getvalue()}
