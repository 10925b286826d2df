"""Tatums from beats, onset quantization (Table I) and tatum-level drum scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adt.rhythm.tatums import tatums_from_beats
from adt.rhythm.quantization import nearest_tatum, quantization_stats, quantize_onsets, summarize
from adt.lm.scores import drum_score, score_onsets
from adt.vocab import CLASS_INDEX

BD, SD, TT, HH, CY = (CLASS_INDEX[c] for c in ("BD", "SD", "TT", "HH", "CY"))
GRID = np.arange(17) * 0.125  # tatums every 0.125 s over 2 s


# ------------------------------------------------------------------ tatums
def test_tatums_from_beats_quarter_beats():
    t = tatums_from_beats(np.array([0.0, 0.5, 1.0]), 4)
    np.testing.assert_allclose(t, np.arange(9) * 0.125)


def test_tatums_from_beats_uneven_and_unsorted():
    t = tatums_from_beats(np.array([1.0, 0.0, 2.0 + 2.0]), 2)  # sorted internally
    np.testing.assert_allclose(t, [0.0, 0.5, 1.0, 2.5, 4.0])
    assert len(tatums_from_beats(np.arange(10.0))) == 9 * 4 + 1


@pytest.mark.parametrize("beats", [np.array([]), np.array([1.0])])
def test_tatums_from_beats_too_few(beats):
    with pytest.raises(ValueError, match="at least 2 beats"):
        tatums_from_beats(beats)


def test_tatums_from_beats_bad_input():
    with pytest.raises(ValueError):
        tatums_from_beats(np.array([0.0, 0.5, 0.5]))
    with pytest.raises(ValueError):
        tatums_from_beats(np.array([0.0, 0.5]), 0)


# ------------------------------------------------------------- quantization
def test_nearest_tatum_ties_and_ends():
    idx, off = nearest_tatum(np.array([-1.0, 0.0625, 0.07, 5.0]), GRID)
    np.testing.assert_array_equal(idx, [0, 0, 1, 16])
    np.testing.assert_allclose(off, [-1.0, 0.0625, 0.07 - 0.125, 3.0])


def test_conflict_same_drum_first_in_time_keeps_tatum():
    # later-in-time onset listed first: it is the conflicting one
    f = quantize_onsets(np.array([0.505, 0.495]), np.array([BD, BD]), GRID)
    assert list(f["tatum_index"]) == [4, 4]
    assert list(f["conflict"]) == [True, False]
    assert not f["far"].any()
    assert list(f["drum"]) == ["BD", "BD"]


def test_same_time_different_drums_no_conflict():
    f = quantize_onsets(np.array([0.5, 0.5, 0.5]), np.array(["BD", "SD", "HH"]), GRID)
    assert not f["conflict"].any()


def test_far_threshold():
    # 0.31 is 60 ms from the nearest tatum (0.25; 65 ms from 0.375) -> far
    f = quantize_onsets(np.array([0.31, 0.30]), np.array([SD, HH]), GRID)
    assert list(f["far"]) == [True, False]
    np.testing.assert_allclose(f["distance_s"], [0.06, 0.05])
    np.testing.assert_allclose(f["offset_s"], [0.06, 0.05])
    # exactly far_s away is not far (binary-exact numbers: 0.3125 - 0.25 = 0.0625)
    f2 = quantize_onsets(np.array([0.3125]), np.array([SD]), GRID, far_s=0.0625)
    assert not f2["far"].any() and f2.loc[0, "tatum_index"] == 2
    assert quantize_onsets(np.array([0.3125]), np.array([SD]), GRID, far_s=0.06)["far"].all()


def test_union_counts_overlap_once_and_summary():
    times = np.array([0.0, 0.01, 0.56, 0.50, 1.0, 1.0])
    drums = np.array(["BD", "BD", "SD", "SD", "HH", "BD"])
    f = quantize_onsets(times, drums, GRID)
    # 0.01 BD: conflict; 0.56 SD: 60 ms from 0.5 -> far AND conflict (0.50 SD came first)
    assert list(f["conflict"]) == [False, True, True, False, False, False]
    assert list(f["far"]) == [False, False, True, False, False, False]
    s = summarize(f)
    assert s.loc[0, "n_onsets"] == 6
    assert s.loc[0, "conflict"] == pytest.approx(2 / 6)
    assert s.loc[0, "far"] == pytest.approx(1 / 6)
    assert s.loc[0, "union"] == pytest.approx(2 / 6)  # not 3/6
    by = summarize(f, ["drum"]).set_index("drum")
    assert by.loc["BD", "n_onsets"] == 3 and by.loc["BD", "conflict"] == pytest.approx(1 / 3)
    assert by.loc["SD", "union"] == pytest.approx(0.5)
    assert by.loc["HH", "union"] == 0.0
    for col in ("conflict", "far", "union"):
        assert by[col].between(0, 1).all()
    pd.testing.assert_frame_equal(quantization_stats(times, drums, GRID), s)


def test_summarize_over_songs_with_key_column():
    a = quantize_onsets(np.array([0.0, 0.01]), np.array([BD, BD]), GRID).assign(track="a")
    b = quantize_onsets(np.array([0.26]), np.array([SD]), GRID).assign(track="b")
    s = summarize(pd.concat([a, b], ignore_index=True), ["track"])
    assert list(s["track"]) == ["a", "b"]
    assert list(s["n_onsets"]) == [2, 1]
    np.testing.assert_allclose(s["conflict"], [0.5, 0.0])
    np.testing.assert_allclose(s["far"], [0.0, 0.0])


def test_quantize_input_errors_and_empty():
    with pytest.raises(ValueError):
        quantize_onsets(np.array([0.1]), np.array([BD, SD]), GRID)
    with pytest.raises(ValueError):
        quantize_onsets(np.array([0.1]), np.array([7]), GRID)
    with pytest.raises(ValueError):
        quantize_onsets(np.array([0.1]), np.array([BD]), np.array([]))
    with pytest.raises(ValueError):
        quantize_onsets(np.array([0.1]), np.array([BD]), np.array([0.0, 0.2, 0.1]))
    empty = quantize_onsets(np.array([]), np.array([], dtype=int), GRID)
    assert len(empty) == 0 and "conflict" in empty.columns
    assert summarize(empty).loc[0, "n_onsets"] == 0
    with pytest.raises(KeyError):
        summarize(empty, ["track"])


# ------------------------------------------------------------------- scores
def test_drum_score_hand_case():
    times = np.array([0.0, 0.01, 0.24, 0.5, 0.5, 0.5, 1.0, 1.99, -0.06, -0.07, 2.07])
    drums = np.array([BD, BD, SD, HH, TT, CY, SD, HH, BD, BD, CY])
    y = drum_score(times, drums, GRID, k=5)
    assert y.shape == (5, 17) and y.dtype == np.uint8
    expected = np.zeros((5, 17), np.uint8)
    expected[BD, 0] = 1  # 0.0, 0.01 and -0.06 (inside the half-period margin) -> tatum 0
    expected[SD, 2] = 1  # 0.24 -> 0.25
    expected[HH, 4] = expected[TT, 4] = expected[CY, 4] = 1
    expected[SD, 8] = 1
    expected[HH, 16] = 1  # 1.99 -> 2.0; 2.07 (> 2.0625) and -0.07 (< -0.0625) dropped
    np.testing.assert_array_equal(y, expected)

    y3 = drum_score(times, drums, GRID, k=3)
    assert y3.shape == (3, 17)
    np.testing.assert_array_equal(y3, expected[[BD, SD, HH]])

    t_back, d_back = score_onsets(y3, GRID)
    np.testing.assert_allclose(t_back, [0.0, 0.25, 0.5, 1.0, 2.0])
    np.testing.assert_array_equal(d_back, [BD, SD, HH, SD, HH])


def test_drum_score_errors():
    with pytest.raises(ValueError):
        drum_score(np.array([0.1]), np.array([BD]), GRID, k=4)
    with pytest.raises(ValueError):
        drum_score(np.array([0.1]), np.array([BD]), np.array([0.0]))
    with pytest.raises(ValueError):
        drum_score(np.array([0.1]), np.array(["XX"]), GRID)
    assert drum_score(np.array([]), np.array([], dtype=int), GRID).sum() == 0
