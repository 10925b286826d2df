"""Lottery-ticket trimming (adt.trimming, lottery paper Sec. 3): criteria, the rebuilt network, rewinding,
masking vs trimming, checkpoints, and the schedule on a real recording."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from adt.frame.architectures import CNN, CRNN, RNN, FrameCRNN
from adt.frame.checkpoint import load_model
from adt.frame import units
from adt.trimming import criteria, masking
from adt.trimming.lottery import Line, Schedule, export


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_cnn() -> CNN:
    """conv(4) -> ReLU -> BN -> conv(4) -> ReLU -> BN -> pool -> dense(4) -> ReLU -> out(2), 9 bins."""
    return CNN(n_features=9, n_classes=2, conv_blocks=1, fc_layers=1, fc_hidden=4, channels=(4,)).eval()


def frame_crnn() -> FrameCRNN:
    return units.split_recurrent(FrameCRNN(n_features=80, n_classes=5, channels=(4, 8), hidden=6, layers=2).eval())


def test_links_follow_the_forward_order_and_never_the_output():
    found = units.links(frame_crnn())
    assert [link.name for link in found] == ["conv.0", "conv.3", "conv.8", "conv.11", "gru.layers.0", "gru.layers.1"]
    assert found[0].norm == "conv.1" and found[3].consumers == [("gru.layers.0", 8, "blocks")]  # 8 ch x 80 // 9 bins
    assert found[-1].consumers == [("out", 2, "directions")]
    with pytest.raises(ValueError, match="attention"):
        from adt.frame.architectures import ConvTransformer

        units.links(ConvTransformer())


def test_magnitude_batchnorm_and_activation_pick_the_expected_unit():
    model = small_cnn()
    conv = model.conv[0]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for unit, value in enumerate((1.0, 3.0, 0.0, 2.0)):  # unit 2: all-zero kernel, so silent too
            conv.weight[unit, 0, 1, 1] = value
        model.conv[2].weight.copy_(torch.tensor([0.5, -2.0, 0.01, 1.0]))  # the BN scale gamma
    link = units.links(model)[0]
    np.testing.assert_allclose(criteria.magnitude(model, link), [1, 3, 0, 2], atol=1e-6)  # Eq. 3
    np.testing.assert_allclose(criteria.batchnorm(model, link), [0.5, 2.0, 0.01, 1.0], atol=1e-6)  # Eq. 5
    act = criteria.scores(model, "activation", [torch.rand(50, 9) + 0.1, torch.rand(30, 9) + 0.1])["conv.0"]
    assert act[2] == 0 and (act[[0, 1, 3]] > 0).all()  # Eq. 4: the silent unit scores nothing
    for criterion in criteria.CRITERIA:
        scores = criteria.scores(model, criterion, [torch.rand(50, 9)])
        keep = criteria.select(model, scores, 0.2, "local")
        assert 2 not in keep["conv.0"].tolist()  # the weakest unit goes first under every criterion
    with pytest.raises(ValueError, match="unknown criterion"):
        criteria.scores(model, "gradient")


def test_the_earlier_global_mean_selection_ranks_units_by_their_layer_mean():
    model = small_cnn()
    scores = {"conv.0": torch.tensor([1.0, 1.0, 1.0, 1.0]), "conv.3": torch.tensor([10.0, 10.0, 10.0, 0.5]),
              "dense.0": torch.tensor([5.0, 5.0, 5.0, 5.0])}
    keep = criteria.select(model, scores, 0.1, "global_mean", rate_of="weights")
    assert keep["conv.3"].tolist() == [0, 1, 2] and len(keep["conv.0"]) == 4 and len(keep["dense.0"]) == 4
    almost_all = criteria.select(model, scores, 0.99, "global_mean", rate_of="weights")
    assert all(len(v) == criteria.MIN_UNITS for v in almost_all.values())  # the floor: no layer collapses


@pytest.mark.parametrize("selection", criteria.SELECTIONS)
def test_a_round_by_weights_removes_about_a_fifth_of_the_weights(selection):
    model = frame_crnn()
    keep = criteria.select(model, criteria.scores(model, "magnitude"), 0.2, selection, rate_of="weights")
    kept = units.count_parameters(units.shrink(model, keep)) / units.count_parameters(model)
    assert 0.7 <= kept <= 0.8


def test_each_criterion_is_the_authors_formula_on_a_hand_built_layer():
    """lottery_mir code/pruning.py (PruningTrimming.get_layer_values): magnitude = sum of |W| over the inputs, no
    bias; activation = sum of |output| of the layer itself (before its batch norm) over examples and positions;
    the global ranking divides a layer's values by their maximum."""
    model = small_cnn()
    conv, bn = model.conv[0], model.conv[2]
    with torch.no_grad():
        conv.weight.copy_(torch.randn_like(conv.weight))
        conv.bias.copy_(torch.tensor([5.0, -5.0, 0.0, 1.0]))  # no part of the authors' magnitude
        bn.weight.copy_(torch.tensor([0.1, 3.0, -0.2, 1.0]))
        bn.running_mean.copy_(torch.tensor([9.0, -9.0, 9.0, -9.0]))  # the batch norm changes what a post-BN hook sees
    link = units.links(model)[0]
    torch.testing.assert_close(criteria.magnitude(model, link), conv.weight.abs().sum(dim=(1, 2, 3)))
    torch.testing.assert_close(criteria.magnitude_l2(model, link),
                               (conv.weight.square().sum(dim=(1, 2, 3)) + conv.bias.square()).sqrt())
    examples = [torch.randn(40, 9), torch.randn(25, 9)]
    outputs = []
    handle = conv.register_forward_hook(lambda m, i, o: outputs.append(o.detach()))
    with torch.no_grad():
        for x in examples:
            model(x.unsqueeze(0))
    handle.remove()
    expected = sum(o.abs().sum(dim=(0, 2, 3)) for o in outputs)  # (B, C, T, F): all but the channel summed
    torch.testing.assert_close(criteria.scores(model, "activation", examples)["conv.0"], expected)
    assert not torch.allclose(criteria.scores(model, "activation_mean", examples)["conv.0"] * 65 * 9, expected)
    values = torch.tensor([2.0, 8.0, 4.0, 1.0])
    torch.testing.assert_close(criteria.normalise(values, "max"), values / 8)
    torch.testing.assert_close(criteria.normalise(values, "dimension"), values / 4)
    torch.testing.assert_close(criteria.normalise(values, "mean"), values / 3.75)


