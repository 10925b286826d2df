"""Real recordings in the transcriber's training: the 9 MDB Drums songs with multitracks (issue 26).

Per song (:func:`real_songs`, from :mod:`adt.data.datasets.mdb`): the drum-only recording, the real
full mix (sum of its raws, one peak-safe gain) and its real band (the bass and other stems). A fold's
training material (:func:`real_training_items`) is, for each training song:

* its drum-only recording and its real mix (the song's own onsets as targets);
* ``renders_per_band`` rendered drum stems of the rendered corpus's training split under the song's real
  band (drums-to-band RMS ratio uniform in +-``DRUMS_TO_BAND_DB`` dB; the render's onsets), so that real
  bass, guitars, keys and voice sit under many more drum patterns and kits than 9 songs have.

:func:`train_on_real_songs` trains one transcriber on the rendered corpus plus that material, drawing
``real_share`` of its training segments from the real material (:meth:`ShardDataset.segment_weights`), with
the random gain and spectral shape of :mod:`adt.features.augment`, validated on rendered validation tracks
plus real validation songs (song-disjoint from its training songs). The cross-validation protocol and its
figures are :mod:`adt.evaluation.real_songs`; ``benchmarks/bench_real_songs.py`` runs it.
"""

from __future__ import annotations

import dataclasses
import os
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from adt.atomic import save_array
from adt.audio import read_audio, resample, write_audio
from adt.config import data_dir
from adt.data import tables
from adt.data.datasets import mdb
from adt.data.datasets.mdb_folds import folds_for, validation_songs
from adt.features.index import build_features
from adt.features.shards import ShardDataset, write_shards
from adt.features.spectrogram import compute_features
from adt.features.targets import frame_targets
from adt.frame.recipe import TrainConfig, train_model
from adt.frame.study import scored_items
from adt.separation.stems import DrumStemsResult
from adt.vocab import CLASSES_5

#: The starting point of the real-songs recipe: the renders-only transcriber shipped in ``adt/pretrained/`` (it
#: heard no real recording; ``adt.transcribe.transcriber.pretrained_path(BASE_MODEL)``).
BASE_MODEL = "frame_crnn_renders"
#: Share of training segments drawn from real recordings (drum-only, real mixes, renders under real bands).
REAL_SHARE = 0.4
#: The input level (RMS over the whole signal, dBFS) the transcriber hears at inference
#: (:func:`adt.audio.normalize_level`): the median of its rendered training audio (mixes -20.7, clean drum
#: stems -25.5 dBFS on the demo corpus); with the +-20 dB training gain, any input level gives the same onsets.
INPUT_LEVEL_DB = -23.0
#: Rendered drum stems mixed under each training song's real band, and their level range (+-dB, RMS).
RENDERS_PER_BAND = 8
DRUMS_TO_BAND_DB = 6.0
#: The shipped transcriber's recipe (``adt/pretrained/frame_crnn_standard.md``): epochs x steps of 16 4-s
#: segments, learning rate, random gain (+-dB), spectral shape (:data:`adt.features.augment.SHAPES`), seed.
RECIPE = {"epochs": 10, "steps": 60, "lr": 5e-4, "gain_db": 20.0, "spectral": "strong", "seed": 1234}


@dataclasses.dataclass
class Fold:
    """What one model of the cross-validation trains and validates on (:func:`fold_material`).

    Attributes:
        name: "0", "1", "2" (the test fold) or "final" (all 9 songs, no validation).
        train_songs, validation_songs, test_songs: song names (sorted).
        real_items: the training songs' real material (:func:`real_training_items`).
        val_items: (features .npy, reference onsets) of the rendered validation tracks and of the validation
            songs' drum-only recordings and real mixes (none for "final").
        render_dirs: the renders' training shard folders. features: the cache folder of the real material.
    """

    name: str
    train_songs: tuple[str, ...]
    validation_songs: tuple[str, ...]
    test_songs: tuple[str, ...]
    real_items: list
    val_items: list
    render_dirs: list
    features: Path

    @property
    def final(self) -> bool:
        return self.name == "final"


