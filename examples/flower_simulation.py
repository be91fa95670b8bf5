"""Demo: a Flower federated run (Message API, simulation engine) measured by greentrack.

Each virtual client trains a small PyTorch MLP on its own synthetic, non-IID partition; the
server runs FedAvg wrapped in greentrack's EmissionsStrategy, and every client reply carries
the energy that client's greentrack mod measured (here a CPU estimate, on a GPU machine NVML).
At the end the server prints the Green FL breakdown: client compute, upload, download, server.

    python examples/flower_simulation.py --run-dir runs/flower-demo [--clients 4 --rounds 3]
    greentrack report runs/flower-demo --metric evaluate_accuracy -o report.md

Needs ``pip install 'greentrack[flower,torch]' 'flwr[simulation]'`` (the simulation engine
runs on Ray).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

import greentrack
from greentrack.integrations.flower import EmissionsStrategy, energy_mod

FEATURES, CLASSES, SAMPLES = 64, 10, 2_000


def model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 128), torch.nn.ReLU(), torch.nn.Linear(128, CLASSES)
    )


def partition(node: int, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic class prototypes shared by all clients; each client sees a skewed label mix."""
    prototypes = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(node * 2 + int(train))
    weights = torch.ones(CLASSES)
    weights[node % CLASSES] = 5.0  # non-IID: one dominant class per client
    y = torch.multinomial(weights, SAMPLES if train else SAMPLES // 4, True, generator=g)
    return prototypes[y] + 1.5 * torch.randn(len(y), FEATURES, generator=g), y


client = ClientApp(mods=[energy_mod])


@client.train()
def train(msg: Message, context: Context) -> Message:
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = partition(context.node_config["partition-id"], train=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    epochs = int(msg.content["config"]["local-epochs"])
    for _ in range(epochs):
        for i in range(0, len(y), 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[i : i + 64]), y[i : i + 64])
            loss.backward()
            opt.step()
    content = RecordDict(
        {
            "arrays": ArrayRecord(net.state_dict()),
            "metrics": MetricRecord({"num-examples": len(y), "train_loss": float(loss.detach())}),
        }
    )
    return Message(content, reply_to=msg)


@client.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    net = model()
    net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = partition(context.node_config["partition-id"], train=False)
    with torch.no_grad():
        logits = net(x)
    metrics = MetricRecord(
        {
            "num-examples": len(y),
            "loss": float(torch.nn.functional.cross_entropy(logits, y)),
            "accuracy": float((logits.argmax(1) == y).float().mean()),
        }
    )
    return Message(RecordDict({"metrics": metrics}), reply_to=msg)


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
        ArrayRecord(model().state_dict()),
        num_rounds=int(SETTINGS["rounds"]),  # type: ignore[call-overload]
        train_config=ConfigRecord({"local-epochs": 2}),
    )


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/flower-demo"))
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.run_dir.exists():
        sys.exit(f"{args.run_dir} exists: pass a new --run-dir")
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
    print(greentrack.load_run(args.run_dir).summary())


if __name__ == "__main__":
    cli()
