"""The stage registry: every stage of the ADT flow, written once, and the stages chained in plain Python.

A stage is one public function ``run(settings, <input>=..., log=print)`` in its package (named
``run_<stage>`` where a module holds several) that returns a frozen :class:`adt.results.StageResult`;
its parameters other than ``settings``, ``log``, ``partition`` and ``on_progress`` are its inputs, named
after the stages they read. :data:`STAGES` lists them in graph order with what Dagster shows of them
(group, code version, description); ``pipelines/`` generates one asset per entry (an asset factory),
:func:`run_stages` runs them without Dagster (notebooks, benchmarks; every result found cached is the
one of ``make demo`` with the same ``ADT_DATA_DIR``), and ``docs/architecture.md``'s diagram is
:func:`mermaid`'s (a test compares them).

    >>> from adt.config import Settings
    >>> out = run_stages(Settings.from_env(), until="features")   # doctest: +SKIP
    >>> out["features"].items(["mdb"], "test")                      # doctest: +SKIP

Adding a stage: write its package with a ``run`` and its result class, then one :class:`Stage` entry here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from adt.config import Settings
from adt.data import tables
from adt.data.kits import catalogue
from adt.evaluation import zero_shot
from adt.features import index as features
from adt.frame import study as frame_study
from adt.lm import corpus, fit
from adt.rhythm import beat_table, table_one, tatum_table
from adt.separation import stems
from adt.tatum import study as tatum_study
from adt.trimming import study as trimming_study

#: Parameters of a stage's ``run`` that are not inputs.
NOT_INPUTS = ("settings", "log", "partition", "on_progress")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of the flow (one Dagster asset).

    Attributes:
        name: the stage's (and asset's) name.
        run: its entry (module docstring); its input parameters name the stages it reads.
        result: the class of what ``run`` returns (the stored value's type).
        version: its code version (a new one marks its stored results stale).
        group: the Dagster asset group.
        description: what the asset is, for the Dagster UI.
        partitioned: one result per dataset (``run`` takes ``partition``, the dataset's name).
        training: a training stage (tag ``adt/stage=training``: the run queue admits one at a time).
        deps: stages that must run first without being read (the kit catalogue before the renders).
        partitions: input -> the partitions of that partitioned stage it reads (default: all there are).
    """

    name: str
    run: Callable[..., Any]
    result: type
    version: str
    group: str
    description: str
    partitioned: bool = False
    training: bool = False
    deps: tuple[str, ...] = ()
    partitions: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def parameters(self) -> tuple[str, ...]:
        """``run``'s parameter names (read once)."""
        return tuple(inspect.signature(self.run).parameters)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The stages ``run`` reads, in its parameters' order."""
        return tuple(p for p in self.parameters if p not in NOT_INPUTS)

    def takes(self, parameter: str) -> bool:
        return parameter in self.parameters


