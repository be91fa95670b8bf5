"""Overhead of EmissionsCallback on a real Lightning fit: paired A/B, interleaved.

A small transformer encoder (2 layers, d_model 128) on synthetic token data, a fixed number of
steps per fit; pairs alternate which variant runs first. An A/A control (no callback in either)
gives the machine's noise floor. On a GPU machine the same script measures the GPU path.

    python -m benchmarks.lightning_overhead [--pairs 6] [--steps 60]
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import callback_overhead_main
from greentrack.integrations.lightning import EmissionsCallback, pl


class TinyTransformer(pl.LightningModule):  # type: ignore[misc, name-defined]
    def __init__(self) -> None:
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=4, batch_first=True)
        self.embed = torch.nn.Embedding(1000, 128)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=2)
        self.head = torch.nn.Linear(128, 1000)

    def training_step(self, batch, batch_idx):
        (tokens,) = batch
        logits = self.head(self.encoder(self.embed(tokens)))
        return torch.nn.functional.cross_entropy(logits.view(-1, 1000), tokens.view(-1))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def fit(steps: int, callback: EmissionsCallback | None, root: Path) -> float:
    torch.manual_seed(0)
    data = TensorDataset(torch.randint(0, 1000, (steps * 16, 64)))
    trainer = pl.Trainer(
        max_epochs=3,
        limit_train_batches=steps // 3,
        accelerator="auto",
        devices=1,
        callbacks=[callback] if callback else [],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=root,
    )
    model = TinyTransformer()
    t0 = time.perf_counter()
    trainer.fit(model, DataLoader(data, batch_size=16))
    return time.perf_counter() - t0


def main() -> None:
    callback_overhead_main("lightning_overhead", fit, EmissionsCallback)


if __name__ == "__main__":
    main()
