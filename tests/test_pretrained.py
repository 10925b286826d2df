"""The transcriber and the separator shipped with the package (``adt/pretrained/``): their cards, and `adt
transcribe` in a fresh folder (no data folder, no registry) on real MDB Drums recordings."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adt.transcribe.transcriber import PRETRAINED_MODEL, pretrained_path
from tests.test_cli import _midi_onsets, _reference

ROOT = Path(__file__).resolve().parents[1]
#: Floors of the shipped model (3-class micro F, 50 ms), measured 0.694 on MusicDelta_80sRock (kick, snare
#: and crash only: its errors are hi-hats heard in the gated snare) and 0.869 on all 9 MDB drum-only
#: recordings. The shipped model heard these 9 songs in training: these are regression floors, not the
#: figure that counts (the README's cross-validated one); they leave room for other BLAS builds.
F_FLOOR_80SROCK, F_FLOOR_MDB = 0.65, 0.84
#: The shipped lite transcriber's floor on MusicDelta_80sRock (heard in training too): measured 0.636 (the shipped
#: transcriber 0.694 there; its cross-validated figures are in its card).
F_FLOOR_LITE_80SROCK = 0.60


@pytest.mark.parametrize("name", [PRETRAINED_MODEL, "frame_crnn_renders", "frame_crnn_lite", "separator_standard",
                                  "gru_lm_groove"])
def test_the_card_names_the_weights_checksum(name):
    weights, card = pretrained_path(name), pretrained_path(name).with_suffix(".md")
    text = card.read_text()
    stated = re.search(r"SHA-256\*\* of `[^`]+`: `([0-9a-f]{64})`", text).group(1)
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == stated
    assert weights.stat().st_size <= 10 * 1024 * 1024
    for section in ("## Training data", "## Figures", "## Reproduce", "| train |", "license"):
        assert section in text, section


def test_the_shipped_checkpoint_is_plain_weights():
    import torch

    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    assert state["transcriber_input"] == "mix+drums"
    assert set(state["peak_picking"]["min_peak"]) == {"BD", "SD", "TT", "HH", "CY"}


def _adt(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``adt`` in a fresh process, in ``cwd``, with no data folder or registry configured."""
    env = {k: v for k, v in os.environ.items() if k not in ("ADT_DATA_DIR", "MLFLOW_TRACKING_URI")}
    code = ("import sys; from adt.cli import main; status = main(sys.argv[1:]); "
            "print('mlflow imported' if 'mlflow' in sys.modules else 'no mlflow', file=sys.stderr); "
            "sys.exit(status)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)


def test_transcribe_in_a_fresh_folder_uses_the_shipped_model(mdb_track, tmp_path):
    from adt.metrics import micro_f_measure

    done = _adt(["transcribe", str(mdb_track["wav"]), "-o", "out.mid"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{PRETRAINED_MODEL}.pt" in done.stderr and "no mlflow" in done.stderr
    assert not (tmp_path / "data").exists()  # nothing created beside the user's files
    ref, est = _reference(mdb_track["annotation"]), _midi_onsets(tmp_path / "out.mid")
    result = micro_f_measure([ref], [est], classes=("BD", "SD", "HH"))
    assert result["f"] >= F_FLOOR_80SROCK, result


def test_transcribe_lite_in_a_fresh_folder_uses_the_shipped_lite_model(mdb_track, tmp_path):
    """``--model lite`` right after installation: no registry, the trimmed transcriber shipped with adt
    (``adt/pretrained/frame_crnn_lite.pt``, :mod:`adt.trimming.lite`), verified against its SHA-256."""
    from adt import pretrained
    from adt.metrics import micro_f_measure
    from adt.trimming.lite import NAME

    assert pretrained.verify(pretrained_path(NAME)) == pretrained_path(NAME)
    done = _adt(["transcribe", str(mdb_track["wav"]), "-o", "out.mid", "--model", "lite"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{NAME}.pt (the shipped lite model" in done.stderr and "no mlflow" in done.stderr
    assert not (tmp_path / "data").exists()
    ref, est = _reference(mdb_track["annotation"]), _midi_onsets(tmp_path / "out.mid")
    result = micro_f_measure([ref], [est], classes=("BD", "SD", "HH"))
    assert result["f"] >= F_FLOOR_LITE_80SROCK, result


def test_several_inputs_in_one_call(mdb_track, tmp_path):
    """Two files and a folder; one output folder, ``<name>.mid`` each; velocities from the activation."""
    import mido

    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "a.wav").write_bytes(mdb_track["wav"].read_bytes())
    (folder / "notes.txt").write_text("not audio")
    done = _adt(["transcribe", str(mdb_track["wav"]), str(folder), "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["MusicDelta_80sRock_Drum.mid", "a.mid"]
    assert done.stderr.count("model:") == 1  # one model load
    velocities = [m.velocity for m in mido.MidiFile(tmp_path / "out" / "a.mid") if m.type == "note_on" and m.velocity]
    assert len(set(velocities)) > 10 and min(velocities) >= 1 and max(velocities) <= 127


def test_the_mdb_folder_in_one_call_meets_the_floor(shared_datasets, tmp_path):
    """Every MDB drum-only recording of the mirror, as a folder, in one call (the README's goal figure)."""
    import zipfile

    from adt.metrics import micro_f_measure
    from tests.conftest import MDB_PREFIX

    songs, refs = tmp_path / "mdb", []
    songs.mkdir()
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        names = sorted(Path(n).name.removesuffix("_Drum.wav") for n in z.namelist() if n.endswith("_Drum.wav"))
        for name in names:
            (songs / f"{name}.wav").write_bytes(z.read(f"{MDB_PREFIX}audio/drum_only/{name}_Drum.wav"))
            (tmp_path / f"{name}.txt").write_bytes(z.read(f"{MDB_PREFIX}annotations/class/{name}_class.txt"))
            refs.append(_reference(tmp_path / f"{name}.txt"))
    done = _adt(["transcribe", str(songs), "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    ests = [_midi_onsets(tmp_path / "out" / f"{name}.mid") for name in names]
    result = micro_f_measure(refs, ests, classes=("BD", "SD", "HH"))
    assert len(names) == 9 and result["f"] >= F_FLOOR_MDB, result


def test_two_inputs_with_one_output_name_fail_before_the_work(mdb_track, tmp_path):
    other = tmp_path / "x" / mdb_track["wav"].name
    other.parent.mkdir()
    other.write_bytes(mdb_track["wav"].read_bytes())
    done = _adt(["transcribe", str(mdb_track["wav"]), str(other), "-o", "out"], tmp_path)
    assert done.returncode == 2 and "would both write" in done.stderr
    assert not (tmp_path / "out").exists()


def test_velocity_follows_the_activation_peak():
    from adt.transcribe.transcriber import peak_velocities

    act = np.zeros(200)
    act[[10, 50, 90]] = [1.0, 0.5, 0.05]
    assert peak_velocities(act, np.array([0.10, 0.50, 0.90])).tolist() == [127, 64, 6]
