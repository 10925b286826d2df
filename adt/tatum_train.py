"""Tatum-level training data and the training of the frame-to-tatum CRNN (tatum paper, Secs. III-B, III-D, IV-D).

A :class:`TatumTrack` is one track on one tatum grid: its features X (T frames x F
bins at 100 fps), the tatum times b_1..b_M (seconds), the frame -> tatum owner map
of Eq. 1 (:func:`adt.tatum_model.tatum_spans`) and the target score Y_hat (M x K)
from the annotated onsets, each snapped to its nearest tatum (:func:`adt.scores.drum_score`,
Sec. IV-B). Training segments are windows of whole tatums (default 64 = 4 bars of
16th notes) with their frames, right-padded and masked in a batch.

:func:`train_tatum_model` trains :class:`adt.tatum_model.TatumCRNN` with Eq. 4
(weight gamma on onset tatums) plus, when a pretrained drum-score LM is given,
alpha * L_lang of the gumbel-sigmoid sample (Eq. 5, :func:`adt.regularization.regularized_loss`);
the LM is frozen. Optimizer as in Sec. IV-D: AdamW, lr 1e-3, weight decay 1e-4,
betas (0.9, 0.999), eps 1e-9. The step with the best validation tatum-level
F-measure (delta = 0.2) is kept.

Choices the paper leaves open (documented here):

* gamma without LM: the paper tunes gamma only for the regularized models
  (0.46 bigram, 0.61 GRU); the unregularized model uses gamma = 1 (plain binary
  cross entropy), the neutral value: the low threshold delta = 0.2 already offsets
  the rarity of onset tatums.
* training and validation grids: ground-truth tatums (the targets then hold every
  annotated onset up to conflicts); estimated tatums are for testing.
* gradient clipping at norm 2 (as the frame-level model, thesis ch. 5).
* initialization: PyTorch's defaults (the paper's He / Uniform(0, 1) initialization
  is not reproduced; Uniform(0, 1) output weights start with saturated sigmoids).
"""

from __future__ import annotations

import copy
import dataclasses
import random
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from adt.features import FPS
from adt.regularization import regularized_loss, tatum_bce
from adt.scores import drum_score
from adt.tatum_model import TatumCRNN, tatum_spans
from adt.vocab import CLASS_INDEX, CLASSES_5, INDEX_3_IN_5, classes

#: Loss weights per regularizer (tatum paper Sec. IV-D; gamma without LM: see the module docstring).
PAPER_WEIGHTS: dict[str, dict[str, float]] = {
    "none": {"gamma": 1.0, "alpha": 0.0},
    "bigram": {"gamma": 0.46, "alpha": 0.068},
    "gru": {"gamma": 0.61, "alpha": 0.055},
}


@dataclasses.dataclass(frozen=True)
class TatumTrainConfig:
    """Hyperparameters of :func:`train_tatum_model` (defaults: tatum paper Sec. IV-D where it gives them)."""

    k: int = 3  # drums: 3 (BD SD HH, the paper) or 5
    steps: int = 400
    eval_every: int = 50
    batch_size: int = 8
    segment_tatums: int = 64  # 4 bars of 16th notes
    lr: float = 1e-3
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-9
    gamma: float = 1.0  # Eq. 4
    alpha: float = 0.0  # Eq. 5 (used only with an LM)
    tau: float = 0.2  # Eq. 8
    threshold: float = 0.2  # delta, binarization of phi
    grad_clip: float = 2.0
    channels: int = 32
    conv_layers: int = 4
    hidden: int = 98
    gru_layers: int = 3
    dropout: float = 0.3
    seed: int = 1234


def paper_config(regularizer: str, **overrides) -> TatumTrainConfig:
    """:class:`TatumTrainConfig` with gamma and alpha of :data:`PAPER_WEIGHTS` (``"none"``, ``"bigram"``, ``"gru"``).

    Raises:
        ValueError: an unknown regularizer.
    """
    if regularizer not in PAPER_WEIGHTS:
        raise ValueError(f"unknown regularizer {regularizer!r}; choose one of {sorted(PAPER_WEIGHTS)}")
    return TatumTrainConfig(**{**PAPER_WEIGHTS[regularizer], **overrides})


# ------------------------------------------------------------------------------------------------ data


