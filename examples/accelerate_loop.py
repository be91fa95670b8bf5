"""A custom training loop with Hugging Face Accelerate, measured by greentrack.

    accelerate launch --multi_gpu --num_processes 8 examples/accelerate_loop.py --run-dir runs/acc
    torchrun --nproc_per_node 2 examples/accelerate_loop.py --run-dir runs/acc   (CPU, gloo)

``accelerate launch`` starts its processes the way torchrun does (RANK, LOCAL_RANK,
WORLD_SIZE...), so greentrack's rank-aware core gives each its part of one run directory,
each rank measuring the GPU it drives and the node's CPU counted once.
"""

from __future__ import annotations

import argparse

import torch
from accelerate import Accelerator
from torch import nn

import greentrack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="the job's run directory (all ranks)")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    accelerator = Accelerator()
    model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.utils.data.TensorDataset(torch.randn(512, 32), torch.randint(0, 4, (512,)))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    model, opt, loader = accelerator.prepare(model, opt, loader)
    with greentrack.track(run_dir=args.run_dir, name="accelerate loop", region="FR") as run:
        for epoch in range(args.epochs):
            with run.span("train_epoch", epoch=epoch):
                for x, y in loader:
                    opt.zero_grad()
                    accelerator.backward(nn.functional.cross_entropy(model(x), y))
                    opt.step()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        print(greentrack.summarize(args.run_dir))


if __name__ == "__main__":
    main()
