"""Screenshots of the pages a newcomer opens after ``make demo`` (docs/demo.md shows them), in headless Chromium.

Starts both UIs of ``make ui`` over a data folder (:mod:`pipelines.servers`, ports 3000 and 5000: the ones the
metadata links to), opens each page of :data:`PAGES` 1600 pixels wide and writes ``<out>/<prefix><name>.png``.
Stop ``make ui`` first: the ports must be free.

Usage: ``python scripts/ui_screenshots.py --data-dir data --out docs/img --prefix after-``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: name -> (UI, path, text to wait for, viewport height: Dagster's asset pages scroll inside, so the viewport is
#: the picture). ``{champion}``: the champion's version page (:func:`adt.tracking.model_url`).
PAGES = {
    "dagster-timeline": ("dagster", "/overview/activity/timeline", "adt_downstream", 700),
    "dagster-job-runs": ("dagster", "/locations/pipelines/jobs/adt_downstream/runs", "adt_downstream", 700),
    "dagster-zero-shot-matrix": ("dagster", "/assets/zero_shot_matrix", "matrix_3class", 1400),
    "dagster-drum-stems": ("dagster", "/assets/drum_stems", "table_2_procedures", 2400),
    "dagster-quantization-checks": ("dagster", "/assets/quantization_stats?view=checks", "conflict_far_demo", 700),
    "dagster-tatum-study": ("dagster", "/assets/tatum_study", "table_ii", 2000),
    "dagster-trimmed-transcriber": ("dagster", "/assets/trimmed_transcriber", "table1", 2000),
    "mlflow-transcriber-runs": ("mlflow", "/#/experiments/{transcriber}/runs?workflowType=machine_learning", "sweep",
                                700),
    "mlflow-champion": ("mlflow", "{champion}", "Version", 900),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("docs/img"))
    parser.add_argument("--prefix", default="")
    parser.add_argument("--only", help="comma-separated page names (default: all)")
    args = parser.parse_args(argv)
    data = args.data_dir.resolve()
    os.environ.update({"ADT_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": f"sqlite:///{data / 'mlflow.db'}"})
    import mlflow
    from playwright.sync_api import sync_playwright

    from pipelines.servers import CHROMIUM_ARGS, serve

    from adt.tracking import model_url

    experiments = {e.name.split("/", 1)[1]: e.experiment_id for e in mlflow.search_experiments()
                   if e.name.startswith("adt/")}
    champion = (model_url("models:/adt-frame-crnn@champion") or "").split("5000", 1)[-1]
    pages = {k: v for k, v in PAGES.items() if not args.only or k in args.only.split(",")}
    args.out.mkdir(parents=True, exist_ok=True)
    with serve(data / "dagster", os.environ["MLFLOW_TRACKING_URI"], 3000, 5000, data / "ui-logs") as urls, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        for name, (ui, path, wait_for, height) in pages.items():
            page.set_viewport_size({"width": 1600, "height": height})
            page.goto(urls[ui] + path.format(**experiments, champion=champion))
            try:
                page.get_by_role("button", name="Skip").click(timeout=3_000)  # Dagster's first-visit dialog
            except Exception:
                pass
            try:
                page.get_by_text(wait_for).first.wait_for(timeout=60_000)
            except Exception as exc:
                print(f"{name}: {wait_for!r} not found ({type(exc).__name__}); screenshot taken anyway")
            page.wait_for_timeout(2_000)  # images and charts
            target = args.out / f"{args.prefix}{name}.png"
            page.screenshot(path=str(target))
            print(target)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
