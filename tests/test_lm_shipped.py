"""The GRU LMs shipped in ``adt/pretrained`` (:mod:`adt.lm.shipped`), fine-tuning from them, the ``lm_gru`` stage's
choice between fitted and shipped (:func:`adt.lm.fit._fit_k`) and the GRU-beats-bigram check
(:func:`adt.lm.fit.gru_beats_bigram`), on real Groove MIDI scores."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import shutil
import zipfile

import numpy as np
import pandas as pd
import pretty_midi
import pytest
import torch

from adt.config import get_profile
from adt.lm import shipped
from adt.lm.corpus import ScoreError, score_from_midi
from adt.lm.corpus import DrumScoresResult
from adt.lm.fit import LmBigramResult, LmGruResult, _fit_k, gru_beats_bigram
from adt.lm.gru import train_gru_lm
from adt.vocab import INDEX_3_IN_5


@pytest.mark.parametrize("k", [5, 3])
def test_the_card_states_each_files_checksum_and_it_loads(k):
    path = shipped.shipped_lm_path(k)
    card = path.parent / f"{shipped.SHIPPED_LM}.md"
    stated = re.search(rf"SHA-256\*\* of `{re.escape(path.name)}`: `([0-9a-f]{{64}})`", card.read_text()).group(1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stated == shipped.stated_sha256(k)
    assert path.stat().st_size <= 10 * 1024 * 1024
    for section in ("## Training data", "## Figures", "## Reproduce", "| train |", "CC BY 4.0"):
        assert section in card.read_text(), section
    model = shipped.shipped_lm(k)
    assert (model.k, model.layers, model.hidden) == (k, 3, 64)  # the tatum paper's 3 x 64 (Sec. IV-A)
    assert not model.training
    assert shipped.describe(k) == f"shipped adt/pretrained/{path.name} (sha256 {stated})"


def test_a_corrupted_or_missing_copy_is_refused_with_the_file_named(tmp_path):
    shutil.copy(shipped.shipped_lm_path(5), tmp_path)
    assert shipped.shipped_lm(5, tmp_path).k == 5  # an intact copy loads
    weights = tmp_path / shipped.shipped_lm_path(5).name
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(weights))}: SHA-256 [0-9a-f]{{64}} differs"):
        shipped.shipped_lm(5, tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / shipped.shipped_lm_path(3).name))):
        shipped.shipped_lm(3, tmp_path)  # not copied
    with pytest.raises(ValueError, match="K = 5 or 3"):
        shipped.shipped_lm_path(4)


@pytest.fixture(scope="module")
def groove(shared_datasets) -> dict[str, list[np.ndarray]]:
    """5-class scores of real Groove beats (first in file order; cropped to 256 tatums): 6 train, 3 validation,
    3 test performances of the official split."""
    scores: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    with zipfile.ZipFile(shared_datasets / "groove-v1.0.0-midionly.zip") as z:
        df = pd.read_csv(io.BytesIO(z.read("groove/info.csv")))
        df = df[(df["beat_type"] == "beat") & (df["time_signature"] == "4-4")]
        for split, n in (("train", 6), ("validation", 3), ("test", 3)):
            for name in df[df["split"] == split]["midi_filename"].head(n):
                try:
                    pm = pretty_midi.PrettyMIDI(io.BytesIO(z.read(f"groove/{name}")))
                    scores[split].append(score_from_midi(pm, k=5)[:, :256])
                except ScoreError:
                    pass
    assert all(len(v) >= 2 for v in scores.values())
    return scores


@pytest.mark.parametrize("k", [5, 3])
def test_fine_tuning_the_shipped_lm_never_ends_worse_on_validation(groove, k):
    rows = slice(None) if k == 5 else list(INDEX_3_IN_5)
    train, val = ([y[rows] for y in groove[s]] for s in ("train", "validation"))
    start = shipped.shipped_lm(k)
    before = {name: p.clone() for name, p in start.state_dict().items()}
    start_ppl = start.perplexity(val)
    # real scores, and inverted ones (every drum where none is played): Adam steps on those only hurt, so the
    # starting weights must come back
    for scores, lr, epochs in ((train, 1e-3, 2), ([1 - y for y in train], 1e-2, 1)):
        model, history = train_gru_lm(scores, val, hidden=64, layers=3, epochs=epochs, lr=lr, seed=0, init=start)
        assert history[0] == {"epoch": 0, "train_nll": None, "val_perplexity": pytest.approx(start_ppl),
                              "seconds": 0.0}
        assert model.perplexity(val) <= start_ppl + 1e-9
        assert model.perplexity(val) == pytest.approx(min(h["val_perplexity"] for h in history))
    assert history[1]["val_perplexity"] > start_ppl
    for name, p in model.state_dict().items():  # the start itself, and start was not changed
        torch.testing.assert_close(p, before[name])
        torch.testing.assert_close(start.state_dict()[name], before[name])
    with pytest.raises(ValueError, match="init is a K="):
        train_gru_lm(train, val, hidden=32, layers=3, epochs=1, init=start)


def _drum_scores(groove: dict, folder) -> DrumScoresResult:
    """A :func:`adt.lm.corpus.build_drum_scores`-like manifest of the Groove scores (one test set, groove)."""
    paths: dict = {"k5": {}, "k3": {}}
    for split, ys in groove.items():
        for k, rows in (("k5", slice(None)), ("k3", list(INDEX_3_IN_5))):
            paths[k][split] = str(folder / f"{split}.{k}.npz")
            np.savez(paths[k][split], **{f"{split}{i}": y[rows] for i, y in enumerate(ys)})
    index = pd.DataFrame([("groove", f"{split}{i}", split, y.shape[1]) for split, ys in groove.items()
                          for i, y in enumerate(ys)], columns=["dataset", "track_id", "split", "tatums"])
    index.to_parquet(folder / "index.parquet", index=False)
    return DrumScoresResult(key="test", paths=paths, index=str(folder / "index.parquet"), skipped=[], counts=[])


def test_the_stage_keeps_the_shipped_lm_when_it_is_better_on_validation(groove, tmp_path):
    drum_scores = _drum_scores(groove, tmp_path)
    scratch = dataclasses.replace(get_profile("tiny").lm, final_epochs=1, start_from_shipped=False)
    for k, n in (("k5", 5), ("k3", 3)):
        # one epoch of a 1 x 8 GRU on 6 scores: far worse than the shipped LM, which is chosen and copied
        out = _fit_k(k, drum_scores, scratch, {"hidden": 8, "layers": 1}, tmp_path)
        assert out["started_from"] == "scratch" and out["chosen"] == "shipped", out["reason"]
        assert shipped.sha256(out["path"]) == shipped.stated_sha256(n)
        assert out["perplexity"]["validation"] == pytest.approx(out["shipped_validation"])
        assert set(out["perplexity"]) == {"validation", "test", "test.groove"}
    tuned = dataclasses.replace(scratch, start_from_shipped=True)
    out = _fit_k("k3", drum_scores, tuned, {"hidden": 64, "layers": 3}, tmp_path)
    assert out["started_from"] == shipped.describe(3)
    assert out["chosen"] in ("fine-tuned", "shipped")
    assert out["perplexity"]["validation"] <= out["shipped_validation"] + 1e-9


def _manifests(gru5: float, gru3: float) -> tuple[LmGruResult, LmBigramResult]:
    per_k = {"k5": "", "k3": ""}
    gru = LmGruResult(key="g", path="", path_k3="", best_params={}, history=[], model_uri="", trials=0,
                      started_from=per_k, chosen=per_k, chosen_reason=per_k, shipped_validation=per_k,
                      perplexity={"validation": 1.3, "test": gru5, "test.groove": gru5, "test.mdb": 1.25},
                      perplexity_k3={"validation": 1.4, "test": gru3, "test.groove": gru3})
    bigram = LmBigramResult(key="b", path="", path_k3="",
                            perplexity={"k5": {"train": 1.37, "test": 1.377, "test.groove": 1.377, "test.mdb": 1.19},
                                        "k3": {"train": 1.5, "test": 1.506, "test.groove": 1.506}})
    return gru, bigram


def test_the_gru_beats_bigram_check():
    passed, rows = gru_beats_bigram(*_manifests(1.263, 1.381))  # the shipped LMs' Groove figures (README)
    assert passed
    assert {(r["k"], r["set"]) for r in rows} == {("k5", "test"), ("k5", "test.groove"), ("k5", "test.mdb"),
                                                 ("k3", "test"), ("k3", "test.groove")}
    assert not next(r for r in rows if r["set"] == "test.mdb")["beats"]  # informative only: "test" decides
    # degenerate: an under-trained GRU near chance (2), on K = 3 only, or on both
    assert not gru_beats_bigram(*_manifests(1.263, 1.95))[0]
    assert not gru_beats_bigram(*_manifests(1.99, 1.99))[0]
    gru, bigram = _manifests(1.263, 1.381)
    del gru.perplexity_k3["test"]  # no test figures for K = 3: not passed on nothing
    assert not gru_beats_bigram(gru, bigram)[0]
