"""What a trimmed model costs and how well it transcribes (lottery paper Table 1 columns).

* ``params``: parameters (a masked model: those not masked);
* ``size_bytes``: the saved state dict (``torch.save``; a masked model keeps its zeros);
* ``flops``: floating point operations of one 4-s input (400 frames), counted by
  ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, recurrent layers included);
* ``peak_mb``: resident memory added while transcribing 60 s (:class:`adt.memory.PeakMemory`);
* ``latency_s_per_min``: seconds to compute the activation function of 60 s of audio (6,000 frames) on
  2 CPU threads, the best of 2 runs (features excluded);
* ``test_error.<dataset>``: 1 - micro F-measure (3 classes BD SD HH, 50 ms, mir_eval) on each test
  split, and ``test_error`` on all of them pooled; ``val_error`` the same on the validation tracks.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from adt.cpu import torch_threads
from adt.frame.checkpoint import transcribe_features
from adt.memory import PeakMemory
from adt.metrics import micro_f_measure
from adt.vocab import CLASSES_3

#: frames of the FLOP count's input (4 s at 100 fps, the paper's "single input example" for our models)
FLOP_FRAMES = 400
#: frames of the latency and memory measurements (60 s at 100 fps)
LATENCY_FRAMES = 6000
LATENCY_THREADS = 2


def size_bytes(model: torch.nn.Module) -> int:
    """Bytes of the saved state dict."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


@torch.no_grad()
def flops(model: torch.nn.Module, n_features: int, frames: int = FLOP_FRAMES) -> int:
    """FLOPs of one (1, frames, n_features) input (``FlopCounterMode``)."""
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, frames, n_features))
    return int(counter.get_total_flops())


def latency_and_memory(model: torch.nn.Module, n_features: int, repeats: int = 2) -> tuple[float, float]:
    """(seconds for 60 s of audio on 2 threads, best of ``repeats``; peak MB added by one run)."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((LATENCY_FRAMES, n_features), dtype=np.float32))
    with torch_threads(LATENCY_THREADS):
        with PeakMemory() as memory:
            model.activations(x)
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model.activations(x)
            best = min(best, time.perf_counter() - start)
    return best, memory.mb


def errors(model: torch.nn.Module, sets: dict[str, list[tuple[Path, dict]]], prefix: str) -> dict[str, float]:
    """``{prefix}.<dataset>`` = 1 - 3-class micro F per set, and ``prefix`` over all sets pooled."""
    out, all_refs, all_ests = {}, [], []
    for name, items in sets.items():
        refs = [ref for _, ref in items]
        ests = [transcribe_features(model, np.load(path, mmap_mode="r")) for path, _ in items]
        out[f"{prefix}.{name}"] = 1 - micro_f_measure(refs, ests, classes=CLASSES_3)["f"]
        all_refs += refs
        all_ests += ests
    out[prefix] = 1 - micro_f_measure(all_refs, all_ests, classes=CLASSES_3)["f"] if all_refs else float("nan")
    return out


def measure(model: torch.nn.Module, n_features: int, test_sets: dict[str, list], val_items: list,
            params: int | None = None) -> dict[str, float]:
    """Every column of the module docstring for ``model`` (``params``: override, e.g. unmasked weights)."""
    latency, memory = latency_and_memory(model, n_features)
    return {"params": params if params is not None else sum(p.numel() for p in model.parameters()),
            "size_bytes": size_bytes(model), "flops": flops(model, n_features), "latency_s_per_min": latency,
            "peak_mb": memory, **errors(model, test_sets, "test_error"),
            "val_error": errors(model, {"validation": val_items}, "val_error")["val_error"]}
