"""The trimming study (asset ``trimmed_transcriber``): the lottery paper's Figure 2 and Table 1 for the
transcriber sweep's champion.

For every line of ``TrimmingSettings.lines`` (``"method/criterion/selection"`` and its number of
seeds) the lottery (:mod:`adt.trimming.lottery`) runs from a reference network of the champion's
architecture and hyperparameters, trained per seed on the same training sets with
``TrimmingSettings.epochs`` x ``steps`` (the champion itself has no early weights to
rewind to). Every round is measured (:mod:`adt.trimming.measure`) and logged to the MLflow
experiment ``adt/trimming``: one run per line and seed, metrics per round (step = round).

Results: ``rounds.parquet`` (one row per line, seed and round), Figure 2 (``figure2.png``: test error
against the share of weights removed, per method and per criterion/selection, mean and range over
seeds), Table 1 (Markdown: the reference against the *optimal* model of each structured method, the
smallest network whose validation error is within 1.1x its reference's; the paper picks on the test
error, we pick on validation and report the test error; when no round is within 1.1x, the round of the
lowest validation error). The optimal network of ``trim`` and ``finetune`` together (both give a
smaller network; masking does not) is saved as a
transcriber checkpoint (``lite.pt``) and registered as a version of ``adt-frame-crnn`` with the alias
``lite`` (``adt transcribe --model lite``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from adt import registry, tracking
from adt.atomic import atomic_path
from adt.cache import stage_cache
from adt.config import Settings, TrimmingSettings
from adt.cpu import training_threads
from adt.data.tables import OnsetsResult
from adt.features.index import FeatureIndex
from adt.features.stats import TrainingStats
from adt.frame.champion import MODEL_DESCRIPTION, describe_transcriber
from adt.frame.checkpoint import model_input
from adt.frame.recipe import TrainConfig
from adt.frame.reproduce import check_tags
from adt.frame.shipped import load_fitting
from adt.frame.study import TranscriberResult, scored_items
from adt.frame.units import widths
from adt.parallel import run_jobs
from adt.results import Figure, MarkdownTables, ModelLink, RunLink, StageResult
from adt.trimming.lite import SMALLEST_TOLERANCE, TOLERANCE
from adt.trimming.lottery import Line, Schedule, Task, export, load_round, run_line, train_reference

#: Version of the trimming study's outputs.
VERSION = "3"  # 2: the authors' criteria, normalisation, rate of units (issue 30); 3: equal training, rewind to epoch 1
#: Registry alias of the optimal trimmed transcriber.
LITE_ALIAS = "lite"
#: Optimal = smallest network within this factor of the reference error (paper Sec. 5.1); smallest = within
#: this other factor (Table 1). The shipped lite transcriber chooses with the same (:mod:`adt.trimming.lite`).
OPTIMAL_FACTOR, SMALLEST_FACTOR = TOLERANCE, SMALLEST_TOLERANCE
#: The asset check's floor on the reference's validation micro F (3 classes, mean over seeds): under it the
#: reference does not transcribe and Table 1 and Figure 2 measure nothing (issue 28; the demo's reference
#: trained from scratch had 0.01-0.02).
REFERENCE_F_FLOOR = 0.5

Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class TrimmedTranscriberResult(StageResult):
    """The trimming study (asset ``trimmed_transcriber``; :func:`trimming_study`).

    Attributes:
        path: its folder; rounds: one record per line, seed and round; table1, curves: Table 1 and Figure 2's
            points (Markdown); figure: Figure 2 (PNG); optimal: the optimal round (record) or None, ``lite_kind``
            how it was picked; lite_path: its checkpoint; model_uri: the registered lite version or None;
            reference_from: what the reference started from; run_id: the study's MLflow run.
    """

    path: str
    rounds: list
    table1: str
    curves: str
    figure: str
    optimal: dict | None
    lite_path: str | None
    model_uri: str | None
    run_id: str
    lite_kind: str = ""
    reference_from: str = "fresh weights"

    def metadata(self) -> dict:
        best = self.optimal or {}
        return {"table1": MarkdownTables(self.table1), "figure2_points": MarkdownTables(self.curves),
                "figure2": Figure(self.figure, self.run_id, "Figure 2: test error by share of weights removed"),
                "lite": ModelLink(self.model_uri), "mlflow_run": RunLink(self.run_id),
                "reference_from": self.reference_from, "optimal_params": int(best.get("params", 0)),
                "optimal_removed": round(float(best.get("removed", 0.0)), 4)}


def run(settings: Settings, features: FeatureIndex, onsets: OnsetsResult, transcriber: TranscriberResult,
        log: Log = print) -> TrimmedTranscriberResult:
    """Stage ``trimmed_transcriber``: :func:`trimming_study` of the champion with the profile's trimming
    section."""
    return trimming_study(features, onsets.references(), transcriber, settings.get_profile().trimming,
                          settings.loss_weighting, log)


def spread(items: list, n: int | None) -> list:
    """``n`` items evenly spread over ``items`` (all when ``n`` is None or larger)."""
    if n is None or n >= len(items):
        return list(items)
    return [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def lines_of(trimming: TrimmingSettings) -> list[tuple[Line, int]]:
    """(line, seeds) of the trimming section.

    Raises:
        ValueError: an unknown method, criterion or selection.
    """
    return [(Line.parse(text), int(seeds)) for text, seeds in trimming.lines]


def build_task(index: FeatureIndex, refs: dict, transcriber: dict, trimming: TrimmingSettings,
               loss_weighting: str = "beta") -> Task:
    """The lottery's inputs: the champion's architecture and hyperparameters on its training sets,
    the section's validation and test tracks (``val_tracks`` / ``test_tracks``
    per dataset, evenly spread). When the sweep fine-tuned the shipped transcriber (the demo,
    ``Profile.start_from_shipped``), the reference starts from the sweep's best model; when it trained from
    scratch, from the shipped transcriber itself (its architecture and widths) when it fits the features, so that
    the reference transcribes in every profile (issue 30): a small training from scratch gives a reference that
    finds almost no onset (test error 0.98 in the demo, 0.97 in the tiny profile)."""
    combo = tuple(transcriber.train_sets)
    stats = TrainingStats.load(index.training_stats(combo)["dir"])
    val_items = spread(scored_items(index, refs, combo, "validation", with_drums=True), trimming.val_tracks)
    test_sets = {t: spread(scored_items(index, refs, (t,), "test"), trimming.test_tracks)
                 for t in index.test_sets()}
    test_sets = {t: items for t, items in test_sets.items() if items}
    patience = min(5, max(1, trimming.epochs // 4))  # TrainConfig.for_section's rule, on the study's epochs
    config = TrainConfig(epochs=trimming.epochs, steps_per_epoch=trimming.steps, batch_size=trimming.batch_size,
                         seed=trimming.seed, loss_weighting=loss_weighting, lr_patience=patience,
                         early_stop_patience=3 * patience)
    n_features = int(stats.mean.shape[0])
    examples = [np.load(path, mmap_mode="r")[:3000] for path, _ in val_items]
    architecture, params = transcriber.architecture, dict(transcriber.best_params)
    init = transcriber.model_path if transcriber.started_from != "scratch" else None
    init_from = f"the sweep's model {init} (fine-tuned from the shipped transcriber)" if init else "fresh weights"
    if init is None:  # a reference that transcribes in every profile (issue 30): the shipped transcriber's weights

        shipped, where = load_fitting(index.feature_type, n_features, len(stats.onsets))
        if shipped is not None:
            init, architecture, params = str(where), shipped.architecture, dict(shipped.hparams)
            init_from = f"the shipped transcriber {Path(where).name} (the sweep trained from scratch)"
    return Task(index.train_dirs(combo), val_items, stats, test_sets, config, architecture, params, examples,
                functools.partial(_measure, n_features, test_sets, val_items), init_path=init, init_from=init_from)


def _measure(n_features: int, test_sets: dict, val_items: list, model, params: dict) -> dict:
    """:attr:`Task.measure` (picklable, for :func:`run_lines`'s worker processes)."""
    from adt.trimming.measure import measure  # lazy: torch, mir_eval 1.1 s at import pipelines

    return measure(model, n_features, test_sets, val_items, params)


#: Methods that give a smaller network (masking keeps the size): the lite model is one of theirs.
STRUCTURED = ("trim", "finetune")


def optimal(table: pd.DataFrame, methods: tuple[str, ...] = STRUCTURED) -> tuple[pd.Series | None, str]:
    """The network registered as ``lite``: :func:`picks`' ``optimal`` among ``methods``, else its ``best`` (the
    paper's other pick), with which; (None, "") without trimmed rounds."""
    chosen = picks(table, methods)
    for kind in ("optimal", "best"):
        if kind in chosen:
            return chosen[kind], kind
    return None, ""


def picks(table: pd.DataFrame, methods: tuple[str, ...]) -> dict[str, pd.Series]:
    """The paper's three networks of Table 1 among the trimmed rounds of ``methods``: ``optimal`` (fewest parameters
    within :data:`OPTIMAL_FACTOR` of their seed's reference validation error), ``best`` (lowest validation error)
    and ``smallest`` (fewest parameters within :data:`SMALLEST_FACTOR`); a pick with no round is left out."""
    ref = table[table["round"] == 0].groupby("seed")["val_error"].first()
    trimmed = table[table["method"].isin(methods) & (table["round"] > 0)]
    out = {}
    if trimmed.empty:
        return out
    for kind, factor in (("optimal", OPTIMAL_FACTOR), ("smallest", SMALLEST_FACTOR)):
        ok = trimmed[trimmed["val_error"] <= factor * trimmed["seed"].map(ref)]
        if not ok.empty:
            out[kind] = ok.sort_values(["params", "val_error"]).iloc[0]
    out["best"] = trimmed.sort_values(["val_error", "params"]).iloc[0]
    return {kind: out[kind] for kind in ("optimal", "best", "smallest") if kind in out}


def table1(table: pd.DataFrame) -> str:
    """The paper's Table 1 for our drum model: the reference (mean over seeds) and, per structured method,
    its optimal, best and smallest networks (:func:`picks`), with the round each is and its validation error
    relative to its seed's reference."""
    ref = table[table["round"] == 0].drop_duplicates("seed")
    cols = ["test_error", "val_error", "removed", "params", "size_bytes", "flops", "peak_mb", "latency_s_per_min"]
    rows, notes = [("reference", ref[cols].mean())], []
    ref_val = ref.set_index("seed")["val_error"]
    for method in STRUCTURED:
        for kind, best in picks(table, (method,)).items():
            rows.append((f"{method} ({kind})", best[cols]))
            notes.append(f"{method} ({kind}): {best['line']} seed {int(best['seed'])} round {int(best['round'])}, "
                         f"validation error {best['val_error']:.3f} vs its reference's "
                         f"{float(ref_val.loc[best['seed']]):.3f}")
    out = ["| model | test error | val error | weights removed | params | size | FLOPs (4 s) | memory (60 s) "
           "| s per min (2 threads) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows:
        out.append(f"| {name} | {r['test_error']:.3f} | {r['val_error']:.3f} | {100 * r['removed']:.1f}% | "
                   f"{_si(r['params'])} | {_si(r['size_bytes'])}B | {_si(r['flops'])} | {r['peak_mb']:.1f} MB | "
                   f"{r['latency_s_per_min']:.3f} |")
    return "\n".join(out + [""] + [f"- {n}" for n in notes])


def _si(v: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} "


def curves(table: pd.DataFrame) -> pd.DataFrame:
    """Figure 2's points: per line and round, mean share removed, test error and test error relative to the
    seed's reference (the paper's right panels), each mean, min and max over seeds."""
    ref = table[table["round"] == 0].groupby("seed")["test_error"].first()
    table = table.assign(relative_error=table["test_error"] / table["seed"].map(ref).clip(lower=1e-9))
    return (table.groupby(["line", "round"])
            .agg(removed=("removed", "mean"), test_error=("test_error", "mean"),
                 test_error_min=("test_error", "min"), test_error_max=("test_error", "max"),
                 relative_error=("relative_error", "mean"), relative_error_min=("relative_error", "min"),
                 relative_error_max=("relative_error", "max"), seeds=("seed", "nunique"))
            .reset_index())


def figure2(table: pd.DataFrame, path: Path) -> None:
    """Figure 2 as a PNG: left, the methods (magnitude, local); right, the trimming criteria and selections; top
    row the test error, bottom row the test error relative to the reference's (the paper's right panels: 1 is
    the reference, the dotted lines 1.1x and 1.5x)."""
    # lazy: pyplot after matplotlib.use('Agg'); matplotlib 0.5 s at import pipelines
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curves(table)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.6), sharex=True)
    panels = (("methods", lambda line: line.endswith("magnitude/local") or line.startswith("mask/")),
              ("trimming criteria and selection", lambda line: line.startswith("trim/")))
    for col, (title, keep) in enumerate(panels):
        for row, (value, label) in enumerate((("test_error", "test error (1 - micro F, 3 classes)"),
                                              ("relative_error", "test error / reference's"))):
            ax = axes[row][col]
            for line, g in points.groupby("line"):
                if not keep(line):
                    continue
                ax.plot(100 * g["removed"], g[value], marker="o", ms=3, label=f"{line} ({g['seeds'].max()} seeds)")
                ax.fill_between(100 * g["removed"], g[f"{value}_min"], g[f"{value}_max"], alpha=0.2)
            if value == "relative_error":
                for factor in (1.0, OPTIMAL_FACTOR, SMALLEST_FACTOR):
                    ax.axhline(factor, color="grey", lw=0.8, ls="-" if factor == 1.0 else ":")
                ax.set_xlabel("weights removed (%)")
            else:
                ax.set_title(title)
                ax.legend(fontsize=7)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_markdown(table: pd.DataFrame) -> str:
    """Figure 2 as a Markdown table: test error per line (columns) and round (rows), with % removed."""
    points = curves(table)
    shown = points.assign(cell=[f"{e:.3f} ({100 * r:.0f}%)" for e, r in zip(points["test_error"], points["removed"])])
    return shown.pivot(index="round", columns="line", values="cell").to_markdown()