def test_a_round_removes_a_fifth_of_the_units_with_a_floor():
    model = frame_crnn()  # conv widths 4, 4, 8, 8; GRU 6, 6
    scores = criteria.scores(model, "magnitude")
    local = criteria.select(model, scores, 0.2, "local")
    assert {k: len(v) for k, v in local.items()} == {  # int(0.8 n), at least MIN_UNITS
        "conv.0": 3, "conv.3": 3, "conv.8": 6, "conv.11": 6, "gru.layers.0": 4, "gru.layers.1": 4}
    flat = {name: torch.arange(1.0, len(s) + 1) for name, s in scores.items()}  # the same normalised spread
    glob = criteria.select(model, flat, 0.2, "global")
    total = sum(len(s) for s in flat.values())
    removed = total - sum(len(v) for v in glob.values())
    assert removed == pytest.approx(0.2 * total, abs=2)  # the units under the 20th percentile of all layers
    for name, kept in glob.items():  # the lowest-scored units go, each layer keeps its best
        assert kept.tolist() == list(range(len(flat[name]) - len(kept), len(flat[name])))
    floor = criteria.select(model, scores, 0.9, "local")
    assert all(len(v) == criteria.MIN_UNITS for v in floor.values())
    assert all(len(v) == criteria.MIN_UNITS for v in criteria.select(model, scores, 0.9, "global").values())


def test_trimmed_network_keeps_its_output_shape_and_has_the_parameters_its_units_imply():
    model = frame_crnn()
    keep = {"conv.0": torch.tensor([0, 2, 3]), "conv.3": torch.tensor([1, 2]), "conv.8": torch.tensor([0, 5, 7]),
            "conv.11": torch.tensor([1, 2, 3, 4, 6]), "gru.layers.0": torch.tensor([0, 4]),
            "gru.layers.1": torch.tensor([1, 2, 5])}
    small = units.shrink(model, keep)
    x = torch.randn(2, 120, 80)
    assert small(x).shape == model(x).shape == (2, 120, 5)
    k0, k1, k2, k3, h0, h1 = 3, 2, 3, 5, 2, 3
    conv = lambda c_in, c: c_in * c * 9 + c + 2 * c  # kernel, bias, batch norm  # noqa: E731
    gru = lambda n_in, h: 2 * (3 * h * n_in + 3 * h * h + 6 * h)  # two directions  # noqa: E731
    expected = conv(1, k0) + conv(k0, k1) + conv(k1, k2) + conv(k2, k3) + gru(k3 * 8, h0) + gru(2 * h0, h1) \
        + 5 * 2 * h1 + 5
    assert units.count_parameters(small) == expected
    assert units.widths(small) == {"conv.0": 3, "conv.3": 2, "conv.8": 3, "conv.11": 5, "gru.layers.0": 2,
                                   "gru.layers.1": 3}


