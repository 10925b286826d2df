"""End to end: the whole asset graph in the tiny profile on real data, then `adt transcribe`.

Tiny profile: 6 generated demo tracks, a few short Groove MIDI renders and two MDB
Drums drum-only recordings (cropped to 12 s), all from ../shared/datasets.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import mido
import numpy as np
import pandas as pd
import pytest

from adt.data.datasets import BEAT_COLUMNS, ONSET_COLUMNS, TRACK_COLUMNS

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, shared_datasets):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("e2e")
    mp.setenv("ADT_DATA_DIR", str(root / "data"))
    mp.setenv("ADT_DATA_MIRROR", str(shared_datasets))
    mp.setenv("ADT_PROFILE", "tiny")
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'data' / 'mlflow.db'}")
    mp.delenv("DAGSTER_HOME", raising=False)
    from adt.postgres import free_port

    ports = {"mlflow": free_port(), "dagster": free_port()}  # the UIs the metadata links to (test_ui_*)
    mp.setenv("MLFLOW_UI_URL", f"http://127.0.0.1:{ports['mlflow']}")
    mp.setenv("DAGSTER_UI_URL", f"http://127.0.0.1:{ports['dagster']}")
    import dagster as dg

    from pipelines.materialize import run_all

    (root / "dagster").mkdir()
    instance = dg.DagsterInstance.local_temp(str(root / "dagster"))
    cold = run_all("tiny", instance=instance)
    yield {"cold": cold, "root": root, "instance": instance, "run_all": run_all, "ports": ports}
    mp.undo()



def test_every_dataset_joins(pipeline):
    assert pipeline["cold"]["datasets"] == ["demo", "groove", "mdb"]


def test_runs_are_the_defined_jobs(pipeline):
    """make demo runs the code location's jobs (shown in the UI's overview, re-executable there), tagged with
    the settings they ran under; MLflow runs link back to their Dagster run."""
    import mlflow

    from adt import tracking
    from pipelines.plan import SETTINGS_TAG

    runs = [pipeline["instance"].get_run_by_id(r) for r in pipeline["cold"]["run_ids"]]
    assert [r.job_name for r in runs] == ["adt_kit_catalogue"] + ["adt_raw_datasets"] * 3 + ["adt_downstream"]
    assert [r.tags.get("dagster/partition") for r in runs[1:4]] == ["demo", "groove", "mdb"]
    assert all(r.tags[SETTINGS_TAG] and r.tags["adt/profile"] == "tiny" for r in runs)
    # runs of the code location, as the UI's own: its timeline, job history and Re-execute find them (issue 31)
    import dagster as dg

    assert {r.remote_job_origin.location_name for r in runs} == {"pipelines"}
    labelled = pipeline["instance"].get_runs(dg.RunsFilter(tags={".dagster/repository": "__repository__@pipelines"}))
    assert {r.run_id for r in runs} <= {r.run_id for r in labelled}
    tracking.setup()
    made = mlflow.search_runs(search_all_experiments=True, filter_string="tags.stage = 'transcriber'")
    assert set(made["tags.dagster.run_id"]) == {runs[-1].run_id}
    assert made["tags.mlflow.note.content"].str.contains("Profile tiny").all()


def test_tables_have_their_schema(pipeline):
    out = pipeline["cold"]
    tracks = pd.read_parquet(out["tracks"].path)
    onsets = pd.read_parquet(out["onsets"].path)
    beats = pd.read_parquet(out["tracks"].gt_beats)
    assert list(tracks.columns) == TRACK_COLUMNS
    assert list(onsets.columns) == ONSET_COLUMNS
    assert list(beats.columns) == BEAT_COLUMNS
    counts = tracks.groupby("dataset").size().to_dict()
    assert counts == {"demo": 6, "groove": 6, "mdb": 2}
    assert set(tracks[tracks.dataset == "mdb"].split) == {"test"}
    assert set(tracks[tracks.dataset == "groove"].split) == {"train", "validation", "test"}
    assert set(onsets.drum) <= {"BD", "SD", "TT", "HH", "CY"}
    assert set(onsets.track_id) == set(tracks.track_id)
    assert (tracks.duration_s > 0).all() and (tracks.duration_s <= 12.0 + 1e-6).all()


def test_stems_beats_tatums(pipeline):
    out = pipeline["cold"]
    tracks = pd.read_parquet(out["tracks"].path)
    mixtures = set(tracks[tracks.mix_path.notna()].track_id)
    assert set(out["drum_stems"].stems) == mixtures and len(mixtures) == 12
    study = out["drum_stems"].study  # every procedure trained and scored; the best real validation SDR chosen
    shared = {"independent", "simultaneous", "interleaved", "interleaved_acc", "interleaved_encoder+"}
    assert shared | {n + "+ratio" for n in shared} | {"open_unmix", "mixture", "interleaved_other_later"} <= set(
        study["results"])
    scored = {n: r["sdr.drums.real_val"] for n, r in study["results"].items()}  # real songs: fold 0's validation
    assert all(math.isfinite(v) for v in scored.values())
    deployed = [n for n in scored if n.endswith("+ratio") and "other_later" not in n] + ["open_unmix"]
    # the best on the real validation songs of the models that never heard them, then against the shipped
    # separator (it heard every real song) on the rendered validation songs (adt.separation.study.choose)
    first = max(deployed, key=scored.get)
    assert study["results"]["shipped"]["heard_real_songs"]
    assert study["best"] == max([first, "shipped"], key=lambda n: study["results"][n]["sdr.drums.val"])
    assert out["drum_stems"].model["procedure"] == study["chosen"]["procedure"]
    assert "| Interleaved-acc |" in study["tables"]["table2"] and "| encoder+ |" in study["tables"]["table3"]
    assert "| Interleaved + ratio masks |" in study["tables"]["table2"]
    for r in study["results"].values():
        assert math.isfinite(r["sdr.drums.test"]) and math.isfinite(r["sdr.drums.mdb"])
        assert math.isfinite(r["sdr.drums.real"]) and math.isfinite(r["sdr.bass.real"])
    beats = pd.read_parquet(out["beats"].path)
    assert list(beats.columns) == ["track_id", "source", "time_s", "position"]
    assert set(beats.source) == {"madmom", "ground_truth"}
    assert set(beats[beats.source == "madmom"].position) <= {0, 1, 2, 3, 4} and (beats.position == 1).any()
    assert set(beats[beats.source == "madmom"].track_id) == set(tracks.track_id)
    tatums = pd.read_parquet(out["tatums"].path)
    assert out["tatums"].subdivisions == 4 and set(tatums.subdivision) == {0, 1, 2, 3}
    one = tatums[(tatums.source == "ground_truth")].groupby("track_id").time_s.apply(lambda t: np.diff(t.to_numpy()))
    assert all((d > 0).all() for d in one)


def test_quantization_stats_and_check(pipeline):
    out = pipeline["cold"]
    table = pd.DataFrame(out["quantization_stats"].table)
    assert {"dataset", "source", "n_onsets", "conflict", "far", "union"} <= set(table.columns)
    assert set(table.dataset) == {"demo", "groove", "mdb"}
    assert ((table.union >= table.conflict) & (table.union <= 1)).all()
    for dataset in ("demo", "groove", "mdb"):
        assert f"conflict_far_{dataset}" in out["checks"]
    # datasets not in the tables are not checked (no result), rather than passed on nothing
    assert not {"conflict_far_egmd", "conflict_far_slakh"} & set(out["checks"])


def test_scores_and_language_model(pipeline):
    out = pipeline["cold"]
    assert set(out["drum_scores"].paths["k5"]) == {"train", "validation", "test"}
    index = pd.read_parquet(out["drum_scores"].index)
    assert set(index.dataset) == {"demo", "groove", "mdb"}
    assert (index[index.dataset == "groove"].split.value_counts() == 8).all()  # tiny: 8 Groove MIDI scores per split
    for k in ("k5", "k3"):
        ppl = out["lm_bigram"].perplexity[k]
        assert 1.0 < ppl["test"] < 2.0 and "test.mdb" in ppl  # better than chance (2)
    gru = out["lm_gru"]
    assert gru.trials == 2 and set(gru.best_params) >= {"layers", "hidden"}
    assert 1.0 < gru.perplexity["test"] < 2.5  # 1 epoch in the tiny profile: near chance (2)
    assert gru.model_uri.startswith("models:/adt-gru-lm/")
    from adt.lm import gru as gru_lm

    assert gru_lm.load(gru.path_k3).k == 3 and 1.0 < gru.perplexity_k3["test"] < 2.5
    assert pipeline["cold"]["tatum_study"].gru_lm.startswith("GRU")  # the 3-class LM, not marginalized


def test_features_and_shards(pipeline):
    out = pipeline["cold"]["features"]
    x = np.load(next(iter(out.tracks.values())).x, mmap_mode="r")
    assert x.shape[1] == 80 and isinstance(x, np.memmap)
    assert set(out.shards) == {"demo", "groove", "mdb"}
    assert out.training_sets() == ("demo", "groove") and out.test_sets() == ["demo", "groove", "mdb"]
    assert {t.split for t in out.items(["mdb"], "test")} == {"test"}


def test_matrix_is_filled(pipeline):
    cells = pd.DataFrame(pipeline["cold"]["zero_shot_matrix"].cells)
    assert set(cells.train) == {"demo", "groove", "demo+groove", "shipped model"}
    assert set(cells.test) == {"demo", "groove", "mdb"}
    assert len(cells) == 12 and not cells[cells.train == "shipped model"].in_domain.any()
    for col in ("f_5class", "f_3class"):
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in cells[col])
    assert pipeline["cold"]["transcriber"].model_uri.startswith("models:/adt-frame-crnn/")
    import mlflow

    from adt import tracking

    tracking.setup()
    logged = mlflow.MlflowClient().get_run(pipeline["cold"]["zero_shot_matrix"].run_id).data.metrics
    assert {"f3.demo_groove.mdb", "f5.shipped model.mdb", "f3.demo.groove"} <= set(logged)  # cells as metrics


def test_tatum_study_fills_table_ii(pipeline):
    study = pipeline["cold"]["tatum_study"]
    results = pd.read_parquet(study.results)
    # Table II rows: frame baseline + quantization and the three tatum CRNNs, on both grids
    assert set(results["method"]) == {"frame_crnn", "tatum_crnn", "tatum_bigram", "tatum_gru"}
    assert {"estimated", "ground_truth"} <= set(results["tatums"])
    assert results["f"].between(0, 1).all() and study.markdown
    assert study.fig3 and Path(study.fig3).is_file()
    import mlflow  # the nested run per model sits in the study's experiment, not in Default

    exp = mlflow.get_experiment_by_name("adt/tatum_study")
    nested = mlflow.search_runs([exp.experiment_id], filter_string="tags.mlflow.parentRunId != ''")
    assert {"tatum_crnn", "tatum_bigram", "tatum_gru"} <= set(nested["tags.mlflow.runName"])


def test_trimming_fills_table_1_and_the_lite_model_transcribes(pipeline, mdb_track, tmp_path):
    """A 2-round lottery of the tiny profile's champion (trimming and masking): every round measured, the
    curves and Table 1 written, runs in adt/trimming, the lite model registered and used by adt transcribe."""
    import mlflow

    from adt import tracking
    from adt.cli import main

    trimmed = pipeline["cold"]["trimmed_transcriber"]
    rounds = pd.DataFrame(trimmed.rounds)
    assert set(rounds.line) == {"trim/magnitude/local", "mask/magnitude/local"}
    for line, g in rounds.groupby("line"):
        g = g.sort_values("round")
        assert g["round"].tolist() == [0, 1, 2]
        # masks: 20% of the weights left per round; trimming: 20% of the units (about 36% of a layer's weights)
        low, high = (0.3, 0.45) if line.startswith("mask") else (0.45, 0.75)
        assert g.params.is_monotonic_decreasing and low < g.removed.iloc[-1] < high, (line, g.removed.tolist())
        for col in ("flops", "size_bytes", "latency_s_per_min", "test_error", "test_error.mdb", "val_error"):
            assert g[col].map(math.isfinite).all(), (line, col)
        if line.startswith("mask"):  # masks keep the network's size and operations
            assert g.size_bytes.nunique() == 1 and g.flops.nunique() == 1
        else:
            assert g.flops.is_monotonic_decreasing and g.size_bytes.iloc[-1] < 0.75 * g.size_bytes.iloc[0]
    assert all(row in trimmed.table1 for row in ("| reference |", "| trim (", "lite model"))
    # the tiny sweep trains from scratch: the reference starts from the shipped transcriber, and transcribes
    assert "shipped transcriber" in trimmed.reference_from and pipeline["cold"]["checks"]["reference_transcribes"]
    assert Path(trimmed.figure).is_file() and "trim/magnitude/local" in trimmed.curves
    tracking.setup()
    runs = mlflow.search_runs(experiment_names=["adt/trimming"])
    assert {"trim/magnitude/local[seed 1234]", "mask/magnitude/local[seed 1234]", "trimming-study"} <= set(
        runs["tags.mlflow.runName"])
    assert trimmed.model_uri.startswith("models:/adt-frame-crnn/")
    out = tmp_path / "lite.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out), "--model", "lite"]) == 0
    assert out.is_file()


def test_warm_run_recomputes_nothing(pipeline):
    import mlflow

    from adt import tracking

    tracking.setup()
    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    instance = pipeline["instance"]
    keys = sorted(instance.get_asset_keys())

    def materializations() -> int:
        return sum(len(instance.fetch_materializations(k, limit=10_000).records) for k in keys)

    before = materializations()
    warm = pipeline["run_all"]("tiny", instance=instance)
    assert warm["run_ids"] == []  # nothing stale or missing: no run, no new materialization
    assert materializations() == before
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before
    assert warm["features"].key == pipeline["cold"]["features"].key
    for name in ("tracks", "drum_stems", "transcriber", "trimmed_transcriber", "zero_shot_matrix", "tatum_study"):
        assert warm[name].key == pipeline["cold"][name].key


def test_library_chain_finds_the_assets_results(pipeline):
    """adt.stages.run_stages (no Dagster) calls the assets' library functions with the same inputs:
    everything is found in the cache, nothing is logged again."""
    import mlflow

    from adt import tracking
    from adt.config import Settings
    from adt.stages import run_stages

    tracking.setup()
    runs_before = len(mlflow.search_runs(search_all_experiments=True))
    out = run_stages(Settings.from_env(profile="tiny"), until="tatum_study", log=lambda m: None)
    assert "zero_shot_matrix" not in out  # only what the tatum study reads
    out.update(run_stages(Settings.from_env(profile="tiny"), until="zero_shot_matrix", log=lambda m: None))
    cold = pipeline["cold"]
    assert out["features"].key == cold["features"].key
    for name in ("tracks", "drum_stems", "beats", "tatums", "drum_scores", "lm_gru", "transcriber",
                 "zero_shot_matrix", "tatum_study"):
        assert out[name].key == cold[name].key, name
    assert len(mlflow.search_runs(search_all_experiments=True)) == runs_before


def test_transcribe_cli_on_real_mdb(pipeline, mdb_track, tmp_path):
    from adt.cli import main

    out = tmp_path / "out.mid"
    assert main(["transcribe", str(mdb_track["wav"]), "-o", str(out)]) == 0
    notes = {m.note for m in mido.MidiFile(out) for m in [m] if m.type == "note_on"}
    assert notes and notes <= {36, 38, 42, 47, 49}


def test_transcribe_cli_errors(pipeline, tmp_path, capsys):
    from adt.cli import main

    assert main(["transcribe", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x.mid")]) == 2
    assert "missing.wav" in capsys.readouterr().err


def test_mix_and_drums_input(pipeline, tmp_path):
    """``transcriber_input="mix+drums"``: a mixture's features come from its mix, its clean drum stem is a
    second training and validation item; the model trained on them records it, with validation-tuned
    per-class peak floors, through a checkpoint round trip."""
    from adt.features.index import build_features
    from adt.frame.checkpoint import load_model, save_model
    from adt.frame.recipe import TrainConfig, train_model
    from adt.frame.study import scored_items
    from adt.metrics import reference_onsets

    cold = pipeline["cold"]
    index = build_features(cold["tracks"], cold["onsets"], cold["drum_stems"], combinations=[("demo", "groove")],
                           log=lambda msg: None, transcriber_input="mix+drums")
    mixtures = index.items(["demo", "groove"], "train")
    assert mixtures and all(t.input == "mix" and t.x_drums is not None for t in mixtures)
    assert all(t.input == "drum" and t.x_drums is None for t in index.items(["mdb"], "test"))
    mix, drums = np.load(mixtures[0].x), np.load(mixtures[0].x_drums)
    assert mix.shape == drums.shape and not np.allclose(mix, drums)  # the band is in the mix only
    separated = cold["features"].items(["demo"], "train")[0]
    assert separated.input == "separated" and separated.x != index.items(["demo"], "train")[0].x
    refs = reference_onsets(pd.read_parquet(cold["onsets"].path))
    val = scored_items(index, refs, ("demo", "groove"), "validation", with_drums=True)
    assert len(val) == 2 * len(index.items(["demo", "groove"], "validation"))
    model, _ = train_model(index.train_dirs(("demo", "groove")), val, TrainConfig(epochs=1, steps_per_epoch=3,
                                                                                 batch_size=4))
    assert model.transcriber_input == "mix+drums"
    floors = model.peak_picking["min_peak"]
    assert set(floors) == {"BD", "SD", "TT", "HH", "CY"} and all(0.2 <= v <= 0.95 for v in floors.values())
    loaded = load_model(save_model(model, tmp_path / "m.pt"))
    assert loaded.transcriber_input == "mix+drums" and loaded.peak_picking == model.peak_picking
    assert loaded.tuned_val_f == pytest.approx(model.tuned_val_f)


@pytest.mark.faults
def test_tatum_study_resumes_per_model(pipeline):
    """A tatum study that stopped after its models were trained (manifest missing) loads them again."""
    from adt.config import Settings, data_dir
    from adt.stages import run_stages

    cold = pipeline["cold"]["tatum_study"]
    (data_dir() / "tatum_study" / cold.key / "manifest.json").unlink()
    lines = []
    out = run_stages(Settings.from_env(profile="tiny"), until="tatum_study", log=lines.append)
    resumed = [line for line in lines if "trained before this run stopped" in line]
    assert len(resumed) == 3 and not any("training on" in line for line in lines)
    assert out["tatum_study"].markdown == cold.markdown


# --- the two UIs in a real browser (Debian chromium driven by Playwright), over this module's outputs ---

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser_page(pipeline):
    """`dagster dev` and `mlflow server` on free local ports over the tiny outputs (:mod:`pipelines.servers`), and a
    headless Chromium page. Skipped, with the reason, only where no browser could be installed
    (scripts/install.sh installs it)."""
    import os

    from pipelines.servers import CHROMIUM_ARGS, serve

    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no browser: {CHROMIUM} is missing (scripts/install.sh installs Debian's chromium as root)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    root, ports = pipeline["root"], pipeline["ports"]
    (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with serve(root / "dagster", os.environ["MLFLOW_TRACKING_URI"], ports["dagster"], ports["mlflow"],
               root / "data" / "ui-logs"), playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 3000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


@pytest.fixture
def ui(browser_page, pipeline, request):
    """The page, with a screenshot under data/browser-failures/ when the test fails."""
    yield browser_page
    if getattr(request.node, "failed", False):
        folder = pipeline["root"] / "data" / "browser-failures"
        folder.mkdir(parents=True, exist_ok=True)
        browser_page.screenshot(path=str(folder / f"{request.node.name}.png"), full_page=True)


def dagster_page(page, pipeline, path: str):
    page.goto(f"http://127.0.0.1:{pipeline['ports']['dagster']}{path}")
    skip = page.get_by_role("button", name="Skip")  # Dagster's first-visit newsletter dialog
    try:
        skip.click(timeout=5_000)
    except Exception:
        pass


def test_ui_dagster_lists_every_asset(ui, pipeline):
    from pipelines.definitions import defs

    dagster_page(ui, pipeline, "/assets")
    for key in sorted(defs.resolve_asset_graph().get_all_asset_keys()):
        ui.get_by_text(key.to_user_string(), exact=True).first.wait_for()


def test_ui_zero_shot_matrix_is_a_table_once(ui, pipeline):
    """Issue 31: the 3-class matrix showed three times (a table, Markdown, a heatmap), each image followed by raw
    `_url` and `_path` rows. Now each matrix is one Dagster table, the heatmaps are links."""
    dagster_page(ui, pipeline, "/assets/zero_shot_matrix")
    ui.get_by_text("matrix_3class", exact=True).wait_for()
    table = ui.locator("table", has_text="shipped model").first
    table.wait_for()
    assert "demo+groove" in table.inner_text()
    keys = metadata_keys(ui)
    assert keys.count("matrix_3class") == 1 and keys.count("matrix_5class") == 1 and "matrix" not in keys
    assert {"heatmap_3class", "heatmap_5class", "mlflow_run"} <= set(keys)
    assert ui.locator("img").count() == 0 or not ui.locator("img[src*='get-artifact']").count()


def metadata_keys(page) -> list[str]:
    """The keys of the Metadata table of an asset page (its first column)."""
    page.get_by_text("Metadata", exact=True).first.wait_for()
    return [k.strip() for k in page.locator("table tbody > tr > td:first-child").all_inner_texts()]


#: Asset pages of the tiny graph with tables and figures, each checked for what issue 31 found on them.
ASSET_PAGES = ("zero_shot_matrix", "tatum_study", "trimmed_transcriber", "drum_stems", "quantization_stats",
               "transcriber", "lm_gru", "lm_bigram", "features", "kit_catalogue", "beats", "drum_scores", "tracks")

#: What passes the right edge of the visible page: the metadata table wider than its scroll container (Dagster
#: then hides the rest: a long unbreakable value, a wide table), or a table or image wider than its value cell.
OVERFLOW_JS = """() => {
  const boxes = [...document.querySelectorAll('[class*="assetEventMetadataScrollContainer"]')];
  if (!boxes.length) return ['no metadata table'];
  const out = boxes.filter(b => b.scrollWidth > b.clientWidth + 1).map(b => ['metadata table', b.scrollWidth,
                                                                           b.clientWidth]);
  for (const row of document.querySelectorAll('table tbody > tr')) {
    const cells = row.querySelectorAll(':scope > td');
    if (cells.length < 3) continue;
    const value = cells[cells.length - 1], edge = value.getBoundingClientRect().right;
    for (const el of value.querySelectorAll('table, img')) {
      const over = el.getBoundingClientRect().right - edge;
      if (over > 1) out.push([cells[0].innerText.trim(), el.tagName, Math.round(over)]);
    }
  }
  return out;
}"""


@pytest.mark.parametrize("asset", ASSET_PAGES)
def test_ui_asset_page_fits_and_reads_as_tables(ui, pipeline, asset):
    """Issue 31: tables and figures cut off at the right edge, raw JSON values, tables behind "[Show Markdown]",
    raw `_url`/`_path` rows beside images, no MLflow link on assets that log a run."""
    dagster_page(ui, pipeline, f"/assets/{asset}")
    keys = metadata_keys(ui)
    ui.wait_for_function("() => [...document.images].every(i => i.complete)")
    assert ui.evaluate(OVERFLOW_JS) == [], f"{asset}: cut off at the right edge"
    assert ui.get_by_text("[Show Markdown]").count() == 0, f"{asset}: a table behind [Show Markdown]"
    json_like = [v for v in ui.locator("table tbody > tr > td:last-child").all_inner_texts()
                 if v.strip().startswith(("{", "[")) and v.strip().endswith(("}", "]"))]
    assert json_like == [], f"{asset}: raw JSON values"
    assert not [k for k in keys if k.endswith(("_url", "_path", "_run_id"))], f"{asset}: raw link rows {keys}"
    if asset not in ("kit_catalogue", "features", "drum_scores", "tracks"):  # the assets that log no MLflow run
        assert "mlflow_run" in keys, f"{asset}: no MLflow link"


def test_ui_figures_are_images_sized_to_the_page(ui, pipeline):
    dagster_page(ui, pipeline, "/assets/tatum_study")
    image = ui.locator("img[src*='get-artifact']").first  # Fig. 3, served by MLflow
    image.wait_for()
    ui.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert ui.evaluate(OVERFLOW_JS) == []


def test_ui_check_names_are_whole(ui, pipeline):
    """Issue 31: check names were cut ("quantization_w...threshold_demo")."""
    for asset, check in (("quantization_stats", "conflict_far_demo"), ("transcriber", "not_worse_than_shipped"),
                         ("trimmed_transcriber", "reference_transcribes")):
        dagster_page(ui, pipeline, f"/assets/{asset}?view=checks")
        ui.get_by_text(check, exact=True).first.wait_for()


def test_ui_runs_of_make_demo_can_be_re_executed(ui, pipeline):
    run_id = pipeline["cold"]["run_ids"][-1]
    dagster_page(ui, pipeline, f"/runs/{run_id}")
    button = ui.get_by_role("button", name=re.compile("Re-execute")).first
    button.wait_for()
    assert button.is_enabled()


def test_ui_overview_timeline_and_job_history_show_make_demos_runs(ui, pipeline):
    """Issue 31: the Overview timeline said "No runs or scheduled ticks in this time period" and the job pages had
    no history, though the Runs list held make demo's runs."""
    dagster_page(ui, pipeline, "/overview/activity/timeline")
    ui.get_by_text("adt_downstream", exact=True).first.wait_for()
    assert ui.get_by_text("No runs or scheduled ticks").count() == 0
    downstream = pipeline["cold"]["run_ids"][-1]
    dagster_page(ui, pipeline, "/locations/pipelines/jobs/adt_downstream/runs")
    ui.get_by_text(downstream[:8]).first.wait_for()
    assert ui.get_by_text("You have not materialized any assets with this job yet").count() == 0


