"""`adt evaluate REF PRED`: onset P/R/F (mir_eval via adt.metrics, +-50 ms) on a real MDB Drums track.

References are MusicDelta_80sRock's class annotation (``mdb_track``) and files made from it (MIDI,
ENST-drums labels, a MusicXML score); the transcription is the shipped model's, through ``adt transcribe``.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from adt.cli import main
from adt.vocab import CLASSES_3, CLASSES_5

#: MDB class -> an ENST-drums label of the same class (adt.data.datasets.enst.CLASS_MAP); OT -> cowbell (dropped).
MDB_TO_ENST = {"KD": "bd", "SD": "sd", "TT": "mt", "HH": "chh", "CY": "rc3", "OT": "cb"}


def _reference(path) -> dict[str, np.ndarray]:
    """Class -> onset times (s) of an MDB class annotation, with the dataset module's reader and mapping."""
    from adt.data.datasets.mdb import CLASS_MAP, read_class_annotation

    ann = read_class_annotation(path)
    drums = ann["label"].map(CLASS_MAP)
    return {c: ann.time_s[drums == c].to_numpy(dtype=float) for c in CLASSES_5}


def _midi_onsets(path) -> dict[str, np.ndarray]:
    from adt.midi import load_midi, onsets_from_midi

    df = onsets_from_midi(load_midi(path), "test")
    return {c: df.time_s[df.drum == c].to_numpy() for c in CLASSES_5}


def _evaluate(argv, tmp_path, capsys) -> tuple[int, dict | None, str, str]:
    """``adt evaluate ARGV --json``: (exit status, the JSON figures or None, stdout, stderr)."""
    out = tmp_path / "figures.json"
    out.unlink(missing_ok=True)
    status = main(["evaluate", *map(str, argv), "--json", str(out)])
    captured = capsys.readouterr()
    return status, json.loads(out.read_text()) if out.exists() else None, captured.out, captured.err


def test_annotation_against_itself_as_midi_scores_one_per_class(mdb_track, tmp_path, capsys):
    """The MDB annotation written as GM drum MIDI scores F = 1 on every class it has, both ways round."""
    from adt.midi import write_drum_midi

    ref = _reference(mdb_track["annotation"])
    present = [c for c in CLASSES_5 if len(ref[c])]
    assert len(present) >= 3  # 80sRock: BD, SD, CY
    midi = write_drum_midi(tmp_path / "ref.mid", ref)
    for argv in ([mdb_track["annotation"], midi], [midi, mdb_track["annotation"]]):
        status, figures, out, err = _evaluate(argv, tmp_path, capsys)
        assert status == 0, err
        assert figures["classes"] == list(CLASSES_5) and figures["window_s"] == 0.05
        for c in present:
            assert figures["per_class"][c]["f"] == 1.0
            assert figures["per_class"][c]["tp"] == len(ref[c])
        assert figures["micro"] == {"f": 1.0, "p": 1.0, "r": 1.0, "tp": sum(len(v) for v in ref.values()),
                                    "fp": 0, "fn": 0}
        lines = out.splitlines()
        assert lines[1].split() == ["class", "P", "R", "F", "TP", "FP", "FN"]
        assert [line.split()[0] for line in lines[2:]] == [*CLASSES_5, "micro"]
        assert lines[-1].split()[1:4] == ["1.000", "1.000", "1.000"]


def test_enst_labels_read_with_the_enst_parser(mdb_track, tmp_path, capsys):
    """The same onsets in ENST-drums labels (``<time> bd``, ``rc3``, ...) match the MDB file exactly; cowbell
    (cb, from MDB's OT) is dropped by both."""
    lines = [line.split() for line in mdb_track["annotation"].read_text().splitlines() if line.strip()]
    enst = tmp_path / "enst.txt"
    enst.write_text("".join(f"{t} {MDB_TO_ENST[label]}\n" for t, label in lines))
    status, figures, _, err = _evaluate([mdb_track["annotation"], enst], tmp_path, capsys)
    assert status == 0, err
    assert figures["micro"]["f"] == 1.0 and figures["micro"]["tp"] == sum(len(v) for v in
                                                                          _reference(mdb_track["annotation"]).values())


@pytest.fixture
def fresh_data(tmp_path, monkeypatch):
    """An empty data folder, offline: ``adt transcribe`` uses the model shipped with adt."""
    from adt.separation import umx

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(umx, "load_pretrained", lambda *a, **k: None)


def test_shipped_transcription_scores_as_the_benchmark_scorer(mdb_track, tmp_path, capsys, fresh_data):
    """``adt evaluate`` of the shipped model's MIDI against the MDB annotation (3 classes) gives the micro F
    of :func:`adt.metrics.micro_f_measure` computed directly, and per-class counts that add up to it."""
    from adt.metrics import micro_f_measure

    pred = tmp_path / "out.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(pred)]) == 0
    capsys.readouterr()
    expected = micro_f_measure([_reference(mdb_track["annotation"])], [_midi_onsets(pred)], classes=CLASSES_3)
    status, figures, out, err = _evaluate([mdb_track["annotation"], pred, "--classes", "3"], tmp_path, capsys)
    assert status == 0, err
    assert 0 < expected["f"] < 1
    assert figures["micro"] == {k: expected[k] for k in ("f", "p", "r", "tp", "fp", "fn")}
    assert figures["classes"] == list(CLASSES_3) and sorted(figures["per_class"]) == sorted(CLASSES_3)
    for c in CLASSES_3:
        assert figures["per_class"][c]["f"] == expected[f"f_{c}"]
    for k in ("tp", "fp", "fn"):
        assert sum(figures["per_class"][c][k] for c in CLASSES_3) == expected[k]
    assert out.splitlines()[-1].split()[:4] == ["micro", f"{expected['p']:.3f}", f"{expected['r']:.3f}",
                                                f"{expected['f']:.3f}"]


