"""`adt transcribe` real-time factors on a 60-s file, 2 CPU threads, and the whole process on a 30-s file.

Usage: .venv/bin/python benchmarks/bench_transcribe.py [--model URI|FILE.pt] [--repeats 3]

Whole process (issue 16 goal: >= 8x real time on a 30-s file on 2 cores, startup included): the
default command ``adt transcribe IN.wav -o OUT.mid`` in a fresh process from an empty folder (the
shipped model; Python start, imports, model load, audio, features, activations, peak picking, MIDI),
best of ``--repeats``. In-process goal: >= 40x.

Configurations: frame-level MIDI (no separation); ``--tatum`` (madmom beats, 4 tatums
per beat, onsets snapped); with drum separation, when a separator can be had
(:func:`adt.transcribe.transcriber.find_separator`: the graph's chosen separator from the newest
separation study under data/, else the pretrained umxl); separation + ``--tatum`` +
``--musicxml`` (the whole pipeline). The 60-s input is made from real MDB Drums
drum-only recordings (ADT_DATA_MIRROR or ../shared/datasets); the model is the
transcriber `adt transcribe` would use (:func:`adt.transcribe.models.load_transcriber`: the
registry's when there is one, else the shipped model).

Real-time factor RTF = processing time / audio duration (best of ``--repeats`` runs
after one warm-up run); "x real time" is its inverse.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

DURATION_S = 60


def whole_process(wav: Path, repeats: int) -> float:
    """Best wall time of ``adt transcribe WAV -o out.mid`` in a fresh process, in an empty folder."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("ADT_DATA_DIR", "MLFLOW_TRACKING_URI")}
    adt = Path(sys.executable).with_name("adt")
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats + 1):  # the first run warms the file cache
            start = time.perf_counter()
            subprocess.run([str(adt), "transcribe", str(wav), "-o", "out.mid"], cwd=folder, env=env, check=True,
                           capture_output=True)
            times.append(time.perf_counter() - start)
    return min(times[1:])


def mdb_drum_audio(out: Path, seconds: float = DURATION_S) -> Path:
    """``seconds`` of the mirror's MDB Drums drum-only recordings end to end (looped when they are shorter), mono,
    written to ``out`` (ADT_DATA_MIRROR or ../shared/datasets)."""
    import soundfile as sf

    mirror = Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    pieces, sr = [], 44100
    with zipfile.ZipFile(mirror / "mdb-drums-subset.zip") as z:
        for name in sorted(n for n in z.namelist() if n.endswith("_Drum.wav")):
            with z.open(name) as f:
                audio, sr = sf.read(f, dtype="float32", always_2d=True)
            pieces.append(audio.mean(1))
            if sum(len(p) for p in pieces) >= seconds * sr:
                break
    audio, n = np.concatenate(pieces), int(seconds * sr)
    sf.write(out, np.tile(audio, -(-n // len(audio)))[:n], sr)
    return out


def sixty_seconds(out: Path) -> Path:
    return mdb_drum_audio(out, DURATION_S)


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up: model caches, madmom's ONNX sessions
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from adt.transcribe.models import load_transcriber
    from adt.transcribe.transcriber import find_separator, transcribe_file

    torch.set_num_threads(2)
    model, uri = load_transcriber(args.model)
    separator, what = find_separator()
    print(f"model {uri}; separation: {what}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = sixty_seconds(tmp / "in.wav")
        configs = {
            "frame-level (no separation)": {},
            "--tatum (no separation)": {"tatum": True},
        }
        if separator is not None:
            configs["separation"] = {"separator": separator}
            configs["separation + --tatum + --musicxml"] = {"separator": separator, "tatum": True,
                                                            "musicxml_path": tmp / "out.musicxml"}
        print(f"{'configuration':38s} {'best s':>8s} {'RTF':>7s} {'x real time':>12s}")
        for name, kwargs in configs.items():
            seconds = best_time(lambda: transcribe_file(wav, tmp / "out.mid", model=model, progress=False, **kwargs),
                                args.repeats)
            print(f"{name:38s} {seconds:8.2f} {seconds / DURATION_S:7.3f} {DURATION_S / seconds:11.0f}x")
        import soundfile as sf

        audio, sr = sf.read(wav)
        sf.write(tmp / "thirty.wav", audio[: 30 * sr], sr)
        if args.model is None:
            seconds = whole_process(tmp / "thirty.wav", args.repeats)
            print(f"{'whole process, 30 s (adt transcribe)':38s} {seconds:8.2f} {seconds / 30:7.3f} "
                  f"{30 / seconds:11.1f}x")
    if separator is None:
        print("(no separation model: run `make demo` to train one, or have the pretrained umxl weights cached)")


if __name__ == "__main__":
    main()
