"""Demo: a Lightning training run measured by greentrack's EmissionsCallback.

An MNIST-sized classifier (784-256-10) on synthetic digits-like data, 3 epochs: about 6 s on
2 vCPUs (measured; longer on a loaded machine), and unchanged on a GPU. The energy per epoch
(and CO2e, here for the French grid with Google's fleet PUE) goes to the CSV logger and to the
run directory.

    python examples/lightning_mnist_style.py

Each run gets a fresh directory, ``runs/<UTC time>-<id>``; ``--run-dir DIR`` names it instead
(once: greentrack never overwrites a run, and a second run into DIR stops with one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

import greentrack
from greentrack.integrations.lightning import EmissionsCallback, pl


class Classifier(pl.LightningModule):  # type: ignore[misc, name-defined]
    def __init__(self, lr: float = 1e-3) -> None:
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
        )

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        acc = (self.net(x).argmax(1) == y).float().mean()
        self.log("val_acc", acc)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(10, 784, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorDataset(prototypes[y] + 2.0 * torch.randn(n, 784, generator=g), y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--name", default="lightning demo")
    args = parser.parse_args()
    if args.run_dir is not None and (Path(args.run_dir) / "meta.json").exists():
        print(
            f"{args.run_dir} already holds a run: pass a new --run-dir (or none)", file=sys.stderr
        )
        sys.exit(2)
    callback = EmissionsCallback(
        args.run_dir,
        project="greentrack-demo",
        name=args.name,
        region="FR",
        pue="google",
    )
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        callbacks=[callback],
        logger=pl.loggers.CSVLogger("runs", name="lightning-demo-logs"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(
        Classifier(args.lr),
        DataLoader(data(20_000, 1), batch_size=128, shuffle=True),
        DataLoader(data(2_000, 2), batch_size=512),
    )
    print("\nlast logged energy metrics:", callback.last_metrics)
    print()
    print(greentrack.summarize(callback.run_dir))
    print(f"\nrun directory: {callback.run_dir}")


if __name__ == "__main__":
    main()
