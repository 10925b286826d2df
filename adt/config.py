"""Run profiles and the data folder layout.

A profile sizes every stage: ``tiny`` for the end-to-end test, ``demo`` for
``make demo`` on 2 cores, ``full`` for everything we have. Choose it with the
``ADT_PROFILE`` environment variable (default ``demo``); the data folder is
``ADT_DATA_DIR`` (default ``./data``); the dataset mirror is ``ADT_DATA_MIRROR``
(a folder or a base URL).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Profile:
    """How big each stage runs. Durations in seconds."""

    name: str
    # demo corpus (generated)
    demo_tracks: int = 24
    demo_duration_s: float = 20.0
    # Groove MIDI renders: tracks taken per official split, cropped to max_duration_s
    groove_tracks: dict = dataclasses.field(default_factory=lambda: {"train": 48, "validation": 8, "test": 12})
    # soundfont renders of MIDI datasets (Groove): kits per performance (E-GMD style:
    # each extra kit is another track of the same split) and a generated accompaniment
    render_kits_per_track: int = 1
    render_accompaniment: bool = True
    # MDB Drums drum-only tracks (test only); None = all
    mdb_tracks: int | None = None
    # MDB Drums split scheme: "mirex2017" (all test) or "genre" (adt.data.datasets.mdb.GENRE_SPLIT)
    mdb_split: str = "mirex2017"
    # tracks taken per split of the other recorded/rendered datasets (E-GMD, Slakh,
    # ENST, ADTOF-YT, MIDI renders), in each module's deterministic order; None = all
    tracks_per_split: int | None = 6
    # every audio track is cropped to this length (None = whole track)
    max_duration_s: float | None = 30.0
    # separation model (Open-Unmix drums, trained when no pretrained weights load)
    separation_steps: int = 300
    # frame-level transcriber
    epochs: int = 5
    steps_per_epoch: int = 40
    batch_size: int = 16
    # drum-score language models: Groove MIDI scores per split (None = all), GRU LM sweep
    lm_corpus_limit: int | None = 300
    lm_trials: int = 4
    lm_folds: int = 3
    lm_epochs: int = 3  # per trial and fold of the sweep
    lm_final_epochs: int = 12  # the retrained best configuration
    # transcriber sweep (adt.frame.sweep): Optuna trials per study, and the architectures swept
    # ("frame_crnn" = the tatum paper's FrameCRNN; more than one: the architecture is a
    # categorical parameter and the transcriber asset adds the thesis's architecture study)
    sweep_trials: int = 3
    sweep_architectures: tuple = ("frame_crnn",)
    # tatum study: Optuna trials tuning each tatum model's loss weights (gamma, alpha) on
    # validation (tatum paper Sec. IV-D); 0 = the paper's tuned values
    tatum_trials: int = 0
    # training-set combinations of the zero-shot matrix
    train_combinations: tuple = (("demo",), ("groove",), ("demo", "groove"))
    seed: int = 1234

    def digest(self, *fields: str) -> str:
        """Short content hash of the profile (or of the named ``fields`` only), for cache keys."""
        values = dataclasses.asdict(self)
        if fields:
            values = {f: values[f] for f in fields}
        else:
            values.pop("name")
        blob = json.dumps(values, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def dataset_digest(self) -> str:
        """Hash of the fields that shape the datasets' tracks (not training settings)."""
        return self.digest("demo_tracks", "demo_duration_s", "groove_tracks", "render_kits_per_track",
                           "render_accompaniment", "mdb_tracks", "mdb_split", "tracks_per_split",
                           "max_duration_s", "seed")


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        demo_tracks=6,
        demo_duration_s=8.0,
        groove_tracks={"train": 3, "validation": 1, "test": 2},
        mdb_tracks=2,
        tracks_per_split=1,
        max_duration_s=12.0,
        separation_steps=10,
        epochs=2,
        steps_per_epoch=4,
        batch_size=4,
        sweep_trials=2,
        lm_corpus_limit=8,
        lm_trials=2,
        lm_folds=2,
        lm_epochs=1,
        lm_final_epochs=1,
    ),
    "demo": Profile(name="demo"),
    "full": Profile(
        name="full",
        demo_tracks=96,
        demo_duration_s=30.0,
        groove_tracks={"train": 100000, "validation": 100000, "test": 100000},
        # every performance on every kit (E-GMD style): kit variety is what carries rendered
        # training data to real drums (benchmarks/bench_mdb_zero_shot.py --render-kits)
        render_kits_per_track=4,
        mdb_tracks=None,
        tracks_per_split=None,
        max_duration_s=None,
        separation_steps=3000,
        epochs=40,
        steps_per_epoch=200,
        batch_size=16,
        sweep_trials=30,
        sweep_architectures=("frame_crnn", "rnn", "cnn", "crnn", "conv_transformer", "vision_transformer"),
        tatum_trials=12,
        lm_corpus_limit=None,
        lm_trials=30,
        lm_epochs=20,
        lm_final_epochs=40,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named ``name`` or by ``ADT_PROFILE`` (default ``demo``).

    Raises:
        ValueError: an unknown profile name.
    """
    name = name or os.environ.get("ADT_PROFILE", "demo")
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def data_dir() -> Path:
    """Root of all outputs (``ADT_DATA_DIR``, default ``./data``), created on demand."""
    root = Path(os.environ.get("ADT_DATA_DIR", "data")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def mirror() -> str | None:
    """The dataset mirror (``ADT_DATA_MIRROR``): a folder or a base URL, or None."""
    value = os.environ.get("ADT_DATA_MIRROR", "").strip()
    return value or None
