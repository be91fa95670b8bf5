"""Demo: measure a small real PyTorch training loop with greentrack.

Trains a 3-layer MLP on synthetic classification data for a few epochs, with one span per
epoch and nested spans per group of steps, then prints the energy summary and the run
directory. On a CUDA machine it uses the GPU; on CPU, about 5 s on 2 vCPUs (measured; longer
on a loaded machine).

    python examples/plain_torch.py --epochs 3

Each run gets a fresh directory, ``runs/<UTC time>-<id>``; ``--run-dir DIR`` names it instead
(once: greentrack never overwrites a run, and a second run into DIR stops with one line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

import greentrack


def make_data(n: int, dim: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g) * 0.15
    y = torch.randint(0, classes, (n,), generator=g)
    x = centers[y] + torch.randn(n, dim, generator=g)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None, help="run directory (default runs/<time>-<id>)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps-per-group", type=int, default=50)
    args = parser.parse_args()
    if args.run_dir is not None and (Path(args.run_dir) / "meta.json").exists():
        print(
            f"{args.run_dir} already holds a run: pass a new --run-dir (or none)", file=sys.stderr
        )
        sys.exit(2)

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    x, y = make_data(n=65_536, dim=128, classes=10)
    model = nn.Sequential(
        nn.Linear(128, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    batch = 256
    steps = len(x) // batch

    config = {"epochs": args.epochs, "batch_size": batch, "lr": 0.02, "model": "mlp-128-512-10"}
    with greentrack.track(
        run_dir=args.run_dir, project="greentrack-demo", name="plain torch MLP", config=config
    ) as run:
        for epoch in range(args.epochs):
            t0 = time.perf_counter()
            perm = torch.randperm(len(x))
            with run.span("epoch", epoch=epoch):
                for start in range(0, steps, args.steps_per_group):
                    stop = min(start + args.steps_per_group, steps)
                    with run.span("steps", first=start, last=stop - 1):
                        for step in range(start, stop):
                            idx = perm[step * batch : (step + 1) * batch]
                            xb, yb = x[idx].to(device), y[idx].to(device)
                            opt.zero_grad(set_to_none=True)
                            loss = loss_fn(model(xb), yb)
                            loss.backward()
                            opt.step()
            print(f"epoch {epoch}: loss {loss.item():.4f} ({time.perf_counter() - t0:.1f} s)")

    print()
    print(run.summary())
    print(f"\nrun directory: {run.run_dir}  (reload with greentrack.load_run)")


if __name__ == "__main__":
    main()
