"""CPU settings for PyTorch training on a few cores: flushing denormals, thread counts."""

from __future__ import annotations

import contextlib

import torch


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
