"""Separation on real songs (issue 27): the study cross-validated over the real-song folds, the real-song
table, and the separator the package ships.

Usage:
  .venv/bin/python benchmarks/bench_separation_real_songs.py --folds 0,1,2   # each fold's study (resumable)
  .venv/bin/python benchmarks/bench_separation_real_songs.py --final          # every real song trains: the
                                                                              # cross-validated choice's recipe
  .venv/bin/python benchmarks/bench_separation_real_songs.py --report         # the tables of what is there
  .venv/bin/python benchmarks/bench_separation_real_songs.py --transcribe benchmarks/out/real_songs_strong
      # downstream: each fold's transcriber (bench_real_songs.py's K.pt, which never heard fold K) on fold K's
      # real full mixes as they are and through the fold's chosen separator's drums (3-class micro F, 50 ms)
  options: --profile demo --rounds 120 --patience 5 --models a,b --out benchmarks/out/separation_real_songs

Data: the rendered corpus of ``--profile`` (demo and Groove renders with stems; the newest ``data/tables``
holding them, or the stages run up to ``tracks``) and the 9 MDB songs with MedleyDB multitracks
(:mod:`adt.separation.real_songs`, from the mirror). Each fold's study (:func:`adt.separation.study.run_study`,
``real_test_fold`` k) trains on the renders and the two other folds' songs but one each, chooses its
separator on those two real validation songs and scores the fold's three songs whole; the report pools the
9 songs, each scored by models that never heard it (:func:`adt.separation.study.pool_folds`). ``--final``
trains the model chosen most often over the folds (ties: the best pooled real validation drums SDR) on the
renders and all 9 songs: ``scripts/export_pretrained.py --separator`` ships it.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def corpus(profile: str):
    """(tracks, beats) tables of the renders and the real songs with stems."""
    import pandas as pd

    from adt.config import data_dir
    from adt.data import tables
    from adt.separation import real_songs, study

    found = None
    for path in sorted((data_dir() / "tables").glob("*/tracks.parquet"), key=lambda p: p.stat().st_mtime, reverse=True):
        t = pd.read_parquet(path)
        if study.rendered_tracks(t, "train") and study.rendered_tracks(t, "validation"):
            found = path.parent
            break
    if found is None:
        from adt.config import Settings
        from adt.stages import run_stages

        out = run_stages(Settings.from_env(profile=profile), until="tracks", datasets=["demo", "groove"])
        found = Path(out["tracks"].path).parent
    raw = tables.fetch_raw("mdb")
    songs = real_songs.real_stem_songs(raw.path, data_dir() / "real_songs" / "stems")
    return pd.read_parquet(found / "tracks.parquet"), pd.read_parquet(found / "beats.parquet"), songs, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--folds", default="")
    parser.add_argument("--final", action="store_true")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--models", default="independent,simultaneous,interleaved,interleaved_acc,interleaved_encoder+,"
                                            "simultaneous_mask,interleaved_mask,open_unmix,mixture")
    parser.add_argument("--transcribe", type=Path, help="bench_real_songs.py's out folder (its K.pt fold models)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/separation_real_songs"))
    args = parser.parse_args()

    from adt.atomic import write_json
    from adt.separation import study

    tracks, beats, songs, tables_dir = corpus(args.profile)
    settings = dataclasses.replace(study.StudySettings(), rounds=args.rounds, patience=args.patience, mdb_tracks=0,
                                   umx_steps=300, eval_tracks=4, val_tracks=2, eval_s=10.0)
    models = tuple(m for m in args.models.split(",") if m)
    print(f"tables {tables_dir}; {len(songs)} real songs; settings {settings}", flush=True)
    log = lambda m: print(m, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    folds = [int(k) for k in args.folds.split(",") if k.strip()]
    for k in folds:
        study.run_study(tracks, beats, dataclasses.replace(settings, real_test_fold=k), args.out / f"fold{k}",
                        log=lambda m, k=k: log(f"fold {k}: {m}"), models=models, transfer=False, songs=songs)
        print(f"fold {k} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    done = [k for k in (0, 1, 2) if (args.out / f"fold{k}" / "mixture.json").is_file()]
    if args.final or args.report:
        cv = study.cross_validate(tracks, beats, songs, settings, args.out, log=log, models=models, folds=done)
        counts = collections.Counter(cv["pooled"]["chosen"])
        pooled_val = {n: sum(st["results"][n].get("sdr.drums.real_val", 0.0) for st in cv["folds"])
                      for n in counts}
        choice = max(counts, key=lambda n: (counts[n], pooled_val[n]))
        text = "\n\n".join([f"folds {done}; chosen per fold {cv['pooled']['chosen']} -> final {choice}",
                            "## Real songs, cross-validated (dB, mean of per-song medians / median)", cv["tables"]["real"],
                            "## Table 2 (test renders, mean over folds)", cv["tables"]["table2"],
                            "## Table 3", cv["tables"]["table3"]]
                           + [f"## Fold {k} models\n\n{st['tables']['models']}" for k, st in zip(done, cv["folds"])])
        (args.out / "report.md").write_text(text)
        write_json(args.out / "report.json", {"chosen": cv["pooled"]["chosen"], "final": choice,
                                               "pooled": cv["pooled"]["results"],
                                               "per_song": cv["pooled"]["per_song"]})
        print(text, flush=True)
        if args.final:
            name = choice.removesuffix(study.RATIO)
            out = study.run_study(tracks, beats, dataclasses.replace(settings, real_test_fold=None), args.out / "final",
                                  log=lambda m: log(f"final: {m}"), models=(name,), transfer=False, songs=songs)
            final = {"name": choice, **{k: v for k, v in out["results"][choice].items() if k not in ("per_track",)}}
            write_json(args.out / "final" / "final.json", final)
            print(json.dumps({k: v for k, v in final.items() if k != "history"}, indent=1), flush=True)
    if args.transcribe:
        transcription(args.transcribe, args.out, songs, done)
    print(f"total {time.perf_counter() - t0:.0f} s", flush=True)


def transcription(models_dir: Path, out: Path, songs: list[dict], folds: list[int]) -> dict:
    """Each fold's transcriber on its real full mixes, as they are and through its chosen separator's drums."""
    from adt.audio import read_audio
    from adt.atomic import write_json
    from adt.config import data_dir
    from adt.data import tables
    from adt.data.datasets.mdb_folds import folds_for
    from adt.evaluation.real_songs import markdown, song_counts, summarize
    from adt.frame.real_songs import INPUT_LEVEL_DB, real_songs
    from adt.frame.checkpoint import load_model
    from adt.separation import separator

    raw = tables.fetch_raw("mdb")
    by_name = {s.name: s for s in real_songs(raw.path, data_dir() / "real_songs" / "audio")}
    counts = {"real full mix": {}, "chosen separator's drums": {}}
    chosen = {}
    for k in folds:
        model = load_model(models_dir / f"{k}.pt")
        if model.input_level_db is None:
            model.input_level_db = INPUT_LEVEL_DB
        manifest = json.loads((out / f"fold{k}" / f"{_best(out / f'fold{k}')}.json").read_text())
        sep = separator.load({"name": _best(out / f"fold{k}"), **manifest})
        chosen[k] = sep.name
        for name in folds_for(k)[1]:
            song = by_name[name]  # the real mix and reference onsets bench_real_songs.py scores
            mix, sr = read_audio(song.mix_path, mono=True)
            counts["real full mix"][name] = song_counts(model, mix, sr, song.onsets)
            drums = sep.drums(mix, sr).mean(0)
            counts["chosen separator's drums"][name] = song_counts(model, drums, separator.SAMPLE_RATE, song.onsets)
    summaries = {label: summarize(c) for label, c in counts.items()}
    text = markdown(summaries)
    print(f"Transcription on the real full mixes (cross-validated; separators {chosen}):\n\n{text}", flush=True)
    (out / "transcription.md").write_text(text + "\n")
    write_json(out / "transcription.json", {"counts": counts, "chosen": chosen,
                                            "f": {k: v["f"] for k, v in summaries.items()}})
    return summaries


def _best(folder: Path) -> str:
    from adt.separation import study

    results = {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in folder.glob("*.json")
               if not p.name.endswith(".computed.json")}
    return study.choose(results)


if __name__ == "__main__":
    main()