def test_musicxml_converts_with_its_tempo(mdb_track, tmp_path, capsys):
    """A MusicXML score (adt.transcribe.musicxml.write_musicxml) of the reference snapped to 16ths at 120 BPM
    scores F = 1 against the same 16ths as MIDI seconds (p * 60 / (4 * 120)); without a tempo it is refused."""
    from adt.midi import write_drum_midi
    from adt.transcribe.musicxml import write_musicxml

    sixteenth_s = 60 / (4 * 120)
    ref = _reference(mdb_track["annotation"])
    positions = {c: np.unique(np.round(ref[c] / sixteenth_s).astype(int)) for c in CLASSES_5}
    y = np.zeros((5, max(int(p.max()) for p in positions.values() if len(p)) + 1), dtype=np.uint8)
    for k, c in enumerate(CLASSES_5):
        y[k, positions[c]] = 1
    xml = write_musicxml(tmp_path / "score.musicxml", y, 120.0)
    midi = write_drum_midi(tmp_path / "grid.mid", {c: p * sixteenth_s for c, p in positions.items()})
    status, figures, _, err = _evaluate([midi, xml], tmp_path, capsys)
    assert status == 0, err
    assert figures["micro"]["f"] == 1.0 and figures["micro"]["tp"] == int(y.sum())
    assert "score time" in err  # the note that MusicXML onsets are not audio time

    untimed = tmp_path / "untimed.musicxml"
    untimed.write_text(re.sub(r"<sound\b[^>]*/>", "", xml.read_text()))
    assert "tempo" in xml.read_text() and "tempo" not in untimed.read_text()
    status, figures, out, err = _evaluate([midi, untimed], tmp_path, capsys)
    assert (status, figures, out) == (2, None, "")
    assert str(untimed) in err and "no tempo" in err


def _bad_inputs(mdb_track, tmp_path) -> dict[str, tuple[list, str, str]]:
    """name -> (argv, the file the message must name, what it must say)."""
    from adt.midi import write_drum_midi

    ann = str(mdb_track["annotation"])
    files = {"empty.txt": "", "malformed.txt": "0.5\n", "labels.txt": "0.5 KD\n0.7 XYZ\n",
             "notes.json": "{}", "garbage.mid": "not a MIDI file", "cymbals.txt": "0.5 CY\n1.0 TT\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    silent = write_drum_midi(tmp_path / "silent.mid", {})
    p = {name: str(tmp_path / name) for name in files}
    return {
        "missing reference": ([str(tmp_path / "nope.mid"), ann], str(tmp_path / "nope.mid"), "no such file"),
        "missing prediction": ([ann, str(tmp_path / "nope.txt")], str(tmp_path / "nope.txt"), "no such file"),
        "unknown format": ([ann, p["notes.json"]], p["notes.json"], "unknown format .json"),
        "empty annotation": ([p["empty.txt"], ann], p["empty.txt"], "no onsets"),
        "MIDI without drum notes": ([ann, str(silent)], str(silent), "no onsets"),
        "malformed line": ([ann, p["malformed.txt"]], p["malformed.txt"] + ":1", "expected '<time s> <label>'"),
        "unknown labels": ([ann, p["labels.txt"]], p["labels.txt"], "unknown labels ['XYZ']"),
        "unparsable MIDI": ([ann, p["garbage.mid"]], p["garbage.mid"], "cannot parse MIDI"),
        "no reference onset of the 3 classes": ([p["cymbals.txt"], ann, "--classes", "3"], p["cymbals.txt"],
                                                "no reference onsets of the scored classes"),
    }


@pytest.mark.parametrize("case", ["missing reference", "missing prediction", "unknown format", "empty annotation",
                                  "MIDI without drum notes", "malformed line", "unknown labels", "unparsable MIDI",
                                  "no reference onset of the 3 classes"])
def test_bad_input_exits_2_naming_the_file(case, mdb_track, tmp_path, capsys):
    argv, named, says = _bad_inputs(mdb_track, tmp_path)[case]
    status, figures, out, err = _evaluate(argv, tmp_path, capsys)
    assert (status, figures, out) == (2, None, "")
    assert err.count("\n") == 1 and err.startswith(f"adt: error: {named}") and says in err, err


def test_bad_options_exit_2(mdb_track, tmp_path, capsys):
    ann = str(mdb_track["annotation"])
    assert main(["evaluate", ann, ann, "--window", "0"]) == 2
    assert "--window 0.0: need a positive number of seconds" in capsys.readouterr().err
    missing = tmp_path / "no" / "figures.json"
    assert main(["evaluate", ann, ann, "--json", str(missing)]) == 2
    assert f"--json {missing}: no such folder" in capsys.readouterr().err
    assert not missing.parent.exists()
    with pytest.raises(SystemExit) as exc:  # argparse: --classes is 3 or 5
        main(["evaluate", ann, ann, "--classes", "4"])
    assert exc.value.code == 2
