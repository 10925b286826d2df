"""`adt transcribe`: errors, separation, tatum grid, MusicXML, and quality on a real MDB recording.

The transcriber is trained here in ~15 s (60 steps of a small FrameCRNN on six other MDB
Drums drum-only recordings) and saved as a local MLflow model folder (``--model PATH``).
"""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
import torch

from adt.cli import main
from tests.conftest import MDB_PREFIX

TRAIN_TRACKS = ("Beatles", "Britpop", "Punk", "Grunge", "Country1", "Rockabilly")
#: A floor the 60-step test model clears on MusicDelta_80sRock (it scored 0.55-0.64 over
#: seeds 0-3); not the goal: the demo-trained models score higher.
F_FLOOR = 0.45


def _reference(path) -> dict[str, np.ndarray]:
    from adt.data.datasets.mdb import CLASS_MAP, read_class_annotation

    ann = read_class_annotation(path)
    drums = ann["label"].map(CLASS_MAP)
    return {c: ann.time_s[drums == c].to_numpy(dtype=float) for c in ("BD", "SD", "TT", "HH", "CY")}


@pytest.fixture(scope="module")
def model_dir(shared_datasets, tmp_path_factory):
    """A FrameCRNN trained for 60 steps on six MDB drum-only tracks (not 80sRock), as an MLflow model folder
    (:func:`adt.registry.save_dir`: MLmodel + weights-only checkpoint)."""
    import soundfile as sf

    from adt import registry

    from adt.features.targets import frame_targets
    from adt.features.spectrogram import log_mel
    from adt.frame.architectures import FrameCRNN
    from adt.frame.recipe import weighted_bce

    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("model")
    data = []
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        for name in TRAIN_TRACKS:
            audio, sr = sf.read(io.BytesIO(z.read(f"{MDB_PREFIX}audio/drum_only/MusicDelta_{name}_Drum.wav")),
                                dtype="float32", always_2d=True)
            ann = out / f"{name}.txt"
            ann.write_bytes(z.read(f"{MDB_PREFIX}annotations/class/MusicDelta_{name}_class.txt"))
            x = log_mel(audio.mean(1), sr)
            ref = _reference(ann)
            times = np.concatenate(list(ref.values()))
            labels = np.concatenate([[c] * len(v) for c, v in ref.items()])
            data.append((x, frame_targets(times, labels, x.shape[0])))
    frames = np.concatenate([x for x, _ in data])
    model = FrameCRNN(channels=(8, 16), hidden=32)
    model.set_standardization(torch.from_numpy(frames.mean(0)), torch.from_numpy(frames.std(0)))
    model.feature_type = "log_mel"
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4, eps=1e-9)
    for _ in range(60):  # 2-s segments, batch 8
        xb, yb = [], []
        for _ in range(8):
            x, y = data[rng.integers(len(data))]
            start = rng.integers(0, x.shape[0] - 200)
            xb.append(x[start:start + 200])
            yb.append(y[start:start + 200])
        model.train()
        opt.zero_grad()
        loss = weighted_bce(model(torch.from_numpy(np.stack(xb))), torch.from_numpy(np.stack(yb)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
    model.eval()
    return registry.save_dir(model, out / "mlflow-model")  # weights only, as registered versions are


@pytest.fixture
def no_separation_model(tmp_path, monkeypatch):
    """An empty data folder, no pretrained Open-Unmix weights (offline) and no shipped separator."""
    from adt.separation import separator
    from adt.separation import umx as separation

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(separation, "load_pretrained", lambda *a, **k: None)
    monkeypatch.setattr(separator, "shipped_path", lambda name=None: tmp_path / "no-shipped-separator.pt")


@pytest.fixture
def fresh_install(tmp_path, monkeypatch):
    """An empty data folder, offline: what a user has right after installation."""
    from adt.separation import umx as separation

    monkeypatch.setenv("ADT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(separation, "load_pretrained", lambda *a, **k: None)


def test_separate_in_a_fresh_folder_uses_the_shipped_separator(mdb_track, tmp_path, capsys, fresh_install):
    """``adt separate`` right after installation, offline: the shipped separator; stems that sum to the mixture
    within 16-bit rounding."""
    from adt.audio import read_audio, write_audio

    song = tmp_path / "song.wav"
    audio, sr = read_audio(mdb_track["wav"])
    write_audio(song, audio[:, : 6 * sr], sr)
    assert main(["separate", str(song), "-o", str(tmp_path / "out")]) == 0
    assert "shipped separator (separator_standard.pt" in capsys.readouterr().err
    written = {p.stem: read_audio(p)[0] for p in (tmp_path / "out" / "song").iterdir()}
    assert sorted(written) == ["bass", "drums", "other"]
    assert np.abs(sum(written.values()) - read_audio(song)[0]).max() < 2e-3
    assert np.abs(written["drums"]).max() > 0.05  # the drum recording mostly goes to drums
    power = {k: float((v ** 2).mean()) for k, v in written.items()}
    assert power["drums"] > power["bass"] and power["drums"] > power["other"]


def test_corrupt_shipped_separator_is_a_clear_error(mdb_track, tmp_path, capsys, fresh_install, monkeypatch):
    from adt.separation import separator

    corrupt = tmp_path / "separator_standard.pt"
    corrupt.write_bytes(separator.shipped_path().read_bytes()[:1000])
    monkeypatch.setattr(separator, "shipped_path", lambda name=None: corrupt)
    assert main(["separate", str(mdb_track["wav"]), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(corrupt) in err and "reinstall" in err


@pytest.fixture(scope="module")
def tatum_run(model_dir, mdb_track, tmp_path_factory):
    """One `--tatum --musicxml --no-separation` run on the real MDB recording, and the
    beat grid (beats, tatums, pickup tatums) recomputed from the same audio."""
    from adt.audio import read_audio
    from adt.transcribe.transcriber import tatum_grid

    out = tmp_path_factory.mktemp("tatum")
    argv = ["transcribe", str(mdb_track["wav"]), "-o", str(out / "out.mid"), "--model", str(model_dir),
            "--tatum", "--musicxml", str(out / "out.musicxml"), "--no-separation"]
    assert main(argv) == 0
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    return out, *tatum_grid(audio, sr, len(audio) / sr)


def _midi_onsets(path) -> dict[str, np.ndarray]:
    from adt.midi import load_midi, onsets_from_midi

    df = onsets_from_midi(load_midi(path), "cli")
    return {c: df.time_s[df.drum == c].to_numpy() for c in ("BD", "SD", "TT", "HH", "CY")}


@pytest.fixture(scope="module")
def other_tracks(shared_datasets, tmp_path_factory):
    """Two more MDB drum-only recordings (neither trains the test model): name -> (wav, annotation)."""
    out = tmp_path_factory.mktemp("mdb-other")
    tracks = {}
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        for name in ("SpeedMetal", "Shadows"):
            wav, ann = out / f"MusicDelta_{name}_Drum.wav", out / f"MusicDelta_{name}_class.txt"
            wav.write_bytes(z.read(f"{MDB_PREFIX}audio/drum_only/MusicDelta_{name}_Drum.wav"))
            ann.write_bytes(z.read(f"{MDB_PREFIX}annotations/class/MusicDelta_{name}_class.txt"))
            tracks[name] = (wav, ann)
    return tracks


def test_no_model_at_all_is_a_clear_error(tmp_path, monkeypatch, capsys, mdb_track):
    """An empty registry and no shipped checkpoint (a source checkout without it)."""
    from adt.frame import shipped

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path / "nothing")
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid")]) == 2
    err = capsys.readouterr().err
    assert "no model registered" in err and "make demo" in err
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.faults
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys, mdb_track):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid"), "--model", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "broken.pt" in err and "Traceback" not in err
    assert not (tmp_path / "out.mid").exists()


def test_tuned_peak_floors_never_lose_to_the_thesis_floor(model_dir, other_tracks):
    """adt.frame.peaks.tune_min_peak on two real recordings: the tuned floors score at least the thesis's
    0.5 (it is on the grid) and give, through pick_peaks, exactly the micro F they report."""
    from adt import registry
    from adt.audio import read_audio
    from adt.features.spectrogram import model_features
    from adt.frame.peaks import peak_picking_params, pick_peaks, tune_min_peak
    from adt.metrics import micro_f_measure

    model = registry.load(model_dir)
    acts, refs = [], []
    for wav, ann in other_tracks.values():
        audio, sr = read_audio(wav)
        acts.append(model.activations(torch.from_numpy(model_features(model, audio.mean(0), sr))).numpy())
        refs.append(_reference(ann))
    tuned = tune_min_peak(acts, refs, "thesis")
    thesis = micro_f_measure(refs, [pick_peaks(a, **peak_picking_params("thesis")) for a in acts])["f"]
    tuned_f = tuned.pop("tuned_f")
    assert tuned_f >= thesis and set(tuned["min_peak"]) == {"BD", "SD", "TT", "HH", "CY"}
    assert micro_f_measure(refs, [pick_peaks(a, **tuned) for a in acts])["f"] == pytest.approx(tuned_f)


def test_unreadable_audio_is_named(tmp_path, capsys):
    bad = tmp_path / "noise.wav"
    bad.write_text("not audio")
    assert main(["transcribe", str(bad), "-o", str(tmp_path / "out.mid")]) == 2
    assert "noise.wav" in capsys.readouterr().err


@pytest.mark.faults
def test_non_finite_samples_are_a_clear_error(tmp_path, capsys, mdb_track):
    """A float WAV with a few NaN/inf samples (a real MDB recording, damaged) is refused by name,
    exit 2, before any model runs; no MIDI is written."""
    import soundfile as sf

    from adt.audio import read_audio

    audio, sr = read_audio(mdb_track["wav"])
    audio = audio[:, : 5 * sr].copy()
    audio[:, sr // 2] = np.nan
    audio[0, 2 * sr] = np.inf
    damaged = tmp_path / "damaged.wav"
    sf.write(damaged, audio.T, sr, subtype="FLOAT")
    assert main(["transcribe", str(damaged), "-o", str(tmp_path / "out.mid"), "--no-separation"]) == 2
    err = capsys.readouterr().err
    assert "damaged.wav" in err and "NaN or infinite" in err and "0.500 s" in err
    assert not (tmp_path / "out.mid").exists()


@pytest.mark.faults
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_fails_before_the_work(tmp_path, capsys, mdb_track):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["transcribe", str(mdb_track["wav"]), "-o", str(locked / "out.mid")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_output_in_a_missing_folder_fails_before_the_work(tmp_path, capsys, mdb_track):
    for argv in (["-o", str(tmp_path / "nope" / "out.mid")],
                 ["-o", str(tmp_path / "out.mid"), "--musicxml", str(tmp_path / "nope" / "out.musicxml")]):
        assert main(["transcribe", str(mdb_track["wav"]), *argv]) == 2
        err = capsys.readouterr().err
        assert "nope" in err or "is a folder" in err
    assert not list(tmp_path.glob("*.mid"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys, mdb_track):
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "out.mid"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and "--device cpu" in err
    assert not (tmp_path / "out.mid").exists()


def test_transcription_of_a_real_recording_clears_the_floor(model_dir, mdb_track, tmp_path, capsys,
                                                            no_separation_model):
    """Micro F (5 classes, 50 ms, mir_eval) of the written MIDI vs the MDB annotation."""
    from adt.metrics import micro_f_measure

    out = tmp_path / "out.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out), "--model", str(model_dir),
                 "--no-separation"]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err  # --no-separation: no separator looked for
    result = micro_f_measure([_reference(mdb_track["annotation"])], [_midi_onsets(out)])
    assert result["f"] >= F_FLOOR, result


def test_missing_separation_model_warns_and_transcribes_the_mix(model_dir, mdb_track, tmp_path, capsys,
                                                                no_separation_model):
    out = tmp_path / "out.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out), "--model", str(model_dir)]) == 0
    err = capsys.readouterr().err
    assert "warning: drum separation unavailable" in err and "--no-separation" in err
    assert sum(len(v) for v in _midi_onsets(out).values()) > 0


@pytest.fixture
def chosen_separator(no_separation_model):
    """A tiny shared-encoder separator as the chosen model of a separation study under data/."""
    import json

    from adt.config import data_dir
    from adt.separation.unet import SharedEncoderSeparator, UNetConfig

    folder = data_dir() / "separation_study" / "test"
    folder.mkdir(parents=True)
    torch.save(SharedEncoderSeparator(UNetConfig(width=4, freq_pool=2)).payload(), folder / "interleaved-shared.pt")
    spec = {"name": "interleaved", "procedure": "interleaved", "sdr.drums.val": 1.5,
            "model_paths": {"shared": str(folder / "interleaved-shared.pt")}}
    (folder / "manifest.json").write_text(json.dumps({"chosen": spec}))
    return folder


def test_separation_runs_with_the_chosen_separator(model_dir, mdb_track, tmp_path, capsys, chosen_separator):
    """The separation study's chosen model under data/separation_study is found and run."""
    out = tmp_path / "out.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out), "--model", str(model_dir)]) == 0
    err = capsys.readouterr().err
    assert "separation: shared-encoder separator (interleaved" in err and "1.5 dB" in err
    assert out.is_file()


def test_separate_writes_one_wav_per_source(mdb_track, tmp_path, capsys, chosen_separator):
    """``adt separate`` with the chosen separator: a folder per input, one WAV per source, same length."""
    from adt.audio import read_audio, write_audio

    excerpt = tmp_path / "song.wav"
    audio, sr = read_audio(mdb_track["wav"])
    write_audio(excerpt, audio[:, : 4 * sr], sr)
    assert main(["separate", str(excerpt), "-o", str(tmp_path / "out")]) == 0
    written = {p.name: read_audio(p) for p in (tmp_path / "out" / "song").iterdir()}
    assert sorted(written) == ["bass.wav", "drums.wav", "other.wav"]
    assert all(a.shape == (2, 4 * sr) and r == 44100 for a, r in written.values())
    total = sum(a for a, _ in written.values())
    assert np.abs(total - audio[:, : 4 * sr]).max() < 2e-3  # the estimates sum to the mixture (16-bit files)
    assert main(["separate", str(excerpt), "-o", str(tmp_path / "drums-only"), "--sources", "drums"]) == 0
    assert [p.name for p in (tmp_path / "drums-only" / "song").iterdir()] == ["drums.wav"]


def test_separate_bad_input_is_a_clear_error(mdb_track, tmp_path, capsys, chosen_separator):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVE")
    assert main(["separate", str(bad), str(mdb_track["wav"]), "-o", str(tmp_path / "out"), "--sources", "vocals"]) == 2
    assert "--sources vocals" in capsys.readouterr().err
    assert main(["separate", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert "bad.wav" in capsys.readouterr().err
    assert not (tmp_path / "out" / "bad").exists()
    assert main(["separate", str(bad), "-o", str(tmp_path / "missing" / "deeper")]) == 2
    assert "cannot be made" in capsys.readouterr().err
    assert main(["separate", str(bad), "-o", str(tmp_path / "x"), "--model", str(tmp_path / "nope.pt")]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_separate_without_a_separator_says_so(mdb_track, tmp_path, capsys, no_separation_model):
    assert main(["separate", str(mdb_track["wav"]), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no separation study" in err and "the shipped separator is missing" in err


def test_tatum_onsets_lie_on_the_beat_grid(tatum_run):
    """Every written onset is a tatum of the grid (4 per madmom beat), at most one per drum and tatum."""
    out, beats, tatums, _ = tatum_run
    onsets = _midi_onsets(out / "out.mid")
    assert sum(len(v) for v in onsets.values()) > 50
    for drum, times in ((d, t) for d, t in onsets.items() if len(t)):
        gap = np.abs(times[:, None] - tatums[None, :]).min(axis=1)
        assert gap.max() < 2e-3, (drum, gap.max())  # MIDI tick rounding only
        assert len(np.unique(np.round(times, 3))) == len(times)
    # the grid really is 4 equal steps per beat, and covers the audio from its first tatum step on
    inner = tatums[(tatums >= beats[0]) & (tatums <= beats[-1])]
    np.testing.assert_allclose(inner[::4], beats, atol=1e-9)
    assert 0 <= tatums[0] < tatums[1] - tatums[0] + 1e-9
    assert tatums[-1] >= max(t.max() for t in onsets.values() if len(t))


def test_triplet_grid_and_its_musicxml_limit(model_dir, mdb_track, tmp_path, capsys):
    """--subdivisions 3: onsets on a grid of 3 tatums per beat; MusicXML (16th notes) refuses it clearly."""
    out = tmp_path / "triplets.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out), "--model", str(model_dir), "--tatum",
                 "--subdivisions", "3", "--no-separation"]) == 0
    assert out.is_file()
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(tmp_path / "x.mid"), "--model", str(model_dir),
                 "--subdivisions", "3", "--musicxml", str(tmp_path / "x.musicxml")]) == 2
    assert "--subdivisions 3" in capsys.readouterr().err and not (tmp_path / "x.mid").exists()


def test_tatum_output_without_a_pulse_is_a_clear_error(model_dir, tmp_path, capsys):
    """One second of silence: madmom finds no beats (3 s of silence already give it two)."""
    import soundfile as sf

    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(44100, dtype=np.float32), 44100)
    assert main(["transcribe", str(silence), "-o", str(tmp_path / "out.mid"), "--model", str(model_dir),
                 "--tatum", "--no-separation"]) == 2
    err = capsys.readouterr().err
    assert "silence.wav" in err and "beat" in err
    assert not (tmp_path / "out.mid").exists()


def test_musicxml_reloads_with_every_note(tatum_run):
    """partitura re-reads the score: one unpitched note per tatum onset, in 4/4, each at
    its tatum's 16th (bar 1 starting on a beat)."""
    import partitura
    from partitura import score as ps

    from adt.transcribe.musicxml import read_drum_musicxml

    out, _, tatums, pickup = tatum_run
    onsets = _midi_onsets(out / "out.mid")
    written = sum(len(v) for v in onsets.values())
    loaded = partitura.load_musicxml(out / "out.musicxml")
    part = loaded.parts[0]
    assert len(list(part.iter_all(ps.UnpitchedNote))) == written
    (sig,) = list(part.iter_all(ps.TimeSignature))
    assert (sig.beats, sig.beat_type) == (4, 4)
    assert [c.sign for c in part.iter_all(ps.Clef)] == ["percussion"]
    positions = read_drum_musicxml(out / "out.musicxml")
    offset = (4 - pickup) % 4
    for drum, times in onsets.items():
        tatum_index = np.abs(times[:, None] - tatums[None, :]).argmin(axis=1)
        np.testing.assert_array_equal(positions[drum], offset + tatum_index)


def test_musicxml_roundtrip_of_a_score(tmp_path):
    """Every onset of a score comes back at its 16th, per drum (including simultaneous strokes)."""
    from adt.transcribe.musicxml import read_drum_musicxml, write_musicxml

    y = (np.random.default_rng(0).random((5, 70)) < 0.3).astype(np.uint8)
    y[:, 5] = 1  # all five drums at once
    write_musicxml(tmp_path / "s.musicxml", y, tempo_bpm=97.0, offset_tatums=3)
    back = read_drum_musicxml(tmp_path / "s.musicxml")
    for k, drum in enumerate(("BD", "SD", "TT", "HH", "CY")):
        np.testing.assert_array_equal(back[drum], 3 + np.flatnonzero(y[k]))


def test_musicxml_drum_voices_instruments_and_partitura_roundtrip(tmp_path):
    """A hand-built groove (hands and feet together, hands chords): two voices (hands up,
    BD down), one score/MIDI instrument per drum (GM note, channel 10) that every note
    points at, schema-valid; partitura re-reads every hit per drum, read_drum_musicxml the score."""
    import xml.etree.ElementTree as ET

    import partitura
    from partitura import score as ps
    from partitura.io.importmusicxml import validate_musicxml

    from adt.transcribe.musicxml import NOTATION, read_drum_musicxml, write_musicxml
    from adt.vocab import CLASSES_5

    gm = {"BD": 36, "SD": 38, "TT": 47, "HH": 42, "CY": 49}
    y = np.zeros((5, 40), dtype=np.uint8)  # rows BD SD TT HH CY, 16ths from tatum 2 of bar 1
    row = {c: k for k, c in enumerate(CLASSES_5)}
    y[row["HH"], 0:32:2] = 1  # 8th-note hi-hat
    y[row["SD"], [4, 12, 20, 28]] = 1  # backbeat: HH + SD chords
    y[row["BD"], [0, 8, 10, 16, 24, 26]] = 1  # with HH (hands and feet at once)
    y[row["TT"], [32, 33, 34]] = 1
    y[row["SD"], [32, 35]] = 1  # SD + TT chord
    y[row["CY"], 36] = y[row["BD"], 36] = y[row["SD"], 36] = 1  # crash + snare + kick
    path = write_musicxml(tmp_path / "groove.musicxml", y, tempo_bpm=120.0, offset_tatums=2)
    assert validate_musicxml(str(path))

    root = ET.parse(path).getroot()
    (score_part,) = root.findall("part-list/score-part")
    names = {e.get("id"): e.findtext("instrument-name") for e in score_part.findall("score-instrument")}
    midi = {e.get("id"): (int(e.findtext("midi-channel")), int(e.findtext("midi-unpitched")) - 1)
            for e in score_part.findall("midi-instrument")}  # <midi-unpitched> is 1-based
    assert set(names) == set(midi) and len(midi) == 5 and all(names.values())
    drum_of = {}  # instrument id -> class, by its GM note
    for inst, (channel, note) in midi.items():
        assert channel == 10
        (drum_of[inst],) = [c for c, n in gm.items() if n == note]
    assert sorted(drum_of.values()) == sorted(CLASSES_5)
    notes = [n for n in root.iter("note") if n.find("unpitched") is not None]
    hits = {c: 0 for c in CLASSES_5}
    for n in notes:
        drum = drum_of[n.find("instrument").get("id")]
        hits[drum] += 1
        feet = drum == "BD"
        assert (n.findtext("voice"), n.findtext("stem")) == (("2", "down") if feet else ("1", "up"))
    assert hits == {c: int(y[k].sum()) for k, c in enumerate(CLASSES_5)}
    # simultaneous strokes of one voice form chords: one note per voice and tatum without <chord/>
    hands_tatums = np.flatnonzero(y[[row[c] for c in ("SD", "TT", "HH", "CY")]].any(axis=0))
    heads = [n for n in notes if n.find("chord") is None]
    assert len(heads) == len(hands_tatums) + int(y[row["BD"]].sum())
    assert {n.findtext("voice") for n in root.iter("note")} == {"1", "2"}

    loaded = partitura.load_musicxml(path)  # write_musicxml made partitura 1.9 read unpitched chords
    by_position = {(step, octave): drum for drum, (step, octave, *_rest) in NOTATION.items()}
    back = {c: [] for c in CLASSES_5}
    for note in loaded.parts[0].iter_all(ps.UnpitchedNote):
        back[by_position[note.step, note.octave]].append(note.start.t)  # divisions = 16ths
    for k, drum in enumerate(CLASSES_5):
        np.testing.assert_array_equal(sorted(back[drum]), 2 + np.flatnonzero(y[k]))
    positions = read_drum_musicxml(path)
    score = np.zeros_like(y)
    for k, drum in enumerate(CLASSES_5):
        score[k, positions[drum] - 2] = 1
    np.testing.assert_array_equal(score, y)


def test_chunked_activations_match_the_whole_track_pass(mdb_track):
    """adt transcribe runs the model in chunks (memory bounded by a chunk, not the input's length): on a real
    MDB recording (about 36 s) cut into 10-s chunks with 10 s of context, the features are the whole signal's
    and the activations within 0.02 of the whole-track pass, the picked onsets the same."""
    from adt.audio import normalize_level, read_audio
    from adt.features.spectrogram import model_features
    from adt.frame.peaks import pick_peaks
    from adt.transcribe.models import load_checkpoint
    from adt.transcribe.transcriber import activations, pretrained_path

    model = load_checkpoint(pretrained_path())
    audio, sr = read_audio(mdb_track["wav"], mono=True)
    heard = normalize_level(audio, model.input_level_db)  # the input level the model hears (44.1 kHz already)
    whole = model.activations(torch.from_numpy(model_features(model, heard, sr))).detach().numpy()
    chunked = activations(model, audio, sr, chunk_frames=1000, context_frames=1000)
    assert chunked.shape == whole.shape and len(whole) > 3000
    assert np.abs(chunked - whole).max() < 0.02
    a, b = pick_peaks(whole, threshold=0.3), pick_peaks(chunked, threshold=0.3)
    assert {c: len(v) for c, v in a.items()} == {c: len(v) for c, v in b.items()}
    assert all(np.allclose(a[c], b[c], atol=0.011) for c in a)
