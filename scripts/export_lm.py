"""Export the GRU drum-score LMs the package ships: ``adt/pretrained/gru_lm_groove.pt`` (K = 5: BD SD TT HH CY),
``adt/pretrained/gru_lm_groove_k3.pt`` (K = 3: BD SD HH) and their model card ``adt/pretrained/gru_lm_groove.md``.

Usage: .venv/bin/python scripts/export_lm.py [--epochs 25] [--seed 0] [--mirror ../shared/datasets]

The tatum paper's GRU LM (Eq. 2; 3 layers x 64 units, its Optuna choice, Sec. IV-A) is trained with
:func:`adt.lm.gru.train_gru_lm` (one thread, seeded) on every 4/4 performance of the Groove MIDI Dataset's official
*train* split (:func:`adt.lm.corpus.groove_corpus` on ``groove-v1.0.0-midionly.zip``; the 3-class scores are rows
BD, SD, HH of the 5-class ones, as :func:`adt.lm.corpus.build_drum_scores` makes them); the epoch is chosen on the
official *validation* split, so the *test* split stays unseen. The skip-bigram (Eq. 3) fitted on the same training
scores is the reference: a GRU LM that does not beat it on validation is refused (not shipped). Weights only
(:func:`adt.lm.gru.save`, written atomically), each refused over 10 MB. The card states each file's SHA-256, which
:func:`adt.lm.shipped.shipped_lm` checks before loading.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_BYTES = 10 * 1024 * 1024
HIDDEN, LAYERS = 64, 3


def card(rows: dict, counts: dict, skipped: int, args, commit: str, command: str) -> str:
    """The model card (markdown) from each K's figures ``rows[k]`` and the corpus ``counts[split] = (scores,
    tatums)``."""
    from adt.lm.shipped import SHIPPED_LM

    files = "\n".join(f"- **SHA-256** of `{r['file']}`: `{r['sha']}` ({r['bytes'] / 1e6:.2f} MB; K = {k}, "
                      f"{r['classes']})" for k, r in rows.items())
    corpus = "\n".join(f"| {s} | {n} | {t:,} |" for s, (n, t) in counts.items())
    figures = "\n".join(
        f"| {k} ({r['classes']}) | {r['bigram']['validation']:.3f} | {r['gru']['validation']:.3f} | "
        f"{r['bigram']['test']:.3f} | {r['gru']['test']:.3f} |" for k, r in rows.items())
    training = "\n".join(
        f"| {k} | {r['best_epoch']} of {args.epochs} | {r['seconds']:.0f} s ({r['seconds'] / args.epochs:.1f} s per "
        f"epoch) | {r['params']:,} |" for k, r in rows.items())
    return f"""# Model card: `{SHIPPED_LM}`

The GRU drum-score language models shipped with the package: the starting point of the `lm_gru` stage when the
profile's `start_from_shipped` is set (the `demo` profile fine-tunes them instead of running an Optuna sweep), and
the reference every fitted GRU LM is compared with on its validation scores (the stage keeps the shipped one when
it is better: `adt.lm.fit.fit_gru`). Weights only: `{SHIPPED_LM}.pt` (K = 5) and `{SHIPPED_LM}_k3.pt` (K = 3), each
`{{"type", "config", "state_dict"}}` read with `torch.load(weights_only=True)` (`adt.lm.gru.load`;
`adt.lm.shipped.shipped_lm(k)` checks the SHA-256 below first).

{files}
- **Commit** that trained them: `{commit}`; exported by `scripts/export_lm.py`.
- **License of the weights**: trained on the Groove MIDI Dataset (Gillick et al. 2019, Magenta), CC BY 4.0:
  attribution required.

## Model
- The tatum paper's GRU LM (Ishizuka et al., Sec. III-C-2, Eq. 2; `adt.lm.gru.GRUDrumLM`): input at tatum m the
  previous tatum's K drums and a start flag (K + 1 values), {LAYERS} stacked GRUs of {HIDDEN} units (the paper's
  Optuna choice, Sec. IV-A; no sweep here), a linear layer to the 2^K drum combinations, log-softmax:
  log p(Y[:, m] | Y[:, 1:m-1]), in nats. Scores: binary (K drums x M tatums), 16th-note tatums on the beat grid
  (4 per beat).
- Perplexity per drum and tatum, `exp(NLL / (K * M))`: chance (uniform) is 2 (paper on RWC, K = 3: bigram 1.51,
  GRU 1.44).

