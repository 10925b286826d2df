"""Unification throughput: tracks (and audio hours) per second that each dataset module's
``build`` turns into the unified tables, on 2 cores.

Usage: .venv/bin/python benchmarks/bench_datasets.py
Real archives from ADT_DATA_MIRROR (or ../shared/datasets): MDB Drums (crop and read
annotations; whole tracks, no crop) and Groove MIDI (soundfont rendering, 30-s crops).
The other datasets (E-GMD, Slakh, ENST, ADTOF-YT) from the small official-layout
fixtures of tests/layouts: their per-track cost is reading MIDI/annotations and
writing (mixed, cropped) audio.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch

    import tests.layouts
    from adt.config import get_profile
    from adt.data.datasets import get_module
    from adt.data.download import fetch_all
    from tests.conftest import mirror_dir

    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # real archives
        for name, profile in (
            ("mdb", dataclasses.replace(get_profile("full").data, mdb_tracks=None, max_duration_s=None)),
            ("groove", dataclasses.replace(get_profile("demo").data, groove_tracks={"train": 8}, max_duration_s=30.0)),
        ):
            module = get_module(name)
            raw, _ = fetch_all(module.REMOTES, tmp / "dl", tmp / "raw" / name, mirror=str(mirror_dir()),
                               progress=False)
            rows.append(_time_build(name + " (real)", module, raw, tmp / "out" / name, profile))
        # official-layout fixtures
        for info in pkgutil.iter_modules(tests.layouts.__path__):
            if info.name in ("mdb", "groove"):
                continue
            files = importlib.import_module(f"tests.layouts.{info.name}").archive_files()
            for fname, data in files.items():
                (tmp / "fixtures").mkdir(exist_ok=True)
                (tmp / "fixtures" / fname).write_bytes(data)
            module = get_module(info.name)
            # placed files (request-only style), not verified
            remotes = [dataclasses.replace(r, manual="fixture", sha256=(), md5=(), url="") for r in module.REMOTES]
            raw, _ = fetch_all(remotes, tmp / "fixtures", tmp / "raw" / info.name, progress=False)
            profile = dataclasses.replace(get_profile("full").data, tracks_per_split=None, max_duration_s=None)
            rows.append(_time_build(info.name + " (fixture)", module, raw, tmp / "out" / info.name, profile))
    print(f"{'dataset':<20} {'tracks':>6} {'audio h':>8} {'seconds':>8} {'tracks/s':>9} {'x real time':>12}")
    for r in rows:
        print(f"{r['dataset']:<20} {r['tracks']:>6} {r['hours']:>8.3f} {r['seconds']:>8.2f} "
              f"{r['tracks'] / r['seconds']:>9.2f} {r['hours'] * 3600 / r['seconds']:>12.1f}")


def _time_build(label, module, raw, out, profile) -> dict:
    t = time.perf_counter()
    tables = module.build(raw, out, profile)
    seconds = time.perf_counter() - t
    return {"dataset": label, "tracks": len(tables.tracks), "hours": float(tables.tracks.duration_s.sum()) / 3600,
            "seconds": seconds}


if __name__ == "__main__":
    main()
