"""Feature layer throughput on real drum audio, 2 CPU threads.

Usage: .venv/bin/python benchmarks/bench_features.py [--repeat 4]

Input: the MDB Drums drum-only recordings of ``mdb-drums-subset.zip``
(ADT_DATA_MIRROR or ../shared/datasets), extracted to a temporary folder.
Measures, and prints:

1. feature extraction for both feature types (log mel, log filtered): tracks/s and
   x real time (audio seconds per wall-clock second), file read included;
2. shard writing (``write_shards``, 4-s segments, hop 2 s) of the log-mel features and
   targets, the track set repeated ``--repeat`` times: MB/s and frames/s written;
3. shard reading: every segment once through ``ShardDataset`` (memory-mapped; the
   files are in the page cache, as during training): MB/s and frames/s;
4. the training loader (``segment_loader``, random segments, batch 16) with
   num_workers 0 and 2: batches/s; against training steps/s of the FrameCRNN
   (TrainConfig defaults, batch 16 x 400 frames, weighted BCE, AdamW, clipping) with
   ``torch.set_num_threads(2)``. The loader should outpace training by 10x or more.

Takes about 1-3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

MDB_PREFIX = "MDBDrums-master/MDB Drums/"
CLASS_MAP = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}


def mirror() -> Path:
    return Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")


def extract_mdb(out: Path) -> list[tuple[Path, Path]]:
    """(drum-only wav, class annotation) of every recording in the subset archive."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    with zipfile.ZipFile(mirror() / "mdb-drums-subset.zip") as z:
        names = set(z.namelist())
        for name in sorted(n for n in names if n.endswith("_Drum.wav")):
            track = Path(name).name[: -len("_Drum.wav")]
            ann = f"{MDB_PREFIX}annotations/class/{track}_class.txt"
            if ann not in names:
                continue
            wav, txt = out / f"{track}.wav", out / f"{track}.txt"
            wav.write_bytes(z.read(name))
            txt.write_bytes(z.read(ann))
            pairs.append((wav, txt))
    return pairs


def onsets(txt: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in txt.read_text().splitlines() if line.strip()]
    rows = [(float(t), CLASS_MAP[c]) for t, c in rows if c in CLASS_MAP]
    return np.array([t for t, _ in rows]), np.array([c for _, c in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=4, help="copies of the track set written to shards")
    parser.add_argument("--steps", type=int, default=12, help="timed training steps")
    args = parser.parse_args()
    import soundfile as sf
    import torch

    from adt.features.spectrogram import FEATURE_TYPES, features_file
    from adt.features.shards import ShardDataset, segment_loader, write_shards
    from adt.features.targets import frame_targets
    from adt.atomic import save_array
    from adt.frame.architectures import FrameCRNN
    from adt.frame.recipe import weighted_bce
    from adt.frame.recipe import TrainConfig

    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pairs = extract_mdb(tmp / "mdb")
        seconds = sum(sf.info(str(w)).duration for w, _ in pairs)
        print(f"input: {len(pairs)} MDB Drums drum-only recordings, {seconds:.0f} s of audio")

        # 1. feature extraction
        items = {}
        features_file(pairs[0][0], "log_filtered")  # warm up (imports, filterbank)
        features_file(pairs[0][0], "log_mel")
        for ft in FEATURE_TYPES:
            start = time.perf_counter()
            feats = [features_file(w, ft) for w, _ in pairs]
            wall = time.perf_counter() - start
            print(f"extract {ft:12s}: {len(pairs) / wall:6.2f} tracks/s, {seconds / wall:6.0f}x real time "
                  f"({wall:.2f} s, {feats[0].shape[1]} bins)")
            items[ft] = []
            for (w, txt), x in zip(pairs, feats):
                t, d = onsets(txt)
                items[ft].append((save_array(tmp / ft / f"{w.stem}.x.npy", x),
                                  save_array(tmp / ft / f"{w.stem}.y.npy", frame_targets(t, d, len(x)))))

        # 2. shard writing (log mel), the track set repeated
        track_items = items["log_mel"] * args.repeat
        start = time.perf_counter()
        index = write_shards(track_items, tmp / "shards", extra={"feature_type": "log_mel"})
        wall = time.perf_counter() - start
        written = sum(f.stat().st_size for f in (tmp / "shards").glob("*.npy"))
        frames = index["segments"] * index["segment_frames"]
        print(f"shard write : {written / wall / 1e6:7.1f} MB/s, {frames / wall:9.0f} frames/s "
              f"({index['segments']} segments, {written / 1e6:.1f} MB in {wall:.2f} s)")

        # 3. shard reading, every segment once, in order
        data = ShardDataset([tmp / "shards"])
        start = time.perf_counter()
        for i in range(len(data)):
            data[i]
        wall = time.perf_counter() - start
        print(f"shard read  : {written / wall / 1e6:7.1f} MB/s, {frames / wall:9.0f} frames/s (page cache warm)")

        # 4. loader vs training step, batch 16
        config = TrainConfig()
        rates = {}
        for workers in (0, 2):
            loader = segment_loader(data, batch_size=16, num_samples=16 * 400, seed=0, num_workers=workers)
            it = iter(loader)
            next(it)  # start the workers
            start = time.perf_counter()
            n = sum(1 for _ in it)
            rates[workers] = n / (time.perf_counter() - start)
            del it, loader
        model = FrameCRNN(n_features=data.n_features, channels=config.channels, hidden=config.hidden,
                          layers=config.layers, dropout=config.dropout)
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-9)
        batches = [b for _, b in zip(range(args.steps + 2), segment_loader(data, 16, 16 * (args.steps + 2), seed=1))]
        model.train()
        times = []
        for x, y in batches:
            start = time.perf_counter()
            opt.zero_grad()
            loss = weighted_bce(model(x), y, config.beta)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            times.append(time.perf_counter() - start)
        steps = 1 / np.median(times[2:])
        for workers, rate in rates.items():
            print(f"loader      : {rate:7.1f} batches/s with num_workers={workers} (batch 16 x 400 frames)")
        print(f"training    : {steps:7.2f} steps/s (FrameCRNN {config.channels}, GRU {config.layers}x{config.hidden}, "
              f"batch 16, 2 threads, median of {len(times) - 2})")
        print(f"loader / training: {rates[0] / steps:.0f}x (num_workers=0), {rates[2] / steps:.0f}x (num_workers=2)")


if __name__ == "__main__":
    main()
