"""Peak memory of transcriber training against the training-set size: shards are read
lazily (memory-mapped), so peak RSS should stay flat as the set grows.

Usage: .venv/bin/python benchmarks/bench_train_memory.py [--sizes 50,400]
Writes synthetic per-track features (60 s each, 80 log-mel bins, float32) and sparse
onset targets for each size, cuts them into 4-s shards (adt.features.shards.write_shards), and
trains the frame CRNN for the same number of steps (adt.frame.recipe.train_model) in a fresh
process per size, with training statistics precomputed per track as the features asset
does; prints the shard size on disk, the child's peak RSS (which counts the mapped shard
pages it touched) and its peak anonymous memory (heap and tensors, sampled every 50 ms).
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
    """Synthetic tracks -> shards, plus their training statistics in ``folder/stats`` (as the
    features asset computes them per track, memory-mapped one at a time)."""
    import numpy as np

    from adt.atomic import save_array
    from adt.features.shards import write_shards

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
    from adt.features.stats import TrainingStats

    TrainingStats.of_tracks(items).save(folder / "stats")
    return shard_dir


def _rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_child(shard_dir: str) -> None:
    import threading

    import torch

    from adt.features.stats import TrainingStats
    from adt.frame.recipe import TrainConfig, train_model

    peak = {"anon": 0.0}
    done = threading.Event()

    def sample():  # anonymous memory (heap, tensors), not the page cache of the mapped shards
        while not done.wait(0.05):
            peak["anon"] = max(peak["anon"], _rss_anon_mb())

    threading.Thread(target=sample, daemon=True).start()
    torch.set_num_threads(2)
    start = time.perf_counter()
    config = TrainConfig(epochs=2, steps_per_epoch=20, batch_size=16, seed=0)
    train_model([Path(shard_dir)], [], config, stats=TrainingStats.load(Path(shard_dir).parent / "stats"))
    done.set()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": peak_mb, "peak_anon_mb": max(peak["anon"], _rss_anon_mb()),
                      "seconds": time.perf_counter() - start}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="50,400", help="training-set sizes in 60-s tracks")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train_child(args.child)
        return
    print(f"{'tracks':>6} {'hours':>6} {'shards MB':>10} {'peak RSS MB':>12} {'peak anon MB':>13} {'train s':>8}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            shard_dir = make_shards(Path(tmp), n)
            size_mb = sum(f.stat().st_size for f in shard_dir.glob("*.npy")) / 2**20
            out = subprocess.run([sys.executable, __file__, "--child", str(shard_dir)], capture_output=True,
                                 text=True, cwd=ROOT, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{n:>6} {n / 60:>6.2f} {size_mb:>10.0f} {result['peak_rss_mb']:>12.0f} "
                  f"{result['peak_anon_mb']:>13.0f} {result['seconds']:>8.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