## Training data
The Groove MIDI Dataset v1.0.0 (`groove-v1.0.0-midionly.zip`, license CC BY 4.0), every performance (beats and
fills) in 4/4, official split (`adt.lm.corpus.groove_corpus`, on each MIDI file's tempo map); {skipped} performances
skipped (not 4/4). Trained on *train* only; the epoch kept is the one with the lowest *validation* perplexity;
*test* was only scored. Note: each performance is in one split, but 17 of Groove's 25 sessions are spread over the
three splits.

| split | scores | tatums |
|---|---|---|
{corpus}

Adam (lr 1e-3), batches of 16 random crops of 128 tatums (about one crop per 128 tatums of each score per
epoch), {args.epochs} epochs, seed {args.seed}, one CPU thread (`adt.lm.gru.train_gru_lm` defaults):

| K | epoch kept (lowest validation perplexity) | training time (this machine, 2 shared cores) | parameters |
|---|---|---|---|
{training}

## Figures (perplexity per drum and tatum; chance 2)
The skip-bigram LM (Eq. 3, skip 16, add-one smoothing: `adt.lm.bigram.SkipBigramLM`) fitted on the same training
scores:

| K | skip-bigram validation | GRU validation | skip-bigram test | GRU test |
|---|---|---|---|---|
{figures}

## Reproduce
```
{command}
```
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mirror", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=None, help="folder (default adt/pretrained)")
    args = parser.parse_args()

    from adt.atomic import atomic_path
    from adt.lm import gru, shipped
    from adt.lm.bigram import SkipBigramLM
    from adt.lm.corpus import groove_corpus
    from adt.tracking import git_commit
    from adt.vocab import CLASSES_3, CLASSES_5, INDEX_3_IN_5

    out_dir = args.out or shipped.PRETRAINED_DIR
    commit = git_commit()
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(args.mirror / "groove-v1.0.0-midionly.zip") as z:
            z.extractall(tmp)
        scores, skipped = groove_corpus(Path(tmp), k=5)
    split5 = {s: [c["y"] for c in scores if c["split"] == s] for s in ("train", "validation", "test")}
    counts = {s: (len(ys), sum(y.shape[1] for y in ys)) for s, ys in split5.items()}
    print(f"corpus: {counts}, {len(skipped)} skipped", flush=True)
    rows, models = {}, {}
    for k, classes, rows_of in ((5, CLASSES_5, slice(None)), (3, CLASSES_3, list(INDEX_3_IN_5))):
        split = {s: [y[rows_of] for y in ys] for s, ys in split5.items()}
        bigram = SkipBigramLM().fit(split["train"])
        t0 = time.perf_counter()
        model, history = gru.train_gru_lm(
            split["train"], split["validation"], hidden=HIDDEN, layers=LAYERS, epochs=args.epochs, seed=args.seed,
            on_epoch=lambda e, m: print(f"K={k} epoch {e}: {m}", flush=True))
        seconds = time.perf_counter() - t0
        r = {"classes": " ".join(classes), "seconds": seconds, "params": sum(p.numel() for p in model.parameters()),
             "best_epoch": min(history, key=lambda h: h["val_perplexity"])["epoch"],
             "bigram": {s: float(bigram.perplexity(split[s])) for s in ("validation", "test")},
             "gru": {s: float(model.perplexity(split[s])) for s in ("validation", "test")}}
        print(f"K={k}: {r}", flush=True)
        if not r["gru"]["validation"] < r["bigram"]["validation"]:
            raise SystemExit(f"K={k}: the GRU LM does not beat the skip-bigram on validation ({r}): not shipped")
        rows[k], models[k] = r, model
    for k, r in rows.items():  # written once both are trained: a failed run leaves the shipped files as they were
        path = gru.save(models[k], out_dir / shipped.shipped_lm_path(k).name)
        r["bytes"] = path.stat().st_size
        if r["bytes"] > MAX_BYTES:
            path.unlink()
            raise SystemExit(f"{path}: {r['bytes'] / 1e6:.1f} MB, over the 10 MB the package ships")
        r["file"], r["sha"] = path.name, hashlib.sha256(path.read_bytes()).hexdigest()
    command = f".venv/bin/python scripts/export_lm.py --epochs {args.epochs} --seed {args.seed}"
    text = card(rows, counts, len(skipped), args, commit, command)
    with atomic_path(out_dir / f"{shipped.SHIPPED_LM}.md") as tmp:
        Path(tmp).write_text(text)
    print(f"wrote {', '.join(r['file'] for r in rows.values())} and {shipped.SHIPPED_LM}.md in {out_dir}")


if __name__ == "__main__":
    main()
