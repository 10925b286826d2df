"""Separation study (issue 17): the interleaved multitask paper's Tables 2 and 3 on our renders, Open-Unmix
beside them, drums on MDB's real recordings under a held-out band, speed and memory per model.

Usage: ADT_DATA_DIR=DIR .venv/bin/python benchmarks/bench_separation.py [--profile standard]
       [--tables DIR/tables/KEY] [--baseline NAME=open-unmix-drums.pt ...] [--transcribe] [--threads 2]
       [--json OUT]

Reads the unified tables (the newest ``DIR/tables/*`` unless ``--tables``: run ``make demo`` or the
profile's graph first), runs :func:`adt.separation.study.run_study` with the profile's sizes into
``DIR/separation_study/bench-<profile>`` (resumable per model: a re-run continues with the next one) and
prints the tables. ``--baseline NAME=PATH`` adds an Open-Unmix drums model trained elsewhere (e.g. the
demo graph's ``separation_model/<key>/drums.pt``: the separator before this issue) as a row.

``--transcribe`` (downstream): the MDB + held-out band mixes of the study transcribed by the model shipped
with the package (:data:`adt.transcribe.transcriber.PRETRAINED_MODEL`, which hears mixes and drum stems
alike) as they are and through each separator's drum estimate; 3-class micro F (BD, SD, HH; 50 ms;
:func:`adt.metrics.micro_f_measure`) against the MDB annotations within the evaluated seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="standard")
    parser.add_argument("--tables", type=Path)
    parser.add_argument("--baseline", action="append", default=[], help="NAME=PATH of an Open-Unmix drums model")
    parser.add_argument("--transcribe", action="store_true", help="downstream transcription F per separator")
    parser.add_argument("--footprint", action="store_true",
                        help="each separator alone in a fresh process on 60 s of MDB + band: time and peak memory")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import pandas as pd
    import torch

    from adt.atomic import write_json
    from adt.config import data_dir, get_profile
    from adt.separation import study, umx

    torch.set_num_threads(args.threads)
    newest = max((data_dir() / "tables").glob("*/tracks.parquet"), key=lambda p: p.stat().st_mtime, default=None)
    tables = args.tables or newest.parent
    tracks, beats = pd.read_parquet(tables / "tracks.parquet"), pd.read_parquet(tables / "beats.parquet")
    settings = study.StudySettings.from_section(get_profile(args.profile).separation)
    folder = data_dir() / "separation_study" / f"bench-{args.profile}"
    print(f"tables {tables}\nsettings {settings}\nfolder {folder}", flush=True)
    t0 = time.perf_counter()
    out = study.run_study(tracks, beats, settings, folder, log=lambda m: print(m, flush=True))
    for spec in args.baseline:
        name, path = spec.split("=", 1)
        result_path = folder / f"baseline-{name}.json"
        if not result_path.is_file():
            sets = study.evaluation_sets(tracks, beats, settings, folder, names=("test", "mdb"))
            separator = umx.load_separator(Path(path))
            metrics = study.evaluate_separator(
                study.drums_only(lambda mix: umx.separate_audio(separator, mix, 44100)), sets)
            write_json(result_path, {"procedure": "open_unmix", "model_paths": {"drums": path},
                                     "params": sum(p.numel() for p in separator.parameters()), **metrics})
        out["results"][name] = json.loads(result_path.read_text())
    out["tables"] = study.tables(out["results"])
    print(f"\nstudy: {time.perf_counter() - t0:.0f} s (cached models count 0); best (val drums SDR): {out['best']}")
    for name, md in out["tables"].items():
        print(f"\n## {name}\n{md}")
    if args.transcribe:
        out["transcription"] = downstream(out["results"], tracks, pd.read_parquet(tables / "onsets.parquet"),
                                       settings, folder)
        print("\n## transcription of MDB + band (shipped model), 3-class micro F")
        print("| drums from | F | P | R |\n|---|---|---|---|")
        for name, r in out["transcription"].items():
            print(f"| {name} | {r['f']:.3f} | {r['p']:.3f} | {r['r']:.3f} |")
    if args.footprint:
        out["footprint"] = footprints(out["results"], folder, args.threads)
        print("\n## 60 s of MDB + band, each separator in a fresh process\n| model | s per min | peak MB added | "
              "resident before MB | process peak MB |\n|---|---|---|---|---|")
        for name, r in out["footprint"].items():
            print(f"| {name} | {r['s_per_min']:.2f} | {r['peak_mb']:.0f} | {r['before_mb']:.0f} | "
                  f"{r['process_peak_mb']:.0f} |")
    if args.json:
        write_json(args.json, {k: v for k, v in out.items()})


FOOTPRINT = """
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[3]))
from adt.audio import read_audio
from adt.separation import separator
spec = json.loads(sys.argv[1])
sep = separator.load(spec)
audio = np.concatenate([read_audio(p)[0] for p in json.loads(sys.argv[2])], axis=1)[:, :60 * 44100]
from adt.memory import PeakMemory
sep.separate(audio[:, :44100], 44100)  # warm-up
with PeakMemory() as mem:
    t0 = time.perf_counter()
    sep.separate(audio, 44100)
    seconds = time.perf_counter() - t0
