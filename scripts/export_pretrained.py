"""Export a trained transcriber as the model shipped with the package: ``adt/pretrained/<name>.pt`` and
its model card ``adt/pretrained/<name>.md``.

Usage: .venv/bin/python scripts/export_pretrained.py CHECKPOINT FIGURES.json --command "..."
       [--name frame_crnn_standard] [--profile standard]

CHECKPOINT: a checkpoint of :func:`adt.frame.recipe.save_model` (``benchmarks/bench_mdb_zero_shot.py --save``);
FIGURES.json: that run's ``--json`` (validation and MDB figures, the learning curve); ``--command``: the
command that trained it, written into the card. The checkpoint is re-saved through ``save_model`` (tensors
and plain values only: ``torch.load(weights_only=True)`` reads it) and refused over 10 MB. The card gives
the architecture, input, peak picking, training data with the kits and their licenses, the figures, the
commit, the command, and the checkpoint's SHA-256 (``tests/test_pretrained.py`` checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_BYTES = 10 * 1024 * 1024


def figure_line(label: str, r: dict) -> str:
    per_class = ", ".join(f"{c} {r['f_' + c]:.3f}" for c in ("BD", "SD", "HH"))
    return f"| {label} | {r['f']:.3f} | {r['p']:.3f} | {r['r']:.3f} | {per_class} |"


def card(name: str, model, figures: dict, profile, command: str, sha: str, size: int, commit: str) -> str:
    from adt.data.kits.catalogue import kit_license

    n_params = sum(p.numel() for p in model.parameters())
    kits = profile.corpus_kits or {}
    kit_rows = "\n".join(f"| {split} | `{k}` | {kit_license(k)} |" for split in ("train", "validation", "test")
                         for k in kits.get(split, ()))
    curve = "\n".join(f"| {e} | {v:.3f} | {m:.3f} |" for e, v, m in figures["epochs"])
    floors = ", ".join(f"{c} {v:.2f}" for c, v in model.peak_picking["min_peak"].items())
    groove = ", ".join(f"{n} {s}" for s, n in profile.groove_tracks.items())
    return f"""# Model card: `{name}`

The transcriber `adt transcribe` uses when the data folder has no registered model (before any
`make demo`). Weights only: `{name}.pt`, read with `torch.load(weights_only=True)`
(`adt.frame.recipe.load_model`).

- **SHA-256** of `{name}.pt`: `{sha}` ({size / 1e6:.2f} MB)
- **Commit** that trained it: `{commit}`; exported by `scripts/export_pretrained.py`.

## Model
- Architecture: `{model.architecture}` (`adt.frame.architectures.FrameCRNN`, the tatum paper's frame-level
  CRNN baseline), hyperparameters `{json.dumps({k: v for k, v in model.hparams.items()})}`; {n_params:,} parameters.
- Input: {model.feature_type} spectrogram at 100 fps of the audio as it is (`transcriber_input =
  "{model.transcriber_input}"`: trained on full mixes and on their clean drum stems, so a full mix and a
  drum-only recording both go in without separation); standardization statistics inside the model.
- Output: onset activation functions of BD, SD, TT, HH, CY; madmom peak picking (thesis windows, delta 0.1)
  with per-class activation floors tuned on validation: {floors} (`adt.frame.peaks.tune_min_peak`).
- MIDI: GM notes 36, 38, 47, 42, 49; velocity from the activation peak.

## Training data (profile `{profile.name}`, `adt.config.PROFILES`)
Rendered by this pipeline only (no real recording is heard in training): Groove MIDI performances
({groove}; cropped to {profile.max_duration_s:.0f} s) and {profile.demo_tracks} generated grooves of
{profile.demo_duration_s:.0f} s, each rendered on {profile.render_kits_per_track} kits of its split
(kit-disjoint splits, `adt.data.kits.splits`), with per-track kit variation, room, EQ, compression, mix ratio
and noise, and a band accompaniment played by FluidR3 (`fluid-soundfont-gm`, MIT). Kits and the licenses
of their samples:

| split | kit | license |
|---|---|---|
{kit_rows}

Recipe: `adt.frame.recipe.train_model` (AdamW, weighted BCE beta = 8, 4-s segments, batch
{profile.batch_size}, up to {figures.get('epochs_planned', len(figures['epochs']))} epochs x
{figures.get('steps', profile.steps_per_epoch)} steps, ReduceLROnPlateau and early stopping on the validation
micro F); the epoch with the best validation micro F is kept (epoch {figures['best_epoch']}).

## Figures (3-class micro F-measure, 50 ms, mir_eval)
Validation (kit-disjoint renders, with and without accompaniment, 5 classes): {figures['val_f']:.3f} at the
chosen epoch; with the tuned floors {figures['tuned_val_f']:.3f}. MDB Drums (9 real drum-only recordings,
never heard; zero-shot):

| test | F | P | R | per class |
|---|---|---|---|---|
{figure_line("MDB drum-only", figures["mdb"])}
{figure_line("MDB drum-only + held-out rendered band", figures["mdb_accompaniment"])}
{figure_line("MDB drum-only, thesis floor 0.5", figures["mdb_untuned"])}
{figure_line("MDB + band, thesis floor 0.5", figures["mdb_accompaniment_untuned"])}

Learning curve (validation 5-class F and MDB 3-class F with the thesis floor, per epoch):

| epoch | validation F | MDB F |
|---|---|---|
{curve}

## Reproduce
```
{command}
.venv/bin/python scripts/export_pretrained.py CHECKPOINT FIGURES.json --command "..."
```
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("figures")
    parser.add_argument("--command", required=True, help="the command that trained the checkpoint")
    parser.add_argument("--name", default=None, help="default: adt.transcribe.transcriber.PRETRAINED_MODEL")
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--commit", help="the commit that trained it (default: this checkout's)")
    args = parser.parse_args()

    from adt.config import get_profile
    from adt.frame.recipe import load_model, save_model
    from adt.tracking import git_commit
    from adt.transcribe.transcriber import PRETRAINED_DIR, PRETRAINED_MODEL

    name = args.name or PRETRAINED_MODEL
    model = load_model(args.checkpoint)
    out = save_model(model, PRETRAINED_DIR / f"{name}.pt")
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out}: {size / 1e6:.1f} MB, over the 10 MB the package ships")
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    figures = json.loads(Path(args.figures).read_text())
    text = card(name, model, figures, get_profile(args.profile), args.command, sha, size,
                args.commit or git_commit())
    (PRETRAINED_DIR / f"{name}.md").write_text(text)
    print(f"wrote {out} ({size / 1e6:.2f} MB, sha256 {sha[:12]}) and {PRETRAINED_DIR / f'{name}.md'}")


if __name__ == "__main__":
    main()
