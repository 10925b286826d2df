"""The hyperparameter search spaces of the frame-level architectures (thesis ch. 3, Table 5.1).

:data:`SEARCH_SPACES` (per architecture, keys are the constructor kwargs of
:mod:`adt.frame.architectures`), :data:`OPTIMIZER_SPACE` (AdamW's), :data:`FIXED` (what the thesis
does not search) and :func:`search_space_table` (all of them as Markdown, with sources).
:func:`adt.frame.architectures.suggest` samples them with an Optuna trial.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Choice:
    """An architecture hyperparameter drawn uniformly from ``values`` (thesis Table 5.1: random choice)."""

    values: tuple
    meaning: str
    source: str


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """An optimizer hyperparameter drawn log-uniformly from [low, high] (thesis Table 5.1)."""

    low: float
    high: float
    meaning: str
    source: str = "Table 5.1"


#: Architecture search spaces (thesis ch. 3); keys are the constructor kwargs.
SEARCH_SPACES: dict[str, dict[str, Choice]] = {
    "rnn": {
        "cell": Choice(("gru", "lstm"), "recurrent unit", "Sec. 3.1.1"),
        "layers": Choice((2, 3, 4, 5, 6), "layers L", "Sec. 3.1.1"),
        "hidden": Choice((72, 144, 288), "hidden size H", "Sec. 3.1.1"),
    },
    "cnn": {
        "conv_blocks": Choice((1, 2, 3), "conv blocks I (32, 64, 96 kernels)", "Sec. 3.2.1"),
        "fc_layers": Choice((1, 2, 3, 4), "fully connected layers L", "Sec. 3.2.1"),
        "fc_hidden": Choice((72, 144, 288, 576), "latent size H", "Sec. 3.2.1"),
    },
    "crnn": {
        "cell": Choice(("gru", "lstm"), "recurrent unit", "Sec. 3.3.1"),
        "layers": Choice((2, 3, 4, 5), "layers L", "Sec. 3.3.1"),
        "hidden": Choice((72, 144, 288), "hidden size H", "Sec. 3.3.1"),
    },
    "conv_transformer": {
        "d_model": Choice((72, 144, 288), "embedding dimension D_e", "Sec. 3.4.1"),
        "layers": Choice((2, 4, 6, 8), "attention blocks L", "Sec. 3.4.1"),
        "heads": Choice((2, 4, 6, 8), "heads H", "Sec. 3.4.1"),
    },
    "vision_transformer": {
        "patch_height": Choice((7, 14, 21), "patch height P (bins)", "Table 3.1"),
        "heads": Choice((2, 4, 6, 8), "heads H", "Table 3.1"),
        "layers": Choice((2, 4, 6, 8, 10), "attention blocks L", "Table 3.1"),
        "d_model": Choice((72, 144, 288, 576), "embedding dimension D_e", "Table 3.1"),
    },
}


#: AdamW's search space, the same for every architecture (thesis Sec. 5.6.2, Table 5.1).
OPTIMIZER_SPACE: dict[str, LogUniform] = {
    "lr": LogUniform(1e-4, 5e-3, "learning rate"),
    "weight_decay": LogUniform(1e-6, 1e-2, "weight decay"),
}


#: settings the thesis fixes (not searched) and their sources, shown by :func:`search_space_table`
FIXED: dict[str, tuple[str, str]] = {
    "cnn": ("block: 2 x [conv 3x3, ReLU, BN], max pool 1x3 (freq.), dropout 0.3; ReLU FC layers",
            "Sec. 3.2.1, thesis code"),
    "crnn": ("2 conv blocks of 32 and 64 kernels; recurrent dropout 0.1", "Sec. 3.3.1, thesis code"),
    "conv_transformer": ("2 conv blocks of 32 and 64 kernels; pre-LN, GELU feed-forward 4 D_e, dropout 0.1",
                         "Sec. 3.4.1, thesis code"),
    "vision_transformer": ("patches of 1 frame x P bins, one D_e token per frame; encoder as conv transformer",
                           "Sec. 3.5.2-3.5.3"),
}


def search_space_table() -> str:
    """Markdown table of every architecture's search space and the optimizer's, with thesis sources."""
    rows = ["| Architecture | Parameter | Hyperparameter | Values | Source |", "|---|---|---|---|---|"]
    for name, space in SEARCH_SPACES.items():
        for key, c in space.items():
            rows.append(f"| {name} | `{name}.{key}` | {c.meaning} | "
                        f"{{{', '.join(str(v) for v in c.values)}}} | {c.source} |")
        if name in FIXED:
            rows.append(f"| {name} | (fixed) | | {FIXED[name][0]} | {FIXED[name][1]} |")
    for key, r in OPTIMIZER_SPACE.items():
        rows.append(f"| all | `{key}` | {r.meaning} (AdamW) | log-uniform [{r.low:g}, {r.high:g}] | {r.source} |")
    return "\n".join(rows)
