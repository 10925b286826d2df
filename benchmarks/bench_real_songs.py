"""Cross-validated real-song figure (issue 26): 3-class micro F on the 9 real MDB songs, drum-only and real
full mixes, each song scored by the model that never saw it (:mod:`adt.evaluation.real_songs`).

Usage:
  .venv/bin/python benchmarks/bench_real_songs.py --fold 0|1|2   # train fold k's model (--report scores it)
  .venv/bin/python benchmarks/bench_real_songs.py --fold final   # train on all 9 songs (the shipped recipe)
  .venv/bin/python benchmarks/bench_real_songs.py --model PATH   # score a checkpoint on all 9 (no training;
                                                                 # NOT cross-validated if it saw the songs)
  .venv/bin/python benchmarks/bench_real_songs.py --report       # score each fold's model on its songs (also at
                                                                 # gains 0.25-4 and degraded), pool: the figure that counts
  options: --epochs 8 --steps 50 --lr 5e-4 --real-share 0.4 --gain-db 20 --spectral mild|strong|none --scratch --threads 1
           --profile demo --out benchmarks/out/real_songs [--levels] (--model, final: gains 0.25..4 as well)

Recipe of a fold (``adt.frame.real_songs``): the rendered corpus of ``--profile`` (demo and Groove renders,
kit-disjoint splits; heard as mixes and as clean drum stems) plus the training folds' real songs (drum-only,
real mixes, rendered drums under their real bands), ``--real-share`` of the segments real, random gain +-20 dB
and spectral shape (``adt.features.augment``); started from the renders-only transcriber
(``adt/pretrained/frame_crnn_renders.pt``, which heard no real song; ``--scratch``: a fresh FrameCRNN); validation on the profile's rendered validation tracks plus the real validation songs
(:func:`adt.data.datasets.mdb.validation_songs`), which choose the epoch and the peak-picking floors.
``final`` trains on all 9 songs for the folds' largest chosen epoch with no selection, and takes the mean
of the folds' floors (chosen on unseen songs). Each run writes ``<out>/<fold>.json`` and ``<fold>.pt``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def report(out_dir: Path, gain: str = "1.0", log_mlflow: bool = True) -> dict:
    """Score every fold's model on its own test songs (as recorded, at input gains 0.25-4, degraded),
    pool them (the cross-validated figure), print and write ``report.md`` and ``robustness.md``, log
    them to MLflow, and fail (exit status 1) when the result is degenerate
    (:func:`adt.evaluation.real_songs.degenerate`: no onset found, or a class silenced on a song that has it), (experiment ``adt/real_songs``) with per-class activation figures of a real song.

    A fold model saved without an input level gets the recipe's (:data:`adt.frame.real_songs.INPUT_LEVEL_DB`):
    the shipped model is scored as it ships."""
    from adt.config import Settings
    from adt.data.datasets.mdb_folds import folds_for
    from adt.evaluation.real_songs import DEGRADATIONS, INPUTS, degenerate, markdown, score_songs, summarize
    from adt.frame.real_songs import BASE_MODEL, INPUT_LEVEL_DB, prepare
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import pretrained_path

    songs, *_ = prepare(Settings.from_env(profile="demo"))
    by_name = {s.name: s for s in songs}
    gains = ("0.25", "0.5", "1.0", "2.0", "4.0")
    cross: dict[str, dict] = {}
    for k in range(3):
        path = out_dir / f"fold{k}.json"
        if not path.is_file():
            raise SystemExit(f"{path}: missing; run --fold {k} first")
        model = load_model(out_dir / f"{k}.pt")
        if model.input_level_db is None:
            model.input_level_db = INPUT_LEVEL_DB
        fold = json.loads(path.read_text())
        fold["counts"] = score_songs(model, [by_name[n] for n in folds_for(k)[1]], tuple(map(float, gains)),
                                     DEGRADATIONS)
        fold["input_level_db"] = model.input_level_db
        path.write_text(json.dumps(fold, indent=1, default=float))
        cross.update(fold["counts"])
    summaries = {label: summarize({s: v[w][gain] for s, v in cross.items()})
                 for label, w in (("drum-only", "drum"), ("real full mix", "mix"))}
    text = markdown(summaries)
    levels = {f"{w} x{g}": summarize({s: v[w][g] for s, v in cross.items()})["f"] for w in INPUTS for g in gains}
    level_line = "Input gain (3-class micro F): " + ", ".join(f"{k} {v:.3f}" for k, v in levels.items()) + "."
    rows = {"cross-validated folds": cross}
    rows["renders only (before; no real song heard)"] = score_songs(
        load_model(pretrained_path(BASE_MODEL)), songs, degradations=DEGRADATIONS)
    keys = ("1.0", *DEGRADATIONS)
    head = "| model | " + " | ".join(f"{w} {k}" for w in INPUTS for k in keys) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(keys))]
    for label, counts in rows.items():
        cells = []
        for w in INPUTS:
            for key in keys:
                s = summarize({song: v[w][key] for song, v in counts.items()})
                cells.append(f"{s['f']:.3f} (HH {s['per_class']['HH']['f']:.2f}, BD {s['per_class']['BD']['f']:.2f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    robust = ("3-class micro F (HH F, BD F) on the 9 real songs as recorded (1.0) and degraded (low-passed at "
              "8 kHz, 22.05-kHz audio, high-passed at 200 Hz):\n\n" + "\n".join(lines))
    print(f"Cross-validated on the 9 real MDB songs (input gain {gain}):\n\n{text}\n\n{level_line}\n\n{robust}")
    (out_dir / "report.md").write_text(text + "\n\n" + level_line + "\n")
    (out_dir / "robustness.md").write_text(robust + "\n")
    problems = [f"{label}: {p}" for label, summary in summaries.items() for p in degenerate(summary)]
    if log_mlflow:
        log_report(out_dir, summaries, text + "\n\n" + level_line + "\n\n" + robust, levels, problems)
    if problems:  # a degenerate result fails the check, never a table row without comment
        raise SystemExit("check failed, degenerate cross-validated result:\n  " + "\n  ".join(problems))
    return summaries


def log_report(out_dir: Path, summaries: dict, text: str, levels: dict, problems: list[str]) -> None:
    """One MLflow run (git commit, library versions): the pooled figures as metrics, the tables, the folds'
    JSON, and activation figures (BD SD HH) of Britpop (fold 2; most hi-hats) as recorded and low-passed
    at 8 kHz, the renders-only model (:data:`adt.frame.real_songs.BASE_MODEL`) against fold 2's."""
    import mlflow
    from scipy.signal import butter, sosfiltfilt

    from adt import tracking
    from adt.audio import read_audio
    from adt.config import Settings
    from adt.evaluation.real_songs import activation_figure
    from adt.frame.real_songs import BASE_MODEL, prepare
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import pretrained_path

    with tracking.run("real_songs", "cross-validation", params={"folds": 3, "songs": 9}) as active:
        for label, s in summaries.items():
            key = "drum" if label.startswith("drum") else "mix"
            mlflow.log_metrics({f"cv_f.{key}": s["f"], f"cv_p.{key}": s["p"], f"cv_r.{key}": s["r"],
                                f"cv_worst_song_f.{key}": s["worst_song"][1],
                                **{f"cv_f.{key}.{c}": v["f"] for c, v in s["per_class"].items()}})
        mlflow.log_metrics({tracking.metric_name("level_f", k): v for k, v in levels.items()})
        mlflow.log_text(text, "real_songs.md")
        mlflow.set_tag("check.degenerate", "; ".join(problems) if problems else "passed")
        for k in range(3):
            mlflow.log_artifact(str(out_dir / f"fold{k}.json"))
        songs, *_ = prepare(Settings.from_env(profile="demo"))
        song = next(s for s in songs if s.name == "MusicDelta_Britpop")
        models = {"renders only (before)": load_model(pretrained_path(BASE_MODEL)),
                  "fold 2 (never heard Britpop)": load_model(out_dir / "2.pt")}
        for what, path in (("drum", song.drum_path), ("mix", song.mix_path)):
            audio, sr = read_audio(path, mono=True)
            for tag, signal in (("as recorded", audio),
                                ("low-passed 8 kHz", sosfiltfilt(butter(8, 8000, fs=sr, output="sos"), audio))):
                fig = activation_figure(models, signal.astype(np.float32), sr, song.onsets,
                                        f"Britpop, {what}, {tag}")
                name = f"activations_britpop_{what}_{tag.split()[0].replace('-', '')}.png"
                fig.savefig(out_dir / name, dpi=90)
                mlflow.log_figure(fig, name)
        print(f"MLflow run {active.info.run_id} (experiment adt/real_songs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", help="0, 1, 2 or final")
    parser.add_argument("--model", help="score this checkpoint on all 9 songs")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true", help="--report without the MLflow run")
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--real-share", type=float, default=None)
    parser.add_argument("--gain-db", type=float, default=20.0)
    parser.add_argument("--spectral", default="mild", help="spectral shape (adt.features.augment.SHAPES) or none")
    parser.add_argument("--scratch", action="store_true",
                        help="a fresh FrameCRNN instead of the renders-only model (adt.frame.real_songs.BASE_MODEL)")
    parser.add_argument("--wide", action="store_true",
                        help="with --scratch: the public transcriber's size (2 conv blocks of 32 and 64 channels, "
                             "3 BiGRU layers of 60 units; 0.40 M parameters) instead of the 215 K FrameCRNN")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--levels", action="store_true", help="also score input gains 0.25, 0.5, 2, 4")
    parser.add_argument("--out", default="benchmarks/out/real_songs")
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("ADT_DATA_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    if args.report:
        report(out_dir, log_mlflow=not args.no_mlflow)
        return
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from adt.frame.real_songs import BASE_MODEL, REAL_SHARE, train_on_real_songs
    from adt.frame.checkpoint import load_model, save_model
    from adt.transcribe.transcriber import pretrained_path

    gains = (0.25, 0.5, 1.0, 2.0, 4.0) if args.levels else (1.0,)
    from adt.config import Settings
    from adt.evaluation.real_songs import score_songs as score
    from adt.frame.real_songs import fold_material, recipe_config

    if args.model:
        from adt.frame.real_songs import prepare

        songs, *_ = prepare(Settings.from_env(profile=args.profile))
        model = load_model(args.model)
        result = {"model": args.model, "counts": score(model, songs, gains)}
        name = Path(args.model).stem
        (out_dir / f"score_{name}.json").write_text(json.dumps(result, indent=1))
        from adt.evaluation.real_songs import markdown, summarize

        print(markdown({w: summarize({s: v[w]["1.0"] for s, v in result["counts"].items()})
                        for w in ("drum", "mix")}))
        return
    t0 = time.perf_counter()
    fold, by_name = fold_material(args.fold, Settings.from_env(profile=args.profile))
    final = fold.final
    train_names, test_names, val_names = fold.train_songs, fold.test_songs, fold.validation_songs
    real_items, val_items, shards, feats = fold.real_items, fold.val_items, fold.render_dirs, fold.features
    # never the shipped model: it heard the 9 songs
    init = None if args.scratch else load_model(pretrained_path(BASE_MODEL))
    params = None if init is None else dict(init.hparams)
    if init is None and args.wide:
        params = {"channels": [32, 64], "hidden": 60, "layers": 3, "dropout": 0.3}
    epochs = args.epochs
    if final:  # the folds' largest chosen epoch, no selection on seen songs
        folds = [json.loads((out_dir / f"fold{k}.json").read_text()) for k in range(3)]
        epochs = max(f["best_epoch"] for f in folds)
    config = recipe_config(epochs, args.steps, args.lr, args.gain_db, args.spectral, threads=args.threads,
                           tune_peak_picking=not final)
    if params is not None:
        params["lr"] = args.lr

    def on_epoch(epoch, m):
        print(f"[{args.fold}] epoch {epoch} loss {m['loss']:.4f} val F {m['val_f']:.3f} "
              f"{m['seconds']:.0f} s", flush=True)

    share = REAL_SHARE if args.real_share is None else args.real_share
    tag = ("wide" if args.wide else "scratch") if args.scratch else "ft"
    model, history = train_on_real_songs(
        shards, real_items, val_items,
        feats / f"shards_{args.fold}_{tag}_{len(real_items)}", config, init=init, params=params,
        real_share=share, on_epoch=on_epoch)
    if final:
        floors = [f["peak_picking"]["min_peak"] for f in folds]
        pp = dict(folds[0]["peak_picking"])
        pp["min_peak"] = {c: float(np.mean([f[c] for f in floors])) for c in floors[0]}
        model.peak_picking = pp
    save_model(model, out_dir / f"{args.fold}.pt")
    result = {"fold": args.fold, "train_songs": train_names, "validation_songs": val_names,
              "test_songs": test_names, "best_epoch": model.best_epoch, "peak_picking": model.peak_picking,
              "history": history, "config": {k: v for k, v in vars(args).items()},
              "real_share": share, "seconds": time.perf_counter() - t0}
    if final:  # a fold's songs are scored by --report (once, as the model ships)
        result["counts"] = score(model, [by_name[n] for n in train_names], gains)
    (out_dir / (f"fold{args.fold}.json" if not final else "final.json")).write_text(
        json.dumps(result, indent=1, default=float))
    if final:  # its own figures on the 9 songs it heard: optimistic, for the card
        from adt.evaluation.real_songs import markdown, summarize

        own = markdown({label: summarize({n: v[w]["1.0"] for n, v in result["counts"].items()})
                        for label, w in (("drum-only (heard)", "drum"), ("real full mix (heard)", "mix"))})
        (out_dir / "final_own.md").write_text(own + "\n")
        print(own)
    print(f"[{args.fold}] done in {result['seconds']:.0f} s; best epoch {model.best_epoch}; floors "
          f"{model.peak_picking.get('min_peak') if isinstance(model.peak_picking, dict) else model.peak_picking}")


if __name__ == "__main__":
    main()
