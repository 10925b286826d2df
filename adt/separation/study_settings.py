"""The separation study's models and sizes: :data:`MODELS` and :class:`StudySettings`.

The model names of :mod:`adt.separation.study` (the shared-encoder procedures of
:mod:`adt.separation.procedures`, Open-Unmix, the shipped separator, the mixture, the transfer
experiment) and the sizes one study runs with, read from a profile.
"""

from __future__ import annotations

import dataclasses

from adt.config import SeparationSettings
from adt.separation import procedures
from adt.separation.unet import SOURCES, UNetConfig


#: name -> (procedure, encoder variant, decoder output); Open-Unmix and the floor are handled apart. The paper's
#: rows regress ReLU magnitudes; ``*_mask`` (a variant, extra rows) learns sigmoid soft masks on the mixture.
SHARED_MODELS = {
    "independent": ("independent", "encoder", "magnitude"),
    "simultaneous": ("simultaneous", "encoder", "magnitude"),
    "interleaved": ("interleaved", "encoder", "magnitude"),
    "interleaved_acc": ("interleaved_acc", "encoder", "magnitude"),
    "interleaved_encoder+": ("interleaved", "encoder+", "magnitude"),
    "independent_mask": ("independent", "encoder", "mask"),
    "simultaneous_mask": ("simultaneous", "encoder", "mask"),
    "interleaved_mask": ("interleaved", "encoder", "mask"),
}


#: the separator shipped with the package as a row of the study
SHIPPED = "shipped"


MODELS = (*SHARED_MODELS, "open_unmix", "umxl", "umxhq", SHIPPED, "mixture")


TRANSFER = "interleaved_other_later"


#: suffix of a shared-encoder model scored with ratio masks over its decoders
RATIO = "+ratio"


@dataclasses.dataclass(frozen=True)
class StudySettings:
    """Sizes of the study (:meth:`from_section`): ``rounds`` per shared-encoder model (see
    :mod:`adt.separation.procedures`), ``umx_steps`` for Open-Unmix on ``umx_tracks`` training tracks (it
    holds them in memory), ``eval_tracks`` test renders,
    ``val_tracks`` validation renders, ``mdb_tracks`` MDB recordings (None: all; 0: none), ``eval_s`` seconds
    of each evaluated render (real songs: whole), ``patience`` validations without improvement before a model
    stops (None: never; paper: 30 epochs), ``real_test_fold``: the real-song fold tested (None: every real song
    trains), ``real_eval_s``: seconds of each real song evaluated (None: whole; the graph's profiles:
    ``eval_s``); ``models``: the models of :data:`MODELS` run (None: every one; the mixture always),
    ``transfer``: the transfer experiment too, ``start_from_shipped``: the models with the shipped
    separator's architecture start from its weights (:mod:`adt.separation.study`), trained then at ``fine_tune_lr`` (the
    paper's 2e-4: at our 1e-3 from scratch, the demo's fine-tuning made every validation loss worse, 0.285 ->
    0.327 in 24 rounds; at 2e-4 better, 0.285 -> 0.261)."""

    rounds: int = 160
    batch_size: int = 8
    patch_frames: int = 65
    freq_pool: int = 2
    umx_steps: int = 600
    umx_tracks: int = 64
    eval_tracks: int = 8
    val_tracks: int = 4
    mdb_tracks: int | None = None
    eval_s: float = 20.0
    patience: int | None = 6
    real_test_fold: int | None = 0
    real_eval_s: float | None = None
    models: tuple | None = None
    transfer: bool = True
    start_from_shipped: bool = False
    fine_tune_lr: float = 2e-4
    seed: int = 1234

    @classmethod
    def from_section(cls, separation: SeparationSettings) -> "StudySettings":
        """The sizes of a profile's separation section; the transfer experiment only with every model
        (``models`` None); ``start_from_shipped`` and ``seed`` as the section's."""
        s = separation
        models = None if s.models is None else tuple(s.models)
        return cls(rounds=s.rounds, batch_size=s.batch, umx_steps=s.steps, eval_tracks=s.eval_tracks,
                   val_tracks=max(2, s.eval_tracks // 2), mdb_tracks=s.mdb_tracks, eval_s=s.eval_s,
                   real_eval_s=s.eval_s, models=models, transfer=models is None,
                   start_from_shipped=s.start_from_shipped, seed=s.seed)

    def model_names(self) -> tuple:
        """The models run (``models``, every one of :data:`MODELS` when None), the mixture last when not named.

        Raises:
            ValueError: an unknown model name.
        """
        names = MODELS if self.models is None else tuple(self.models)
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise ValueError(f"unknown separation models {unknown}; expected some of {list(MODELS)}")
        return names if "mixture" in names else (*names, "mixture")

    def train_settings(self, rounds: int | None = None, fine_tune: bool = False) -> procedures.ProcedureConfig:
        """Validation every quarter of the rounds, every 10 at most (a short fine-tuning validates 5 times);
        ``fine_tune``: at ``fine_tune_lr``."""
        rounds = rounds or self.rounds
        lr = {"lr": self.fine_tune_lr} if fine_tune else {}
        return procedures.ProcedureConfig(rounds=rounds, batch_size=self.batch_size,
                                        val_every=max(1, min(10, rounds // 4)), patience=self.patience,
                                        seed=self.seed, **lr)

    def config(self, encoder: str = "encoder", sources=SOURCES, output: str = "magnitude") -> UNetConfig:
        return UNetConfig(sources=tuple(sources), encoder_plus=encoder == "encoder+", freq_pool=self.freq_pool,
                          patch_frames=self.patch_frames, output=output)