STAGES: tuple[Stage, ...] = (
    Stage("kit_catalogue", catalogue.run, catalogue.KitCatalogueResult, catalogue.VERSION, "ingest",
          "The drum kits the profile renders with (DataSettings.corpus_kits): per kit piece its class, velocity layers, "
          "sample rate, source Debian package and license (reviewed maps, adt.data.kits); the packages fetched "
          "(SHA-256 pinned) or taken from ADT_DATA_MIRROR and unpacked side by side in worker processes (ADT_JOBS)."),
    Stage("raw_dataset", tables.run_raw_dataset, tables.RawDatasetResult, tables.RAW_VERSION, "ingest",
          "A dataset in its official layout: downloaded (resumable, checksum verified, free disk checked) or copied "
          "from ADT_DATA_MIRROR and extracted safely; request-only datasets (ENST, ADTOF) are placed by hand; the "
          "demo corpus is generated.", partitioned=True),
    Stage("dataset_tables", tables.run_dataset_tables, tables.DatasetTablesResult, tables.VERSION, "ingest",
          "One dataset unified: Parquet tables tracks, onsets (5-class), beats (schema in adt.data.datasets), its "
          "audio cropped/mixed/rendered as the profile says (renders: one track per job in worker processes, "
          "ADT_JOBS), and a dataset card.", partitioned=True, deps=("kit_catalogue",)),
    Stage("tracks", tables.run_tracks, tables.TracksResult, tables.VERSION, "ingest",
          "Parquet table of all tracks with audio (schema in adt.data.datasets): the tables of every materialized "
          "dataset concatenated."),
    Stage("onsets", tables.run_onsets, tables.OnsetsResult, tables.VERSION, "ingest",
          "Parquet table of all annotated onsets, 5-class."),
    Stage("drum_stems", stems.run, stems.DrumStemsResult, stems.VERSION, "separation",
          "Drum stems of every mixture, separated with the separator of the separation study with the best "
          "validation drums SDR (on real validation songs among the models that never heard them, never worse on "
          "the validation renders than the shipped separator): shared-encoder U-Nets trained independent / "
          "simultaneous / interleaved / interleaved-acc (interleaved multitask paper) on renders and real stems "
          "(SeparationSettings.models; with start_from_shipped the shipped architecture fine-tuned from the "
          "shipped weights), Open-Unmix trained on the same data, pretrained umxl when it loads, the shipped "
          "separator. Metadata: the paper's Tables 2 and 3, the real-song table, which models started from the "
          "shipped weights and which heard the real songs (their real-song figures are development figures).",
          training=True),
    Stage("beats", beat_table.run, beat_table.BeatsResult, beat_table.VERSION, "rhythm",
          "Beats per track with their bar position: madmom RNN beat activations + DBN tracking at 100 fps, bar "
          "positions from madmom's downbeat tracker, on the mixture or its separated drum stem "
          "(AdtSettings.beat_input) or the drum-only recording, cached per audio file (keyed by its samples) and "
          "tracked in worker processes (ADT_JOBS); plus ground-truth beats. The tracker is scored against ground "
          "truth per dataset with mir_eval."),
    Stage("tatums", tatum_table.run, tatum_table.TatumsResult, tatum_table.VERSION, "rhythm",
          "Tatum grid per track and beat source (adt.rhythm.tatums, the grid adt transcribe uses): "
          "AdtSettings.tatum_subdivisions (4 default; 3 or 6 for triplet feels) per beat, the beats extended to "
          "cover the whole track, pickup tatums before the first beat."),
    Stage("quantization_stats", table_one.run, table_one.QuantizationStatsResult, table_one.VERSION, "rhythm",
          "Tatum paper Table I: share of onsets lost to conflict and far, per dataset and beat source, on the "
          "paper's 3 classes (BD, SD, HH; 5-class and per-drum tables beside it)."),
    Stage("groove_scores", corpus.run_groove_scores, corpus.GrooveScoresResult, corpus.VERSION, "language_model",
          "Every Groove MIDI performance (beats and fills, official split) as a tatum-level drum score on its MIDI "
          "beat grid (K = 5); empty when Groove is not in place.", partitions={"raw_dataset": ("groove",)}),
    Stage("drum_scores", corpus.run_drum_scores, corpus.DrumScoresResult, corpus.VERSION, "language_model",
          "Tatum-level binary drum scores Y (K drums x M tatums, K = 5 and 3) on the ground-truth tatum grid, per "
          "split: every annotated track (demo, MDB) plus every Groove MIDI file as a symbolic score (official "
          "split: each performance in one split; sessions are spread over splits)."),
    Stage("lm_bigram", fit.run_bigram, fit.LmBigramResult, fit.VERSION, "language_model",
          "Skip-type bigram drum-score LM (tatum paper Eq. 3) fitted on the training scores; perplexity per drum "
          "and tatum on each test set (chance = 2; paper on RWC: 1.51)."),
    Stage("lm_gru", fit.run_gru, fit.LmGruResult, fit.VERSION, "language_model",
          "GRU drum-score LM (tatum paper Eq. 2: p(Y[:,m] | Y[:,1:m-1]) over all 2^K drum combinations), layers "
          "and hidden size tuned with Optuna by k-fold cross validation on the training scores (each trial a "
          "nested MLflow run), retrained on train with validation early selection; or, with the profile's "
          "start_from_shipped (demo), the shipped 3 x 64 LM (adt/pretrained/gru_lm_groove.md) fine-tuned. The "
          "shipped LM is kept whenever it is at least as good on the validation scores. Perplexity per test set; "
          "registered as adt-gru-lm. A 3-class LM (BD, SD, HH) with the same hyperparameters for the tatum study.",
          training=True),
    Stage("features", features.run, features.FeatureIndex, features.VERSION, "features",
          "Input features of each track's drum signal (the separated stem for mixtures, else the drum recording): "
          "log mel (tatum paper: 44.1 kHz, Hann 2048, hop 441, 80 bands 20 Hz-20 kHz) or log filtered (thesis "
          "5.1.1: 12 bands/octave around 440 Hz, 84 bins) per AdtSettings.feature_type; 5-class frame targets at "
          "100 fps (optional target widening); training shards of 4-s segments per dataset and split; per "
          "training combination: mean/std per bin and infrequency weights."),
    Stage("transcriber", frame_study.run_transcriber, frame_study.TranscriberResult, frame_study.VERSION, "models",
          "Transcriber sweep (thesis ch. 5: AdamW, clipping at norm 2, LR / 5 on plateau, early stopping, selection "
          "on validation micro F; Optuna TPE + median pruning, each trial a nested MLflow run) on every training "
          "split; the best model registered as adt-frame-crnn with alias champion unless the champion scored "
          "higher on the same validation data.", training=True),
    Stage("architecture_study", frame_study.run_architecture_study, frame_study.ArchitectureStudyResult,
          frame_study.VERSION, "models",
          "Thesis Table 6.1: a sweep over the profile's architectures per training dataset, each architecture's "
          "best model scored on that dataset's test split (micro F, 5 classes, 50 ms). Profiles with one "
          "architecture (demo) have no study.", training=True),
    Stage("trimmed_transcriber", trimming_study.run, trimming_study.TrimmedTranscriberResult,
          f"{frame_study.VERSION}-trimming{trimming_study.VERSION}", "models",
          "Lottery-ticket trimming of the champion (lottery paper): whole units removed 20% of the weights per "
          "round, rewound to half of training and retrained (plus the fine-tuning and masking baselines, each "
          "criterion and selection of the profile, several seeds); Table 1 and Figure 2, one MLflow run per line "
          "and seed in adt/trimming; the optimal smaller network (the fewest parameters within 1.1x the "
          "reference's validation error) registered as adt-frame-crnn@lite.", training=True),
    Stage("zero_shot_matrix", zero_shot.run, zero_shot.ZeroShotMatrixResult, frame_study.VERSION, "evaluation",
          "Zero-shot matrix (thesis ch. 7): the sweep's best architecture and hyperparameters trained on each "
          "training-set combination (rows), and the model shipped with adt (last row), tested on every dataset's "
          "test split (columns); cells = micro F-measure (50 ms, mir_eval), 5-class and 3-class.", training=True),
    Stage("tatum_study", tatum_study.run, tatum_study.TatumStudyResult, tatum_study.VERSION, "models",
          "Tatum paper Table II and Fig. 3: frame-to-tatum CRNNs (4 conv 3x3, 3 x 98 GRU) trained unregularized and "
          "with skip-bigram (gamma 0.46, alpha 0.068) or GRU LM (gamma 0.61, alpha 0.055; tuned with Optuna when "
          "TatumSettings.trials > 0) regularization on ground-truth tatums, against the frame-level "
          "transcriber + quantization; tatum-level P/R/F (delta 0.2) per test split with madmom and ground-truth "
          "tatums.", training=True),
)
#: Stage name -> its entry.
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def upstream(stage: Stage) -> tuple[str, ...]:
    """The stages ``stage`` needs first: its inputs and its deps."""
    return stage.inputs + stage.deps


