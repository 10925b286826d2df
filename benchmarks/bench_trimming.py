"""Lottery-ticket trimming of the transcriber (lottery paper Table 1 and Figure 2) on a profile's corpus.

Runs the trimming study (:mod:`adt.trimming.study`) of the shipped transcriber's architecture and
hyperparameters (``adt/pretrained/``; in the graph it is the sweep's champion) on the profile's
training sets, prints Table 1 (reference vs optimal trimmed network) and Figure 2's points, and
writes the figures to ``--json``. ``--part i/n`` runs only every n-th seed (from i), so that n
processes (one per core, 1 thread each) fill the same resumable study folder; a last run without
``--part`` assembles the tables from the finished rounds.

    ADT_DATA_DIR=<standard data> python benchmarks/bench_trimming.py --profile standard --part 0/2 &
    ADT_DATA_DIR=<standard data> python benchmarks/bench_trimming.py --profile standard --part 1/2 &
    # or name the (line, seed) jobs of each process: --part 0/2 --jobs trim/magnitude/local@1234,...
    wait; ADT_DATA_DIR=<standard data> python benchmarks/bench_trimming.py --profile standard --json t.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import types


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from adt.config import PROFILES, Settings, get_profile

    parser.add_argument("--profile", default=Settings.from_env().profile)
    parser.add_argument("--epochs", type=int, help="reference epochs (default: TrimmingSettings.epochs)")
    parser.add_argument("--steps", type=int, help="steps per epoch (default: TrimmingSettings.steps)")
    parser.add_argument("--rounds", type=int, help="cap on the rounds (default: TrimmingSettings.rounds)")
    parser.add_argument("--lines", help="comma-separated method/criterion/selection:seeds (default: the profile's)")
    parser.add_argument("--architecture", help="trim this architecture instead of the shipped model's "
                                               "(e.g. lottery_drum_cnn, the paper's drum model)")
    parser.add_argument("--params", default="{}", help="its hyperparameters as JSON (e.g. '{\"channels\": 32}')")
    parser.add_argument("--part", help="i/n: run only the seeds i, i + n, ... and do not assemble")
    parser.add_argument("--jobs", help="with --part: only these method/criterion/selection@seed (comma-separated), "
                                       "in this order")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()
    profile = get_profile(args.profile)
    changes = {}
    if args.epochs:
        changes["epochs"] = args.epochs
    if args.steps:
        changes["steps"] = args.steps
    if args.rounds:
        changes["rounds"] = args.rounds
    if args.lines:
        changes["lines"] = tuple((t.split(":")[0], int(t.split(":")[1]) if ":" in t else 1)
                                          for t in args.lines.split(","))
    if changes:
        name = f"{profile.name}-trim"
        PROFILES[name] = profile = profile.replace(name=name, trimming=changes)
    os.environ["ADT_PROFILE"] = profile.name
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    import pandas as pd

    from adt.data.download import sha256sum
    from adt.frame.checkpoint import load_model
    from adt.metrics import reference_onsets
    from adt.stages import run_stages
    from adt.transcribe.transcriber import pretrained_path
    from adt.trimming import study

    settings = Settings.from_env(profile=profile.name)
    if profile.features.transcriber_input == "separated":
        out = run_stages(settings, until="features")
        index = out["features"]
    else:  # the features of a "mix"/"mix+drums" transcriber never read drum stems: no separation study here
        from adt.features.index import build_features
        from adt.separation.stems import DrumStemsResult

        out = run_stages(settings, until="tracks")
        table = pd.read_parquet(out["tracks"].path)
        mixtures = DrumStemsResult.stand_in(dict.fromkeys(table.loc[table.mix_path.notna(), "track_id"]), key="-")
        index = build_features(out["tracks"], out["onsets"], mixtures, settings.feature_type,
                               settings.target_widening, profile.features.train_combinations, print,
                               profile.features.transcriber_input)
    refs = reference_onsets(pd.read_parquet(out["onsets"].path))
    shipped = load_model(pretrained_path())
    transcriber = {"architecture": shipped.architecture, "best_params": shipped.hparams,
                   "train_sets": list(index.training_sets()), "key": f"shipped-{sha256sum(pretrained_path())[:16]}"}
    if args.architecture:
        params = {**json.loads(args.params), **{k: shipped.hparams[k] for k in ("lr", "weight_decay")}}
        transcriber.update(architecture=args.architecture, best_params=params,
                           key=f"{args.architecture}-{json.dumps(params, sort_keys=True)}")
    # what the study reads of a TranscriberResult; "scratch": the reference starts from the shipped weights
    transcriber = types.SimpleNamespace(**transcriber, model_path=str(pretrained_path()), started_from="scratch")
    start = time.perf_counter()
    if args.part:
        i, n = (int(v) for v in args.part.split("/"))
        task, schedule, cache = study.study_cache(index, refs, transcriber, profile.trimming)
        if args.jobs:
            jobs = [(j.split("@")[0], int(j.split("@")[1])) for j in args.jobs.split(",")]
            print(f"part {i}/{n}: {jobs} into {cache.dir}", flush=True)
            for job in jobs:
                study.run_seeds(task, schedule, cache.dir, study.lines_of(profile.trimming), [job[1]], profile.seed,
                                print,
                                only={job})
        else:
            seeds = study.all_seeds(profile.trimming)[i::n]
            print(f"part {i}/{n}: seeds {seeds} into {cache.dir}", flush=True)
            study.run_seeds(task, schedule, cache.dir, study.lines_of(profile.trimming), seeds, profile.seed, print)
        print(f"part {i}/{n} done in {time.perf_counter() - start:.0f} s")
        return
    manifest = study.trimming_study(index, refs, transcriber, profile.trimming, log=print)
    print(manifest["table1"])
    print()
    print(manifest["curves"])
    print(f"\nstudy folder {manifest['path']} ({time.perf_counter() - start:.0f} s in this call)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({k: manifest[k] for k in ("table1", "curves", "optimal", "path", "lite_path", "model_uri")},
                      f, indent=1, default=str)


if __name__ == "__main__":
    main()
