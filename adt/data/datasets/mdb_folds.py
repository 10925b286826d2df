"""The real-song folds of MDB Drums: its 9 songs with multitracks in 3 fixed folds of 3.

:data:`REAL_SONG_FOLDS`, :func:`fold_of`, :func:`folds_for` and :func:`validation_songs`
serve k-fold training/testing on real songs. METADATA ``genre``: 6 Rock, 2
Singer/Songwriter, 1 Pop; tempo (median beat interval of the ``.beats`` file, beats/min),
onsets in the class file (all 6 classes) and the song's mix gain
(:func:`adt.data.datasets.mdb_multitrack.render_multitrack`; 1: its raws sum below -1 dBFS):

| fold | song        | genre             | tempo | notes                               | onsets | gain  |
| ---- | ----------- | ----------------- | ----- | ----------------------------------- | ------ | ----- |
| 0    | Punk        | Rock              | 150   | distorted, vocal; the fastest song  | 206    | 0.960 |
| 0    | Shadows     | Rock              | 111   | clean guitars, instrumental (retro) | 180    | 0.395 |
| 0    | Beatles     | Singer/Songwriter | 111   | guitars, two singers                | 154    | 0.567 |
| 1    | SpeedMetal  | Rock              | 109   | distorted, instrumental             | 290    | 0.915 |
| 1    | Rockabilly  | Rock              | 109   | retro rock, vocal                   | 144    | 1     |
| 1    | Country1    | Singer/Songwriter | 109   | acoustic guitars, vocal             | 101    | 1     |
| 2    | 80sRock     | Rock              | 111   | distorted, vocal                    | 103    | 0.545 |
| 2    | Grunge      | Rock              | 111   | distorted, vocal                    | 280    | 1     |
| 2    | Britpop     | Pop               | 109   | guitars, two singers                | 257    | 0.458 |

Each fold holds two Rock songs and one of the three others (the two Singer/Songwriter
songs apart), the two lighter retro-rock songs (Shadows, Rockabilly) and the two
instrumentals (Shadows, SpeedMetal) in different folds, so every fold tests both heavy
and light arrangements; onsets per fold 540 / 535 / 640.
"""

from __future__ import annotations

import numpy as np


#: The 9 songs with multitracks (track names) in 3 fixed folds of 3, balanced by genre
#: (see the module docstring's table): two Rock songs and one other per fold.
REAL_SONG_FOLDS: tuple[tuple[str, ...], ...] = (
    ("MusicDelta_Punk", "MusicDelta_Shadows", "MusicDelta_Beatles"),
    ("MusicDelta_SpeedMetal", "MusicDelta_Rockabilly", "MusicDelta_Country1"),
    ("MusicDelta_80sRock", "MusicDelta_Grunge", "MusicDelta_Britpop"),
)


def fold_of(name: str) -> int:
    """The fold (0..2) of :data:`REAL_SONG_FOLDS` holding track ``name`` (e.g. ``MusicDelta_Punk``).

    Raises:
        ValueError: a track that is not one of the 9 songs with multitracks (names it).
    """
    for i, fold in enumerate(REAL_SONG_FOLDS):
        if name in fold:
            return i
    raise ValueError(f"{name}: not one of the MDB songs with multitracks "
                     f"(adt.data.datasets.mdb.REAL_SONG_FOLDS: {sorted(n for f in REAL_SONG_FOLDS for n in f)})")


def folds_for(test_fold: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(train names, test names) of one round of the 3-fold split: fold ``test_fold`` is
    tested, the other two train; names sorted.

    Raises:
        ValueError: ``test_fold`` not in 0..2.
    """
    if not (isinstance(test_fold, (int, np.integer)) and 0 <= test_fold < len(REAL_SONG_FOLDS)):
        raise ValueError(f"test fold {test_fold!r}: choose one of 0..{len(REAL_SONG_FOLDS) - 1}")
    test = tuple(sorted(REAL_SONG_FOLDS[test_fold]))
    train = tuple(sorted(n for i, f in enumerate(REAL_SONG_FOLDS) if i != test_fold for n in f))
    return train, test


def validation_songs(test_fold: int) -> tuple[str, ...]:
    """The real songs held out for validation when fold ``test_fold`` is tested: of each other fold, its
    song at position ``test_fold`` (so the three models validate on 6 different songs), sorted.

    Raises:
        ValueError: ``test_fold`` not in 0..2.
    """
    folds_for(test_fold)  # checks the fold number
    return tuple(sorted(f[test_fold] for j, f in enumerate(REAL_SONG_FOLDS) if j != test_fold))