def fold_material(fold: str, settings) -> tuple[Fold, dict[str, RealSong]]:
    """The material of ``fold`` ("0", "1", "2" or "final") under ``settings``'s profile (:func:`prepare`), and
    the 9 songs by name. Fold k trains on the other folds' songs less two validation songs
    (:func:`adt.data.datasets.mdb.validation_songs`) and is scored on its own songs only.

    Raises:
        ValueError: an unknown fold.
    """
    if fold != "final" and fold not in ("0", "1", "2"):
        raise ValueError(f"fold {fold!r}: choose 0, 1, 2 or final")
    songs, shards, val, renders, root = prepare(settings)
    by_name = {s.name: s for s in songs}
    if fold == "final":
        train_names, test_names, val_names = tuple(sorted(by_name)), (), ()
    else:
        train_names, test_names = folds_for(int(fold))
        val_names = validation_songs(int(fold))
        train_names = tuple(n for n in train_names if n not in val_names)
    feats = root / "features"
    real_items = real_training_items([by_name[n] for n in train_names], renders, feats, seed=0)
    val_items = [] if fold == "final" else list(val)
    for n in val_names:
        f = song_features(by_name[n], feats)
        val_items += [(f["drum"][0], by_name[n].onsets), (f["mix"][0], by_name[n].onsets)]
    return Fold(fold, train_names, val_names, test_names, real_items, val_items, list(shards), feats), by_name


def recipe_config(epochs: int = RECIPE["epochs"], steps: int = RECIPE["steps"], lr: float = RECIPE["lr"],
                  gain_db: float = RECIPE["gain_db"], spectral: str = RECIPE["spectral"], seed: int = RECIPE["seed"],
                  threads: int = 1, tune_peak_picking: bool = True):
    """The :class:`adt.frame.recipe.TrainConfig` of the recipe (batch 16, ReduceLROnPlateau patience 3, no early
    stop: the best validation epoch is kept; ``spectral`` "none": no spectral shape)."""
    return TrainConfig(epochs=epochs, steps_per_epoch=steps, batch_size=16, lr=lr, seed=seed, lr_patience=3,
                       early_stop_patience=None, num_threads=threads, gain_db=gain_db,
                       spectral_augment="" if spectral == "none" else spectral, tune_peak_picking=tune_peak_picking)


@dataclasses.dataclass(frozen=True)
class RealSong:
    """One MDB song with its real multitracks (paths absolute; audio mono 44.1 kHz).

    Attributes:
        name: e.g. ``MusicDelta_Punk``.
        drum_path: the drum-only recording (as recorded).
        mix_path: the real full mix (:func:`adt.data.datasets.mdb.render_multitrack`).
        band_path: the real band: the mix's bass and other stems summed (same gain as the mix).
        onsets: 5-class reference onsets, class -> sorted times in seconds.
    """

    name: str
    drum_path: str
    mix_path: str
    band_path: str
    onsets: dict[str, np.ndarray]


