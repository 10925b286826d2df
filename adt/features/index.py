"""The features stage and its typed record, :class:`FeatureIndex`.

:func:`build_features` (asset ``features``) computes, per track, the input features of
its drum signal (the separated stem for mixtures, else the drum recording) and the
5-class frame targets at 100 fps (cached per track), cuts each dataset's splits into
memory-mapped 4-s segment shards, and sums training-set statistics per dataset. The
:class:`FeatureIndex` it returns is what the model stages read: per-track files, shard
folders, and the statistics of any training-set combination (:meth:`FeatureIndex.training_stats`,
the one source of standardization statistics and infrequency weights in the pipeline).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from adt.atomic import save_array
from adt.cache import cache_key, intact, seal, stage_cache, track_file
from adt.config import TRANSCRIBER_INPUTS, Settings, data_dir
from adt.data.tables import OnsetsResult, TracksResult
from adt.features.shards import write_shards
from adt.features.spectrogram import SEGMENT_FRAMES, check_feature_type, feature_params, features_file
from adt.features.stats import TrainingStats
from adt.features.targets import frame_targets
from adt.results import Mapping, MarkdownTables, PathEntry, StageResult
from adt.separation.stems import DrumStemsResult
from adt.tracking import progress
from adt.vocab import CLASSES_5

#: Version of the features stage (``features`` asset), its per-track files, shards and statistics.
VERSION = "2"


@dataclasses.dataclass(frozen=True)
class TrackFeatures:
    """One track's feature files.

    Attributes:
        track_id, dataset, split: as in the ``tracks`` table.
        x: ``.npy`` features, (T frames at 100 fps, F bins) float32.
        y: ``.npy`` frame targets, (T, 5) float32 (BD SD TT HH CY; 0.5 on widened neighbours).
        input: the audio the features come from: "separated" (a mixture's drum stem), "mix" (the
            mixture) or "drum" (a drum recording or rendered drum stem).
        x_drums: with ``transcriber_input="mix+drums"``, the features of a mixture's clean drum stem
            (a second training and validation item with the same targets), else None.
    """

    track_id: str
    dataset: str
    split: str
    x: Path
    y: Path
    input: str
    x_drums: Path | None = None

    def to_json(self) -> dict:
        """This record as JSON data (paths as strings); :meth:`from_json` reads it back."""
        return {"track_id": self.track_id, "dataset": self.dataset, "split": self.split, "x": str(self.x),
                "y": str(self.y), "input": self.input, "x_drums": None if self.x_drums is None else str(self.x_drums)}

    @classmethod
    def from_json(cls, data: dict) -> "TrackFeatures":
        """The record :meth:`to_json` wrote (paths back as :class:`~pathlib.Path`)."""
        return cls(str(data["track_id"]), str(data["dataset"]), str(data["split"]), Path(data["x"]),
                   Path(data["y"]), str(data["input"]), None if data.get("x_drums") is None else Path(data["x_drums"]))


@dataclasses.dataclass(frozen=True)
class FeatureIndex(StageResult):
    """What the features stage produced (asset ``features``).

    Attributes:
        key: content key of the whole index.
        feature_type, feature_params, target_widening: how the features were made.
        tracks: track_id -> :class:`TrackFeatures`.
        shards: dataset -> split -> shard folder (:func:`adt.features.shards.write_shards`).
        dataset_stats: dataset -> {"key", "path"} of its training split's ``stats.json``.
        combinations: training-set combination ("a+b") -> statistics manifest (see
            :meth:`training_stats`) for the profile's combinations (``FeatureSettings.train_combinations``, with
            all training sets together).
    """

    feature_type: str
    feature_params: dict
    target_widening: bool
    tracks: dict[str, TrackFeatures]
    shards: dict[str, dict[str, str]]
    dataset_stats: dict[str, dict]
    combinations: dict[str, dict] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        """This index as JSON data (the asset's stored value, :mod:`pipelines.io_manager`); :meth:`from_json`
        reads it back equal. Its dicts hold JSON data already (str keys; numbers, strings, lists)."""
        return {"key": self.key, "feature_type": self.feature_type, "feature_params": self.feature_params,
                "target_widening": self.target_widening,
                "tracks": {tid: t.to_json() for tid, t in self.tracks.items()}, "shards": self.shards,
                "dataset_stats": self.dataset_stats, "combinations": self.combinations}

    @classmethod
    def from_json(cls, data: dict) -> "FeatureIndex":
        """The index :meth:`to_json` wrote (:class:`TrackFeatures` records, their paths as :class:`~pathlib.Path`)."""
        return cls(str(data["key"]), str(data["feature_type"]), dict(data["feature_params"]),
                   bool(data["target_widening"]),
                   {tid: TrackFeatures.from_json(t) for tid, t in data["tracks"].items()},
                   dict(data["shards"]), dict(data["dataset_stats"]), dict(data.get("combinations", {})))

    from_manifest = from_json  # the base class's would leave the tracks as dicts

    def items(self, datasets: Iterable[str], split: str) -> list[TrackFeatures]:
        """The tracks of ``datasets`` in ``split``, ordered by track id."""
        datasets = set(datasets)
        return [t for _, t in sorted(self.tracks.items()) if t.dataset in datasets and t.split == split]

    def training_sets(self) -> tuple[str, ...]:
        """Datasets with a training split, sorted."""
        return tuple(sorted(d for d, splits in self.shards.items() if "train" in splits))

    def test_sets(self) -> list[str]:
        """Datasets with a test split, sorted."""
        return sorted({t.dataset for t in self.tracks.values() if t.split == "test"})

    def train_dirs(self, datasets: Iterable[str]) -> list[Path]:
        """Training shard folders of ``datasets`` (those with a training split)."""
        return [Path(self.shards[d]["train"]) for d in datasets if "train" in self.shards.get(d, {})]

    def frames(self) -> int:
        return int(sum(np.load(t.x, mmap_mode="r").shape[0] for t in self.tracks.values()))

    def training_stats(self, combo: Iterable[str]) -> dict:
        """Statistics of a training-set combination: sums of its datasets' (cached once).

        Returns:
            ``{"dir", "key", "train_sets", "frames", "onsets", "infrequency_weights"}``; ``dir``
            holds ``mean.npy``, ``std.npy``, ``infrequency_weights.npy`` and ``stats.json``
            (load with :meth:`adt.features.stats.TrainingStats.load`).

        Raises:
            ValueError: a dataset of ``combo`` has no training split.
        """
        combo = tuple(combo)
        missing = [d for d in combo if d not in self.dataset_stats]
        if missing:
            raise ValueError(f"no training statistics for {missing}: they have no training split")
        cache = stage_cache("training_stats", VERSION, [self.dataset_stats[d]["key"] for d in combo])

        def total(folder: Path) -> dict:
            parts = [TrainingStats.from_json(json.loads(Path(self.dataset_stats[d]["path"]).read_text()))
                     for d in combo]
            stats = sum(parts[1:], parts[0])
            stats.save(folder, train_sets=list(combo))
            return {"dir": str(folder), "train_sets": list(combo), "frames": stats.frames,
                    "onsets": dict(zip(CLASSES_5, stats.onsets.tolist())),
                    "infrequency_weights": dict(zip(CLASSES_5, stats.infrequency_weights().round(4).tolist()))}

        return cache.get_or_compute(total)

    def metadata(self) -> dict:
        # shard and statistics folders by name (long paths would not fit a table); their parent folder as one path
        shards = [Path(p) for splits in self.shards.values() for p in splits.values()]
        return {"tracks": len(self.tracks), "frames": self.frames(),
                "shards": Mapping({d: {s: Path(p).name for s, p in splits.items()} for d, splits in self.shards.items()},
                                  key="dataset"),
                "shards_folder": PathEntry(str(shards[0].parent)) if shards else "none",
                "feature_type": self.feature_type, "n_bins": self.feature_params["n_bins"],
                "target_widening": self.target_widening, "training_stats": MarkdownTables(self.stats_table()),
                "training_stats_folders": Mapping({n: Path(m["dir"]).name for n, m in self.combinations.items()},
                                                  key="training sets", value="folder")}

    def stats_table(self) -> str:
        """Markdown: frames and onsets (infrequency weight) per class of each combination."""
        head = "| training sets | frames | " + " | ".join(f"{c} onsets (w)" for c in CLASSES_5) + " |"
        rows = [head, "|" + "---|" * (2 + len(CLASSES_5))]
        for name, m in self.combinations.items():
            cells = [f"{m['onsets'][c]} ({m['infrequency_weights'][c]:.1f})" for c in CLASSES_5]
            rows.append(f"| {name} | {m['frames']} | " + " | ".join(cells) + " |")
        return "\n".join(rows)


def feature_key(feature_type: str) -> str:
    """Folder name of a feature type and its parameters, e.g. ``log_mel-1a2b3c4d``."""
    return f"{feature_type}-{cache_key(feature_type, feature_params(feature_type))[:8]}"


def training_combinations(combinations: Iterable[Iterable[str]], available: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The given training-set combinations whose datasets all have a training split, plus all of them."""
    combos = [tuple(c) for c in combinations if set(c) <= set(available)]
    if available and tuple(available) not in combos:
        combos.append(tuple(available))
    return combos


def _shards_and_stats(groups: dict[tuple[str, str], list[tuple[Path, Path]]], feature_type: str,
                      index_extra: dict) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    """The segment shards of each (dataset, split)'s (features, targets) files, and each dataset's training
    statistics (both cached by the files): (dataset -> split -> shard folder, dataset -> {"key", "path"})."""
    shards: dict[str, dict[str, str]] = {}
    dataset_stats: dict[str, dict] = {}
    for (dataset, split), items in sorted(groups.items()):
        files = [(str(x), str(y)) for x, y in items]
        shard_cache = stage_cache("shards", VERSION, files, SEGMENT_FRAMES)
        shard_cache.get_or_compute(lambda folder: {"segments": write_shards(items, folder, extra=index_extra)["segments"]})
        shards.setdefault(dataset, {})[split] = str(shard_cache.dir)
        if split == "train":
            stats_cache = stage_cache("training_stats_dataset", VERSION, files)

            def dataset_sums(folder: Path, items=items, dataset=dataset) -> dict:
                TrainingStats.of_tracks(items, feature_type=feature_type).save(folder, train_sets=[dataset])
                return {"dataset": dataset}

            stats_cache.get_or_compute(dataset_sums)
            dataset_stats[dataset] = {"key": stats_cache.key, "path": str(stats_cache.dir / "stats.json")}
    return shards, dataset_stats


def run(settings: Settings, tracks: TracksResult, onsets: OnsetsResult, drum_stems: DrumStemsResult,
        log: Callable[[str], None] = print) -> FeatureIndex:
    """Stage ``features``: :func:`build_features` with the settings' feature type, target widening, and the
    profile's features section (training combinations, transcriber input).

    Raises:
        ValueError: an unknown ``feature_type`` (named as the setting).
    """
    features = settings.get_profile().features
    try:
        return build_features(tracks, onsets, drum_stems, settings.feature_type, settings.target_widening,
                              features.train_combinations, log, features.transcriber_input)
    except ValueError as exc:
        raise ValueError(f"AdtSettings.feature_type: {exc}") from None


def build_features(tracks: TracksResult, onsets: OnsetsResult, drum_stems: DrumStemsResult,
                   feature_type: str = "log_mel",
                   target_widening: bool = False, combinations: Iterable[Iterable[str]] = (),
                   log: Callable[[str], None] = print, transcriber_input: str = "separated") -> FeatureIndex:
    """Features, targets, shards and training statistics of every track (module docstring).

    Args:
        tracks, onsets: the ``tracks`` and ``onsets`` stages' results (per-track files are cached under
            their dataset's table key).
        drum_stems: the ``drum_stems`` stage's result (the separated stems, and the separator's key).
        feature_type: "log_mel" or "log_filtered" (:mod:`adt.features.spectrogram`).
        target_widening: thesis target widening (0.5 on the frames next to an onset).
        combinations: training-set combinations whose statistics to prepare (``FeatureSettings.train_combinations``).
        transcriber_input: what the transcriber hears of a mixture (``adt.config.TRANSCRIBER_INPUTS``):
            "separated" its drum stem, "mix" the mixture, "mix+drums" the mixture and, as a second
            training item (:attr:`TrackFeatures.x_drums`), its clean drum stem. Tracks without a
            mixture (drum recordings) are the same in all three.

    Raises:
        ValueError: an unknown feature type or transcriber input.
    """
    check_feature_type(feature_type)
    if transcriber_input not in TRANSCRIBER_INPUTS:
        raise ValueError(f"unknown transcriber input {transcriber_input!r}; choose one of {list(TRANSCRIBER_INPUTS)}")
    dataset_keys, stems, stems_model_key = tracks.dataset_keys, drum_stems.stems, drum_stems.model["key"]
    tracks, onsets = pd.read_parquet(tracks.path), pd.read_parquet(onsets.path)
    fkey, y_suffix = feature_key(feature_type), (".yw.npy" if target_widening else ".y.npy")
    per_track: dict[str, TrackFeatures] = {}
    groups: dict[tuple[str, str], list[tuple[Path, Path]]] = {}
    def files(t, variant: str) -> tuple[Path, Path]:
        folder = data_dir() / "features" / VERSION / fkey / dataset_keys[t.dataset] / variant
        if variant == "separated":
            folder = folder / stems_model_key
        x_path, y_path = track_file(folder, t.track_id, ".x.npy"), track_file(folder, t.track_id, y_suffix)
        if not intact(x_path):  # missing, or not what was written (removed, with a warning naming it)
            audio = {"separated": stems.get(t.track_id), "mix": t.mix_path, "drum": t.drum_path}[variant]
            seal(save_array(x_path, features_file(audio, feature_type)))
        if not intact(y_path):
            o = onsets[onsets.track_id == t.track_id]
            n_frames = np.load(x_path, mmap_mode="r").shape[0]
            seal(save_array(y_path, frame_targets(o.time_s.to_numpy(), o.drum.to_numpy(), n_frames,
                                                  widening=target_widening)))
        return x_path, y_path

    for i, t in enumerate(tracks.itertuples(), 1):
        mixture = t.track_id in stems
        variant = ("separated" if transcriber_input == "separated" else "mix") if mixture else "drum"
        x_path, y_path = files(t, variant)
        items = [(x_path, y_path)]
        x_drums = None
        if mixture and transcriber_input == "mix+drums" and isinstance(t.drum_path, str):
            x_drums, y_drums = files(t, "drum")
            items.append((x_drums, y_drums))
        per_track[t.track_id] = TrackFeatures(t.track_id, t.dataset, t.split, x_path, y_path, variant, x_drums)
        groups.setdefault((t.dataset, t.split), []).extend(items)
        progress(log, "features", i, len(tracks))
    index_extra = {"feature_type": feature_type, "feature_key": fkey, "target_widening": target_widening,
                   "transcriber_input": transcriber_input}
    shards, dataset_stats = _shards_and_stats(groups, feature_type, index_extra)
    index = FeatureIndex("", feature_type, feature_params(feature_type), target_widening, per_track, shards,
                         dataset_stats)
    combos = {"+".join(c): index.training_stats(c)
              for c in training_combinations(combinations, tuple(sorted(dataset_stats)))}
    key = cache_key("features", VERSION, fkey, target_widening,
                    sorted((tid, str(t.x), str(t.y)) for tid, t in per_track.items()), shards,
                    {n: m["key"] for n, m in combos.items()})
    return dataclasses.replace(index, key=key, combinations=combos)
