"""The model, each client's synthetic non-IID data, and local training and evaluation."""

from __future__ import annotations

import torch

FEATURES, CLASSES, SAMPLES = 64, 10, 2_000


def model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 128), torch.nn.ReLU(), torch.nn.Linear(128, CLASSES)
    )


def partition(partition_id: int, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Class prototypes shared by all clients; each client sees a skewed label mix."""
    prototypes = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(partition_id * 2 + int(train))
    weights = torch.ones(CLASSES)
    weights[partition_id % CLASSES] = 5.0  # non-IID: one dominant class per client
    y = torch.multinomial(weights, SAMPLES if train else SAMPLES // 4, True, generator=g)
    return prototypes[y] + 1.5 * torch.randn(len(y), FEATURES, generator=g), y


def train(net: torch.nn.Module, partition_id: int, epochs: int) -> tuple[int, float]:
    x, y = partition(partition_id, train=True)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss = torch.zeros(())
    for _ in range(epochs):
        for i in range(0, len(y), 64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[i : i + 64]), y[i : i + 64])
            loss.backward()
            opt.step()
    return len(y), float(loss.detach())


def evaluate(net: torch.nn.Module, partition_id: int) -> tuple[int, float, float]:
    x, y = partition(partition_id, train=False)
    with torch.no_grad():
        logits = net(x)
    loss = float(torch.nn.functional.cross_entropy(logits, y))
    return len(y), loss, float((logits.argmax(1) == y).float().mean())
