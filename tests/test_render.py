"""GM rendering with tinysoundfont (adt.data.render), accompaniment and corpus tracks."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from adt.data import accompaniment, corpus, render

SR = 22050
NOTES = [(0.5, 36), (1.0, 38), (1.5, 42), (2.0, 36), (2.0, 42)]


def _drum_midi(notes=NOTES) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(program=0, is_drum=True)
    for t, pitch in notes:
        inst.notes.append(pretty_midi.Note(velocity=100, pitch=pitch, start=t, end=t + 0.05))
    pm.instruments.append(inst)
    return pm


def _energy(audio: np.ndarray, start_s: float, stop_s: float) -> float:
    seg = audio[:, int(start_s * SR):int(stop_s * SR)]
    return float(np.mean(seg.astype(np.float64) ** 2))


def test_soundfont_path_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("ADT_SOUNDFONT", raising=False)
    path = render.soundfont_path()
    assert path.is_file() and path.suffix == ".sf2"
    monkeypatch.setenv("ADT_SOUNDFONT", str(tmp_path / "missing.sf2"))
    with pytest.raises(FileNotFoundError, match="missing.sf2"):
        render.soundfont_path()
    monkeypatch.setenv("ADT_SOUNDFONT", str(path))
    assert render.soundfont_path() == path


def test_render_has_energy_at_note_times():
    pm = _drum_midi()
    audio = render.render_midi(pm, sample_rate=SR)
    assert audio.dtype == np.float32 and audio.shape[0] == 2
    assert audio.shape[1] == int(np.ceil((pm.get_end_time() + render.TAIL_S) * SR))
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0.05
    assert _energy(audio, 0.0, 0.45) == 0.0  # silence before the first note
    for t in (0.5, 1.0, 1.5, 2.0):
        before, after = _energy(audio, t - 0.03, t - 0.002), _energy(audio, t, t + 0.03)
        assert after > 3 * before + 1e-6, (t, before, after)


def test_kits_differ_and_all_kits_render():
    pm = _drum_midi()
    rendered = {kit: render.render_midi(pm, sample_rate=SR, kit=kit) for kit in render.ALL_KITS}
    for kit, audio in rendered.items():
        assert np.abs(audio).max() > 0.05, kit
    assert np.abs(rendered["standard"] - rendered["tr808"]).max() > 0.05
    assert np.abs(rendered["standard"] - rendered["power"]).max() > 0.01
    assert set(render.KITS) <= set(render.ALL_KITS) and len(render.KITS) >= 4
    assert "orchestra" not in render.KITS  # its toms and hi-hat keys are timpani


def test_unknown_kit_raises():
    with pytest.raises(ValueError, match="unknown drum kit"):
        render.render_midi(_drum_midi(), sample_rate=SR, kit="cardboard")


def test_melodic_instrument_and_empty_midi():
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes.append(pretty_midi.Note(velocity=90, pitch=60, start=0.2, end=0.8))
    pm.instruments.append(piano)
    audio = render.render_midi(pm, sample_rate=SR)
    assert _energy(audio, 0.25, 0.75) > 1e-5 and _energy(audio, 0.0, 0.19) == 0.0
    silent = render.render_midi(pretty_midi.PrettyMIDI(), sample_rate=SR)
    assert silent.shape == (2, int(render.TAIL_S * SR)) and not silent.any()


def _groove(seconds: float = 8.0) -> pretty_midi.PrettyMIDI:
    notes = []
    for k in range(int(seconds / 0.25)):
        t = k * 0.25
        notes.append((t, 42))
        if k % 2 == 0:
            notes.append((t, 36 if k % 4 == 0 else 38))
    return _drum_midi(notes)


def test_accompaniment_follows_beat_grid_and_is_seeded():
    drums = _groove()
    acc = accompaniment.make_accompaniment(drums, seed=3)
    assert acc.instruments[0].name == "Bass" and acc.instruments[0].program in accompaniment.PROGRAMS["train"]["Bass"]
    assert all(not i.is_drum and i.notes for i in acc.instruments)
    assert {"Bass", "Chords"} <= {i.name for i in acc.instruments}
    end = drums.get_end_time()
    assert all(0 <= n.start < n.end <= end + 1e-9 for i in acc.instruments for n in i.notes)
    bass_starts = {round(n.start, 6) for n in acc.instruments[0].notes}
    assert {round(float(d), 6) for d in drums.get_downbeats() if d < end} <= bass_starts
    again = accompaniment.make_accompaniment(drums, seed=3)
    key = lambda pm: [(n.pitch, n.start, n.velocity) for i in pm.instruments for n in i.notes]  # noqa: E731
    assert key(acc) == key(again)
    assert any(key(accompaniment.make_accompaniment(drums, seed=s)) != key(acc) for s in range(4, 8))


def test_heldout_accompaniment_programs_are_disjoint_from_training():
    train, heldout = accompaniment.PROGRAMS["train"], accompaniment.PROGRAMS["heldout"]
    assert not {p for ps in train.values() for p in ps} & {p for ps in heldout.values() for p in ps}
    drums = _groove()
    for seed in range(6):
        band = accompaniment.make_accompaniment(drums, seed=seed, programs="heldout")
        assert all(i.program in heldout[i.name] for i in band.instruments)


def test_render_track_stems():
    drums = _groove(8.0)
    stems = corpus.render_track(drums, "jazz", seed=1, sample_rate=44100)
    stem, acc = stems.drums, stems.accompaniment
    assert stem.shape == acc.shape == stems.bass.shape and stem.shape[0] == 2 and stem.dtype == acc.dtype == np.float32
    assert np.abs(stem).max() > 0.05 and np.abs(stems.bass).max() > 0.01 and np.abs(stems.other).max() > 0.01
    again = corpus.render_track(drums, "jazz", seed=1, sample_rate=44100, accompaniment=False)
    assert not again.accompaniment.any() and np.array_equal(stem, again.drums)
    with pytest.raises(ValueError):
        corpus.render_track(drums, "nope", seed=1)


def test_augmented_track_keeps_onsets_and_is_seeded():
    """With augmentation (room, EQ, compression) the drum stem's first sound is still at the
    first MIDI onset (within 5 ms: the room response starts at its direct path), the seed
    fixes the result, and the accompaniment's stems carry the noise, not the drum stem."""
    drums = _drum_midi([(0.5, 36), (1.0, 38), (1.5, 42)])
    a = corpus.render_track(drums, "standard", seed=11, sample_rate=SR, augment=True)
    b = corpus.render_track(drums, "standard", seed=11, sample_rate=SR, augment=True)
    assert np.array_equal(a.drums, b.drums) and np.array_equal(a.other, b.other)
    level = np.abs(a.drums).max(axis=0)
    first = int(np.argmax(level > 0.01 * level.max()))
    assert abs(first / SR - 0.5) <= 0.005
    plain = corpus.render_track(drums, "standard", seed=11, sample_rate=SR)
    assert not np.allclose(plain.drums, a.drums)


