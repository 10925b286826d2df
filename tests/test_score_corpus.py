"""Tatum-level drum scores from MIDI on the ground-truth beat grid (adt.lm.corpus)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from adt.lm.corpus import ScoreError, groove_corpus, score_from_midi, scores_of_split
from adt.vocab import CLASSES_5

GROOVE_ZIP = "groove-v1.0.0-midionly.zip"


def _pm(times_pitches, tempo=120.0, ts=(4, 4)) -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    if ts is not None:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(ts[0], ts[1], 0.0))
    inst = pretty_midi.Instrument(program=0, is_drum=True)
    for t, p in times_pitches:
        inst.notes.append(pretty_midi.Note(velocity=100, pitch=p, start=t, end=t + 0.05))
    pm.instruments.append(inst)
    return pm


def test_score_from_midi_exact_matrix():
    # 120 bpm: a beat every 0.5 s, a tatum (16th) every 0.125 s. Two bars:
    # BD (36) on every beat, closed HH (42) on every 8th note.
    beats = np.arange(8) * 0.5
    eighths = np.arange(16) * 0.25
    pm = _pm([(t, 36) for t in beats] + [(t, 42) for t in eighths] + [(4.0, 36)])  # + next downbeat
    y = score_from_midi(pm, k=5)
    assert y.dtype == np.uint8
    m = 33  # 9 beats (0 .. 4 s) -> 8 * 4 + 1 tatums
    expected = np.zeros((5, m), dtype=np.uint8)
    expected[0, ::4] = 1  # BD on beats (tatums 0, 4, ..., 32)
    expected[3, 0:32:2] = 1  # HH on 8ths (tatums 0, 2, ..., 30)
    np.testing.assert_array_equal(y, expected)
    # 3-class rows: BD, SD, HH
    np.testing.assert_array_equal(score_from_midi(pm, k=3), expected[[0, 1, 3]])
    # 8 tatums per beat doubles the resolution
    y8 = score_from_midi(pm, k=5, subdivisions=8)
    assert y8.shape == (5, 65)
    np.testing.assert_array_equal(y8[0].nonzero()[0], np.arange(0, 65, 8))


def test_grid_follows_tempo_changes_and_covers_the_last_onset(tmp_path):
    # 120 bpm for 2 beats (1 s), then 60 bpm: beats at 0, .5, 1, 2, 3, ...
    import mido

    res = 480
    mid = mido.MidiFile(ticks_per_beat=res)
    meta, drums = mido.MidiTrack(), mido.MidiTrack()
    mid.tracks += [meta, drums]
    meta.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=1000000, time=2 * res))
    # snare at beats 0, 1, 2, a 16th after beat 2, beats 3 and 4, 3 16ths after beat 4 (ticks)
    ticks = [0, res, 2 * res, 2 * res + res // 4, 3 * res, 4 * res, 4 * res + 3 * res // 4]
    now = 0
    for t in ticks:
        drums.append(mido.Message("note_on", channel=9, note=38, velocity=90, time=t - now))
        drums.append(mido.Message("note_off", channel=9, note=38, velocity=0, time=res // 8))
        now = t + res // 8
    path = tmp_path / "tempo.mid"
    mid.save(path)
    pm = pretty_midi.PrettyMIDI(str(path))
    np.testing.assert_allclose(pm.get_beats()[:4], [0.0, 0.5, 1.0, 2.0])
    y = score_from_midi(pm, k=5)
    # pretty_midi's last beat is 3.0 s (beat 4); the last onset (3.75 s) lies beyond it, so
    # the grid is extended by one beat at the last interval (1 s): 6 beats, 21 tatums
    assert pm.get_beats()[-1] == pytest.approx(3.0)
    assert y[1].nonzero()[0].tolist() == [0, 4, 8, 9, 12, 16, 19]
    assert y.shape == (5, 21)


def test_score_from_midi_rejects_other_time_signatures():
    pm = _pm([(0.0, 36), (0.5, 38)], ts=(3, 4))
    with pytest.raises(ScoreError, match="time signature 3/4"):
        score_from_midi(pm)
    assert score_from_midi(pm, require_4_4=False).shape[0] == 5
    # a later change to 6/8 is caught too
    pm = _pm([(0.0, 36), (0.5, 38)])
    pm.time_signature_changes.append(pretty_midi.TimeSignature(6, 8, 2.0))
    with pytest.raises(ScoreError, match="6/8"):
        score_from_midi(pm)
    # no time-signature event: MIDI's default 4/4
    assert score_from_midi(_pm([(0.0, 36), (0.5, 38)], ts=None)).shape == (5, 5)


def test_score_from_midi_rejects_silence_and_too_few_beats():
    with pytest.raises(ScoreError, match="no drum notes"):
        score_from_midi(_pm([]))
    with pytest.raises(ScoreError, match="no drum notes"):
        score_from_midi(_pm([(0.0, 56), (0.5, 56)]))  # cowbell only: outside the drum map
    with pytest.raises(ScoreError, match="fewer than 2 beats"):
        score_from_midi(_pm([(0.0, 36)]))  # ends at 0.05 s: a single beat
    assert isinstance(ScoreError("x"), ValueError)


@pytest.fixture(scope="module")
def groove_extract(shared_datasets, tmp_path_factory):
    """info.csv plus, per split, the first 4 files in track_id order and every non-4/4 file."""
    out = tmp_path_factory.mktemp("groove")
    with zipfile.ZipFile(shared_datasets / GROOVE_ZIP) as z:
        info = z.read("groove/info.csv")
        df = pd.read_csv(io.BytesIO(info))
        df["track_id"] = "groove/" + df["midi_filename"].str[: -len(".mid")]
        df = df.sort_values("track_id")
        keep = set(df.groupby("split").head(4)["midi_filename"]) | set(df[df["time_signature"] != "4-4"]["midi_filename"])
        (out / "groove").mkdir()
        (out / "groove" / "info.csv").write_bytes(info)
        for name in keep:
            path = out / "groove" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(z.read(f"groove/{name}"))
    return out, df


def test_groove_corpus_real_archive(groove_extract):
    root, df = groove_extract
    scores, skipped = groove_corpus(root, k=5, limit_per_split=3)
    by_split = {s: [d for d in scores if d["split"] == s] for s in ("train", "validation", "test")}
    assert [len(v) for v in by_split.values()] == [3, 3, 3]
    assert [d["split"] for d in scores] == ["train"] * 3 + ["validation"] * 3 + ["test"] * 3
    for d in scores:
        assert d["y"].dtype == np.uint8 and d["y"].shape[0] == 5 and d["y"].shape[1] > 4
        assert d["y"].sum() > 0
        row = df[df["track_id"] == d["track_id"]].iloc[0]
        assert d["session"] == row["session"] and d["split"] == row["split"]
        assert d["beat_type"] in ("beat", "fill")
    ids = [d["track_id"] for d in by_split["train"]]
    assert ids == sorted(ids)
    # skipped: only files before the per-split limit was reached are tried; with the
    # sorted order the non-4/4 ones that come first are reported with the reason
    for d in skipped:
        assert "not 4/4" in d["reason"] and d["track_id"].startswith("groove/")
    # without a limit every row is tried: the extracted files give scores, the 12
    # non-4/4 ones are skipped, the missing files are skipped as unreadable
    scores_all, skipped_all = groove_corpus(root, k=3)
    reasons = pd.Series([d["reason"] for d in skipped_all])
    assert reasons.str.contains("not 4/4").sum() == 12
    assert reasons.str.contains("no such MIDI file").sum() == len(df) - len(scores_all) - 12
    n_extracted = sum(1 for p in (root / "groove").rglob("*.mid"))
    assert len(scores_all) == n_extracted - 12
    assert {d["split"] for d in scores_all} == {"train", "validation", "test"}
    assert all(d["y"].shape[0] == 3 for d in scores_all)
    assert len(scores_of_split(scores_all, "test")) == sum(d["split"] == "test" for d in scores_all)
    # deterministic
    again, _ = groove_corpus(root, k=5, limit_per_split=3)
    assert [d["track_id"] for d in again] == [d["track_id"] for d in scores]
    assert all(np.array_equal(a["y"], b["y"]) for a, b in zip(again, scores))


@pytest.mark.parametrize("name", ["egmd", "slakh"])
def test_scores_from_egmd_and_slakh_ground_truth(name, tmp_path):
    """E-GMD and Slakh (official-layout fixtures) give tatum-level scores on their
    ground-truth grid, as the drum_scores asset builds them for every dataset."""
    import dataclasses
    import importlib

    from adt.rhythm.tatums import tatums_from_beats
    from adt.config import get_profile
    from adt.data.datasets import get_module
    from adt.data.archives import extract
    from adt.lm.scores import drum_score

    files = importlib.import_module(f"tests.layouts.{name}").archive_files()
    (archive_name, data), = files.items()
    (tmp_path / archive_name).write_bytes(data)
    raw = extract(tmp_path / archive_name, tmp_path / "raw")
    profile = dataclasses.replace(get_profile("tiny").data, tracks_per_split=None, max_duration_s=None)
    tables = get_module(name).build(raw, tmp_path / "out", profile)
    n_scored = 0
    for tid, beats in tables.beats.groupby("track_id"):
        onsets = tables.onsets[tables.onsets.track_id == tid]
        tatums = tatums_from_beats(beats.time_s.to_numpy(), 4)
        y = drum_score(onsets.time_s.to_numpy(), onsets.drum.to_numpy(), tatums, k=5)
        assert y.shape == (5, len(tatums))
        inside = onsets[(onsets.time_s >= tatums[0]) & (onsets.time_s <= tatums[-1])]
        # every onset on the grid lands on a tatum (several on one tatum count once)
        assert 0 < y.sum() <= len(inside)
        assert set(np.nonzero(y.any(axis=1))[0]) == {CLASSES_5.index(d) for d in inside.drum}
        n_scored += 1
    assert n_scored >= 3