def test_mlflow_runs_have_unique_names_and_span_their_work(pipeline):
    """Issue 31: runs lasted 36-139 ms (opened after the work), and two runs of adt/transcriber were both
    sweep[demo+groove] (the sweep and its helper process: the helper's run is now nested under the sweep's)."""
    import mlflow

    from adt import tracking

    tracking.setup()
    runs = mlflow.search_runs(search_all_experiments=True)
    cold = set(pipeline["cold"]["run_ids"])  # the runs of make demo's Dagster runs (later tests re-run stages)
    top = runs[runs["tags.mlflow.parentRunId"].isna() & runs["tags.dagster.run_id"].isin(cold)]
    repeated = top.groupby(["experiment_id", "tags.mlflow.runName"]).size()
    assert repeated.max() == 1, repeated[repeated > 1]
    downstream = pipeline["cold"]["run_ids"][-1]
    steps = {s.step_key: s.end_time - s.start_time for s in pipeline["instance"].get_run_step_stats(downstream)}
    for step, name in (("zero_shot_matrix", "zero-shot-matrix"), ("trimmed_transcriber", "trimming-study")):
        run = top[top["tags.mlflow.runName"] == name].iloc[0]
        seconds = (run.end_time - run.start_time).total_seconds()
        assert seconds >= 0.5 * steps[step], (name, seconds, steps[step])  # was well under a second