def real_songs(raw_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[RealSong]:
    """The MDB songs with multitracks under ``raw_dir`` (the fetched ``mdb`` remotes), their mixes and bands
    written under ``out_dir/<name>/`` (atomically; kept), sorted by name.

    Raises:
        FileNotFoundError: no MDB layout, or no song with multitracks (names ``raw_dir``).
    """
    out = []
    for track in mdb.multitrack_tracks(raw_dir):
        folder = Path(out_dir) / track.name
        mix_path, band_path = folder / "mix.wav", folder / "band.wav"
        if not (mix_path.is_file() and band_path.is_file()):
            mt = mdb.render_multitrack(track.multitrack_dir)
            band = sum(s for role, s in mt.stems.items() if role != "drums")
            for path, audio in ((mix_path, mt.mix), (band_path, band)):  # 16-bit, atomic
                write_audio(path, np.asarray(audio, dtype=np.float32), mt.sample_rate)
        on = track.onsets
        refs = {c: np.sort(on.loc[on.drum == c, "time_s"].to_numpy(dtype=float)) for c in CLASSES_5}
        out.append(RealSong(track.name, str(Path(track.drum_path).resolve()), str(mix_path.resolve()),
                            str(band_path.resolve()), refs))
    return out


def _features_with_targets(audio: np.ndarray, sr: int, times: np.ndarray, drums: np.ndarray, x_path: Path,
                           feature_type: str) -> tuple[Path, Path]:
    y_path = x_path.with_name(x_path.name.replace(".x.npy", ".y.npy"))
    if not (x_path.is_file() and y_path.is_file()):
        x = compute_features(audio, sr, feature_type)
        save_array(y_path, frame_targets(times, drums, len(x)))
        save_array(x_path, x)
    return x_path, y_path


def song_features(song: RealSong, folder: str | os.PathLike, feature_type: str = "log_mel") -> dict[str, tuple[Path, Path]]:
    """Features and frame targets of a song's drum-only recording and real mix (cached in ``folder``).

    Returns:
        {"drum": (x .npy, y .npy), "mix": (x, y)}: x (T, F) float32 at 100 fps, y (T, 5).
    """
    times = np.concatenate([song.onsets[c] for c in CLASSES_5])
    drums = np.concatenate([[c] * len(song.onsets[c]) for c in CLASSES_5])
    out = {}
    for what, path in (("drum", song.drum_path), ("mix", song.mix_path)):
        x_path = Path(folder) / feature_type / f"{song.name}.{what}.x.npy"
        x_path.parent.mkdir(parents=True, exist_ok=True)
        if x_path.is_file():
            out[what] = (x_path, x_path.with_name(x_path.name.replace(".x.npy", ".y.npy")))
            continue
        audio, sr = read_audio(path, mono=True)
        out[what] = _features_with_targets(audio, sr, times, drums, x_path, feature_type)
    return out


def renders_under_band(song: RealSong, renders: list[tuple[str, np.ndarray, np.ndarray]], folder: str | os.PathLike,
                       feature_type: str, n: int = RENDERS_PER_BAND, seed: int = 0) -> list[tuple[Path, Path]]:
    """``n`` rendered drum stems under ``song``'s real band (cached in ``folder``).

    Args:
        renders: (drum stem path, onset times s, onset classes) of rendered training tracks.
        n, seed: how many, drawn without replacement with this seed (with the song's name).

    Returns:
        (x .npy, y .npy) per mixture: the band's length (or the render's, if shorter), drums scaled to a
        drums-to-band RMS ratio uniform in +-:data:`DRUMS_TO_BAND_DB` dB.
    """
    rng = np.random.default_rng([seed, zlib.crc32(song.name.encode())])
    picks = rng.choice(len(renders), size=min(n, len(renders)), replace=False)
    band = None
    out = []
    for k, j in enumerate(picks):
        path, times, drums = renders[j]
        x_path = Path(folder) / feature_type / f"{song.name}.band{seed}-{k}.x.npy"
        x_path.parent.mkdir(parents=True, exist_ok=True)
        ratio_db = rng.uniform(-DRUMS_TO_BAND_DB, DRUMS_TO_BAND_DB)
        if x_path.is_file():
            out.append((x_path, x_path.with_name(x_path.name.replace(".x.npy", ".y.npy"))))
            continue
        if band is None:
            band, band_sr = read_audio(song.band_path, mono=True)
        audio, sr = read_audio(path, mono=True)
        if sr != band_sr:
            audio = resample(audio, sr, band_sr)
        m = min(len(audio), len(band))
        d, b = audio[:m], band[:m]
        rms = lambda v: float(np.sqrt(np.mean(np.square(v, dtype=np.float64)))) + 1e-9  # noqa: E731
        mix = b + d * (rms(b) / rms(d)) * 10 ** (ratio_db / 20)
        mix = mix / max(1.0, float(np.abs(mix).max()) / 0.891)
        keep = times < m / band_sr
        out.append(_features_with_targets(mix.astype(np.float32), band_sr, times[keep], drums[keep], x_path,
                                          feature_type))
    return out


def real_training_items(songs: list[RealSong], renders: list[tuple[str, np.ndarray, np.ndarray]],
                        folder: str | os.PathLike, feature_type: str = "log_mel",
                        renders_per_band: int = RENDERS_PER_BAND, seed: int = 0) -> list[tuple[Path, Path]]:
    """Every real training item of ``songs`` (module docstring): (x .npy, y .npy) pairs, cached in ``folder``."""
    items = []
    for song in songs:
        f = song_features(song, folder, feature_type)
        items += [f["drum"], f["mix"]]
        items += renders_under_band(song, renders, folder, feature_type, renders_per_band, seed)
    return items


def rendered_training_stems(tracks_path: str | os.PathLike, onsets_path: str | os.PathLike,
                            datasets: tuple[str, ...] = ("demo", "groove")) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(drum stem path, onset times s, onset classes) of the rendered training tracks of ``datasets``."""
    tracks = pd.read_parquet(tracks_path)
    onsets = pd.read_parquet(onsets_path)
    rows = tracks[tracks.dataset.isin(datasets) & (tracks.split == "train") & tracks.drum_path.notna()]
    by_track = dict(tuple(onsets.groupby("track_id")))
    out = []
    for t in rows.sort_values("track_id").itertuples():
        o = by_track.get(t.track_id)
        if o is None:
            continue
        out.append((t.drum_path, o.time_s.to_numpy(dtype=float), o.drum.to_numpy()))
    return out


def train_on_real_songs(render_dirs: list[Path], real_items: list[tuple[Path, Path]], val_items: list,
                        shard_folder: str | os.PathLike, config, init=None, params: dict | None = None,
                        real_share: float = REAL_SHARE, stats=None, on_epoch=None):
    """One transcriber trained on rendered shards plus real material (module docstring).

    Args:
        render_dirs: shard folders of the rendered corpus's training split.
        real_items: :func:`real_training_items`; written as shards into ``shard_folder``.
        val_items: (features .npy, reference onsets) of the validation tracks (renders and real songs).
        config: :class:`adt.frame.recipe.TrainConfig` (its ``gain_db`` and ``spectral_augment`` apply).
        init: a model to start from (e.g. the shipped renders-only transcriber), else a fresh FrameCRNN.
        real_share: share of training segments from ``real_items``; the rest from ``render_dirs``
            in proportion to their segments.

    Returns:
        (model, history) as :func:`adt.frame.recipe.train_model`; the model's ``input_level_db`` is
        :data:`INPUT_LEVEL_DB`.
    """
    shard_folder = Path(shard_folder)
    if not (shard_folder / "index.json").is_file():
        write_shards(real_items, shard_folder, extra={"feature_type": ShardDataset(render_dirs).feature_type,
                                                       "transcriber_input": "mix+drums"})
    counts = [len(ShardDataset([d])) for d in render_dirs]
    shares = [(1 - real_share) * c / sum(counts) for c in counts] + [real_share]
    model, history = train_model(list(render_dirs) + [shard_folder], val_items, config, params=params, init=init,
                                 stats=stats, on_epoch=on_epoch, train_shares=shares)
    model.input_level_db = INPUT_LEVEL_DB
    return model, history


def prepare(settings, feature_type: str = "log_mel", split: str = "validation"):
    """Everything a fold trains and validates on (cached).

    Runs (or finds cached) the data stages up to ``tracks`` and ``onsets`` for the demo and Groove renders of
    ``settings``'s profile and the ``features`` stage's own function (:func:`adt.features.index.build_features`) on them as
    mixes and clean drum stems (``transcriber_input = "mix+drums"``; no separation is needed for that input),
    and reads the real songs from the ``mdb`` remotes (mirror or download) into ``<data>/real_songs``.

    Returns:
        (songs :func:`real_songs`, the renders' training shard folders, the renders' items of ``split``
        (features .npy, reference onsets; mixes and clean drum stems; default the validation split), the rendered training stems :func:`rendered_training_stems`,
        the cache folder).
    """
    renders = ("demo", "groove")
    tracks = tables.run_tracks(settings, {d: tables.run_dataset_tables(settings, tables.run_raw_dataset(settings, d),
                                                                       log=lambda _: None) for d in renders})
    onsets = tables.run_onsets(settings, tracks)
    mixtures = pd.read_parquet(tracks.path).dropna(subset=["mix_path"]).track_id
    no_separation = DrumStemsResult.stand_in(dict.fromkeys(mixtures), key="none")  # only "separated" reads them
    features = build_features(tracks, onsets, no_separation, feature_type, log=lambda _: None,
                              transcriber_input="mix+drums")
    refs = onsets.references()
    raw = tables.fetch_raw("mdb", mirror=settings.get_mirror())
    root = data_dir() / "real_songs"
    songs = real_songs(raw.path, root / "audio")
    val = scored_items(features, refs, renders, split, with_drums=True)
    stems = rendered_training_stems(tracks.path, onsets.path, renders)
    return songs, features.train_dirs(renders), val, stems, root
