"""Demo: a Flower federated run (Message API, simulation engine) measured by greentrack.

The same model and data as the Flower app in examples/flower_app/ (which runs with the
deployment engine), here in Flower's simulation engine from one script.
Each virtual client trains a small PyTorch MLP on its own synthetic, non-IID partition; the
server runs FedAvg wrapped in greentrack's EmissionsStrategy, and every client reply carries
the energy that client's greentrack mod measured (here a CPU estimate, on a GPU machine NVML).
At the end the server prints the Green FL breakdown: client compute, upload, download, server.

    python examples/flower_simulation.py [--clients 4 --rounds 3]
    greentrack report RUN_DIR --metric evaluate_accuracy -o report.md

Each run gets a fresh directory, ``runs/flower-demo-<UTC time>-<id>``, printed at the end (the
RUN_DIR above); ``--run-dir DIR`` names it instead (once: greentrack never overwrites a run,
and a second run into DIR stops with one line). About 13 s on 2 vCPUs (measured; longer on a
loaded machine), most of it starting Ray.

Needs ``pip install 'greentrack[flower,torch]' 'flwr[simulation]'`` (the simulation engine
runs on Ray).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

import greentrack
from greentrack.integrations.flower import EmissionsStrategy

sys.path.insert(0, str(Path(__file__).resolve().parent / "flower_app"))
from greentrack_fl import task
from greentrack_fl.client_app import app as client

server = ServerApp()
SETTINGS: dict[str, object] = {}


@server.main()
def main(grid: Grid, context: Context) -> None:
    strategy = EmissionsStrategy(
        FedAvg(fraction_train=1.0, min_available_nodes=int(SETTINGS["clients"])),  # type: ignore[call-overload]
        SETTINGS["run_dir"],  # type: ignore[arg-type]
        name="flower demo",
        region="DE",
        pue=1.1,
    )
    strategy.start(
        grid,
        ArrayRecord(task.model().state_dict()),
        num_rounds=int(SETTINGS["rounds"]),  # type: ignore[call-overload]
        train_config=ConfigRecord({"local-epochs": 2}),
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="default: a fresh runs/flower-demo-<time>-<id>"
    )
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.run_dir is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        args.run_dir = Path("runs") / f"flower-demo-{stamp}-{uuid.uuid4().hex[:6]}"
    elif args.run_dir.exists():
        print(f"{args.run_dir} exists: pass a new --run-dir (or none)", file=sys.stderr)
        sys.exit(2)
    SETTINGS.update(run_dir=args.run_dir, clients=args.clients, rounds=args.rounds)
    np.random.seed(0)
    run_simulation(
        server_app=server,
        client_app=client,
        num_supernodes=args.clients,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )
    print(greentrack.summarize(args.run_dir))
    print(f"\nrun directory: {args.run_dir}")


if __name__ == "__main__":
    cli()