@dataclasses.dataclass
class TatumTrack:
    """One track on one tatum grid.

    Attributes:
        track_id: name (for messages).
        x: (T, F) features at 100 fps (may be memory-mapped).
        tatums_s: (M,) tatum times in seconds, strictly increasing, inside the T frames.
        owner: (T,) int64 tatum index of each frame (Eq. 1 spans), -1 outside every span.
        y: (M, K) float32 target score Y_hat (1 = onset of drum k snapped to tatum m).
        onset_times: (N,) annotated onset times in seconds (for time-tolerance scoring).
        onset_drums: (N,) int64 indices into ``CLASSES_5``.
    """

    track_id: str
    x: np.ndarray
    tatums_s: np.ndarray
    owner: np.ndarray
    y: np.ndarray
    onset_times: np.ndarray
    onset_drums: np.ndarray

    @property
    def n_tatums(self) -> int:
        return len(self.tatums_s)


def _drum_indices(drums, track_id: str) -> np.ndarray:
    arr = np.asarray(drums).reshape(-1)
    if arr.size and (arr.dtype.kind in "US" or arr.dtype == object):
        try:
            return np.array([CLASS_INDEX[str(d)] for d in arr], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"{track_id}: unknown drum label {exc.args[0]!r}; expected one of {CLASSES_5}") from None
    return arr.astype(np.int64)


def make_track(track_id: str, x: np.ndarray, tatums_s: np.ndarray, onset_times: np.ndarray, onset_drums,
               k: int = 3) -> TatumTrack:
    """Build a :class:`TatumTrack`; tatums at or after the last frame (T / 100 s) or before 0 are dropped.

    Args:
        x: (T, F) features at 100 fps.
        tatums_s: tatum times in seconds (M,), strictly increasing.
        onset_times: annotated onset times in seconds (N,).
        onset_drums: (N,) drum names ("BD", ...) or indices into ``CLASSES_5``.
        k: 3 (BD SD HH) or 5.

    Raises:
        ValueError: x not 2-D, bad tatums or onsets (from :func:`adt.scores.drum_score`), or
            fewer than 2 tatums inside the features; the message names the track.
    """
    classes(k)
    x = np.asarray(x)  # a memory-mapped array stays mapped
    if x.ndim != 2:
        raise ValueError(f"{track_id}: features must be (T, F), got shape {x.shape}")
    tatums = np.asarray(tatums_s, dtype=np.float64).reshape(-1)
    inside = (tatums >= 0) & (tatums * FPS < x.shape[0])
    tatums = tatums[inside]
    if tatums.size < 2:
        raise ValueError(f"{track_id}: fewer than 2 tatums inside its {x.shape[0]} feature frames")
    drums = _drum_indices(onset_drums, track_id)
    times = np.asarray(onset_times, dtype=np.float64).reshape(-1)
    try:
        y = drum_score(times, drums, tatums, k=k)
    except ValueError as exc:
        raise ValueError(f"{track_id}: {exc}") from None
    owner = tatum_spans(np.round(tatums * FPS, 6), x.shape[0]).numpy()  # rounding: no float noise in ceil()
    return TatumTrack(track_id, x, tatums, owner, y.T.astype(np.float32), times, drums)


@dataclasses.dataclass
class Segment:
    """A window of whole tatums [start, start + L) of a track with the frames of their spans.

    Attributes: x (T_s, F) float32; owner (T_s,) local tatum index 0..L-1; y (L, K).
    """

    x: np.ndarray
    owner: np.ndarray
    y: np.ndarray


def cut_segment(track: TatumTrack, start: int, length: int) -> Segment:
    """Tatums ``start .. start + length - 1`` (clipped to the track) and the frames they own (Eq. 1 spans).

    Raises:
        ValueError: start outside the track, length < 1, or no frame in the window.
    """
    m = track.n_tatums
    if not 0 <= start < m or length < 1:
        raise ValueError(f"{track.track_id}: segment start {start} / length {length} outside its {m} tatums")
    stop = min(start + length, m)
    frames = np.nonzero((track.owner >= start) & (track.owner < stop))[0]
    if frames.size == 0:
        raise ValueError(f"{track.track_id}: tatums {start}..{stop - 1} own no frame")
    f0, f1 = int(frames[0]), int(frames[-1]) + 1  # spans are contiguous and ordered
    return Segment(np.asarray(track.x[f0:f1], dtype=np.float32), track.owner[f0:f1] - start,
                   np.asarray(track.y[start:stop], dtype=np.float32))


def segment_starts(n_tatums: int, length: int) -> list[int]:
    """First tatums of consecutive, non-overlapping windows covering a track (the last may be shorter)."""
    return list(range(0, n_tatums, length))


