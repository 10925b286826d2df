"""The shipped ``lite`` transcriber and its cross-validated real-song figures (issue 30, item 3;
:mod:`adt.trimming.lite`): the shipped transcriber's recipe trimmed with rewinding, 20% of the units of every
layer per round, every round trained as the reference was.

Usage:
  .venv/bin/python benchmarks/bench_lite.py --fold 0|1|2   # reference (the recipe) + ROUNDS rounds, resumable
  .venv/bin/python benchmarks/bench_lite.py --fold final   # ROUNDS rounds from the shipped transcriber (all 9 songs)
  .venv/bin/python benchmarks/bench_lite.py --report       # each fold's rounds scored on its own test songs only;
                                                           # the round each fold chooses on its validation songs
  options: --rounds 3 --epochs 10 --steps 60 --threads 1 --profile demo --out benchmarks/out/lite

Files: ``<out>/<fold>.r<R>.pt`` (round R's network, R = 0 the reference; ``final.r0`` is the shipped model)
and ``<out>/<fold>.r<R>.json`` (its history, validation error, chosen epoch, floors, widths, parameters),
each written atomically when its round ends: a re-run starts after the last finished round. ``--report``
writes ``<out>/report.md``, ``report.json`` and ``figure2.png``: Table 1 (reference, optimal, best, smallest:
parameters, size, FLOPs of 4 s, latency and memory for 60 s, whole-process seconds and peak memory on a
10-minute file, cross-validated error on the drum-only recordings and the real mixes) and every round, logs them
to MLflow (experiment ``adt/trimming``), and exits 1 when the optimal (lite) network is degenerate
(:func:`adt.evaluation.real_songs.degenerate`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _round_path(out: Path, fold: str, r: int, ext: str) -> Path:
    return out / f"{fold}.r{r}.{ext}"


def _base():
    from adt.frame.real_songs import BASE_MODEL
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import pretrained_path

    return load_model(pretrained_path(BASE_MODEL))


def _write_json(path: Path, value: dict) -> None:
    from adt.atomic import atomic_path

    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(value, indent=1, default=float))


def run_fold(fold_name: str, args) -> None:
    """Train (or resume) fold ``fold_name``'s reference and rounds (module docstring)."""
    import torch

    from adt.config import Settings
    from adt.frame.real_songs import RECIPE, fold_material, recipe_config, train_on_real_songs
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import pretrained_path
    from adt.trimming.lite import next_round, rewind_point
    from adt.trimming.lottery import export
    from adt.frame.units import count_parameters, split_recurrent, widths

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fold, _ = fold_material(fold_name, Settings.from_env(profile=args.profile))
    rewind = rewind_point(_base())
    trained = None
    for r in range(args.rounds + 1):
        pt, js = _round_path(out, fold_name, r, "pt"), _round_path(out, fold_name, r, "json")
        if r == 0 and fold.final:
            trained = load_model(pretrained_path())  # the shipped transcriber is the final reference
            if not js.is_file():
                _write_json(js, {"fold": "final", "round": 0, "params": count_parameters(trained),
                                 "widths": widths(split_recurrent(trained)), "peak_picking": trained.peak_picking})
            continue
        if pt.is_file() and js.is_file():
            previous, trained = trained, load_model(pt)
            if r:  # the rewind state of the next round follows this round's selection
                _, rewind = next_round(previous, rewind)
            continue
        start = time.perf_counter()
        init = _base().train() if r == 0 else None
        if r:
            init, rewind = next_round(trained, rewind)
        config = recipe_config(epochs=args.epochs, steps=args.steps, seed=RECIPE["seed"] + r, threads=args.threads,
                               tune_peak_picking=not fold.final)
        params = dict(init.hparams, lr=RECIPE["lr"])

        def on_epoch(epoch, m, r=r):
            print(f"[{fold_name} r{r}] epoch {epoch} loss {m['loss']:.4f} val F {m.get('val_f', float('nan')):.3f} "
                  f"{m['seconds']:.0f} s", flush=True)

        trained, history = train_on_real_songs(
            fold.render_dirs, fold.real_items, fold.val_items,
            fold.features / f"shards_{fold_name}_ft_{len(fold.real_items)}", config, init=init, params=params,
            on_epoch=on_epoch)
        if r:
            export(trained, pt)
        else:
            from adt.frame.checkpoint import save_model

            save_model(trained, pt)
        val_f = getattr(trained, "best_val_f", None)
        _write_json(js, {"fold": fold_name, "round": r, "train_songs": fold.train_songs,
                         "validation_songs": fold.validation_songs, "test_songs": fold.test_songs,
                         "params": count_parameters(trained), "widths": widths(split_recurrent(trained)),
                         "best_epoch": trained.best_epoch, "val_f": val_f,
                         "val_error": None if val_f is None else 1 - val_f,
                         "peak_picking": trained.peak_picking, "history": history,
                         "seconds": time.perf_counter() - start, "config": vars(args)})
        print(f"[{fold_name} r{r}] done in {time.perf_counter() - start:.0f} s: {count_parameters(trained):,} "
              f"parameters, validation F {val_f}", flush=True)


