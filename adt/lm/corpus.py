"""Tatum-level drum scores from symbolic sources, on the ground-truth beat grid.

The language models of the tatum paper (Ishizuka et al., Sec. III-C: the skip-type
bi-gram of Eq. 3 and the GRU LM of Eq. 2) are pretrained on a corpus of drum
*scores* (Sec. IV-A: 512 external scores). Here the corpus is built from MIDI: the
tatum grid comes from the MIDI tempo map (``pm.get_beats()``, which follows tempo
changes) split into ``subdivisions`` tatums per beat (:func:`adt.rhythm.tatums.tatums_from_beats`),
and the onsets of the drum notes (:func:`adt.midi.onsets_from_midi`) are snapped to
the nearest tatum (:func:`adt.lm.scores.drum_score`).

For Groove (:func:`groove_corpus`) every one of the 1,150 performances is used
(beats and fills, the whole official split, not only the rendered subset of
:mod:`adt.data.datasets.groove`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pretty_midi

from adt.atomic import atomic_path
from adt.cache import safe_name, stage_cache
from adt.config import Settings
from adt.data.datasets import SPLITS
from adt.data.datasets.groove import load_index
from adt.data.tables import OnsetsResult, RawDatasetResult, TracksResult
from adt.lm.scores import drum_score
from adt.midi import MidiReadError, load_midi, onsets_from_midi
from adt.results import Skipped, StageResult, Table
from adt.rhythm.tatum_table import TatumsResult
from adt.rhythm.tatums import tatums_from_beats
from adt.vocab import CLASS_INDEX, CLASSES_5, INDEX_3_IN_5, classes


class ScoreError(ValueError):
    """A MIDI file gives no usable tatum-level score; the message says why."""


def _time_signatures(pm: pretty_midi.PrettyMIDI) -> list[tuple[int, int]]:
    return [(int(ts.numerator), int(ts.denominator)) for ts in pm.time_signature_changes]


def score_from_midi(
    pm: pretty_midi.PrettyMIDI,
    k: int = 5,
    subdivisions: int = 4,
    require_4_4: bool = True,
) -> np.ndarray:
    """Binary tatum-level drum score of a MIDI file on its own beat grid (tatum paper, Sec. III-A).

    Beats are ``pm.get_beats()`` (the tempo map; one beat per quarter note in 4/4);
    tatums are ``subdivisions`` equal steps per beat (:func:`adt.rhythm.tatums.tatums_from_beats`,
    16 tatums per 4/4 bar with the default 4). When drum notes lie beyond the last
    beat (pretty_midi stops the grid at the last beat before the end of the file),
    the grid is extended by whole beats at the last beat interval until the last
    onset is covered, so no onset is lost at the end. Onsets are snapped to the
    nearest tatum; several onsets of one drum on one tatum give a single 1.

    Args:
        pm: a parsed MIDI file (e.g. :func:`adt.midi.load_midi`). Drum notes are read as
            in :func:`adt.midi.onsets_from_midi` (GM notes mapped by ``adt.vocab.GM_TO_CLASS``).
        k: 5 (rows BD, SD, TT, HH, CY) or 3 (rows BD, SD, HH).
        subdivisions: tatums per beat, >= 1.
        require_4_4: reject any time signature other than 4/4 (the skip-bigram LM
            assumes 16 tatums per bar). A file without time-signature events counts
            as 4/4 (the MIDI default).

    Returns:
        uint8 array of shape (K, M), M = tatums (``subdivisions * (beats - 1) + 1``,
        beats including any appended ones).

    Raises:
        ScoreError: a time signature other than 4/4 (with ``require_4_4``), no mapped
            drum notes (silence), or fewer than 2 beats in the tempo map.
        ValueError: k not 3 or 5, subdivisions < 1.
    """
    classes(k)
    if int(subdivisions) < 1:
        raise ValueError(f"subdivisions must be >= 1, got {subdivisions}")
    if require_4_4:
        other = sorted({ts for ts in _time_signatures(pm) if ts != (4, 4)})
        if other:
            names = ", ".join(f"{n}/{d}" for n, d in other)
            raise ScoreError(f"time signature {names} is not 4/4 (require_4_4=True: the LMs assume 16 tatums per bar)")
    onsets = onsets_from_midi(pm, "")
    if onsets.empty:
        raise ScoreError("no drum notes (silence, or only notes outside the GM drum map)")
    beats = np.asarray(pm.get_beats(), dtype=np.float64)
    if beats.size < 2:
        raise ScoreError(f"fewer than 2 beats in the tempo map ({beats.size}): too short for a tatum grid")
    times = onsets["time_s"].to_numpy(dtype=np.float64)
    period = beats[-1] - beats[-2]
    last = float(times.max())
    # append beats at the last interval until the last onset is within half a tatum of the grid
    n_extra = max(0, int(np.ceil((last - beats[-1] - 0.5 * period / subdivisions) / period)))
    if n_extra:
        beats = np.concatenate([beats, beats[-1] + period * np.arange(1, n_extra + 1)])
    tatums = tatums_from_beats(beats, subdivisions)
    drums = np.array([CLASS_INDEX[d] for d in onsets["drum"]], dtype=np.int64)
    return drum_score(times, drums, tatums, k=k)


def groove_corpus(
    root: str | os.PathLike,
    k: int = 5,
    subdivisions: int = 4,
    limit_per_split: int | None = None,
    require_4_4: bool = True,
) -> tuple[list[dict], list[dict]]:
    """Tatum-level scores of all Groove MIDI performances (beats and fills), per official split.

    Every row of ``groove/info.csv`` is tried (1,150 performances: 897 train, 124
    validation, 129 test); those :func:`score_from_midi` rejects are listed in
    ``skipped`` with the reason (with the defaults: the 12 non-4/4 performances).

    A ``split_by_song`` helper is not needed for Groove: the official split is used
    as is. Note what it does and does not keep whole: each performance (one MIDI
    file) is in exactly one split, but a recording session -- and even the beats
    and fills played to one song in it (consecutive ids, same style and tempo) --
    can be spread over train, validation and test (17 of the 25 sessions are). The
    ``session`` key is returned so a caller can regroup (e.g. session-disjoint folds).

    Args:
        root: the extracted ``groove-v1.0.0-midionly.zip`` (the folder holding
            ``groove/``) or ``groove/`` itself.
        k, subdivisions, require_4_4: as :func:`score_from_midi`.
        limit_per_split: at most this many *scores* per split (the first ones in the
            order below; skipped files do not count); None: all.

    Returns:
        ``(scores, skipped)``. ``scores``: list of dicts ``{"track_id": str
        ("groove/drummer1/session1/1_funk_80_beat_4-4"), "split": "train" |
        "validation" | "test", "session": str (info.csv's drummer/session,
        e.g. "drummer1/session1"), "beat_type": "beat" | "fill", "y": uint8
        (K, M) score}``, ordered by split (train, validation, test) then track_id.
        ``skipped``: list of ``{"track_id", "split", "reason"}`` in the same order.

    Raises:
        FileNotFoundError: no ``groove/info.csv`` under ``root``.
    """
    index = load_index(root)
    rank = {s: i for i, s in enumerate(SPLITS)}
    rows = sorted(index.to_dict("records"), key=lambda r: (rank.get(r["split"], len(rank)), r["track_id"]))
    scores: list[dict] = []
    skipped: list[dict] = []
    taken = {s: 0 for s in SPLITS}
    for row in rows:
        split = row["split"]
        if limit_per_split is not None and taken.get(split, 0) >= limit_per_split:
            continue
        try:
            y = score_from_midi(load_midi(row["midi_path"]), k=k, subdivisions=subdivisions,
                                require_4_4=require_4_4)
        except (ScoreError, MidiReadError) as exc:
            skipped.append({"track_id": row["track_id"], "split": split, "reason": str(exc)})
            continue
        taken[split] = taken.get(split, 0) + 1
        scores.append({"track_id": row["track_id"], "split": split, "session": row["session"],
                       "beat_type": row["beat_type"], "y": y})
    return scores, skipped


def scores_of_split(corpus: list[dict], split: str) -> list[np.ndarray]:
    """The (K, M) score arrays of one split of a :func:`groove_corpus` result, in order."""
    return [d["y"] for d in corpus if d["split"] == split]


#: Version of the score corpus stages (``groove_scores``, ``drum_scores`` assets).
VERSION = "3"  # 3: annotated tracks on the whole-track tatum grid


@dataclass(frozen=True)
class GrooveScoresResult(StageResult):
    """The Groove MIDI performances as tatum-level scores (asset ``groove_scores``): ``paths`` split -> npz of
    safe track id -> (5, M) uint8; ``index`` [{track_id, split, tatums}]; ``skipped`` [{track_id, split, reason}].
    Key "none" and nothing else without Groove."""

    paths: dict
    index: list
    skipped: list

    def metadata(self) -> dict:
        return {"scores": len(self.index), "skipped": len(self.skipped), "splits": ", ".join(sorted(self.paths))}


@dataclass(frozen=True)
class DrumScoresResult(StageResult):
    """The LM corpus (asset ``drum_scores``): ``paths`` {"k5"|"k3": {split: npz of safe track id -> (K, M)
    uint8}}, ``index`` Parquet (dataset, track_id, split, tatums), ``skipped`` [{track_id, reason}], ``counts``
    records per dataset and split (scores, tatums)."""

    paths: dict
    index: str
    skipped: list
    counts: list

    def metadata(self) -> dict:
        return {"counts": Table(pd.DataFrame(self.counts)), "skipped": Skipped(self.skipped)}


def run_groove_scores(settings: Settings, raw_dataset: dict[str, RawDatasetResult]) -> GrooveScoresResult:
    """Stage ``groove_scores``: :func:`build_groove_scores` of ``raw_dataset["groove"]`` (empty without it), with
    the settings' ``tatum_subdivisions`` and the profile's ``lm.corpus_limit``."""
    return build_groove_scores(raw_dataset.get("groove"), settings.tatum_subdivisions,
                               settings.get_profile().lm.corpus_limit)


def run_drum_scores(settings: Settings, tracks: TracksResult, onsets: OnsetsResult, tatums: TatumsResult,
                    groove_scores: GrooveScoresResult) -> DrumScoresResult:
    """Stage ``drum_scores``: :func:`build_drum_scores`."""
    return build_drum_scores(tracks, onsets, tatums, groove_scores)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> str:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return str(path)


def build_groove_scores(raw: RawDatasetResult | None, subdivisions: int = 4,
                        limit_per_split: int | None = None) -> GrooveScoresResult:
    """The Groove MIDI performances as tatum-level scores (K = 5), one ``.npz`` per split (asset
    ``groove_scores``; :func:`groove_corpus`).

    Args:
        raw: the ``raw_dataset[groove]`` result, or None when Groove is not in place (an empty corpus).
    """
    if raw is None:
        return GrooveScoresResult(key="none", paths={}, index=[], skipped=[])
    cache = stage_cache("groove_scores", VERSION, raw.key, subdivisions, limit_per_split)

    def build(folder: Path) -> dict:
        scores, skipped = groove_corpus(Path(raw.path), k=5, subdivisions=subdivisions,
                                        limit_per_split=limit_per_split)
        paths = {split: _write_npz(folder / f"{split}.npz",
                                   {safe_name(s["track_id"]): s["y"] for s in scores if s["split"] == split})
                 for split in SPLITS if any(s["split"] == split for s in scores)}
        return {"paths": paths, "skipped": skipped,
                "index": [{"track_id": s["track_id"], "split": s["split"], "tatums": int(s["y"].shape[1])}
                          for s in scores]}

    return GrooveScoresResult.from_manifest(cache.get_or_compute(build))


def build_drum_scores(tracks: TracksResult, onsets: OnsetsResult, tatums: TatumsResult,
                      groove_scores: GrooveScoresResult) -> DrumScoresResult:
    """The LM corpus: tatum-level scores (K = 5 and 3 drums x M tatums) per split (asset ``drum_scores``).

    Every annotated track on its ground-truth tatum grid (:func:`adt.lm.scores.drum_score`),
    except Groove renders when the symbolic Groove corpus (``groove_scores``) holds the
    whole performances, then the Groove corpus.

    Args:
        tracks, onsets, tatums, groove_scores: the stages' results.
    """
    cache = stage_cache("drum_scores", VERSION, tracks.key, onsets.key, tatums.key, groove_scores.key)

    def build(folder: Path) -> dict:
        info = pd.read_parquet(tracks.path).set_index("track_id")
        ons = pd.read_parquet(onsets.path)
        grids = pd.read_parquet(tatums.path)
        grids = grids[grids.source == "ground_truth"]
        entries, skipped = [], []  # (dataset, track_id, split, y5)
        for tid, grid in grids.groupby("track_id"):
            if info.loc[tid, "dataset"] == "groove" and groove_scores.paths:
                continue  # the symbolic Groove corpus holds the whole performance
            o = ons[ons.track_id == tid]
            if o.empty:
                skipped.append({"track_id": tid, "reason": "no onsets"})
                continue
            y = drum_score(o.time_s.to_numpy(), np.array([CLASS_INDEX[d] for d in o.drum], dtype=int),
                           grid.time_s.to_numpy(), k=len(CLASSES_5))
            entries.append((info.loc[tid, "dataset"], tid, info.loc[tid, "split"], y))
        for split, path in groove_scores.paths.items():
            with np.load(path) as z:
                ys = {k: z[k] for k in z.files}
            entries += [("groove", row["track_id"], split, ys[safe_name(row["track_id"])])
                        for row in groove_scores.index if row["split"] == split]
        skipped += groove_scores.skipped
        paths: dict = {"k5": {}, "k3": {}}
        for split in sorted({e[2] for e in entries}):
            chosen = [e for e in entries if e[2] == split]
            for k, rows in (("k5", slice(None)), ("k3", list(INDEX_3_IN_5))):
                paths[k][split] = _write_npz(folder / f"{split}.{k}.npz",
                                             {safe_name(tid): y[rows] for _, tid, _, y in chosen})
        index = pd.DataFrame([(src, tid, split, y.shape[1]) for src, tid, split, y in entries],
                             columns=["dataset", "track_id", "split", "tatums"])
        with atomic_path(folder / "index.parquet") as tmp:
            index.to_parquet(tmp, index=False)
        counts = index.groupby(["dataset", "split"]).agg(scores=("track_id", "size"), tatums=("tatums", "sum"))
        return {"paths": paths, "index": str(folder / "index.parquet"), "skipped": skipped,
                "counts": counts.reset_index().to_dict("records")}

    return DrumScoresResult.from_manifest(cache.get_or_compute(build))


def load_scores(path: str | os.PathLike) -> list[np.ndarray]:
    """The scores of one ``.npz`` written by :func:`build_drum_scores`, in order."""
    with np.load(path) as z:
        return [z[k] for k in z.files]


def scores_by_test_set(drum_scores: DrumScoresResult, k: str) -> dict[str, list[np.ndarray]]:
    """Test-split scores of the ``drum_scores`` stage, per dataset (``k``: "k5" or "k3")."""
    index = pd.read_parquet(drum_scores.index)
    path = drum_scores.paths[k].get("test")
    if path is None:
        return {}
    out = {}
    with np.load(path) as z:
        for ds, group in index[index.split == "test"].groupby("dataset"):
            out[ds] = [z[safe_name(t)] for t in group.track_id if safe_name(t) in z.files]
    return out


if __name__ == "__main__":  # quick timing: python -m adt.lm.corpus <extracted groove root>
    import sys

    t0 = time.perf_counter()
    sc, sk = groove_corpus(Path(sys.argv[1]))
    dt = time.perf_counter() - t0
    for s in SPLITS:
        ys = scores_of_split(sc, s)
        print(f"{s}: {len(ys)} scores, {sum(y.shape[1] for y in ys)} tatums")
    print(f"skipped {len(sk)}: {sorted({d['reason'] for d in sk})}")
    print(f"{dt:.1f} s")
