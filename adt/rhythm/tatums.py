"""The tatum grid: N tatums per beat over the whole track (tatum paper Sec. III-A).

One recipe, used by the ``tatums`` stage (:mod:`adt.rhythm.tatum_table`) and by ``adt transcribe``: the beats are
extended by their first and last intervals until they cover the track (madmom stops
at the last beat it hears, and ground-truth beat lists may start late or end early;
onsets outside the beats would otherwise pile up on the first or last tatum), each
beat interval is split into ``subdivisions`` tatums (4: a tatum is a 16th note in
4/4; 3 or 6 for triplet feels), and a pickup before the first beat continues the first
interval's spacing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

@dataclasses.dataclass(frozen=True)
class TatumGrid:
    """A track's tatum grid.

    Attributes:
        beats: (n_beats,) beat times in seconds, extended to cover the track.
        tatums: (M,) strictly increasing tatum times in seconds, all >= 0.
        pickup: tatums before the first beat (0 .. subdivisions - 1).
        subdivisions: tatums per beat.
    """

    beats: np.ndarray
    tatums: np.ndarray
    pickup: int
    subdivisions: int

    def beat_index(self) -> np.ndarray:
        """(M,) beat of each tatum (-1 for the pickup)."""
        return (np.arange(len(self.tatums)) - self.pickup) // self.subdivisions

    def subdivision(self) -> np.ndarray:
        """(M,) position of each tatum within its beat, 0 .. subdivisions - 1."""
        return (np.arange(len(self.tatums)) - self.pickup) % self.subdivisions


def tatums_from_beats(beats: np.ndarray, subdivisions: int = 4) -> np.ndarray:
    """Tatum times: ``subdivisions`` equal steps per beat interval (tatum paper, Sec. III-A).

    With the default 4 a tatum is a quarter beat (a 16th note in 4/4). Each interval
    [b_i, b_{i+1}) is split linearly into ``subdivisions`` tatums starting at b_i, and
    the last beat is appended, so ``n_beats`` beats give ``(n_beats - 1) * subdivisions + 1``
    tatums spanning exactly [b_0, b_last] (no extrapolation beyond the beats).

    Args:
        beats: beat times in seconds, shape (n_beats,); sorted here.
        subdivisions: tatums per beat, >= 1.

    Returns:
        float64 array of shape (M,), strictly increasing tatum times in seconds.

    Raises:
        ValueError: fewer than 2 beats, repeated or non-finite beat times, subdivisions < 1.
    """
    subdivisions = int(subdivisions)
    if subdivisions < 1:
        raise ValueError(f"subdivisions must be >= 1, got {subdivisions}")
    b = np.asarray(beats, dtype=np.float64).reshape(-1)
    if b.size < 2:
        raise ValueError(
            f"need at least 2 beats to interpolate tatums, got {b.size} "
            "(beat tracking found no regular pulse: audio too short or silent?)"
        )
    if not np.all(np.isfinite(b)):
        raise ValueError("beat times must be finite")
    b = np.sort(b)
    if np.any(np.diff(b) <= 0):
        raise ValueError("beat times must be distinct (a repeated beat gives a zero-length interval)")
    frac = np.arange(subdivisions, dtype=np.float64) / subdivisions
    inner = b[:-1, None] + np.diff(b)[:, None] * frac[None, :]
    return np.concatenate([inner.reshape(-1), b[-1:]])


def extend_beats(beats: np.ndarray, duration_s: float) -> np.ndarray:
    """Beats extended by their first interval back towards 0 s (every added beat >= 0) and by
    their last interval until one lies at or after ``duration_s``.

    Args:
        beats: (n_beats,) sorted, distinct beat times in seconds, n_beats >= 2.
        duration_s: length of the track in seconds.

    Returns:
        float64 (n_beats',) beat times in seconds.
    """
    b = list(np.asarray(beats, dtype=np.float64))
    first, last = b[1] - b[0], b[-1] - b[-2]
    while b[0] - first >= 0:
        b.insert(0, b[0] - first)
    while b[-1] < duration_s:
        b.append(b[-1] + last)
    return np.asarray(b)


def tatum_grid(beats: np.ndarray, subdivisions: int = 4, duration_s: float | None = None) -> TatumGrid:
    """The tatum grid of a track from its beats (module docstring).

    Args:
        beats: beat times in seconds (sorted here; repeated times are dropped).
        subdivisions: tatums per beat, >= 1.
        duration_s: the track's length in seconds: the beats are extended to cover
            [0, duration_s] and pickup tatums added; None keeps the grid within the beats.

    Returns:
        a :class:`TatumGrid`.

    Raises:
        ValueError: fewer than 2 distinct beats, non-finite beat times, subdivisions < 1.
    """
    b = np.unique(np.asarray(beats, dtype=np.float64).reshape(-1))
    if b.size < 2:
        raise ValueError(f"need at least 2 beats for a tatum grid, got {b.size} (beat tracking found no "
                         "regular pulse: audio too short, silent or without a pulse?)")
    if not np.all(np.isfinite(b)):
        raise ValueError("beat times must be finite")
    if duration_s is None:
        return TatumGrid(b, tatums_from_beats(b, subdivisions), 0, int(subdivisions))
    b = extend_beats(b, duration_s)
    tatums = tatums_from_beats(b, subdivisions)
    step = (b[1] - b[0]) / subdivisions
    pickup = int(min(subdivisions - 1, np.floor(b[0] / step)))
    pre = b[0] - step * np.arange(pickup, 0, -1)
    return TatumGrid(b, np.concatenate([pre, tatums]), pickup, int(subdivisions))
