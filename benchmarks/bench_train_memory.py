"""Peak memory of transcriber training against the training-set size: shards are read
lazily (memory-mapped), so peak RSS should stay flat as the set grows.

Usage: .venv/bin/python benchmarks/bench_train_memory.py [--sizes 50,400]
Writes synthetic per-track features (60 s each, 80 log-mel bins, float32) and sparse
onset targets for each size, cuts them into 4-s shards (adt.features.write_shards), and
trains the frame CRNN for the same number of steps (adt.train.train_model) in a fresh
process per size; prints the shard size on disk and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_shards(folder: Path, n_tracks: int, seconds: int = 60) -> Path:
    import numpy as np

    from adt.features import save_array, write_shards

    rng = np.random.default_rng(0)
    items = []
    for i in range(n_tracks):
        t = seconds * 100
        x = rng.normal(size=(t, 80)).astype(np.float32)
        y = (rng.random((t, 5)) < 0.01).astype(np.float32)
        xp, yp = folder / "tracks" / f"{i}.x.npy", folder / "tracks" / f"{i}.y.npy"
        save_array(xp, x)
        save_array(yp, y)
        items.append((xp, yp))
    shard_dir = folder / "shards"
    write_shards(items, shard_dir)
    return shard_dir


def train_child(shard_dir: str) -> None:
    import torch

    from adt.train import TrainConfig, train_model

    torch.set_num_threads(2)
    start = time.perf_counter()
    config = TrainConfig(epochs=2, steps_per_epoch=20, batch_size=16, seed=0)
    train_model([Path(shard_dir)], [], config)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,400", help="training-set sizes in 60-s tracks")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train_child(args.child)
        return
    print(f"{'tracks':>6} {'hours':>6} {'shards MB':>10} {'peak RSS MB':>12} {'train s':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            shard_dir = make_shards(Path(tmp), n)
            size_mb = sum(f.stat().st_size for f in shard_dir.glob("*.npy")) / 2**20
            out = subprocess.run([sys.executable, __file__, "--child", str(shard_dir)], capture_output=True,
                                 text=True, cwd=ROOT, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{n:>6} {n / 60:>6.2f} {size_mb:>10.0f} {result['peak_rss_mb']:>12.0f} {result['seconds']:>8.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