def whole_process(model_path: Path, wav: Path, repeats: int = 2) -> tuple[float, float]:
    """(best wall seconds, largest peak resident MB) of ``adt transcribe WAV --model MODEL`` in a fresh process.
    The peak is the process's ``VmHWM`` (/proc, the high-water mark of the program after ``exec``) read every
    20 ms: ``ru_maxrss`` would count this process's own memory, which a forked child carries until ``exec``.

    Raises:
        RuntimeError: a run failed (its stderr's last line).
    """
    import subprocess
    import tempfile

    def hwm_mb(pid: int) -> float:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    adt = Path(sys.executable).with_name("adt")
    env = {k: v for k, v in os.environ.items() if k not in ("ADT_DATA_DIR", "MLFLOW_TRACKING_URI")}
    best, peak = float("inf"), 0.0
    with tempfile.TemporaryDirectory() as folder:
        err = Path(folder) / "stderr.txt"
        for i in range(repeats + 1):  # the first run warms the file cache
            start, run_peak = time.perf_counter(), 0.0
            with err.open("w") as stderr:
                proc = subprocess.Popen([str(adt), "transcribe", str(wav), "-o", "out.mid", "--model",
                                         str(Path(model_path).resolve())], cwd=folder, env=env,
                                        stdout=subprocess.DEVNULL, stderr=stderr)
                while proc.poll() is None:
                    run_peak = max(run_peak, hwm_mb(proc.pid))
                    time.sleep(0.02)
            seconds = time.perf_counter() - start
            if proc.returncode:
                raise RuntimeError(f"adt transcribe --model {model_path}: exit {proc.returncode}: "
                                   f"{err.read_text().strip().splitlines()[-1:]}")
            if i:
                best = min(best, seconds)
                peak = max(peak, run_peak)
    return best, peak


