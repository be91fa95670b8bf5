"""Overhead of the Transformers EmissionsCallback on a real Trainer run: paired A/B,
interleaved, like benchmarks/lightning_overhead.py.

A small BERT (2 layers, hidden 128) built from a config (no download) on synthetic tokens, a
fixed number of steps per train(); pairs alternate which variant runs first. An A/A control
(no callback in either) gives the machine's noise floor. On a GPU machine the same script
measures the GPU path (the Trainer puts the model on the GPU).

    python -m benchmarks.transformers_overhead [--pairs 6] [--steps 60]
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
import transformers

from benchmarks.common import callback_overhead_main
from greentrack.integrations.transformers import EmissionsCallback


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 1000, (n, 64), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.x[i], "labels": torch.tensor(int(self.x[i, 0]) % 2)}


def train(steps: int, callback: EmissionsCallback | None, root: Path) -> float:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        num_labels=2,
    )
    args = transformers.TrainingArguments(
        output_dir=str(root / "out"),
        max_steps=steps,
        num_train_epochs=3,
        per_device_train_batch_size=16,
        report_to=[],
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(
        model=transformers.BertForSequenceClassification(config),
        args=args,
        train_dataset=Tokens(steps * 16 // 3 + 16),
        callbacks=[callback] if callback else [],
    )
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def main() -> None:
    transformers.logging.set_verbosity_error()
    logging.getLogger("greentrack").setLevel(logging.ERROR)
    callback_overhead_main("transformers_overhead", train, EmissionsCallback)


if __name__ == "__main__":
    main()
