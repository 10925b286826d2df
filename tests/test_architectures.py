"""The thesis's five frame-level architectures (adt.frame.architectures) and their Optuna search spaces."""

from __future__ import annotations

import io

import optuna
import pytest
import torch

from adt.frame.architectures import ARCHITECTURES, build, count_parameters, suggest
from adt.frame.recipe import weighted_bce
from adt.frame.search_spaces import OPTIMIZER_SPACE, SEARCH_SPACES, search_space_table

NAMES = list(ARCHITECTURES)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


def smallest(name: str) -> dict:
    """FixedTrial params: each architecture's first (smallest) choice, a mid-range optimizer."""
    params = {f"{name}.{k}": c.values[0] for k, c in SEARCH_SPACES[name].items()}
    return {**params, "lr": 3e-3, "weight_decay": 1e-4}


def small_model(name: str, n_features: int = 80, n_classes: int = 5):
    params = suggest(optuna.trial.FixedTrial(smallest(name)), name)
    return build(name, params, n_features, n_classes)


@pytest.mark.parametrize("name", NAMES)
def test_shapes_gradients_and_activations(name):
    model = small_model(name, 80, 5)
    x = torch.randn(2, 400, 80)
    logits = model(x)
    assert logits.shape == (2, 400, 5)
    logits.square().mean().backward()
    first = next(model.parameters())  # the first layer's weight (registered first)
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())

    model84 = small_model(name, 84, 3)
    assert model84(torch.randn(1, 137, 84)).shape == (1, 137, 3)
    act = model84.activations(torch.randn(137, 84))
    assert act.shape == (137, 3) and not model84.training
    assert float(act.min()) >= 0 and float(act.max()) <= 1
    with pytest.raises(ValueError, match="84"):
        model84(torch.randn(1, 137, 80))


