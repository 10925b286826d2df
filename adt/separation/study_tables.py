"""The separation study's Markdown tables: the paper's Tables 2 and 3, the real songs, every model.

:func:`tables` writes them from the study's results (:func:`adt.separation.study.run_study`),
:func:`source_table` one table of SDR and SIR per source.
"""

from __future__ import annotations

import math

from adt.separation.study_settings import RATIO, SHIPPED, TRANSFER
from adt.separation.unet import SOURCES


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.2f}"


def paper_rows(results: dict, names) -> list[tuple[str, str]]:
    """(label, result name) for the paper's rows then their ratio-mask variants; models started from the shipped
    weights say so."""
    def label_of(label: str, n: str) -> str:
        return label + (" (fine-tuned from shipped)" if results[n].get("start") == "shipped" else "")

    rows = [(label_of(label, n), n) for label, n in names if n in results]
    return rows + [(label_of(f"{label} + ratio masks", n + RATIO), n + RATIO) for label, n in names
                   if n + RATIO in results]


TABLE2 = (("Independent", "independent"), ("Simultaneous", "simultaneous"), ("Interleaved", "interleaved"),
          ("Interleaved-acc", "interleaved_acc"), ("Independent, soft masks", "independent_mask"),
          ("Simultaneous, soft masks", "simultaneous_mask"), ("Interleaved, soft masks", "interleaved_mask"))


TABLE3 = (("encoder", "interleaved"), ("encoder+", "interleaved_encoder+"))


#: the footnote of the figures of models that heard the real songs (``"heard_real_songs": true``)
HEARD = "heard every real song in training"


HEARD_NOTE = (f"† {HEARD} (the shipped separator was trained on all 9 MDB songs; the models fine-tuned from it "
              "inherit them): its real_val and real figures are development figures, not held-out ones.")


def heard_mark(results: dict, n: str) -> str:
    return " †" if results[n].get("heard_real_songs") else ""


def source_table(results: dict, rows, split: str, median: bool = False) -> str:
    """Markdown: SDR and SIR per source (dB) on ``split`` for ``rows`` [(label, result name)]; the mean of the
    per-song medians (paper), or with ``median`` both that and the median over songs; "(silent)" marks a source
    whose estimate is silent on some song (degenerate, :func:`adt.separation.study_choice.degenerate`)."""
    cols = [("sdr", s) for s in SOURCES] + [("sir", s) for s in SOURCES]
    head = "| | " + " | ".join(f"{m.upper()} {s}" for m, s in cols) + " |"
    if median:
        head = "| | " + " | ".join(f"{m.upper()} {s} mean / median" for m, s in cols) + " |"
    lines = [head, "|---" * (1 + len(cols)) + "|"]
    for label, n in rows:
        r = results[n]
        cells = [_fmt(r.get(f"{m}.{s}.{split}")) + (f" / {_fmt(r.get(f'{m}_median.{s}.{split}'))}" if median else "")
                 + (" (silent)" if r.get(f"silent.{s}.{split}", 0.0) > 0 else "") for m, s in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(results: dict) -> dict[str, str]:
    """Markdown: ``table2`` (paper Table 2: procedures, SDR and SIR per source on the test renders, mean of the
    per-song medians; the ratio-mask variants below, then the shipped separator; models fine-tuned from it say
    so), ``table3`` (encoder vs encoder+), ``real`` (every model on the real test songs: mean / median),
    ``models`` (drums on every set, start, parameters, speed, memory, training), ``transfer`` (a source added
    later). "†" marks the real-song figures of models that heard the real songs (:data:`HEARD_NOTE` below the
    table)."""
    shipped = [("Shipped separator (interleaved, soft masks + ratio masks)", SHIPPED)] if SHIPPED in results else []
    t2 = source_table(results, paper_rows(results, TABLE2) + shipped, "test")
    t2 = t2.replace("| |", "| Training method |", 1)
    t3 = source_table(results, paper_rows(results, TABLE3), "test")
    note = "\n\n" + HEARD_NOTE if any(r.get("heard_real_songs") for r in results.values()) else ""
    real = source_table(results, [(n + heard_mark(results, n), n) for n in results], "real", median=True) + note
    sets = ("test", "mdb", "val", "real_val", "real")
    models = ["| model | procedure | start | params (M) | " + " | ".join(f"SDR drums {k}" for k in sets)
              + " | SIR drums real | s per min | peak MB | train s | best round | converged |",
              "|---" * (10 + len(sets)) + "|"]
    for n, r in results.items():
        figures = [_fmt(r.get(f"sdr.drums.{k}")) + (heard_mark(results, n) if k.startswith("real") else "")
                   for k in sets]
        figures += [_fmt(r.get("sir.drums.real")) + heard_mark(results, n), _fmt(r.get("infer_s_per_min"))]
        models.append(f"| {n} | {r.get('procedure', '')} | {r.get('start', 'scratch')} | "
                      + f"{r.get('params', 0) / 1e6:.2f} | " + " | ".join(figures)
                      + f" | {r.get('peak_mb', 0):.0f} | {r.get('train_s', 0):.0f} | "
                      + f"{r.get('best_round', '-')} | {r.get('converged', '-')} |")
    later = (("all three interleaved", "interleaved"), ("other added on the frozen encoder", TRANSFER))
    transfer = source_table(results, [(label, n) for label, n in later if n in results], "test")
    return {"table2": t2, "table3": t3, "real": real, "models": "\n".join(models) + note, "transfer": transfer}
