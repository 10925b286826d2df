"""Seconds per ingest stage of a cold run: kit catalogue, raw datasets and their tables (the renders),
unified tables, beats, features.

Usage: .venv/bin/python benchmarks/bench_ingest.py [--profile demo] [--data /tmp/ingest-data] [--jobs N]
       [--until beats|features] [--keep]

Runs the stages as ``make demo`` does (the library functions the Dagster assets call: :mod:`adt.stages`'
chain) in a fresh data folder (``--data``, emptied first unless ``--keep``), with ``ADT_DATA_MIRROR`` (default
``../shared/datasets``). The Debian kit packages are hard-linked from ``./data/downloads`` when there (the
mirror holds no ``.deb``), so nothing is downloaded; their SHA-256 is still checked. The beats stage tracks
the mixes (``Settings.beat_input`` "mix", the default); the features stage gets the clean drum stems as a
stand-in for the separated ones (the separation study is not run: same per-track cost). Prints, per stage,
wall seconds, CPU seconds of this process and its workers, and the load average (1 min) before and after
(on a shared machine read the timings with the load: CPU seconds say what the stage costs, wall seconds
what the cores it got made of it), then the peak RSS of this process and of its largest worker.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cpu_s() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class Timer:
    """Rows of (stage, wall s, CPU s, load before, load after)."""

    def __init__(self):
        self.rows: list[tuple[str, float, float, float, float]] = []

    def run(self, name: str, fn, *args, **kwargs):
        load, cpu, start = os.getloadavg()[0], _cpu_s(), time.perf_counter()
        out = fn(*args, **kwargs)
        self.rows.append((name, time.perf_counter() - start, _cpu_s() - cpu, load, os.getloadavg()[0]))
        print(f"{name}: {self.rows[-1][1]:.1f} s", flush=True)
        return out

    def table(self) -> str:
        lines = ["| stage | wall s | CPU s (this process + workers) | load 1 min before / after |",
                 "| --- | ---: | ---: | --- |"]
        lines += [f"| {n} | {w:.1f} | {c:.1f} | {a:.2f} / {b:.2f} |" for n, w, c, a, b in self.rows]
        total = sum(r[1] for r in self.rows)
        return "\n".join(lines + [f"| total | {total:.1f} | {sum(r[2] for r in self.rows):.1f} | |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--data", default="/tmp/ingest-data", help="scratch data folder (emptied first)")
    parser.add_argument("--jobs", default=None, help="ADT_JOBS for the run (default: the cores)")
    parser.add_argument("--until", default="features", choices=("tables", "beats", "features"))
    parser.add_argument("--keep", action="store_true", help="keep the data folder (a warm run)")
    args = parser.parse_args()

    data = Path(args.data).resolve()
    if data.exists() and not args.keep:
        shutil.rmtree(data)
    (data / "downloads").mkdir(parents=True, exist_ok=True)
    for deb in (ROOT / "data" / "downloads").glob("*.deb"):
        if not (data / "downloads" / deb.name).exists():
            try:
                os.link(deb, data / "downloads" / deb.name)
            except OSError:
                shutil.copyfile(deb, data / "downloads" / deb.name)
    os.environ["ADT_DATA_DIR"] = str(data)
    os.environ["ADT_PROFILE"] = args.profile
    os.environ.setdefault("ADT_DATA_MIRROR", str(ROOT.parent / "shared" / "datasets"))
    if args.jobs:
        os.environ["ADT_JOBS"] = str(args.jobs)

    import pandas as pd

    from adt.config import Settings
    from adt.data import tables
    from adt.data.kits import catalogue
    from adt.separation.stems import DrumStemsResult

    settings = Settings.from_env()
    profile, mirror = settings.get_profile(), settings.get_mirror()
    data = profile.data
    timer = Timer()
    quiet = lambda msg: None  # noqa: E731
    kits = [k for split in (data.corpus_kits or {}).values() for k in split]
    timer.run("kit catalogue", catalogue.build_kit_catalogue, kits, mirror)
    manifests = {}
    for name in tables.available_datasets(mirror):
        raw = timer.run(f"raw_dataset[{name}]", tables.fetch_raw, name, data, mirror)
        manifests[name] = timer.run(f"dataset_tables[{name}]", tables.build_dataset_tables, raw, data, quiet)
    tracks = timer.run("tracks, onsets", tables.unify_tables, manifests, data, quiet)
    table = pd.read_parquet(tracks.path)
    mixes = table[table.mix_path.notna()]
    stand_in = DrumStemsResult.stand_in(dict(zip(mixes.track_id, mixes.drum_path)))
    if args.until in ("beats", "features"):
        from adt.rhythm.beat_table import beat_table

        timer.run("beats (mix)", beat_table, tracks, stand_in, settings.beat_input, quiet)
    if args.until == "features":
        from adt.features.index import build_features

        onsets = tables.run_onsets(settings, tracks)
        timer.run("features (stand-in stems)", build_features, tracks, onsets, stand_in, settings.feature_type,
                  settings.target_widening, profile.features.train_combinations, quiet,
                  profile.features.transcriber_input)
    print(f"\nprofile {args.profile}, {len(table)} tracks ({table.dataset.value_counts().to_dict()}), "
          f"ADT_JOBS={os.environ.get('ADT_JOBS', '(cores)')}, {os.cpu_count()} cores")
    print(timer.table())
    own, kids = (resource.getrusage(r).ru_maxrss / 1024 for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    print(f"peak RSS: this process {own:.0f} MB, largest worker {kids:.0f} MB")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