def test_reused_synthesizer_renders_as_a_fresh_one():
    """The SoundFont stays loaded between renders; what one render leaves (ringing voices,
    controllers, programs) never reaches the next."""
    loud = _drum_midi([(t / 8, 49) for t in range(16)] + [(t / 8, 46) for t in range(16)])
    quiet = _groove(4.0)
    render._loaded_synth.cache_clear()
    fresh = render.render_midi(quiet, sample_rate=SR, kit="jazz")
    render.render_midi(loud, sample_rate=SR, kit="power", n_samples=int(2.1 * SR))  # cut while ringing
    assert np.array_equal(render.render_midi(quiet, sample_rate=SR, kit="jazz"), fresh)


def test_a_room_too_large_for_its_reverberation_time_still_renders():
    """A 12 x 10 x 4 m room cannot ring only 0.15 s (Sabine: 0.19 s with every wall absorbing);
    pyroomacoustics refuses it, so the room's shortest RT60 is used (a Groove render crashed on it)."""
    from adt.data.effects import room_impulse_responses

    rir = room_impulse_responses((12.0, 10.0, 4.0), 0.15, 44100, np.random.default_rng(0))
    assert rir.shape[0] == 2 and np.isfinite(rir).all() and np.abs(rir).max() == pytest.approx(1.0)


def test_renders_in_worker_processes_equal_the_serial_ones(tmp_path, monkeypatch, caplog):
    """The demo corpus rendered in 2 worker processes (adt.data.renders) is the one rendered in this
    process, byte for byte: every random draw is seeded per track (augmentation on: effects, noise)."""
    import dataclasses
    import logging

    from adt.config import PROFILES
    from adt.data.datasets import demo

    raw = demo.generate_corpus(tmp_path / "raw", n_tracks=3, duration_s=3.0, seed=5)
    profile = dataclasses.replace(PROFILES["tiny"].data, max_duration_s=3.0, render_augment=True)
    monkeypatch.setenv("ADT_JOBS", "1")
    serial = demo.build(raw, tmp_path / "serial", profile)
    monkeypatch.setenv("ADT_JOBS", "2")
    with caplog.at_level(logging.INFO, logger="adt.data.renders"):
        parallel = demo.build(raw, tmp_path / "parallel", profile)
    assert "3 jobs in 2 processes" in caplog.text
    wavs = sorted(p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*.wav"))
    assert len(wavs) == 3 * 4
    for rel in wavs:
        assert (tmp_path / "parallel" / rel).read_bytes() == (tmp_path / "serial" / rel).read_bytes(), rel
    cols = ["track_id", "split", "duration_s", "kit"]
    assert parallel.tracks[cols].equals(serial.tracks[cols])
