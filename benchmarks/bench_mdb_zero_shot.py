"""Zero-shot MDB Drums goal: micro F-measure (3 classes, 50 ms) on the real drum-only MDB test tracks of a
frame-level transcriber trained on rendered data only, scored after every epoch.

Usage: .venv/bin/python benchmarks/bench_mdb_zero_shot.py [--profile demo] [--train-sets demo,groove]
       [--epochs 20] [--steps 60] [--architecture frame_crnn] [--render-kits N] [--recorded-kits]

Runs the stages up to ``features`` (``adt.stages.run_stages``; cached: after ``make demo`` nothing is
recomputed),
then trains one transcriber with the thesis recipe (``adt.frame.recipe.train_model``, the architecture's
default hyperparameters, the profile's batch size and seed) for ``--epochs`` x ``--steps`` and prints,
per epoch, the validation micro F (5 classes, the training sets' validation splits: what model
selection sees) and the MDB test micro F, P, R (3 classes) with the thesis's peak picking.
``--render-kits N`` renders every Groove performance on N of the soundfont's kits (the profile's
``render_kits_per_track``; a profile variant ``<profile>-kitsN`` with its own cached tracks). Goal
(issue 5): >= 0.80 on MDB at the epoch selected on validation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from adt.config import Settings

    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--train-sets", default="demo,groove")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--architecture", default="frame_crnn")
    parser.add_argument("--render-kits", type=int, help="Groove renders per performance (kits)")
    parser.add_argument("--recorded-kits", action="store_true",
                        help="render Groove with recorded Hydrogen kits, kit-disjoint splits "
                             "(adt.data.kits.catalogue.KIT_DISJOINT_SPLITS) instead of the SoundFont")
    args = parser.parse_args()
    if args.render_kits or args.recorded_kits:
        import dataclasses

        from adt.config import PROFILES, get_profile
        from adt.data.kits.catalogue import KIT_DISJOINT_SPLITS

        name = f"{args.profile}-kits{args.render_kits or 1}" + ("-recorded" if args.recorded_kits else "")
        PROFILES[name] = dataclasses.replace(get_profile(args.profile), name=name,
                                             render_kits_per_track=args.render_kits or 1,
                                             groove_kits=KIT_DISJOINT_SPLITS if args.recorded_kits else None)
        args.profile = name
    os.environ["ADT_PROFILE"] = args.profile
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import pandas as pd

    from adt.config import Settings, get_profile
    from adt.features.stats import TrainingStats
    from adt.frame.recipe import TrainConfig, evaluate, train_model
    from adt.frame.study import scored_items
    from adt.metrics import reference_onsets
    from adt.stages import run_stages
    from adt.vocab import CLASSES_3

    out = run_stages(Settings.from_env(profile=args.profile), until="features")
    features = out["features"]
    refs = reference_onsets(pd.read_parquet(out["onsets"]["path"]))
    combo = tuple(args.train_sets.split(","))
    train_dirs, val_items = features.train_dirs(combo), scored_items(features, refs, combo, "validation")
    stats_info = features.training_stats(combo)
    mdb = scored_items(features, refs, ("mdb",), "test")
    if not mdb:
        raise SystemExit("no MDB test tracks in the features: is ../shared/datasets (ADT_DATA_MIRROR) there?")
    profile = get_profile(args.profile)
    config = TrainConfig.for_profile(profile, epochs=args.epochs, steps_per_epoch=args.steps)
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
    best = max(rows, key=lambda r: r[1])
    final = evaluate(model, mdb, CLASSES_3)
    per_class = ", ".join(f"{c} {final['f_' + c]:.3f}" for c in CLASSES_3)
    print(f"\nbest validation epoch {best[0]} (val F {best[1]:.3f}): MDB 3-class F {final['f']:.3f} "
          f"(P {final['p']:.3f}, R {final['r']:.3f}; per class "
          f"{per_class}); goal 0.80; "
          f"range over epochs {min(r[2] for r in rows):.3f}-{max(r[2] for r in rows):.3f}; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
