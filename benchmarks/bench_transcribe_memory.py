"""Peak memory of `adt transcribe` against input length (issue 14: memory flat in length).

Usage: .venv/bin/python benchmarks/bench_transcribe_memory.py [--minutes 1,10] [--tatum | --separate]

Each configuration runs the default command ``adt transcribe IN.wav -o OUT.mid`` (the shipped model,
no separation: a drum-only input) in a fresh process and reads its peak RSS (``os.wait4``); inputs are
real MDB Drums drum-only recordings (ADT_DATA_MIRROR or ../shared/datasets) repeated to the length,
44.1 kHz stereo. Prints one line per length: seconds, peak RSS, wall time, RSS growth per minute.
``--separate`` measures ``adt separate --sources drums`` instead, with a shared-encoder separator of the paper's
size (``UNetConfig()``, seeded random weights: memory does not depend on what the weights are).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def mirror() -> Path:
    env = os.environ.get("ADT_DATA_MIRROR")
    return Path(env) if env else ROOT.parent / "shared" / "datasets"


def make_input(path: Path, minutes: float) -> None:
    with zipfile.ZipFile(mirror() / "mdb-drums-subset.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith("_Drum.wav"))
        clips = [sf.read(io.BytesIO(z.read(n)), dtype="float32")[0] for n in names[:4]]
    mono = np.concatenate([c if c.ndim == 1 else c.mean(axis=1) for c in clips])
    n = int(minutes * 60 * 44100)
    mono = np.tile(mono, n // len(mono) + 1)[:n]
    sf.write(path, np.stack([mono, mono], axis=1), 44100, subtype="FLOAT")


def separator_file(folder: Path) -> Path:
    """A shared-encoder separator of the paper's size with seeded random weights."""
    import torch

    from adt.separation.unet import SharedEncoderSeparator, UNetConfig

    path = folder / "separator.pt"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(SharedEncoderSeparator(UNetConfig()).payload(), path)
    return path


def peak_rss(args: list[str], cwd: Path, code: Path) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of a command, with the ``adt`` package of checkout ``code``."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(code)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="1,10")
    parser.add_argument("--tatum", action="store_true", help="also snap to the tatum grid (madmom beats)")
    parser.add_argument("--separate", action="store_true", help="adt separate (shared-encoder separator) instead")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose adt runs (e.g. an older one)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for minutes in (float(m) for m in args.minutes.split(",")):
            wav = tmp / f"in-{minutes:g}min.wav"
            make_input(wav, minutes)
            if args.separate:
                cmd = [sys.executable, "-m", "adt.cli", "separate", str(wav), "-o", str(tmp / "out"),
                       "--sources", "drums", "--model", str(separator_file(tmp))]
            else:
                cmd = [sys.executable, "-m", "adt.cli", "transcribe", str(wav), "-o", str(tmp / "out.mid")] + \
                    (["--tatum"] if args.tatum else [])
            rss, wall = peak_rss(cmd, tmp, args.code.resolve())  # an empty folder: the shipped model
            rows.append((minutes, rss, wall))
            what = " separate" if args.separate else " --tatum" if args.tatum else ""
            print(f"{minutes:5.1f} min{what}: peak RSS {rss:7.0f} MB, {wall:6.1f} s wall", flush=True)
    if len(rows) > 1:
        (m0, r0, _), (m1, r1, _) = rows[0], rows[-1]
        print(f"growth: {(r1 - r0) / (m1 - m0):.0f} MB per minute of input")


if __name__ == "__main__":
    main()