def collate(segments: Sequence[Segment]) -> dict[str, torch.Tensor | int]:
    """Right-pad segments into a batch.

    Returns:
        ``x`` (B, T, F) float32 (zeros as padding), ``owner`` (B, T) long (-1 as padding),
        ``y`` (B, M, K) float32, ``mask`` (B, M) bool (True for real tatums), ``n_tatums`` M.
    """
    b = len(segments)
    t = max(len(s.x) for s in segments)
    m = max(len(s.y) for s in segments)
    f, k = segments[0].x.shape[1], segments[0].y.shape[1]
    x = np.zeros((b, t, f), dtype=np.float32)
    owner = np.full((b, t), -1, dtype=np.int64)
    y = np.zeros((b, m, k), dtype=np.float32)
    mask = np.zeros((b, m), dtype=bool)
    for i, s in enumerate(segments):
        x[i, : len(s.x)] = s.x
        owner[i, : len(s.owner)] = s.owner
        y[i, : len(s.y)] = s.y
        mask[i, : len(s.y)] = True
    return {"x": torch.from_numpy(x), "owner": torch.from_numpy(owner), "y": torch.from_numpy(y),
            "mask": torch.from_numpy(mask), "n_tatums": m}


def sample_batch(tracks: Sequence[TatumTrack], batch_size: int, length: int, rng: np.random.Generator) -> dict:
    """A random batch: tracks drawn in proportion to their tatums, a uniform window start in each."""
    weights = np.array([t.n_tatums for t in tracks], dtype=np.float64)
    picks = rng.choice(len(tracks), size=batch_size, p=weights / weights.sum())
    segs = []
    for i in picks:
        track = tracks[int(i)]
        start = int(rng.integers(0, max(1, track.n_tatums - length + 1)))
        segs.append(cut_segment(track, start, length))
    return collate(segs)


# ------------------------------------------------------------------------------------------------ LMs


class MarginalizedGRULM(nn.Module):
    """A 5-class :class:`adt.gru_lm.GRUDrumLM` scoring 3-class (BD SD HH) scores.

    p(Y3[:, m] = c | history) = sum of p(c5 | history) over the TT and CY bits of c5
    (exact marginal of the current tatum); the history is fed with TT = CY = 0
    (an approximation: the 3-class score holds no toms or cymbals). A 3-class GRU LM
    trained on 3-class scores is preferable when available.
    """

    def __init__(self, lm5: nn.Module, rows: Sequence[int] = INDEX_3_IN_5):
        super().__init__()
        if getattr(lm5, "k", None) != len(CLASSES_5):
            raise ValueError(f"MarginalizedGRULM needs a 5-class GRU LM, got K={getattr(lm5, 'k', None)}")
        self.lm = lm5
        self.rows = list(rows)
        self.k = len(self.rows)
        bits5 = lm5.bits.long()  # (32, 5)
        c3 = sum(bits5[:, r] << j for j, r in enumerate(self.rows))  # (32,) 3-class code of each 5-class code
        self.register_buffer("group", c3, persistent=False)
        bits3 = (torch.arange(2 ** self.k)[:, None] >> torch.arange(self.k)[None, :]) & 1
        self.register_buffer("bits3", bits3.float(), persistent=False)

    def nll(self, Y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """NLL in nats per score of (B, 3, M) relaxed scores (as :meth:`adt.gru_lm.GRUDrumLM.nll`); (B,)."""
        b, k, m = Y.shape
        if k != self.k:
            raise ValueError(f"Y has K={k} drums, expected {self.k}")
        y5 = Y.new_zeros(b, len(CLASSES_5), m)
        y5[:, self.rows] = Y
        logp5 = self.lm(y5)  # (B, M, 32)
        logp3 = torch.stack([torch.logsumexp(logp5[..., self.group == c], dim=-1) for c in range(2 ** k)], dim=-1)
        y = Y.to(logp3.dtype).transpose(1, 2)[:, :, None, :]  # (B, M, 1, K)
        q = torch.prod(self.bits3 * y + (1 - self.bits3) * (1 - y), dim=-1)  # (B, M, 2^K)
        per_tatum = -(q * logp3).sum(-1)
        if mask is not None:
            per_tatum = per_tatum * mask.to(per_tatum.dtype)
        return per_tatum.sum(1)


def freeze(lm):
    """Eval mode and no gradients for an LM's parameters (gradients still reach its input). Returns ``lm``."""
    if isinstance(lm, nn.Module):
        lm.eval()
        lm.requires_grad_(False)
    return lm


def load_lm(kind: str, path: str, k: int = 3):
    """A frozen drum-score LM for K-class scores.

    Args:
        kind: ``"bigram"`` (:class:`adt.lm.SkipBigramLM` JSON) or ``"gru"`` (:func:`adt.gru_lm.save` checkpoint).
        path: the saved model; for the GRU LM a 5-class model serves K = 3 through
            :class:`MarginalizedGRULM`.

    Raises:
        ValueError: unknown kind or an LM of the wrong K. FileNotFoundError: no such file.
    """
    if kind == "bigram":
        from adt.lm import SkipBigramLM

        lm = SkipBigramLM.load(path)
        if lm.n_drums != k:
            raise ValueError(f"{path}: bigram LM of K={lm.n_drums} drums, need K={k}")
        return lm
    if kind == "gru":
        from adt import gru_lm

        lm = gru_lm.load(path)
        if lm.k == k:
            return freeze(lm)
        if lm.k == len(CLASSES_5) and k == 3:
            return freeze(MarginalizedGRULM(lm))
        raise ValueError(f"{path}: GRU LM of K={lm.k} drums cannot score K={k} scores")
    raise ValueError(f"unknown LM kind {kind!r}; choose 'bigram' or 'gru'")


# ------------------------------------------------------------------------------------------------ model use


@torch.no_grad()
def predict_tatums(model: TatumCRNN, track: TatumTrack, chunk_tatums: int = 512) -> np.ndarray:
    """Tatum-level onset probabilities phi of one track, (M, K), in windows of ``chunk_tatums`` tatums."""
    was = model.training
    model.eval()
    out = []
    for start in segment_starts(track.n_tatums, chunk_tatums):
        batch = collate([cut_segment(track, start, chunk_tatums)])
        out.append(torch.sigmoid(model(batch["x"], batch["owner"], batch["n_tatums"]))[0].numpy())
    model.train(was)
    return np.concatenate(out)


def save_model(model: TatumCRNN, path) -> None:
    """torch.save ``{"config", "state_dict"}`` atomically."""
    from adt.atomic import atomic_path

    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"config": model.config, "state_dict": model.state_dict()}, tmp)