def test_ui_mlflow_runs_link_back_to_dagster_and_models_open_in_the_training_view(ui, pipeline):
    import mlflow

    from adt import tracking

    tracking.setup()
    run = mlflow.search_runs(experiment_names=["adt/zero_shot"]).iloc[0]
    ui.goto(f"http://127.0.0.1:{pipeline['ports']['mlflow']}/#/experiments/{run.experiment_id}/runs/{run.run_id}")
    link = ui.locator(f"a[href$='/runs/{run['tags.dagster.run_id']}']").first  # in the run's description
    link.wait_for()
    assert link.inner_text().strip() == run["tags.dagster.run_id"][:8]
    uri = pipeline["cold"]["transcriber"].model_uri
    url = tracking.model_url(uri)
    assert url.endswith("?workflowType=machine_learning")
    ui.goto(url)
    ui.get_by_text(re.compile(rf"Version {uri.rsplit('/', 1)[1]}")).first.wait_for()


def test_ui_mlflow_opens_on_runs_with_metrics(ui, pipeline):
    from adt import tracking

    ui.goto(tracking.experiment_url("zero_shot"))
    ui.get_by_text("zero-shot-matrix", exact=True).first.click()
    ui.get_by_text(re.compile(r"Metrics \(\d+\)")).first.wait_for()
    assert ui.get_by_text(re.compile(r"^f3\.demo\.")).first.is_visible()


