"""`adt transcribe` real-time factor on a 60-s file (no separation), 2 CPU threads.

Usage: .venv/bin/python benchmarks/bench_transcribe.py [--model URI]
The 60-s input is made from real MDB Drums drum-only recordings (ADT_DATA_MIRROR or
../shared/datasets); the model is the latest registered `adt-frame-crnn` (run `make demo` first).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def sixty_seconds(out: Path) -> Path:
    import soundfile as sf

    mirror = Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    pieces = []
    with zipfile.ZipFile(mirror / "mdb-drums-subset.zip") as z:
        for name in sorted(n for n in z.namelist() if n.endswith("_Drum.wav")):
            with z.open(name) as f:
                audio, sr = sf.read(f, dtype="float32", always_2d=True)
            pieces.append(audio.mean(1))
            if sum(len(p) for p in pieces) >= 60 * sr:
                break
    audio = np.concatenate(pieces)[: 60 * sr]
    sf.write(out, audio, sr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    args = parser.parse_args()
    import torch

    from adt.transcribe import load_registered_model, transcribe_file

    torch.set_num_threads(2)
    model, uri = load_registered_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        wav = sixty_seconds(Path(tmp) / "in.wav")
        transcribe_file(wav, Path(tmp) / "warmup.mid", model=model, progress=False)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            transcribe_file(wav, Path(tmp) / "out.mid", model=model, progress=False)
            times.append(time.perf_counter() - start)
    best = min(times)
    print(f"model {uri}: 60 s of audio transcribed in {best:.2f} s (best of 3) -> {60 / best:.0f}x faster than real time")


if __name__ == "__main__":
    main()