def study_cache(index: FeatureIndex, refs: dict, transcriber: TranscriberResult, trimming: TrimmingSettings,
                loss_weighting: str = "beta"):
    """(task, schedule, cache folder) of the study: what :func:`trimming_study` and a partial run
    (:func:`run_seeds`) share."""
    schedule = Schedule(max_rounds=trimming.rounds)
    task = build_task(index, refs, transcriber, trimming, loss_weighting)
    cache = stage_cache("trimming", VERSION, transcriber.key, index.key, dataclasses.asdict(task.config),
                        task.architecture, task.params, task.init_from,
                        trimming.lines, dataclasses.asdict(schedule), trimming.val_tracks,
                        trimming.test_tracks)
    return task, schedule, cache


def run_seeds(task: Task, schedule: Schedule, folder: Path, lines: list[tuple[Line, int]], seeds: list[int],
              first_seed: int, log: Log = print, only: set[tuple[str, int]] | None = None) -> list[dict]:
    """Run (or resume) every line of ``lines`` for the given ``seeds`` (a line runs the seeds
    ``first_seed .. first_seed + n - 1``) in ``folder``; one reference per seed.

    Separate processes may run disjoint (line name, seed) pairs (``only``) into the same folder
    (``benchmarks/bench_trimming.py --jobs``); a seed's reference is then trained by one of them first.

    Returns:
        one record per line, seed and round (``line``, ``method``, ``criterion``, ``selection``, ``seed`` and
        :func:`adt.trimming.lottery.run_line`'s fields).
    """
    rows = []
    for seed in seeds:
        todo = [line for line, n in lines if 0 <= seed - first_seed < n and (only is None or (line.name, seed) in only)]
        if not todo:
            continue
        reference = train_reference(task, seed, folder / f"seed{seed}", log)
        for line in todo:
            records = run_line(task, line, seed, schedule, folder / f"seed{seed}" / line.name.replace("/", "-"),
                               reference, log)
            rows += [{"line": line.name, "method": line.method, "criterion": line.criterion,
                      "selection": line.selection, "seed": seed, **row} for row in records]
    return rows


