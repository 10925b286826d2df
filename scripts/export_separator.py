"""Export the separator the package ships: ``adt/pretrained/separator_standard.pt`` (float16 weights) and its model
card ``adt/pretrained/separator_standard.md``.

Usage: .venv/bin/python scripts/export_separator.py OUT_DIR --command "..." [--profile demo]

OUT_DIR: the folder of ``benchmarks/bench_separation_real_songs.py`` after ``--folds 0,1,2`` and ``--final``:
``final/final.json`` (the model trained on the renders and all 9 real songs), ``report.json`` (the
cross-validated real-song figures) and ``report.md``. The weights are re-saved as a ``adt-shared-encoder/2``
payload in float16 (``torch.load(weights_only=True)`` reads it) and refused over 10 MB, or when the
cross-validated chosen separator does not beat the mixture itself on the real songs' drums, or the final model
gives a silent estimate of a source (degenerate). The card
gives the architecture, the data and their licenses, the cross-validated figures, the inference speed on 2
cores, the commit, the command and the SHA-256 (``tests/test_pretrained.py`` checks it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MAX_BYTES = 10 * 1024 * 1024


def speed(separator, seconds: float = 60.0) -> dict:
    """Seconds of audio separated per second on this machine's torch threads, drums alone and all sources, on
    ``seconds`` of a real MDB full mix (looped)."""
    import glob

    import numpy as np

    from adt.audio import read_audio

    path = sorted(glob.glob("data/real_songs/audio/*/mix.wav"))[0]
    audio, sr = read_audio(path)
    audio = np.tile(np.atleast_2d(audio), int(np.ceil(seconds * sr / audio.shape[-1])))[:, : int(seconds * sr)]
    separator.separate(audio[:, : sr], sr)  # warm-up
    out = {}
    for label, sources in (("drums", ("drums",)), ("all", None)):
        t0 = time.perf_counter()
        separator.separate(audio, sr, sources)
        out[label] = seconds / (time.perf_counter() - t0)
    return out


def card(name: str, final: dict, report: dict, report_md: str, command: str, sha: str, size: int, commit: str,
         rtf: dict, n_params: int, profile) -> str:
    from adt.data.kits.catalogue import kit_license

    kits = profile.data.corpus_kits or {}
    kit_rows = "\n".join(f"| {split} | `{k}` | {kit_license(k)} |" for split in ("train", "validation", "test")
                         for k in kits.get(split, []))
    pooled = report["pooled"]
    chosen = pooled["chosen"]
    mixture = pooled.get("mixture", {})
    real_table = report_md.split("## Real songs, cross-validated (dB, mean of per-song medians / median)")[1]
    real_table = real_table.split("## Table 2")[0].strip()
    history = final.get("history", [])
    head = ("a ReLU magnitude (the paper)" if final.get("output", "magnitude") == "magnitude" else
            "a sigmoid soft mask on the mixture's magnitude (the `*_mask` variant: the paper's ReLU magnitudes lost "
            "the cross-validated choice)")
    return f"""# Model card: `{name}`

The separator `adt separate` uses, and `adt transcribe` for models that hear separated drums, when the data
folder has no separation study of its own (right after installation, offline). Weights only: `{name}.pt`, float16,
read with `torch.load(weights_only=True)` (`adt.separation.separator.shipped`).

- **SHA-256** of `{name}.pt`: `{sha}` ({size / 1e6:.2f} MB)
- **Commit** that trained it: `{commit}`; exported by `scripts/export_separator.py`.
- **License of the weights**: trained on MDB Drums / MedleyDB multitracks (CC BY-NC-SA 4.0): use them under the
  same terms (non-commercial, share alike, attribution: Southall et al. 2017, Bittner et al. 2014).

## Model
- `{final['name']}`: the interleaved multitask paper's shared-encoder U-Net (`adt.separation.unet`, procedure
  `{final['procedure']}`, encoder `{final.get('encoder', '-')}`): encoder 16, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256
  maps, one decoder per source (drums, bass, other) ending in {head}; {n_params:,} parameters.
- Input: 44.1 kHz stereo (mono doubled), STFT 2048 / hop 512, bins scaled by the training mixtures' standard
  deviation, neighbouring bins averaged in pairs (`freq_pool` 2); chunks of 60 s cross-faded over 1 s.
- Output: each decoder's magnitude turned into ratio masks over the three (`S_j^2 / sum_k S_k^2`, the mixture's
  phase), so the stems sum to the mixture (`--model` with a study's `"ratio_masks": false` spec: the paper's raw
  magnitudes).
