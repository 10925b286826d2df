"""Real songs in the separation study: the 9 MDB Drums songs with MedleyDB multitracks as real stems.

Each song's raws are summed per role into ``drums``, ``bass`` and ``other`` (all but drums and bass:
guitars, keys, voice) by :func:`adt.data.datasets.mdb.render_multitrack` (one gain per song, the mix
peaking at -1 dBFS at most); the real full mix is their sum. The song-disjoint folds are the
real-songs issue's (:data:`adt.data.datasets.mdb.REAL_SONG_FOLDS`): with fold ``k`` tested, the other
two folds' songs train, except one song of each (:func:`adt.data.datasets.mdb.validation_songs`),
which validates and chooses the separator. Audio: mono WAV at 44100 Hz (the separators double it to
stereo). License of the multitracks: MedleyDB, CC BY-NC-SA 4.0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from adt.atomic import write_json
from adt.audio import read_audio, write_audio
from adt.data.datasets import mdb
from adt.data.datasets.mdb_folds import folds_for, validation_songs
from adt.data.datasets.mdb_multitrack import STEM_ROLES

#: the roles every real song gives (drums, bass, other)
SOURCES = STEM_ROLES


def real_stem_songs(raw_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[dict]:
    """The MDB songs with multitracks under ``raw_dir`` (the fetched ``mdb`` remotes) as stems written to
    ``out_dir/<name>/<role>.wav`` (atomically, kept; 16-bit mono, 44100 Hz), sorted by name.

    Returns:
        ``[{"track_id": "mdb/<name>", "name", "drums", "bass", "other": wav paths}]`` (a role without raws
        is absent).

    Raises:
        FileNotFoundError: no MDB layout, or no song with multitracks (names ``raw_dir``).
    """
    out = []
    for track in mdb.multitrack_tracks(raw_dir):
        folder = Path(out_dir) / track.name
        done = folder / "roles.json"
        if not done.is_file():
            mt = mdb.render_multitrack(track.multitrack_dir)
            for role, audio in mt.stems.items():
                write_audio(folder / f"{role}.wav", np.asarray(audio, dtype=np.float32), mt.sample_rate)
            write_json(done, sorted(mt.stems))
        roles = json.loads(done.read_text())
        out.append({"track_id": track.track_id, "name": track.name,
                    **{r: str((folder / f"{r}.wav").resolve()) for r in roles}})
    return out


def fold_songs(songs: list[dict], test_fold: int | None) -> dict[str, list[dict]]:
    """``{"train", "val", "test"}`` songs of one round of the 3-fold split (``test_fold`` None: every song
    trains, none validates or tests: the shipped separator).

    Raises:
        ValueError: ``test_fold`` not in 0..2.
    """
    if test_fold is None:
        return {"train": list(songs), "val": [], "test": []}
    train, test = folds_for(test_fold)
    val = validation_songs(test_fold)
    return {"train": [s for s in songs if s["name"] in train and s["name"] not in val],
            "val": [s for s in songs if s["name"] in val],
            "test": [s for s in songs if s["name"] in test]}


def evaluation_set(songs: list[dict], seconds: float | None = None) -> list[dict]:
    """Songs as evaluation tracks (:func:`adt.separation.study.evaluate_separator`): ``{"track_id", "mix": (2, n),
    "sr", "refs": {role: (1, n)}}``: the mix the sum of the (mono) stems, doubled to stereo for the separators;
    the references mono, so the estimates are scored on their channels' mean (the first ``seconds``; None:
    whole songs)."""
    out = []
    for song in songs:
        refs = {}
        for role in SOURCES:
            audio, sr = read_audio(song[role], mono=True)
            refs[role] = np.asarray(audio, dtype=np.float32)[None, : int(seconds * sr) if seconds else None]
        n = min(r.shape[-1] for r in refs.values())
        refs = {k: np.ascontiguousarray(v[:, :n]) for k, v in refs.items()}
        mix = np.repeat(np.sum(list(refs.values()), axis=0), 2, axis=0)
        out.append({"track_id": song["track_id"], "mix": mix, "sr": sr, "refs": refs})
    return out
