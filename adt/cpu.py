"""CPU settings for PyTorch training on a few cores: flushing denormals, thread counts.

Threads and OpenMP waiting (``benchmarks/bench_threads.py``, 2 cores, batch 16 x 4 s):
``adt`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set, because spinning OpenMP
threads slow down two processes sharing the cores (FrameCRNN, 2 threads each: 0.45
steps/s per process with ACTIVE, 0.52 with libgomp's default, once 0.08; 0.97 with
PASSIVE). Under passive waiting a second thread costs the recurrent frame models more
than it brings (a barrier wake-up per time step of a small GRU): FrameCRNN 1.08 steps/s on 1 thread vs 0.67 on 2, the thesis RNN 2.61 vs
0.84, so they train on one thread (:data:`TRAINING_THREADS`); the convolutional and
attention models gain from two (CNN 0.78 -> 1.24, tatum CRNN 0.56 -> 0.74). On a
machine of its own, ``OMP_WAIT_POLICY=ACTIVE`` with 2 threads is faster still
(FrameCRNN 1.42, CRNN 0.55 vs 0.35) but never safe to share.
"""

from __future__ import annotations

import contextlib

import torch


#: torch threads of every stage that does not choose its own: the target machine's 2 cores
DEFAULT_THREADS = 2

#: torch threads while training, per architecture (adt.frame.recipe / adt.frame.architectures names); others: 2
TRAINING_THREADS = {"frame_crnn": 1, "rnn": 1}


def training_threads(architecture: str, default: int = 2) -> int:
    """Torch CPU threads to train ``architecture`` with (module docstring; measured on 2 cores)."""
    return TRAINING_THREADS.get(architecture, default)


@contextlib.contextmanager
def flush_denormals():
    """Flush denormal floats to zero while the block runs (restores torch's default, off).

    Without it GRU/LSTM forward/backward passes and Adam's second-moment updates slow
    down by up to ~100x on x86 CPUs once tiny gradients underflow into denormals.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` (None: unchanged); restores the old count.

    Raises:
        ValueError: n < 1.
    """
    if n is None:
        yield
        return
    if int(n) < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class DeviceError(ValueError):
    """The requested torch device is unknown or unavailable."""


def check_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"`` when usable (``adt transcribe``/``adt separate --device``).

    Raises:
        DeviceError: another device name, or ``"cuda"`` while torch sees no CUDA device.
    """
    if device not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {device!r}: use cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device cuda: CUDA is not available (torch {torch.__version__}, "
                          f"built for CUDA {torch.version.cuda or 'none'}); use --device cpu")
    return device