@pytest.mark.parametrize("cls", [FrameCRNN, CRNN, CNN, RNN])
def test_split_recurrent_layers_compute_the_same_function(cls):
    model = cls().eval()
    x = torch.randn(1, 60, 80)
    torch.testing.assert_close(units.split_recurrent(copy.deepcopy(model))(x), model(x))


def test_rewinding_restores_the_early_weights_of_the_kept_units():
    model = frame_crnn()
    early = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    keep = {"conv.3": torch.tensor([0, 3]), "gru.layers.0": torch.tensor([1, 4, 5])}
    rewound = units.shrink(model, keep, state=early)
    torch.testing.assert_close(rewound.conv[3].weight, early["conv.3.weight"][[0, 3]])
    torch.testing.assert_close(rewound.conv[8].weight, early["conv.8.weight"][:, [0, 3]])  # the next layer's inputs
    torch.testing.assert_close(rewound.conv[4].running_mean, early["conv.4.running_mean"][[0, 3]])
    h = 6
    rows = torch.tensor([g * h + i for g in range(3) for i in (1, 4, 5)])
    torch.testing.assert_close(rewound.gru.layers[0].weight_hh_l0_reverse,
                               early["gru.layers.0.weight_hh_l0_reverse"][rows][:, [1, 4, 5]])
    torch.testing.assert_close(rewound.gru.layers[1].weight_ih_l0,
                               early["gru.layers.1.weight_ih_l0"][:, [1, 4, 5, 7, 10, 11]])  # both directions
    torch.testing.assert_close(rewound.conv[0].weight, early["conv.0.weight"])  # untouched layer: all early


def test_masking_and_trimming_agree_on_the_same_kept_units_before_retraining():
    """Masking every input a removed unit feeds (the next layer's, and a recurrent unit's own layer's recurrent
    inputs) leaves the kept network's function: it equals the trimmed one."""
    model = frame_crnn()
    keep = {"conv.3": torch.tensor([0, 1, 3]), "conv.11": torch.tensor([0, 2, 3, 7]),
            "gru.layers.0": torch.tensor([0, 1, 5])}
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for link in units.links(model):
            if link.name not in keep:
                continue
            if link.kind == "rnn":
                gone = torch.ones(link.units, dtype=torch.bool)
                gone[keep[link.name]] = False
                for name, w in masked.get_submodule(link.name).named_parameters():
                    if name.startswith("weight_hh"):
                        w[:, gone] = 0
            for consumer, factor, layout in link.consumers:
                cols = units.input_index(keep[link.name], link.units, factor, layout)
                module = masked.get_submodule(consumer)
                for name, w in module.named_parameters():
                    if name.startswith("weight_ih") or name == "weight":
                        gone = torch.ones(w.shape[1], dtype=torch.bool)
                        gone[cols] = False
                        w[:, gone] = 0
    x = torch.randn(2, 90, 80)
    torch.testing.assert_close(units.shrink(model, keep)(x), masked(x), atol=1e-5, rtol=1e-4)


def test_weight_masks_remove_a_fifth_per_round_by_magnitude():
    model = frame_crnn()
    masks = masking.full(model)
    assert "out.weight" not in masks and "gru.layers.1.weight_hh_l0" in masks
    once = masking.prune(model, masks, 0.2)
    twice = masking.prune(model, once, 0.2)
    w = dict(model.named_parameters())["conv.3.weight"].detach().abs()
    assert w[~once["conv.3.weight"]].max() <= w[once["conv.3.weight"]].min()  # the smallest went
    alive = sum(int(m.sum()) for m in twice.values()) / sum(m.numel() for m in masks.values())
    assert alive == pytest.approx(0.64, abs=0.01)
    masking.apply(model, twice)
    assert float(dict(model.named_parameters())["conv.3.weight"][~twice["conv.3.weight"]].abs().sum()) == 0