def needed(until: str) -> list[str]:
    """``until`` and every stage upstream of it, in :data:`STAGES` order.

    Raises:
        ValueError: an unknown stage.
    """
    if until not in BY_NAME:
        raise ValueError(f"unknown stage {until!r}; choose one of {list(BY_NAME)}")
    todo, stack = set(), [until]
    while stack:
        name = stack.pop()
        if name not in todo:
            todo.add(name)
            stack += upstream(BY_NAME[name])
    return [s.name for s in STAGES if s.name in todo]


def call(stage: Stage, settings: Settings, inputs: dict[str, Any], log: Callable[[str], None] = print,
         **extra: Any) -> Any:
    """``stage.run(settings, **inputs)``, with ``log`` and ``extra`` (``partition``, ``on_progress``) where
    its ``run`` takes them."""
    given = {k: v for k, v in {"log": log, **extra}.items() if stage.takes(k)}
    return stage.run(settings, **inputs, **given)


def run_stages(settings: Settings, until: str = "tatum_study", datasets: Sequence[str] | None = None,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or find cached) ``until`` and every stage upstream of it (:func:`needed`), as ``make demo`` does.

    Args:
        settings: the run configuration (profile, mirror, feature type, ...).
        until: the last stage (:data:`STAGES`).
        datasets: the partitions of the partitioned stages: datasets to ingest (default: every one that can be
            had, :func:`adt.data.tables.available_datasets`).

    Returns:
        stage name -> its result; a partitioned stage's: dataset -> its result.

    Raises:
        ValueError: an unknown stage; the errors of the stages.
    """
    todo = needed(until)
    settings.validate()
    partitions = list(datasets or tables.available_datasets(settings.get_mirror()))
    out: dict[str, Any] = {}
    for name in todo:
        stage = BY_NAME[name]
        if stage.partitioned:
            out[name] = {d: call(stage, settings, {i: out[i][d] for i in stage.inputs}, log, partition=d)
                         for d in partitions}
        else:
            out[name] = call(stage, settings, {i: _input(stage, i, out[i]) for i in stage.inputs}, log)
    return out


def _input(stage: Stage, name: str, value: Any) -> Any:
    """An input as ``stage`` reads it: a partitioned stage's results restricted to ``stage.partitions``."""
    if BY_NAME[name].partitioned and name in stage.partitions:
        return {d: v for d, v in value.items() if d in stage.partitions[name]}
    return value


def mermaid() -> str:
    """The stage graph as a Mermaid flowchart (``docs/architecture.md``): one subgraph per group, an edge per input
    (dotted: a dependency that is not read)."""
    lines = ["flowchart LR"]
    for group in dict.fromkeys(s.group for s in STAGES):
        lines.append(f"  subgraph group_{group} [{group}]")  # ids apart from the nodes (a group and a stage: features)
        lines += [f"    {s.name}{'[[' + s.name + ']]' if s.partitioned else ''}" for s in STAGES if s.group == group]
        lines.append("  end")
    for s in STAGES:
        lines += [f"  {i} --> {s.name}" for i in s.inputs] + [f"  {d} -.-> {s.name}" for d in s.deps]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m adt.stages: the diagram for docs/architecture.md
    print(mermaid())