def load_model(path) -> TatumCRNN:
    """A model written by :func:`save_model` (eval mode, CPU)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = TatumCRNN(**state["config"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


def _standardization(tracks: Sequence[TatumTrack]) -> tuple[np.ndarray, np.ndarray]:
    total = sq = 0.0
    n = 0
    for t in tracks:
        x = np.asarray(t.x, dtype=np.float64)
        total, sq, n = total + x.sum(0), sq + np.square(x).sum(0), n + len(x)
    mean = total / n
    return mean.astype(np.float32), np.sqrt(np.maximum(sq / n - mean ** 2, 0.0)).astype(np.float32)


def train_tatum_model(train_tracks: Sequence[TatumTrack], val_tracks: Sequence[TatumTrack],
                      config: TatumTrainConfig = TatumTrainConfig(), lm=None,
                      stats: tuple[np.ndarray, np.ndarray] | None = None,
                      on_eval: Callable[[int, dict], None] | None = None) -> tuple[TatumCRNN, list[dict]]:
    """Train a :class:`TatumCRNN` (Eq. 4, or Eq. 5 with ``lm``); keep the step with the best validation F.

    Args:
        train_tracks, val_tracks: :class:`TatumTrack` with K = ``config.k`` target columns.
        lm: a pretrained drum-score LM with ``nll(Y (B, K, M), mask)`` (:func:`load_lm`); it is frozen
            here. None: no regularization (alpha unused).
        stats: per-bin (mean, std), shape (F,), for the input standardization; default: the training tracks'.
        on_eval: called with (step, metrics) at every evaluation (for MLflow logging).

    Returns:
        (best model in eval mode, history): one entry per evaluation with ``step``, ``loss``,
        ``tran`` and ``lang`` (means since the last evaluation; ``lang`` NaN without LM),
        ``val_f``, ``val_p``, ``val_r`` (tatum level, delta = ``config.threshold``) and ``seconds``.

    Raises:
        ValueError: no training tracks, targets whose K differs from ``config.k``, features of
            differing widths, or a non-finite loss (the message gives the step).
    """
    from adt.tatum_eval import binarize, tatum_prf

    if not train_tracks:
        raise ValueError("no training tracks")
    widths = {t.x.shape[1] for t in [*train_tracks, *val_tracks]}
    ks = {t.y.shape[1] for t in [*train_tracks, *val_tracks]}
    if len(widths) != 1 or ks != {config.k}:
        raise ValueError(f"tracks have feature widths {sorted(widths)} and K {sorted(ks)}; "
                         f"need one width and K={config.k}")
    torch.set_flush_denormal(True)  # denormals slow GRU training on CPU up to 100x
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = TatumCRNN(n_features=widths.pop(), n_classes=config.k, channels=config.channels,
                      conv_layers=config.conv_layers, hidden=config.hidden, gru_layers=config.gru_layers,
                      dropout=config.dropout)
    mean, std = stats if stats is not None else _standardization(train_tracks)
    model.set_standardization(torch.as_tensor(mean), torch.as_tensor(std))
    lm = freeze(lm) if lm is not None else None
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                            betas=tuple(config.betas), eps=config.eps)
    names = classes(config.k)
    best, best_state, history = None, None, []
    window: dict[str, list[float]] = {"loss": [], "tran": [], "lang": []}
    start = time.perf_counter()
    for step in range(1, config.steps + 1):
        model.train()
        batch = sample_batch(train_tracks, config.batch_size, config.segment_tatums, rng)
        logits = model(batch["x"], batch["owner"], batch["n_tatums"])
        if lm is None:
            loss = tatum_bce(logits, batch["y"], config.gamma, batch["mask"])
            parts = {"tran": float(loss.detach()), "lang": float("nan")}
        else:
            loss, parts = regularized_loss(logits, batch["y"], lm, config.alpha, config.gamma, config.tau,
                                           batch["mask"], gen)
        if not torch.isfinite(loss):
            raise ValueError(f"non-finite loss {float(loss)} at step {step} ({parts})")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        window["loss"].append(float(loss.detach()))
        window["tran"].append(parts["tran"])
        window["lang"].append(parts["lang"])
        if step % config.eval_every and step != config.steps:
            continue
        metrics = {"step": step, **{k: float(np.mean(v)) for k, v in window.items()}}
        window = {k: [] for k in window}
        if val_tracks:
            ests = [binarize(predict_tatums(model, t).T, config.threshold) for t in val_tracks]
            val = tatum_prf(ests, [t.y.T for t in val_tracks], names)
            metrics.update(val_f=val["f"], val_p=val["p"], val_r=val["r"])
            score = val["f"]
        else:
            metrics.update(val_f=float("nan"), val_p=float("nan"), val_r=float("nan"))
            score = -metrics["loss"]
        metrics["seconds"] = time.perf_counter() - start
        history.append(metrics)
        if on_eval:
            on_eval(step, metrics)
        if best is None or score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model.eval(), history


#: Optuna search space of the loss weights (log-uniform; the paper's tuned values lie inside).
WEIGHT_SPACE = {"gamma": (0.25, 4.0), "alpha": (1e-3, 0.3)}


def tune_weights(train_tracks: Sequence[TatumTrack], val_tracks: Sequence[TatumTrack], config: TatumTrainConfig,
                 n_trials: int, lm=None, stats: tuple[np.ndarray, np.ndarray] | None = None,
                 on_trial: Callable[[int, dict], None] | None = None,
                 ) -> tuple[TatumCRNN, list[dict], dict]:
    """Tune gamma (Eq. 4) and, with ``lm``, alpha (Eq. 5) on the validation tatum F-measure with
    Optuna (TPE, seeded), as the tatum paper does (Sec. IV-D); the other settings are ``config``'s.

    The first trial is ``config``'s own weights (the paper's), so the result is never worse on
    validation than the untuned model. Without ``lm`` only gamma is searched.

    Args:
        n_trials: trials (>= 1), each a full :func:`train_tatum_model` run.
        on_trial: called with (trial number, {"gamma", "alpha", "val_f"}) after each trial.

    Returns:
        (best model, its history, {"gamma", "alpha", "val_f", "trials": [per-trial dicts]}).

    Raises:
        ValueError: ``n_trials`` < 1, or what :func:`train_tatum_model` raises.
    """
    import optuna

    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial({"gamma": config.gamma, **({"alpha": config.alpha} if lm is not None else {})})
    best: dict = {}
    trials: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        weights = {"gamma": trial.suggest_float("gamma", *WEIGHT_SPACE["gamma"], log=True),
                   "alpha": trial.suggest_float("alpha", *WEIGHT_SPACE["alpha"], log=True) if lm is not None else 0.0}
        model, history = train_tatum_model(train_tracks, val_tracks, dataclasses.replace(config, **weights), lm=lm,
                                           stats=stats)
        val_f = max(h["val_f"] for h in history)
        trials.append({"trial": trial.number, **weights, "val_f": val_f})
        if on_trial:
            on_trial(trial.number, trials[-1])
        if not best or val_f > best["val_f"]:
            best.update(model=model, history=history, val_f=val_f, **weights)
        return val_f

    study.optimize(objective, n_trials=n_trials)
    return best["model"], best["history"], {"gamma": best["gamma"], "alpha": best["alpha"], "val_f": best["val_f"],
                                            "trials": trials}
