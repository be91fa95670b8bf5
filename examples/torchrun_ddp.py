"""A bare PyTorch DDP training loop measured by greentrack, under any launcher.

    torchrun --nproc_per_node 2 examples/torchrun_ddp.py --run-dir runs/ddp
    srun -n 2 python examples/torchrun_ddp.py --run-dir runs/ddp     (SLURM)
    accelerate launch examples/torchrun_ddp.py --run-dir runs/ddp    (Accelerate)

greentrack reads the launcher's environment: every rank writes its part of one run directory
(rank 0 the directory itself, rank R ``parts/seg0-rankR``), measures the GPU it drives, and
the node's CPU and DRAM are measured once. ``greentrack summary runs/ddp`` shows the job.
Runs on CPU (gloo) without a GPU, on GPUs (nccl) with them.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import greentrack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", required=True, help="the job's run directory (all ranks)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    torch.manual_seed(dist.get_rank())
    model = DistributedDataParallel(
        nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).to(device),
        device_ids=[local_rank] if cuda else None,
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    try:
        tracker = greentrack.track(run_dir=args.run_dir, name="torchrun ddp", region="DE")
    except greentrack.RunExistsError as e:
        sys.exit(str(e))
    with tracker as run:
        for epoch in range(args.epochs):
            with run.span("train_epoch", epoch=epoch):
                for _ in range(args.steps):
                    x = torch.randn(128, 64, device=device)
                    y = torch.randint(0, 10, (128,), device=device)
                    opt.zero_grad(set_to_none=True)
                    nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
    dist.barrier()  # every rank has stopped: rank 0's summary includes them all
    if dist.get_rank() == 0:
        print(greentrack.summarize(args.run_dir))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
