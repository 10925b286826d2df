"""The default `adt transcribe` on real music: 3-class micro F on the MDB Drums recordings (issue 16's goals).

Usage: .venv/bin/python benchmarks/bench_transcribe_mdb.py [--model URI|FILE.pt] [--out DIR] [--json OUT]

Two sets, each transcribed by ONE ``adt transcribe`` call (a fresh process, from an empty folder: no
registry, so the shipped model, exactly as a user runs it after installation) and scored from the MIDI
files it wrote against the MDB class annotations (3 classes BD, SD, HH; 50 ms; mir_eval through
:func:`adt.metrics.micro_f_measure`):

* **drum-only**: the 9 MDB Drums drum-only recordings of the mirror (``ADT_DATA_MIRROR``,
  ``mdb-drums-subset.zip``), whole;
* **+ held-out band**: each recording mixed at 0 dB RMS with a band of held-out GM programs on its
  annotated beats (:func:`adt.data.accompaniment.with_band`, seed 1000 + track index; the same mixes as
  ``benchmarks/bench_mdb_zero_shot.py``'s "MDB + held-out accompaniment").

Goals (issue 16): drum-only >= 0.88, + band >= 0.80. ``--model`` scores another model the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PREFIX = "MDBDrums-master/MDB Drums/"
CLASSES_3 = ("BD", "SD", "HH")


def extract(mirror: Path, out: Path) -> dict[str, dict]:
    """name -> {"wav", "annotation", "beats"} of every drum-only MDB recording in the mirror's zip."""
    tracks = {}
    with zipfile.ZipFile(mirror / "mdb-drums-subset.zip") as z:
        for member in sorted(n for n in z.namelist() if n.endswith("_Drum.wav")):
            name = Path(member).name.removesuffix("_Drum.wav")
            files = {"wav": member, "annotation": f"{PREFIX}annotations/class/{name}_class.txt",
                     "beats": f"{PREFIX}annotations/beats/{name}_MIX.beats"}
            tracks[name] = {}
            for key, member_name in files.items():
                path = out / Path(member_name).name
                path.write_bytes(z.read(member_name))
                tracks[name][key] = path
    return tracks


def adt_transcribe(inputs: list[Path], out: Path, model: str | None) -> float:
    """One ``adt transcribe`` call in a fresh process from an empty folder; returns its wall time."""
    env = {k: v for k, v in os.environ.items() if k not in ("ADT_DATA_DIR", "MLFLOW_TRACKING_URI")}
    command = [str(Path(sys.executable).with_name("adt")), "transcribe", *map(str, inputs), "-o", str(out)]
    with tempfile.TemporaryDirectory() as cwd:
        start = time.perf_counter()
        subprocess.run(command + (["--model", model] if model else []), cwd=cwd, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return time.perf_counter() - start


def score(tracks: dict[str, dict], midi_dir: Path, stem_suffix: str) -> dict:
    from adt.data.datasets.mdb import CLASS_MAP, read_class_annotation
    from adt.metrics import micro_f_measure
    from adt.midi import load_midi, onsets_from_midi

    refs, ests = [], []
    for name, t in tracks.items():
        ann = read_class_annotation(t["annotation"])
        drums = ann["label"].map(CLASS_MAP)
        refs.append({c: ann.time_s[drums == c].to_numpy(dtype=float) for c in CLASS_MAP.values()})
        df = onsets_from_midi(load_midi(midi_dir / f"{name}{stem_suffix}.mid"), name)
        ests.append({c: df.time_s[df.drum == c].to_numpy() for c in CLASS_MAP.values()})
    return micro_f_measure(refs, ests, classes=CLASSES_3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="MLflow model URI or checkpoint (default: what `adt transcribe` picks)")
    parser.add_argument("--out", help="keep the audio and MIDI files here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    import soundfile as sf

    from adt.audio import read_audio, write_audio
    from adt.data.accompaniment import with_band
    from adt.data.datasets.mdb import read_beats

    mirror = Path(os.environ.get("ADT_DATA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        (root / "drum_only").mkdir(parents=True, exist_ok=True)
        (root / "with_band").mkdir(exist_ok=True)
        tracks = extract(mirror, root / "drum_only")
        for k, (name, t) in enumerate(tracks.items()):
            audio, sr = read_audio(t["wav"])
            beats = read_beats(t["beats"])
            mix = with_band(audio, sr, beats.time_s.to_list(), beats.time_s[beats.position == 1].to_list(),
                            seed=1000 + k)
            write_audio(root / "with_band" / f"{name}_Drum.wav", mix, sr)
        figures = {}
        for label, folder in (("drum-only", root / "drum_only"), ("+ held-out band", root / "with_band")):
            wavs = sorted(folder.glob("*_Drum.wav"))
            seconds = adt_transcribe(wavs, root / f"midi_{folder.name}", args.model)
            r = score(tracks, root / f"midi_{folder.name}", "_Drum")
            audio_s = sum(sf.info(str(w)).duration for w in wavs)
            figures[label] = {**r, "seconds": seconds, "audio_s": audio_s}
            per_class = ", ".join(f"{c} {r['f_' + c]:.3f}" for c in CLASSES_3)
            print(f"MDB {label:16s} 3-class F {r['f']:.3f} (P {r['p']:.3f}, R {r['r']:.3f}; {per_class}); "
                  f"one call, {len(wavs)} files, {audio_s:.0f} s of audio in {seconds:.1f} s "
                  f"({audio_s / seconds:.0f}x real time, startup included)")
    print("goals (issue 16): drum-only >= 0.88, + held-out band >= 0.80")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1, default=float))


if __name__ == "__main__":
    main()