- Speed on this machine's 2 cores: drums alone {rtf['drums']:.1f}x real time, all sources {rtf['all']:.1f}x.

## Training data
Adam (lr 1e-3), mini-batches of 8 patches of 65 frames (0.75 s); the state of round {final.get('best_round', '?')} of
{history[-1]['round'] if history else '?'} kept (the lowest validation loss on the validation renders; early stopping
after 5 validations without improvement{' ended training' if final.get('converged') else ' did not trigger: the 100-round budget ended first'});
each source randomly scaled, panned and filtered before the mixture is summed.

- **Real recordings**: all 9 MDB Drums songs with MedleyDB multitracks (80sRock, Beatles, Britpop, Country1,
  Grunge, Punk, Rockabilly, Shadows, SpeedMetal): their raws summed per role into drums, bass and other (one
  peak-safe gain per song). License: CC BY-NC-SA 4.0.
- **Renders**: the `{profile.name}` profile's Groove MIDI (CC BY 4.0) and generated grooves rendered on the kits
  below with a FluidR3 band (`fluid-soundfont-gm`, MIT) as bass and other stems, training and validation renders
  pooled, each source with its own random split.

| split | kit | license |
|---|---|---|
{kit_rows}

## Figures (BSSEval v4, museval; 1-s windows, median per song; dB)
Cross-validated on the 9 real songs: 3 song-disjoint folds (`adt.data.datasets.mdb.REAL_SONG_FOLDS`); each fold's
study trains every model on the renders and the other folds' songs but one each, chooses its separator on those
two real validation songs and scores its own three songs whole: the real full mix (the sum of the stems) against
the real drums, bass and other. `chosen`: each fold's chosen separator on its songs (chosen: {', '.join(report['chosen'])}).
Mean of the per-song medians (the paper's aggregate) / median:

{real_table}

The chosen separators' drums: {chosen.get('sdr.drums.real', float('nan')):.2f} dB SDR (mixture as the estimate:
{mixture.get('sdr.drums.real', float('nan')):.2f} dB); bass {chosen.get('sdr.bass.real', float('nan')):.2f} dB,
other {chosen.get('sdr.other.real', float('nan')):.2f} dB. The shipped model itself heard all 9 songs: its own
figures on them are not a measure of generalization.

## Reproduce
```
{command}
```
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--command", required=True)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--commit")
    args = parser.parse_args()

    import torch

    from adt.atomic import atomic_path
    from adt.config import get_profile
    from adt.separation import procedures, separator
    from adt.tracking import git_commit

    final = json.loads((args.out_dir / "final" / "final.json").read_text())
    report = json.loads((args.out_dir / "report.json").read_text())
    chosen, mixture = report["pooled"]["chosen"], report["pooled"].get("mixture", {})
    if not chosen.get("sdr.drums.real", float("-inf")) > mixture.get("sdr.drums.real", float("inf")):
        raise SystemExit(f"{args.out_dir}: the chosen separators do not beat the mixture on the real songs' drums "
                         f"({chosen.get('sdr.drums.real')} vs {mixture.get('sdr.drums.real')} dB): not shipped")
    silent = [k for k, v in final.items() if k.startswith("silent.") and v > 0]
    if silent:
        raise SystemExit(f"{final['name']}: silent estimates ({', '.join(silent)}): degenerate, not shipped")
    models = procedures.load(final["model_paths"])
    if len(models) != 1:
        raise SystemExit(f"{final['name']}: one network per source ({len(models)}); the package ships one shared model")
    model = next(iter(models.values()))
    out = separator.shipped_path()
    with atomic_path(out) as tmp:
        torch.save(model.payload(half=True), tmp)
    size = out.stat().st_size
    if size > MAX_BYTES:
        out.unlink()
        raise SystemExit(f"{out}: {size / 1e6:.1f} MB, over the 10 MB the package ships")
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    torch.set_num_threads(2)
    rtf = speed(separator.shipped())
    n_params = sum(p.numel() for p in model.parameters())
    text = card(separator.SHIPPED_SEPARATOR, final, report, (args.out_dir / "report.md").read_text(), args.command,
                sha, size, args.commit or git_commit(), rtf, n_params, get_profile(args.profile))
    out.with_suffix(".md").write_text(text)
    print(f"wrote {out} ({size / 1e6:.2f} MB, sha256 {sha[:12]}; drums {rtf['drums']:.1f}x, all {rtf['all']:.1f}x "
          f"real time) and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
