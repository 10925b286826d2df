"""Beat and downbeat tracking real-time factor on 2 cores, and beat F-measure, on MDB Drums.

Usage: .venv/bin/python benchmarks/bench_beats.py
Reads the drum-only recordings and beat annotations of mdb-drums-subset.zip
(ADT_DATA_MIRROR or ../shared/datasets).
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

PREFIX = "MDBDrums-master/MDB Drums/"


def main() -> None:
    from adt.rhythm.beats import beat_scores, track_beats, track_downbeats

    mirror = Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    total_s = beat_s = down_s = 0.0
    f50, f70 = [], []
    with zipfile.ZipFile(mirror / "mdb-drums-subset.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith("_Drum.wav"))
        track_beats(np.zeros(44100, np.float32), 44100)  # load the models once
        track_downbeats(np.zeros(44100, np.float32), 44100)
        for name in names:
            song = Path(name).name.replace("_Drum.wav", "")
            audio, sr = sf.read(io.BytesIO(z.read(name)), dtype="float32")
            ref = np.loadtxt(io.BytesIO(z.read(f"{PREFIX}annotations/beats/{song}_MIX.beats")))[:, 0]
            total_s += len(audio) / sr
            t = time.perf_counter()
            est = track_beats(audio, sr)
            beat_s += time.perf_counter() - t
            t = time.perf_counter()
            track_downbeats(audio, sr)
            down_s += time.perf_counter() - t
            scores = beat_scores(ref, est)
            f50.append(scores["f_measure_50ms"])
            f70.append(scores["f_measure"])
    print(f"{len(names)} MDB drum-only tracks, {total_s:.0f} s of audio")
    print(f"beat tracking (RNN + DBN): {beat_s:.1f} s, RTF {beat_s / total_s:.3f}")
    print(f"downbeat tracking:         {down_s:.1f} s, RTF {down_s / total_s:.3f}")
    print(f"beat F-measure: 50 ms {np.mean(f50):.3f}, mir_eval default (70 ms) {np.mean(f70):.3f}")


if __name__ == "__main__":
    main()