def run_lines(task: Task, schedule: Schedule, folder: Path, lines: list[tuple[Line, int]], seeds: list[int],
              first_seed: int, log: Log = print) -> list[dict]:
    """:func:`run_seeds` with its (line, seed) pairs in worker processes (:func:`adt.parallel.run_jobs`), each
    seed's reference trained here first; the same records in the same order.

    The latencies measured per round (:mod:`adt.trimming.measure`) then share the cores with the other
    process: they are noisier than the other columns (parameters, FLOPs, size and errors are unchanged).
    """
    pairs = [(line.name, seed) for seed in seeds for line, n in lines if 0 <= seed - first_seed < n]
    for seed in sorted({seed for _, seed in pairs}):
        train_reference(task, seed, folder / f"seed{seed}", log)
    rows = run_jobs(run_seeds, [dict(task=task, schedule=schedule, folder=folder, lines=lines, seeds=[seed],
                                     first_seed=first_seed, only={(name, seed)}) for name, seed in pairs],
                    training_threads(task.architecture), log, names=[f"{name} (seed {seed})" for name, seed in pairs],
                    job_log="log", one_wave=True)
    return [row for part in rows for row in part]


def all_seeds(trimming: TrimmingSettings) -> list[int]:
    """Every seed of the section's trimming lines."""
    return sorted({trimming.seed + s for _, n in lines_of(trimming) for s in range(n)})


