"""A bare PyTorch DDP training loop measured by greentrack, under any launcher.

    torchrun --nproc_per_node 2 examples/torchrun_ddp.py
    MASTER_ADDR=$(hostname) MASTER_PORT=29500 srun -n 2 python examples/torchrun_ddp.py  (SLURM)
    accelerate launch --multi_gpu examples/torchrun_ddp.py           (Accelerate, GPUs)

greentrack reads the launcher's environment: every rank writes its part of one run directory
(rank 0 the directory itself, rank R ``parts/seg0-rankR``), measures the GPU it drives, and
the node's CPU and DRAM are measured once. Each job gets a fresh directory,
``runs/<launcher>-<job id>`` (the ranks agree the id), printed at the end with the job's
summary: ``greentrack summary DIR`` shows it again. ``--run-dir DIR`` names it instead (once:
greentrack never overwrites a run, and a second job into DIR stops at once with one line).
Runs on CPU (gloo) without a GPU, on GPUs (nccl) with them; about 6 s with two processes on 2
vCPUs, launch included (measured; longer on a loaded machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

import greentrack
from greentrack.launcher import detect


def refuse_existing(run_dir: str | None) -> None:
    """Stop with one line if ``run_dir`` already holds a run (greentrack never overwrites one).
    Checked before any rank joins the process group, and so before rank 0 can create it: every
    rank decides alike and none waits for a peer that left. Rank 0 says why and exits with 2;
    the others leave quietly with 0, so that the launcher never stops rank 0 before it speaks
    and reports rank 0's status."""
    if run_dir is not None and (Path(run_dir) / "meta.json").exists():
        if detect().rank != 0:
            sys.exit(0)
        print(
            f"{run_dir} already holds a run: pass a new --run-dir, or none for a fresh one",
            file=sys.stderr,
        )
        sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", default=None, help="the job's run directory (default: a fresh one per job)"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    refuse_existing(args.run_dir)
    cuda = torch.cuda.is_available()
    info = detect()  # torchrun's RANK/WORLD_SIZE, or srun's and MPI's own names
    dist.init_process_group("nccl" if cuda else "gloo", rank=info.rank, world_size=info.world_size)
    local_rank = info.local_rank
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    torch.manual_seed(dist.get_rank())
    model = DistributedDataParallel(
        nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).to(device),
        device_ids=[local_rank] if cuda else None,
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    with greentrack.track(run_dir=args.run_dir, name="torchrun ddp", region="DE") as run:
        for epoch in range(args.epochs):
            with run.span("train_epoch", epoch=epoch):
                for _ in range(args.steps):
                    x = torch.randn(128, 64, device=device)
                    y = torch.randint(0, 10, (128,), device=device)
                    opt.zero_grad(set_to_none=True)
                    nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
    dist.barrier()  # every rank has stopped: rank 0's summary includes them all
    if dist.get_rank() == 0:  # rank 0 writes the job's directory itself
        print(greentrack.summarize(run.run_dir))
        print(f"\nrun directory: {run.run_dir}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
