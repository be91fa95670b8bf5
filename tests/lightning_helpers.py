"""A tiny LightningModule and fake meters for the callback tests (also used by the DDP script)."""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from greentrack.integrations.lightning import pl
from greentrack.meters.fake import FakeChannelSpec, FakeGpu, FakeMeter, FakeNvml, PowerTrace
from greentrack.meters.nvml import NvmlMeter

GPU_W = 100.0
CPU_W = 30.0


class TinyModel(pl.LightningModule):  # type: ignore[misc, name-defined]
    def __init__(self, fail_at: int | None = None) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)
        self.fail_at = fail_at

    def training_step(self, batch, batch_idx):
        if self.fail_at is not None and self.global_step == self.fail_at:
            raise RuntimeError("boom in training_step")
        x, y = batch
        time.sleep(0.01)  # give every span a measurable length
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loaders() -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 8, generator=g), torch.randn(64, 1, generator=g))
    return DataLoader(data, batch_size=8), DataLoader(data, batch_size=8)


def fake_meters(trainer):
    """A fake NVML GPU per rank (GPU_W x (rank + 1); each rank its own board, as DDP gives
    it), CPU only on local rank 0."""
    rank = trainer.global_rank
    nvml = FakeNvml(
        [
            FakeGpu(
                trace=PowerTrace.constant(GPU_W * (rank + 1)),
                uuid=f"GPU-00000000-0000-0000-0000-{rank:012d}",
            )
        ],
        time.monotonic,
    )
    meters = [NvmlMeter(nvml, environ={})]
    if trainer.local_rank == 0:
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(CPU_W), has_power=False)
        meters.append(FakeMeter([spec], time.monotonic))
    return meters


def one_gpu_meters(trainer):
    """Every rank measures the same GPU (one UUID: torchrun with more processes than GPUs),
    CPU only on local rank 0."""
    nvml = FakeNvml([FakeGpu(trace=PowerTrace.constant(GPU_W))], time.monotonic)
    meters = [NvmlMeter(nvml, environ={})]
    if trainer.local_rank == 0:
        spec = FakeChannelSpec("cpu0", "cpu", PowerTrace.constant(CPU_W), has_power=False)
        meters.append(FakeMeter([spec], time.monotonic))
    return meters


class TinyPredictor(TinyModel):
    """TinyModel with test and predict steps (Lightning's autoencoder example's flow)."""

    def test_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        self.log("test_loss", torch.nn.functional.mse_loss(self.layer(x), y))

    def predict_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        return self.layer(batch[0])