def _log_lines(table: pd.DataFrame, task: Task, schedule: Schedule, started: float) -> None:
    """One MLflow run per line and seed (experiment ``adt/trimming``, spanning the lines' training since
    ``started``): its settings as params, every round's measures as metrics (step = round)."""
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    for (name, seed), g in table.groupby(["line", "seed"]):
        method, criterion, selection = name.split("/")
        with tracking.run("trimming", f"{name}[seed {seed}]", started=started,
                          params={"method": method, "criterion": criterion, "selection": selection, "seed": seed,
                                  "rate": schedule.rate, "rate_of": schedule.of,
                                  "normalisation": schedule.normalisation, "rounds": schedule.rounds,
                                  "architecture": task.architecture, "epochs": task.config.epochs,
                                  "steps_per_epoch": task.config.steps_per_epoch,
                                  "rewind_epoch": task.rewind_epoch}):
            for row in g.to_dict("records"):
                mlflow.log_metrics({k: float(v) for k, v in row.items()
                                    if isinstance(v, (int, float)) and k not in ("round", "seed")},
                                   step=int(row["round"]))


def trimming_study(index: FeatureIndex, refs: dict, transcriber: TranscriberResult, trimming: TrimmingSettings,
                   loss_weighting: str = "beta", log: Log = print, register: bool = True) -> TrimmedTranscriberResult:
    """Run (or resume, or find cached) the study of the module docstring.

    Args:
        transcriber: the ``transcriber`` stage's result (its architecture, best parameters, training sets).
        register: register the optimal network as ``adt-frame-crnn@lite``.

    Raises:
        ValueError: no line in the profile, an unknown method/criterion/selection, or an architecture
            that cannot be trimmed (attention).
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    lines = lines_of(trimming)
    if not lines:
        raise ValueError(f"profile {trimming.profile!r} has no trimming lines")
    task, schedule, cache = study_cache(index, refs, transcriber, trimming, loss_weighting)

    def study(folder: Path) -> dict:
        started = time.time()  # the lines train together (run_lines): every run of the study spans that work
        table = pd.DataFrame(run_lines(task, schedule, folder, lines, all_seeds(trimming), trimming.seed, log))
        _log_lines(table, task, schedule, started)
        table["widths"] = table["widths"].map(lambda w: ",".join(str(v) for v in w.values()))
        best, kind = optimal(table)
        md1, md2 = table1(table), curves_markdown(table)
        if best is not None:
            md1 += (f"\n- lite model ({kind}, registered as adt-frame-crnn@lite): {best['line']} seed "
                    f"{int(best['seed'])} round {int(best['round'])}")
        with atomic_path(folder / "rounds.parquet") as tmp:
            table.to_parquet(tmp, index=False)
        png = folder / "figure2.png"
        with atomic_path(png, suffix=".png") as tmp:
            figure2(table, tmp)
        lite_path, uri = None, None
        reference_from = task.init_from
        md1 += f"\n- reference trained from {reference_from}"
        lines_text = ", ".join(f"{line.name} x{n}" for line, n in lines)
        with tracking.run("trimming", "trimming-study", started=started,
                          params={"lines": lines_text, "architecture": task.architecture}) as run:
            mlflow.log_table(table, "rounds.json")
            mlflow.log_artifact(str(png))
            mlflow.log_text(md1 + "\n\n" + md2, "trimming.md")
            if best is not None:
                where = f"{best['line']} seed {int(best['seed'])} round {int(best['round'])}"
                round_file = (folder / f"seed{int(best['seed'])}" / best["line"].replace("/", "-") /
                              f"round{int(best['round']):02d}.pt")
                saved = load_round(round_file)  # weights only
                if saved is None:
                    raise RuntimeError(f"the optimal round's file {round_file} is missing or does not load")
                lite_path = str(export(saved["model"], folder / "lite.pt"))
                mlflow.log_metrics({"optimal_params": float(best["params"]),
                                    "optimal_test_error": float(best["test_error"])})
                transcribes, floor_meta = reference_transcribes(table.to_dict("records"), lite=best.to_dict())
                if register and not transcribes:  # a network that finds almost nothing is never lite
                    log(f"lite not registered: validation F of the reference {floor_meta['reference_val_f']}, of the "
                        f"lite network {floor_meta['lite_val_f']}, floor {REFERENCE_F_FLOOR}")
                elif register:
                    uri = register_lite(saved["model"], log, source=f"trimming:{cache.key}/{where}",
                                        trained_on=f"the champion's training sets {'+'.join(transcriber.train_sets)}"
                                                   f" (profile {trimming.profile}), {where} of the lottery",
                                        val_error=float(best["val_error"]), test_error=float(best["test_error"]),
                                        val_items=task.val_items)
        return {"rounds": table.to_dict("records"), "table1": md1, "curves": md2, "path": str(folder),
                "figure": str(png), "optimal": None if best is None else best.to_dict(), "lite_kind": kind,
                "reference_from": reference_from,
                "lite_path": lite_path,
                "model_uri": uri, "run_id": run.info.run_id}

    return TrimmedTranscriberResult.from_manifest(cache.get_or_compute(study))


def register_lite(model, log: Log = print, *, source: str | None = None, trained_on: str = "(not recorded)",
                  val_error: float | None = None, test_error: float | None = None, val_items: list = ()) -> str:
    """Register ``model`` (a trimmed transcriber) as a version of ``adt-frame-crnn``, weights only with its
    widths (:func:`adt.registry.register`, in the active MLflow run), and point the alias :data:`LITE_ALIAS`
    at it, last (the champion alias does not move).

    Idempotent per ``source`` (e.g. ``trimming:<study key>/<line> seed <s> round <r>``) and checkpoint content:
    a re-run reuses the version. Tags ``transcriber_input``, ``trimmed`` (``"true"``), ``widths`` (JSON units per
    layer), ``val_error`` / ``test_error`` (1 - 3-class micro F) when given, the validation track the
    ``lite_reproduces`` check scores again (:func:`adt.frame.reproduce.check_tags`, from ``val_items``); a
    description and a signature.

    Returns:
        ``models:/<name>/<version>``.

    Raises:
        RuntimeError: no active MLflow run.
    """
    import mlflow  # lazy: after tracking.setup() sets MLFLOW_DISABLE_TELEMETRY; mlflow 0.8 s at import pipelines

    model.trimmed = widths(model)
    source = source or f"run:{mlflow.active_run().info.run_id if mlflow.active_run() else 'none'}"
    tags = {"transcriber_input": model_input(model), "trimmed": "true", "widths": json.dumps(model.trimmed)}
    scores = {"val_error": val_error, "test_error": test_error}
    tags.update({k: f"{v:.6f}" for k, v in scores.items() if v is not None})
    tags.update(check_tags(model, list(val_items)))
    described = "; ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in scores.items() if v is not None)
    description = (f"The optimal trimmed network of the trimming study (adt.trimming, alias {LITE_ALIAS}): "
                   + describe_transcriber(model, source, trained_on)
                   + (f" Trimming study (1 - 3-class micro F): {described}." if described else ""))
    version = registry.register(model, name=tracking.MODEL_NAME, kind="transcriber", source=source,
                                description=description, model_description=MODEL_DESCRIPTION, tags=tags,
                                alias=LITE_ALIAS)
    log(f"{tracking.MODEL_NAME} version {version}: alias {LITE_ALIAS} (optimal trimmed network)")
    return f"models:/{tracking.MODEL_NAME}/{version}"


def reference_transcribes(rounds: list[dict], floor: float = REFERENCE_F_FLOOR,
                          lite: dict | None = None) -> tuple[bool, dict]:
    """The asset check on the study (issues 28, 30): the reference networks' (round 0) validation micro F (1 - the
    validation error, 3 classes), mean over seeds, is at least ``floor``, and so is the ``lite`` network's (the
    round registered as ``lite``, :func:`optimal`; None: none).

    Returns:
        (passed, metadata: reference validation and test F, the lite network's validation F, the floor).
    """
    ref = pd.DataFrame(rounds)
    ref = ref[ref["round"] == 0].drop_duplicates("seed")
    if ref.empty:
        return False, {"reference": "no reference round"}
    val_f, test_f = 1 - float(ref["val_error"].mean()), 1 - float(ref["test_error"].mean())
    meta = {"reference_val_f": round(val_f, 4), "reference_test_f": round(test_f, 4), "floor": floor,
            "seeds": int(len(ref))}
    lite_f = None if lite is None else 1 - float(lite["val_error"])
    if lite_f is not None:
        meta["lite_val_f"] = round(lite_f, 4)
    return val_f >= floor and (lite_f is None or lite_f >= floor), meta
