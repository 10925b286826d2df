"""A tiny ENST-Drums archive in the official layout (``ENST-drums-public/drummer_N/...``).

Three drummers, 11 annotated tracks, 8 of them minus-one (with an accompaniment):
drummer_1 and drummer_2 two minus-one and one phrase each, drummer_3 four minus-one
and one hits track. Audio is synthetic, 22050 Hz, 16-bit: the wet mix holds short
decaying tones at the annotated onsets (peak :data:`WET_PEAK`), the accompaniment a
steady tone with a period of 100 samples (:data:`ACC_PEAK`); accompaniments run
0.25 s longer than their wet mix, so the mix needs padding. Exceptions: ``LOUD``
sums past full scale (the gain rule must scale it), ``STEREO_ACC`` has a stereo
accompaniment. Annotations use mapped labels (numbered cymbals, ``sd-``, tom rims)
and dropped ones (``cb``, ``sweep``). Everything is deterministic.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import soundfile as sf

ARCHIVE = "ENST-drums-public.zip"
ROOT = "ENST-drums-public"
SR = 22050
WET_S = 3.0
ACC_S = 3.25
WET_PEAK = 0.5
ACC_PEAK = 0.3

#: drummer -> (track name, has accompaniment)
TRACKS: dict[str, list[tuple[str, bool]]] = {
    "drummer_1": [("045_phrase_rock_simple_medium_sticks", False), ("107_minus-one_salsa_sticks", True),
                  ("121_MIDI-minus-one_bigband_brushes", True)],
    "drummer_2": [("046_phrase_rock_simple_fast_sticks", False), ("115_minus-one_salsa_sticks", True),
                  ("130_MIDI-minus-one_bigband_sticks", True)],
    "drummer_3": [("001_hits_snare-drum_sticks_x6", False), ("126_minus-one_salsa_sticks", True),
                  ("127_minus-one_rock-60s_sticks", True), ("140_MIDI-minus-one_bigband_sticks", True),
                  ("150_MIDI-minus-one_grunge_sticks", True)],
}
#: (drummer, name) of the track whose wet mix and accompaniment are loud (sum > 1).
LOUD = ("drummer_3", "126_minus-one_salsa_sticks")
LOUD_WET_PEAK, LOUD_ACC_PEAK = 0.8, 0.7
#: (drummer, name) of the track with a stereo accompaniment.
STEREO_ACC = ("drummer_1", "121_MIDI-minus-one_bigband_brushes")

#: One annotation, the same for every track: (time s, ENST label). ``cb`` and
#: ``sweep`` are dropped; 2.5 s and later fall outside a 2 s crop.
EVENTS: list[tuple[float, str]] = [
    (0.10, "bd"), (0.10, "chh"), (0.35, "sd"), (0.60, "ohh"), (0.80, "cb"), (0.85, "bd"), (1.10, "sd-"),
    (1.20, "sweep"), (1.35, "rc3"), (1.60, "lmt"), (1.75, "mtr"), (1.90, "cr1"), (2.10, "cs"), (2.30, "spl2"),
    (2.50, "lft"), (2.70, "c1"), (2.90, "ch5"),
]


def wav_bytes(audio: np.ndarray, sr: int = SR) -> bytes:
    """16-bit WAV of ``audio`` (samples,) or (samples, channels)."""
    buf = io.BytesIO()
    sf.write(buf, audio, sr, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def wet_signal(peak: float = WET_PEAK) -> np.ndarray:
    """Decaying 1 kHz tones (50 ms) at the annotated onsets, ``WET_S`` seconds."""
    x = np.zeros(int(WET_S * SR), dtype=np.float64)
    burst = np.sin(2 * np.pi * 1000 * np.arange(int(0.05 * SR)) / SR) * np.exp(-np.arange(int(0.05 * SR)) / 200)
    for t in sorted({t for t, _ in EVENTS}):  # one tone per onset time: the peak stays ``peak``
        i = int(round(t * SR))
        x[i:i + len(burst)] += peak * burst[: len(x) - i]
    return np.clip(x, -1, 1)


def accompaniment_signal(peak: float = ACC_PEAK, channels: int = 1) -> np.ndarray:
    """A tone with a period of exactly 100 samples (220.5 Hz), ``ACC_S`` seconds."""
    x = peak * np.sin(2 * np.pi * np.arange(int(ACC_S * SR)) / 100)
    return x if channels == 1 else np.stack([x, 0.5 * x], axis=1)


def annotation_text() -> str:
    return "".join(f"{t:.6f} {label}\n" for t, label in EVENTS)


def archive_files() -> dict[str, bytes]:
    """``{"ENST-drums-public.zip": <zip bytes>}``: the tiny archive described above."""
    files: dict[str, bytes] = {}
    for drummer, tracks in TRACKS.items():
        for name, minus_one in tracks:
            base = f"{ROOT}/{drummer}"
            loud = (drummer, name) == LOUD
            files[f"{base}/annotation/{name}.txt"] = annotation_text().encode()
            files[f"{base}/audio/wet_mix/{name}.wav"] = wav_bytes(wet_signal(LOUD_WET_PEAK if loud else WET_PEAK))
            if minus_one:
                channels = 2 if (drummer, name) == STEREO_ACC else 1
                files[f"{base}/audio/accompaniment/{name}.wav"] = wav_bytes(
                    accompaniment_signal(LOUD_ACC_PEAK if loud else ACC_PEAK, channels))
    # other channels of one track, which the loader must ignore
    for channel in ("dry_mix", "kick", "hi-hat"):
        files[f"{ROOT}/drummer_1/audio/{channel}/107_minus-one_salsa_sticks.wav"] = wav_bytes(np.zeros(SR // 10))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=(2006, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[path])
    return {ARCHIVE: buf.getvalue()}