def test_trimmed_checkpoint_round_trip(tmp_path):
    model = frame_crnn()
    model.architecture, model.hparams = "frame_crnn", {"channels": [4, 8], "hidden": 6, "layers": 2}
    keep = criteria.select(model, criteria.scores(model, "magnitude"), 0.5, "global")
    small = units.shrink(model, keep)
    loaded = load_model(export(small, tmp_path / "lite.pt"))
    x = torch.randn(1, 70, 80)
    torch.testing.assert_close(loaded(x), small(x))
    assert loaded.trimmed == units.widths(small)
    assert units.count_parameters(loaded) == units.count_parameters(small) < units.count_parameters(model) * 0.6


def test_schedule_and_lines():
    assert Schedule().rounds == 7  # 20% of the units: 0.64 ** 7 = 4.4% of a layer's weights left
    assert Schedule(of="weights").rounds == 14  # 0.8 ** 14 = 4.4% of the weights left: >= 95% removed
    assert Schedule(max_rounds=2).rounds == 2
    assert Line.parse("trim/activation/global").name == "trim/activation/global"
    assert Line.parse("mask") == Line("mask", "magnitude", "local")
    with pytest.raises(ValueError, match="unknown trimming method"):
        Line.parse("prune/magnitude/local")


def test_the_papers_drum_model_branches_into_one_head_per_drum():
    from adt.frame.architectures import LotteryDrumCNN

    assert 7.9e6 < units.count_parameters(LotteryDrumCNN()) < 8.2e6  # the paper's 8.1 M (Table 1)
    model = LotteryDrumCNN(channels=8, hidden=16, head=6).eval()
    found = {link.name: link for link in units.links(model)}
    assert [c for c, _, _ in found["fc.4"].consumers] == [f"heads.{k}.0" for k in range(5)]
    assert "heads.0.4" not in found  # each head's output layer stays
    keep = criteria.select(model, criteria.scores(model, "batchnorm"), 0.5, "global")
    small = units.shrink(model, keep)
    x = torch.randn(2, 40, 80)
    assert small(x).shape == model(x).shape == (2, 40, 5)
    assert units.count_parameters(small) <= 0.5 * units.count_parameters(model)


def test_every_profile_names_valid_trimming_lines():
    from adt.config import PROFILES
    from adt.trimming.study import lines_of

    for profile in PROFILES.values():
        lines = lines_of(profile.trimming)
        assert lines and all(seeds >= 1 for _, seeds in lines), profile.name
    standard = dict((line.name, n) for line, n in lines_of(PROFILES["standard"].trimming))
    assert standard["trim/magnitude/local"] >= 3  # the spread over seeds (issue 13)


def test_a_reference_can_start_from_a_given_transcriber():
    """``Task.init_path`` (the demo: the sweep's model fine-tuned from the shipped one): the reference starts
    from those weights, recurrent layers split, not from fresh ones."""
    from adt.frame.checkpoint import load_model
    from adt.frame.recipe import TrainConfig
    from adt.trimming.lottery import Task, _fresh
    from adt.transcribe.transcriber import pretrained_path

    shipped = load_model(pretrained_path())
    task = Task([], [], None, {}, TrainConfig(), "frame_crnn", dict(shipped.hparams), [], lambda *a: {},
                init_path=str(pretrained_path()))
    start = _fresh(task, seed=1)
    x = torch.randn(1, 200, shipped.config["n_features"])
    with torch.no_grad():
        assert torch.allclose(start.eval()(x), shipped(x), atol=1e-5)


def test_table_1_has_the_papers_optimal_best_and_smallest_networks(tmp_path):
    import pandas as pd

    from adt.trimming.study import figure2, picks, table1

    def row(round_, params, val, test, method="trim"):
        return {"line": f"{method}/magnitude/local", "method": method, "seed": 0, "round": round_, "params": params,
                "removed": 1 - params / 1000, "val_error": val, "test_error": test, "size_bytes": 4 * params,
                "flops": 10 * params, "peak_mb": 1.0, "latency_s_per_min": 0.1}

    table = pd.DataFrame([row(0, 1000, 0.20, 0.22), row(1, 640, 0.19, 0.21), row(2, 410, 0.21, 0.23),
                          row(3, 260, 0.28, 0.30), row(4, 170, 0.40, 0.41)])
    chosen = picks(table, ("trim",))
    assert {k: int(v["round"]) for k, v in chosen.items()} == {"optimal": 2, "best": 1, "smallest": 3}  # 1.1x, 1.5x
    text = table1(table)
    for name in ("reference", "trim (optimal)", "trim (best)", "trim (smallest)"):
        assert f"| {name} |" in text
    figure2(table, tmp_path / "fig2.png")
    assert (tmp_path / "fig2.png").stat().st_size > 10_000