def ten_minutes(out: Path) -> Path:
    """A 10-minute mono file of the MDB drum-only recordings end to end, repeated (the speed test's input)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_transcribe import mdb_drum_audio

    return mdb_drum_audio(out, 600)


def _cost(path: Path, wav: Path, renders_test: list) -> dict:
    """Table 1's cost columns of the network at ``path`` (:mod:`adt.trimming.measure`), the whole process
    (:func:`whole_process`) on the 10-minute file, and its error on the rendered test split (kit-disjoint
    renders, mixes and clean drum stems)."""
    from adt.frame.checkpoint import load_model
    from adt.trimming.measure import errors, flops, latency_and_memory, size_bytes

    model = load_model(path)
    n = int(model.mean.shape[0])
    latency, memory = latency_and_memory(model, n)
    seconds, peak = whole_process(path, wav)
    return {"params": sum(p.numel() for p in model.parameters()), "size_bytes": size_bytes(model),
            "flops": flops(model, n), "latency_s_per_min": latency, "peak_mb": memory, "process_s": seconds,
            "process_peak_mb": peak, **errors(model, {"renders": renders_test}, "test_error")}


def _figure(rounds: dict, path: Path) -> None:
    """Figure 2 for the lite recipe: cross-validated error (1 - micro F) against the parameters left, raw and
    relative to the references' (the paper's right panels), drum-only and real full mix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    x = [100 * v["params"] / rounds[0]["params"] for v in rounds.values()]
    for w, label in (("drum", "drum-only"), ("mix", "real full mix")):
        err = [1 - v["cv"][w]["f"] for v in rounds.values()]
        axes[0].plot(x, err, "o-", label=label)
        axes[1].plot(x, [e / err[0] for e in err], "o-", label=label)
    for ax, ylabel in zip(axes, ("cross-validated error", "error / reference's")):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(x)
        ax.invert_xaxis()
        ax.set_xlabel("parameters left (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for factor in (1.1, 1.5):
        axes[1].axhline(factor, color="grey", lw=0.8, ls="--")
    axes[0].legend()
    fig.suptitle("Trimming with rewinding, the shipped recipe, 9 real songs, 3 song-disjoint folds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def per_song(table: dict) -> str:
    """The reference's and the optimal (lite) network's cross-validated figures per class and per song, worst
    song included (:func:`adt.evaluation.real_songs.markdown`)."""
    from adt.evaluation.real_songs import markdown

    return "".join(f"\nCross-validated, {label} (each fold at its round, scored on its own songs):\n\n"
                   + markdown({"drum-only": table[label]["cv"]["drum"], "real full mix": table[label]["cv"]["mix"]})
                   + "\n" for label in ("reference", "optimal"))


def report(args) -> int:
    """Score every fold's rounds on its own test songs; pick each fold's optimal, best and smallest rounds on
    its validation songs (:func:`adt.trimming.lite.picks`); pool them (cross-validated); measure the final
    networks of those rounds (the folds' median); write Table 1, the rounds and Figure 2 (module docstring),
    log them to MLflow. Returns the exit status (1: the lite network is degenerate)."""
    import tempfile

    from adt.config import Settings
    from adt.evaluation.real_songs import degenerate, score_songs, summarize
    from adt.frame.real_songs import prepare
    from adt.frame.checkpoint import load_model
    from adt.transcribe.transcriber import pretrained_path
    from adt.trimming.lite import TOLERANCE, picks, shipped_round

    out = Path(args.out)
    songs, _, renders_test, *_ = prepare(Settings.from_env(profile=args.profile), split="test")
    by_name = {s.name: s for s in songs}
    done, counts = {}, {}
    for k in ("0", "1", "2"):
        done[k] = [json.loads(p.read_text()) for r in range(args.rounds + 1)
                   if (p := _round_path(out, k, r, "json")).is_file()]
        if not done[k]:
            raise SystemExit(f"{out}: fold {k} has no finished round; run --fold {k} first")
        for d in done[k]:
            counts[(k, d["round"])] = score_songs(load_model(_round_path(out, k, d["round"], "pt")),
                                                  [by_name[n] for n in d["test_songs"]])

    def pooled(rounds: dict[str, int]) -> dict:
        songs_counts = {s: v for k, r in rounds.items() for s, v in counts[(k, r)].items()}
        return {w: summarize({s: v[w]["1.0"] for s, v in songs_counts.items()}) for w in ("drum", "mix")}

    common = min(len(d) for d in done.values())  # rounds every fold has finished
    rounds = {r: {"params": float(np.mean([done[k][r]["params"] for k in done])), "cv": pooled(dict.fromkeys(done, r)),
                  "val_error": [done[k][r]["val_error"] for k in done]} for r in range(common)}
    fold_picks = {k: picks([d["val_error"] for d in done[k][:common]]) for k in done}
    rows = {"reference": dict.fromkeys(done, 0)}
    rows.update({kind: {k: fold_picks[k][kind] for k in done} for kind in ("optimal", "best", "smallest")})
    final_rounds = {label: shipped_round(list(r.values())) for label, r in rows.items()}
    cost = {}
    measured: dict[int, dict] = {}  # a round picked by several rows is measured once
    with tempfile.TemporaryDirectory() as tmp:
        wav = ten_minutes(Path(tmp) / "ten.wav")
        for label, r in final_rounds.items():
            path = pretrained_path() if r == 0 else _round_path(out, "final", r, "pt")
            if path.is_file():
                if r not in measured:
                    measured[r] = _cost(path, wav, renders_test)
                cost[label] = measured[r]
    head = ("| network | folds' rounds | final round | parameters | size (KB) | FLOPs (4 s) | latency 60 s (s) | "
            "memory 60 s (MB) | whole process 10 min (s) | peak (MB) | test error renders | CV error drum-only | "
            "CV error real mix | worst song drum-only |\n" + "|---" * 14 + "|")
    lines = [head]
    table = {}
    for label, r in rows.items():
        f, c = pooled(r), cost.get(label)
        table[label] = {"fold_rounds": r, "final_round": final_rounds[label], "cv": f, "cost": c}
        cells = (f"{c['params']:,} | {c['size_bytes'] / 1e3:.0f} | {c['flops'] / 1e6:.1f} M | "
                 f"{c['latency_s_per_min']:.3f} | {c['peak_mb']:.0f} | {c['process_s']:.2f} | "
                 f"{c['process_peak_mb']:.0f} | {c['test_error']:.3f}") if c else \
            " | ".join(["(final round not trained)"] + [""] * 7)
        lines.append(f"| {label} | {', '.join(str(v) for v in r.values())} | {final_rounds[label]} | {cells} | "
                     f"{1 - f['drum']['f']:.3f} | {1 - f['mix']['f']:.3f} | "
                     f"{f['drum']['worst_song'][0].removeprefix('MusicDelta_')} ({f['drum']['worst_song'][1]:.3f}) |")
    per_round = ["| round | parameters (fold mean) | validation error (folds 0, 1, 2) | CV error drum-only | "
                 "CV error real mix | relative (drum, mix) |", "|---|---|---|---|---|---|"]
    for r, v in rounds.items():
        e = {w: 1 - v["cv"][w]["f"] for w in ("drum", "mix")}
        e0 = {w: 1 - rounds[0]["cv"][w]["f"] for w in ("drum", "mix")}
        per_round.append(f"| {r} | {v['params']:,.0f} | {', '.join(f'{x:.3f}' for x in v['val_error'])} | "
                         f"{e['drum']:.3f} | {e['mix']:.3f} | {e['drum'] / e0['drum']:.2f}, {e['mix'] / e0['mix']:.2f} |")
    text = ("Table 1 (cross-validated on the 9 real songs: each fold's rounds picked on its validation songs, "
            f"scored on its own test songs; optimal: the smallest within {TOLERANCE}x the reference's validation "
            "error, smallest: within 1.5x, best: the lowest; the final network: the folds' median round trained on "
            "all 9 songs from the shipped transcriber; costs on 2 threads):\n\n" + "\n".join(lines) +
            "\n\nEvery round (Figure 2's points):\n\n" + "\n".join(per_round) + "\n" + per_song(table))
    print(text)
    _figure(rounds, out / "figure2.png")
    (out / "report.md").write_text(text)
    _write_json(out / "report.json", {"table1": table, "rounds": rounds, "picks": fold_picks})
    lite = pooled(rows["optimal"])
    problems = [f"{w}: {p}" for w, s in lite.items() for p in degenerate(s)]
    _log(out, text, table, problems)
    if problems:
        print("check failed, degenerate lite network:\n  " + "\n  ".join(problems))
        return 1
    return 0


def _log(out: Path, text: str, table: dict, problems: list[str]) -> None:
    """One MLflow run (experiment adt/trimming; git commit, library versions): Table 1's figures as metrics,
    the tables, Figure 2, the folds' round records."""
    import mlflow

    from adt import tracking

    with tracking.run("trimming", "lite-real-songs", params={"folds": 3, "songs": 9}) as active:
        for label, row in table.items():
            mlflow.log_metrics({f"{label}.cv_error.{w}": 1 - row["cv"][w]["f"] for w in ("drum", "mix")})
            if row["cost"]:
                mlflow.log_metrics({f"{label}.{k}": float(v) for k, v in row["cost"].items()})
        mlflow.log_text(text, "lite_real_songs.md")
        mlflow.log_artifact(str(out / "figure2.png"))
        for p in sorted(out.glob("*.r*.json")):
            mlflow.log_artifact(str(p), "rounds")
        mlflow.set_tag("check.degenerate", "; ".join(problems) if problems else "passed")
        print(f"MLflow run {active.info.run_id} (experiment adt/trimming)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", help="0, 1, 2 or final")
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--rounds", type=int, default=None, help="rounds after the reference (default ROUNDS)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--out", default="benchmarks/out/lite")
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("ADT_DATA_MIRROR", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))
    from adt.frame.real_songs import RECIPE
    from adt.trimming.lite import ROUNDS

    args.rounds = ROUNDS if args.rounds is None else args.rounds
    args.epochs = args.epochs or RECIPE["epochs"]
    args.steps = args.steps or RECIPE["steps"]
    if args.report:
        raise SystemExit(report(args))
    if not args.fold:
        parser.error("--fold or --report")
    run_fold(args.fold, args)


if __name__ == "__main__":
    main()
