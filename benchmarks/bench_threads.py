"""Training throughput on CPU per architecture, torch thread count and OpenMP wait policy.

Usage: .venv/bin/python benchmarks/bench_threads.py [--steps 8] [--concurrent]

Each configuration runs in a fresh subprocess (OMP_WAIT_POLICY is read when libgomp
loads) and times AdamW training steps on one batch of 16 x 4 s of 80-bin log mel
(400 frames at 100 fps), after 2 warm-up steps. ``--concurrent`` starts two identical
processes at once, as when a second run or the test suite shares the 2 cores.
Prints steps/s per process. Used to choose adt.cpu's defaults.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads({threads})
torch.set_flush_denormal(True)
torch.manual_seed(0)
from adt.frame.checkpoint import build_model
from adt.frame.recipe import TrainConfig, frame_crnn_params
from adt.tatum.model import TatumCRNN, tatum_spans
x = torch.randn(16, 400, 80)
if {arch!r} == "tatum_crnn":
    model = TatumCRNN()
    owner = tatum_spans(torch.arange(0, 400, 12), 400).expand(16, -1)
    y = (torch.rand(16, 34, 3) < 0.1).float()
    run = lambda: model(x, owner, 34)
else:
    params = frame_crnn_params(TrainConfig()) if {arch!r} == "frame_crnn" else {{}}
    model = build_model({arch!r}, params, 80, 5)
    y = (torch.rand(16, 400, 5) < 0.05).float()
    run = lambda: model(x)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
def step():
    loss = torch.nn.functional.binary_cross_entropy_with_logits(run(), y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(2):
    step()
t = time.perf_counter()
for _ in range({steps}):
    step()
print(f"{{{steps} / (time.perf_counter() - t):.2f}}")
"""

ARCHITECTURES = ("frame_crnn", "tatum_crnn", "rnn", "cnn", "crnn", "conv_transformer", "vision_transformer")


def run(arch: str, threads: int, policy: str, steps: int, concurrent: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy != "unset":
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.format(root=str(ROOT), threads=threads, arch=arch, steps=steps)
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2 if concurrent else 1)]
    return [p.communicate()[0].strip() for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--concurrent", action="store_true")
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--policies", default="PASSIVE,ACTIVE")
    args = parser.parse_args()
    configs = [(t, p) for p in args.policies.split(",") for t in (1, 2)]
    print("steps/s per process" + (" (two processes at once)" if args.concurrent else ""))
    print("| architecture | " + " | ".join(f"{p} {t} thr" for t, p in configs) + " |")
    print("|---|" + "---|" * len(configs))
    for arch in args.architectures.split(","):
        cells = [" / ".join(run(arch, t, p, args.steps, args.concurrent)) for t, p in configs]
        print(f"| {arch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