@pytest.mark.parametrize("method", ["trim", "finetune", "mask"])
def test_every_round_trains_as_the_reference_did(method, tmp_path, monkeypatch):
    """Issue 30: equal training; the three lines differ only by their method (the same epochs and early stopping
    as the reference's, rewinding to the authors' epoch 1)."""
    from adt.frame.recipe import TrainConfig
    from adt.trimming import lottery

    epochs = []

    def train(task, seed, init, n_epochs, after_step=None, keep_state_at=None):
        epochs.append(n_epochs)
        return init, []

    monkeypatch.setattr(lottery, "_train", train)
    monkeypatch.setattr(lottery, "_save", lambda path, payload: None)
    monkeypatch.setattr(lottery, "load_round", lambda path: None)
    model = frame_crnn()
    task = lottery.Task([], [], None, {}, TrainConfig(epochs=6), "frame_crnn", {}, [],
                        lambda m, params: {"test_error": 0.3, "val_error": 0.3})
    assert task.rewind_epoch == lottery.REWIND_EPOCH == 1
    rows = lottery.run_line(task, Line(method), 0, Schedule(max_rounds=2), tmp_path,
                            (model, copy.deepcopy(model.state_dict()), {"test_error": 0.3, "val_error": 0.3}))
    assert epochs == [6, 6] and [r["round"] for r in rows] == [0, 1, 2]
    assert rows[2]["removed"] > rows[1]["removed"] > 0


def test_a_lite_round_keeps_four_fifths_of_every_layer_rewound_to_the_renders_model():
    """The shipped lite recipe (adt.trimming.lite) on the shipped transcribers' real weights: units chosen by
    magnitude on the trained (shipped) network, weights rewound to where its training started (the renders-only
    transcriber); a second round chains on the first's rewind state."""
    from adt.trimming import lite
    from adt.transcribe.transcriber import pretrained_path

    base = load_model(pretrained_path("frame_crnn_renders"))
    trained = load_model(pretrained_path())
    rewind = lite.rewind_point(base)
    start, rewind2 = lite.next_round(copy.deepcopy(trained), rewind)
    before, after = units.widths(units.split_recurrent(copy.deepcopy(trained))), start.trimmed
    assert after == {k: int(0.8 * n + 1e-9) for k, n in before.items()}
    scores = criteria.magnitude(units.split_recurrent(copy.deepcopy(trained)),
                                units.links(units.split_recurrent(copy.deepcopy(trained)))[0])
    kept = torch.sort(torch.argsort(scores, descending=True)[:after["conv.0"]]).values
    torch.testing.assert_close(start.conv[0].weight, base.conv[0].weight[kept])  # rewound, not trained weights
    assert start.peak_picking == trained.peak_picking and start.training
    second, _ = lite.next_round(start, rewind2)
    assert second.trimmed == {k: int(0.8 * n + 1e-9) for k, n in after.items()}
    with pytest.raises(ValueError, match="rewind state does not fit"):
        lite.next_round(copy.deepcopy(trained), rewind2)


def test_the_lite_round_is_the_smallest_within_the_tolerance_and_the_folds_median():
    from adt.trimming.lite import choose_round, picks, shipped_round

    assert choose_round([0.20, 0.21, 0.215, 0.25]) == 2  # 0.215 <= 1.1 x 0.20 < 0.25
    assert choose_round([0.20, 0.30, 0.21]) == 2  # the smallest qualifying, not the first
    assert choose_round([0.20, 0.40]) == 0
    assert picks([0.20, 0.21, 0.19, 0.29, 0.35]) == {"optimal": 2, "best": 2, "smallest": 3}
    assert picks([0.20]) == {"optimal": 0, "best": 0, "smallest": 0}
    assert shipped_round([1, 3, 2]) == 2 and shipped_round([1, 3]) == 1
    with pytest.raises(ValueError):
        choose_round([])
