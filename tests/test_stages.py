"""The stage registry (adt.stages) is the one place the graph is written: the Dagster assets are generated from
it, the architecture page's diagram is its diagram, and every stage returns a typed result, never a dict."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from adt.results import StageResult
from adt.stages import BY_NAME, STAGES, mermaid, needed

ROOT = Path(__file__).resolve().parents[1]


def test_the_dagster_graph_is_the_registry():
    import dagster as dg

    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == set(BY_NAME)
    for stage in STAGES:
        node = graph.get(dg.AssetKey(stage.name))
        assert {p.to_user_string() for p in node.parent_keys} == set(stage.inputs + stage.deps), stage.name
        assert node.code_version == stage.version and node.group_name == stage.group
        assert node.is_partitioned == stage.partitioned
        assert (node.tags.get("adt/stage") == "training") == stage.training


def test_the_stages_are_in_graph_order_and_read_only_stages():
    order = [s.name for s in STAGES]
    for i, stage in enumerate(STAGES):
        assert set(stage.inputs + stage.deps) <= set(order[:i]), stage.name
        assert set(stage.partitions) <= set(stage.inputs)
    assert needed("tatums") == ["kit_catalogue", "raw_dataset", "dataset_tables", "tracks", "drum_stems", "beats",
                                "tatums"]
    with pytest.raises(ValueError, match="unknown stage"):
        needed("nope")


def test_every_stage_returns_a_frozen_typed_result():
    for stage in STAGES:
        assert issubclass(stage.result, StageResult) and dataclasses.is_dataclass(stage.result), stage.name
        assert stage.result.__dataclass_params__.frozen, stage.name
        hints = stage.run.__annotations__
        assert hints.get("return") in (stage.result.__name__, stage.result), stage.name
        assert "settings" in hints and all(i in hints for i in stage.inputs), stage.name


def test_a_result_round_trips_and_says_what_it_lacks():
    from adt.rhythm.tatum_table import TatumsResult

    result = TatumsResult(key="k", path="/x/tatums.parquet", rows=3, subdivisions=4, skipped=["a (madmom): short"])
    assert TatumsResult.from_json(result.to_json()) == result
    assert TatumsResult.from_manifest({**result.to_json(), "files": {}, "stage": "tatums"}) == result  # cache keys
    with pytest.raises(ValueError, match=r"TatumsResult: the manifest lacks \['rows'\]"):
        TatumsResult.from_manifest({"key": "k", "path": "/x", "subdivisions": 4, "skipped": []})


def test_the_architecture_page_shows_the_registry():
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.S).group(1).strip()
    assert block == mermaid(), "docs/architecture.md: paste `python -m adt.stages` (the registry's diagram)"
    for stage in STAGES:
        assert f"`{stage.name}`" in text, stage.name
