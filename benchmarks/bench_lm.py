"""Drum-score LM benchmark: training time per epoch and test perplexities, bigram vs GRU.

Usage: .venv/bin/python benchmarks/bench_lm.py [--epochs 12] [--hidden 64] [--layers 3] [--k 5]
Corpus: every 4/4 Groove MIDI performance (official split) from groove-v1.0.0-midionly.zip
(ADT_DATA_MIRROR or ../shared/datasets). Perplexity per drum and tatum (chance 2).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import zipfile
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()
    import torch

    from adt.lm.gru import train_gru_lm
    from adt.lm.bigram import SkipBigramLM
    from adt.lm.corpus import groove_corpus

    torch.set_num_threads(2)
    mirror = Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(mirror / "groove-v1.0.0-midionly.zip") as z:
            z.extractall(tmp)
        start = time.perf_counter()
        scores, skipped = groove_corpus(Path(tmp), k=args.k)
        built = time.perf_counter() - start
    split = {s: [c["y"] for c in scores if c["split"] == s] for s in ("train", "validation", "test")}
    print(f"corpus: {len(scores)} scores ({len(skipped)} skipped) in {built:.1f} s; "
          f"{sum(y.shape[1] for y in split['train'])} training tatums")
    bigram = SkipBigramLM().fit(split["train"])
    print(f"skip-bigram: test perplexity {bigram.perplexity(split['test']):.3f}")
    model, history = train_gru_lm(split["train"], split["validation"], hidden=args.hidden, layers=args.layers,
                                  epochs=args.epochs, seed=0)
    per_epoch = sum(h["seconds"] for h in history) / len(history)
    print(f"GRU {args.layers}x{args.hidden}: {per_epoch:.1f} s per epoch, test perplexity "
          f"{model.perplexity(split['test']):.3f} after {args.epochs} epochs")


if __name__ == "__main__":
    main()