@pytest.mark.parametrize("name", NAMES)
def test_standardization_inside_forward_and_rebuild_from_config(name):
    model = small_model(name).eval()
    mean, std = torch.linspace(-3, 3, 80), torch.linspace(0.5, 2, 80)
    model.set_standardization(mean, std)
    x = torch.randn(1, 50, 80)
    twin = type(model)(**model.config).eval()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(twin(x * std + mean), model(x * std + mean))
    plain = type(model)(**model.config).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k not in ("mean", "std")}, strict=False)
    torch.testing.assert_close(plain(x), model(x * std + mean), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        model.set_standardization(torch.zeros(84), torch.ones(84))


def _synthetic_batch(n_features: int = 80):
    """Random spectrogram; drum 0 onsets where low bins light up, drum 1 where high bins do."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 48, n_features, generator=g) * 0.5
    y = torch.zeros(2, 48, 5)
    low = torch.rand(2, 48, generator=g) < 0.15
    high = torch.rand(2, 48, generator=g) < 0.15
    x[..., :20] += 3 * low[..., None]
    x[..., -20:] += 3 * high[..., None]
    y[..., 0], y[..., 1] = low.float(), high.float()
    return x, y


@pytest.mark.parametrize("name", NAMES)
def test_a_few_adamw_steps_lower_the_loss(name):
    x, y = _synthetic_batch()
    params = suggest(optuna.trial.FixedTrial(smallest(name)), name)
    model = build(name, params, 80, 5)
    opt = torch.optim.AdamW(model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    model.eval()  # measure without dropout
    with torch.no_grad():
        before = float(weighted_bce(model(x), y))
    model.train()
    for _ in range(25):
        opt.zero_grad()
        loss = weighted_bce(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)  # thesis Sec. 5.3
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(x)
    after = float(weighted_bce(logits, y))
    assert after < 0.3 * before, (before, after)
    prob = torch.sigmoid(logits)
    for k in (0, 1):  # the activation function now follows the visible feature
        on = y[..., k] > 0
        assert prob[..., k][on].mean() > 0.5 > prob[..., k][~on].mean()


def test_optuna_study_samples_the_thesis_spaces():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for name in NAMES:
        for _ in range(4):
            trial = study.ask()
            params = suggest(trial, name)
            assert set(params) == {f"{name}.{k}" for k in SEARCH_SPACES[name]} | {"lr", "weight_decay"}
            for key, choice in SEARCH_SPACES[name].items():
                assert params[f"{name}.{key}"] in choice.values
            assert trial.distributions["lr"] == optuna.distributions.FloatDistribution(1e-4, 5e-3, log=True)
            assert trial.distributions["weight_decay"] == optuna.distributions.FloatDistribution(1e-6, 1e-2, log=True)
            assert 1e-4 <= params["lr"] <= 5e-3 and 1e-6 <= params["weight_decay"] <= 1e-2
            model = build(name, params, 84, 5)
            assert model(torch.randn(1, 12, 84)).shape == (1, 12, 5)
            study.tell(trial, 0.0)
    assert (OPTIMIZER_SPACE["lr"].low, OPTIMIZER_SPACE["lr"].high) == (1e-4, 5e-3)
    assert (OPTIMIZER_SPACE["weight_decay"].low, OPTIMIZER_SPACE["weight_decay"].high) == (1e-6, 1e-2)


def test_thesis_search_space_values():
    assert SEARCH_SPACES["rnn"]["layers"].values == (2, 3, 4, 5, 6)
    assert SEARCH_SPACES["crnn"]["layers"].values == (2, 3, 4, 5)
    assert SEARCH_SPACES["cnn"]["fc_hidden"].values == (72, 144, 288, 576)
    assert SEARCH_SPACES["vision_transformer"]["patch_height"].values == (7, 14, 21)
    assert SEARCH_SPACES["vision_transformer"]["layers"].values == (2, 4, 6, 8, 10)
    table = search_space_table()
    for name in NAMES:
        for key in SEARCH_SPACES[name]:
            assert f"`{name}.{key}`" in table
    assert "log-uniform [0.0001, 0.005]" in table and "log-uniform [1e-06, 0.01]" in table


def test_unknown_names_and_foreign_params_raise():
    with pytest.raises(ValueError, match="known: rnn, cnn, crnn, conv_transformer, vision_transformer"):
        build("lstm", {}, 80, 5)
    with pytest.raises(ValueError, match="known"):
        suggest(optuna.trial.FixedTrial({}), "resnet")
    with pytest.raises(ValueError, match="crnn.hidden"):
        build("rnn", {"crnn.hidden": 72}, 80, 5)
    with pytest.raises(ValueError, match="divisible"):
        build("vision_transformer", {"vision_transformer.d_model": 70}, 84, 5)


def test_transformer_activations_use_overlapping_windows():
    model = small_model("conv_transformer", 84, 3).eval()
    model.window = 40  # instance override of the 400-frame window
    x = torch.randn(137, 84)
    act = model.activations(x)
    assert act.shape == (137, 3)
    # windows start at 0, 20, 40, ...; frame 30 lies on the boundary, so it comes from the second window
    with torch.no_grad():
        torch.testing.assert_close(act[30], torch.sigmoid(model(x[20:60].unsqueeze(0)))[0, 10])
        torch.testing.assert_close(act[:30], torch.sigmoid(model(x[:40].unsqueeze(0)))[0, :30])


@pytest.mark.parametrize("name", NAMES)
def test_model_survives_torch_save_and_load(name):
    model = small_model(name).eval()
    model.set_standardization(torch.full((80,), 0.5), torch.full((80,), 2.0))
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    x = torch.randn(1, 30, 80)
    assert type(loaded) is type(model) and loaded.config == model.config
    torch.testing.assert_close(loaded(x), model(x))


def test_parameter_counts_at_smallest_settings():
    counts = {name: count_parameters(small_model(name, 84, 5)) for name in NAMES}
    assert counts == {name: sum(p.numel() for p in small_model(name, 84, 5).parameters()) for name in NAMES}
    assert all(10_000 < n < 1_000_000 for n in counts.values()), counts