print(json.dumps({"s_per_min": seconds * 60 * 44100 / audio.shape[1], "before_mb": mem.base / 2 ** 20,
                  "peak_mb": mem.mb, "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def footprints(results: dict, folder: Path, threads: int) -> dict:
    """Per separator, in a fresh process: seconds per minute of audio and the peak resident memory (MB) the
    separation of 60 s of the study's MDB + band mixes adds (``peak_mb``; ``before_mb``: resident after
    loading and a 1-s warm-up; ``process_peak_mb``: the process's peak) on ``threads`` threads."""
    import subprocess

    mixes = [str(p) for p in sorted((folder / "mdb").glob("*/mix.wav"))[:3]]
    out = {}
    for name, r in results.items():
        if not r.get("model_paths"):
            continue
        spec = json.dumps({"name": name, **{k: r[k] for k in ("procedure", "model_paths")}})
        done = subprocess.run([sys.executable, "-c", FOOTPRINT, spec, json.dumps(mixes), str(threads)],
                              capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1])
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def downstream(results: dict, tracks, onsets, settings, folder: Path) -> dict:
    """3-class micro F of the shipped transcriber on the study's MDB + band mixes: the mix as it is (``mix``)
    and each separator's drum estimate (cached as ``<folder>/mdb/<k>/drums-<name>.wav``)."""
    import tempfile

    import numpy as np

    from adt.audio import read_audio, write_audio
    from adt.metrics import micro_f_measure
    from adt.separation import separator as separators
    from adt.transcribe.models import load_transcriber
    from adt.transcribe.transcriber import transcribe_file

    model, _ = load_transcriber(None)
    mdb = tracks[(tracks.dataset == "mdb")].sort_values("track_id").track_id.to_list()
    mixes = sorted((folder / "mdb").glob("*/mix.wav"))
    refs = []
    for mix in mixes:
        o = onsets[(onsets.track_id == mdb[int(mix.parent.name)]) & (onsets.time_s < settings.eval_s)]
        refs.append({c: o.time_s[o.drum == c].to_numpy(dtype=float) for c in ("BD", "SD", "HH")})
    scores = {}
    for name, r in [("mix", None), *results.items()]:
        if name != "mix" and (name == "mixture" or not r.get("model_paths") and r.get("procedure") != "open_unmix"):
            continue
        separator = None if r is None else separators.load({"name": name, **r})
        ests = []
        for mix in mixes:
            path = mix if separator is None else mix.parent / f"drums-{name}.wav"
            if not path.is_file():
                audio, sr = read_audio(mix)
                write_audio(path, separator.drums(audio, sr), separators.SAMPLE_RATE)
            with tempfile.TemporaryDirectory() as tmp:
                result = transcribe_file(path, Path(tmp) / "out.mid", model=model, progress=False)
            ests.append({c: np.asarray(result.onsets.get(c, []), dtype=float) for c in ("BD", "SD", "HH")})
        scores[name] = micro_f_measure(refs, ests, classes=("BD", "SD", "HH"))
    return scores


if __name__ == "__main__":
    main()