@pytest.mark.faults
def test_a_zeroed_cached_feature_is_named_and_recomputed(pipeline):
    """Issue 29's probe: 4 KB zeroed in a cached feature file used to load silently ("no run"); now the plan names
    it, the features stage recomputes it (a warning naming it) and the rest stays cached."""
    cold = pipeline["cold"]
    x = Path(cold["features"].items(["mdb"], "test")[0].x)
    original = np.load(x)
    with open(x, "r+b") as f:
        f.seek(256)
        f.write(bytes(4096))
    lines: list[str] = []
    out = pipeline["run_all"]("tiny", instance=pipeline["instance"], echo=lines.append)
    assert any(line.startswith("corrupt cached output: ") and str(x) in line for line in lines), lines
    assert any(line.startswith("adt_downstream") and "features: corrupt" in line for line in lines), lines
    np.testing.assert_allclose(np.load(x), original, atol=1e-5)
    assert out["features"].key == cold["features"].key and out["transcriber"].key == cold["transcriber"].key
    from adt.cache import verify

    assert verify() == []


@pytest.mark.faults
def test_a_truncated_champion_fails_its_check_and_the_summary_does_not_name_it(pipeline):
    """A registered champion whose checkpoint was truncated: the check fails on the next run, warm or not, and the
    summary never names it as the model adt transcribe uses."""
    import mlflow

    from adt import tracking
    from adt.config import data_dir
    from pipelines.materialize import summary

    assert pipeline["cold"]["checks"]["champion_reproduces"] and pipeline["cold"]["registered"]["champion"][0]
    tags = mlflow.MlflowClient().get_model_version_by_alias(tracking.MODEL_NAME, "champion").tags
    assert float(tags["check_track_f"]) == pytest.approx(pipeline["cold"]["registered"]["champion"][1]["reproduced_f"])
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{tracking.MODEL_NAME}@champion"))
    champion = next(p for p in folder.iterdir() if p.suffix == ".pt").read_bytes()
    copies = [p for p in data_dir().rglob("*.pt") if p.stat().st_size == len(champion) and p.read_bytes() == champion
              and "mlartifacts" in p.parts]
    assert copies
    try:
        for p in copies:
            p.write_bytes(champion[: len(champion) // 2])
        out = pipeline["run_all"]("tiny", instance=pipeline["instance"], echo=lambda line: None)
        assert out["checks"]["champion_reproduces"] is False
        text = summary(out, 1.0)
        assert "champion does not load" in text and "adt transcribe uses the champion" not in text
        assert "champion_reproduces" in text  # among the failed checks
    finally:
        for p in copies:
            p.write_bytes(champion)
