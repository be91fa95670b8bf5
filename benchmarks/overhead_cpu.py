"""Overhead of greentrack on a CPU training loop: paired A/B, interleaved.

Each pair runs the same training loop (an MLP on synthetic data, fixed number of steps)
untracked and tracked, in alternating order, and takes the ratio of wall times. Two tracked
variants: the meters this machine offers (RAPL or the CPU estimate, read at 1 Hz), and the same
plus a GPU-like channel at 10 Hz through greentrack's real NVML code path over a fake pynvml
(the sampler's busiest configuration). Reports the median ratio with quartiles and the CPU time
the sampler thread used per second of wall time.

    python benchmarks/overhead_cpu.py [--pairs 7] [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import greentrack
from benchmarks.common import quantiles, save
from greentrack.discovery import DiscoveryOptions, discover
from greentrack.meters.fake import FakeGpu, FakeNvml, PowerTrace
from greentrack.meters.nvml import NvmlMeter


def train(steps: int, run: greentrack.Tracker | None) -> float:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(256, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(128, 256), torch.randint(0, 10, (128,))
    t0 = time.perf_counter()
    for epoch in range(3):
        span = run.span("epoch", epoch=epoch) if run is not None else None
        if span is not None:
            span.__enter__()
        for _ in range(steps // 3):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        if span is not None:
            span.__exit__(None, None, None)
    return time.perf_counter() - t0


def tracked(steps: int, variant: str, root: Path, i: int) -> tuple[float, float | None]:
    meters, _ = discover(DiscoveryOptions(gpu=False))
    if variant == "with-10hz-gpu-channel":
        trace = PowerTrace([(0.3, 300.0), (0.3, 80.0)], repeat=True)
        nvml = FakeNvml([FakeGpu(trace=trace)], time.monotonic)
        meters.append(NvmlMeter(nvml, environ={}))
    with greentrack.track(root / f"{variant}-{i}", meters=meters) as run:
        wall = train(steps, run)
    end = next(e for e in greentrack.load_run(run.run_dir).events if e["event"] == "run_end")
    cpu = end["sampler_cpu_s"]
    return wall, (cpu / wall if cpu is not None else None)


def span_edge_cost(root: Path, n: int = 2000) -> dict[str, float]:
    """Microseconds for one begin_span + end_span pair (two fresh readings of every meter)."""
    out = {}
    for variant in ("machine-meters", "with-10hz-gpu-channel"):
        meters, _ = discover(DiscoveryOptions(gpu=False))
        if variant == "with-10hz-gpu-channel":
            meters.append(NvmlMeter(FakeNvml([FakeGpu()], time.monotonic), environ={}))
        with greentrack.track(root / f"edges-{variant}", meters=meters, sync="none") as run:
            t0 = time.perf_counter()
            for _ in range(n):
                run.end_span(run.begin_span("s"))
            out[variant] = (time.perf_counter() - t0) / n * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train(30, None)  # warm-up: allocator, thread pools
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        # "untracked-control" is an A/A pair: its spread is the noise floor of this machine.
        for variant in ("untracked-control", "machine-meters", "with-10hz-gpu-channel"):
            ratios, sampler_share = [], []
            for i in range(args.pairs):

                def run_b(i: int = i, variant: str = variant) -> tuple[float, float | None]:
                    if variant == "untracked-control":
                        return train(args.steps, None), None
                    return tracked(args.steps, variant, Path(tmp), i)

                if i % 2 == 0:
                    base = train(args.steps, None)
                    wall, share = run_b()
                else:
                    wall, share = run_b()
                    base = train(args.steps, None)
                ratios.append(wall / base)
                if share is not None:
                    sampler_share.append(share)
                print(
                    f"{variant} pair {i}: untracked {base:.3f} s, tracked {wall:.3f} s, "
                    f"ratio {wall / base:.4f}"
                )
            results[variant] = {
                "ratio_tracked_over_untracked": quantiles(ratios),
                "sampler_cpu_share_of_one_core": quantiles(sampler_share)
                if sampler_share
                else None,
            }
        edges = span_edge_cost(Path(tmp))
    print(json.dumps(results, indent=2))
    print("span begin+end cost (us):", json.dumps(edges))
    results["span_begin_end_us"] = edges
    save(
        "overhead_cpu",
        {
            "pairs": args.pairs,
            "steps": args.steps,
            "threads": args.threads,
            "torch_threads": torch.get_num_threads(),
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
