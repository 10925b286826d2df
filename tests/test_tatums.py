"""The one tatum grid (adt.rhythm.tatums) on real MDB Drums beat and onset annotations.

Measured (the MDB tracks of the mirror with class and beat annotations, whole tracks, 7,522
onsets): the grid extended to the whole track loses 467 onsets (6.2%) to "far", the grid
bounded by the first and last annotated beat 482 (swing and free-jazz tracks account for most).
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from adt.rhythm.quantization import quantize_onsets
from adt.rhythm.tatum_table import TATUM_COLUMNS, tatum_table
from adt.rhythm.tatums import tatum_grid, tatums_from_beats

ROOT = "MDBDrums-master/MDB Drums/annotations/"
LABELS = {"KD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}


@pytest.fixture(scope="module")
def mdb(shared_datasets) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """track -> (ground-truth beats, onset times, 5-class labels) of every MDB track with both."""
    out = {}
    with zipfile.ZipFile(shared_datasets / "mdb-drums-subset.zip") as z:
        names = set(z.namelist())
        for path in sorted(n for n in names if n.startswith(ROOT + "class/") and n.endswith("_class.txt")):
            track = path.rsplit("/", 1)[1][: -len("_class.txt")]
            beats_path = f"{ROOT}beats/{track}_MIX.beats"
            if beats_path not in names:
                continue
            beats = np.array([float(line.split()[0]) for line in z.read(beats_path).decode().splitlines()
                              if line.strip()])
            rows = [line.split() for line in z.read(path).decode().splitlines() if line.strip()]
            rows = [(float(t), LABELS[c]) for t, c in rows if c in LABELS]
            out[track] = (beats, np.array([t for t, _ in rows]), np.array([c for _, c in rows]))
    assert len(out) >= 5
    return out


def test_grid_covers_the_whole_track(mdb):
    for track, (beats, times, _) in mdb.items():
        duration = float(times.max()) + 0.5
        grid = tatum_grid(beats, 4, duration)
        assert grid.tatums[0] >= 0 and grid.tatums[0] < np.diff(grid.tatums[:2])[0] + 1e-9, track
        assert grid.tatums[-1] >= duration and np.all(np.diff(grid.tatums) > 0)
        # inside the annotated beats the grid is exactly 4 equal steps per beat
        inner = grid.tatums[(grid.tatums >= beats[0] - 1e-9) & (grid.tatums <= beats[-1] + 1e-9)]
        np.testing.assert_allclose(inner, tatums_from_beats(beats, 4), atol=1e-9)
        assert 0 <= grid.pickup < 4 and (grid.beat_index()[: grid.pickup] == -1).all()


def test_extension_loses_no_more_onsets_than_the_beat_bounded_grid(mdb):
    far_bounded = far_extended = n = 0
    for beats, times, labels in mdb.values():
        duration = float(times.max()) + 0.5
        bounded = quantize_onsets(times, labels, tatum_grid(beats, 4).tatums)
        extended = quantize_onsets(times, labels, tatum_grid(beats, 4, duration).tatums)
        far_bounded += int(bounded.far.sum())
        far_extended += int(extended.far.sum())
        n += len(times)
    assert far_extended < far_bounded and far_extended / n < 0.08


def test_subdivisions_and_table(mdb):
    track, (beats, times, _) = next(iter(mdb.items()))
    grid = tatum_grid(beats, 3, float(times.max()))
    assert set(grid.subdivision()) == {0, 1, 2}
    assert (np.diff(grid.beat_index()) >= 0).all()
    table_in = pd.DataFrame({"track_id": track, "source": "ground_truth", "time_s": beats, "position": 0})
    one_beat = pd.DataFrame({"track_id": ["x"], "source": ["madmom"], "time_s": [1.0], "position": [0]})
    table, skipped = tatum_table(pd.concat([table_in, one_beat]), {track: float(times.max())}, 3)
    assert list(table.columns) == TATUM_COLUMNS and set(table.track_id) == {track}
    assert len(skipped) == 1 and skipped[0].startswith("x (madmom)") and "2 beats" in skipped[0]


def test_bad_beats_are_clear_errors():
    with pytest.raises(ValueError, match="at least 2 beats"):
        tatum_grid(np.array([1.0, 1.0]), 4, 10.0)
    with pytest.raises(ValueError, match="finite"):
        tatum_grid(np.array([0.5, np.nan, 1.5]), 4)
    with pytest.raises(ValueError, match="subdivisions"):
        tatum_grid(np.array([0.5, 1.0]), 0)
