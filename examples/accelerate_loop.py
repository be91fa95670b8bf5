"""A custom training loop with Hugging Face Accelerate, measured by greentrack.

    accelerate launch --multi_gpu --num_processes 8 examples/accelerate_loop.py
    torchrun --nproc_per_node 2 examples/accelerate_loop.py          (CPU, gloo)

``accelerate launch`` starts its processes the way torchrun does (RANK, LOCAL_RANK,
WORLD_SIZE...), so greentrack's rank-aware core gives each its part of one run directory,
each rank measuring the GPU it drives and the node's CPU counted once. Each job gets a fresh
directory, ``runs/<launcher>-<job id>``, printed at the end with the job's summary;
``--run-dir DIR`` names it instead (once: greentrack never overwrites a run).

On a machine without a GPU, Accelerate joins the processes into one group only when told to
run on the CPU (``Accelerator(cpu=True)``, or ACCELERATE_USE_CPU): otherwise every process
trains alone on the whole data (``DistributedType.NO``) and ``wait_for_everyone()`` waits for
no one, so rank 0 summarises a job whose other ranks are still running. This script asks for
the CPU when there is no GPU, and stops with one line if a launched job is still not
distributed. (``accelerate launch --cpu --num_processes 2`` starts one process, Accelerate's
behaviour: on a CPU-only machine start two with torchrun, as above.) About 7 s with two
processes on 2 vCPUs, launch included (measured; longer on a loaded machine).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from accelerate import Accelerator
from torch import nn

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
    args = parser.parse_args()
    refuse_existing(args.run_dir)
    launched = detect()
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    if accelerator.num_processes != launched.world_size:
        sys.exit(  # each process would train alone on all the data: say so, once per rank
            f"the launcher started {launched.world_size} processes but Accelerate joined "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): check that "
            "Accelerate sees the devices (accelerate env), or pass --cpu to accelerate launch"
        )
    torch.manual_seed(0)  # the same data on every rank; the prepared loader shards it
    model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data = torch.utils.data.TensorDataset(torch.randn(512, 32), torch.randint(0, 4, (512,)))
    loader = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    model, opt, loader = accelerator.prepare(model, opt, loader)
    batches = 0
    with greentrack.track(run_dir=args.run_dir, name="accelerate loop", region="FR") as run:
        for epoch in range(args.epochs):
            with run.span("train_epoch", epoch=epoch):
                for x, y in loader:
                    opt.zero_grad()
                    accelerator.backward(nn.functional.cross_entropy(model(x), y))
                    opt.step()
                    batches += 1
    accelerator.wait_for_everyone()  # every rank has stopped: the summary includes them all
    print(
        f"rank {accelerator.process_index} of {accelerator.num_processes} "
        f"({accelerator.distributed_type}): {batches} batches"
    )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:  # rank 0 writes the job's directory itself
        print(greentrack.summarize(run.run_dir))
        print(f"\nrun directory: {run.run_dir}")


if __name__ == "__main__":
    main()
