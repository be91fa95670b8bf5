"""The README's demo runs end to end and leaves a loadable run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import greentrack

ROOT = Path(__file__).resolve().parents[1]


def run_example(
    script: str, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run examples/SCRIPT with ARGS; fail with its stderr if it fails."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_plain_torch_demo(tmp_path):
    run_dir = tmp_path / "demo"
    proc = run_example(
        "plain_torch.py", "--run-dir", str(run_dir), "--epochs", "1", "--steps-per-group", "64"
    )
    assert "greentrack run" in proc.stdout and "epoch [epoch=0]" in proc.stdout
    run = greentrack.load_run(run_dir)
    assert run.complete and run.meta["config"]["model"] == "mlp-128-512-10"
    spans = run.spans
    assert sorted(spans["name"].unique()) == ["epoch", "steps"]
    assert (
        spans.loc[spans["name"] == "steps", "parent_id"]
        == spans.loc[spans["name"] == "epoch", "span_id"].iloc[0]
    ).all()


def test_lightning_example(tmp_path):
    run_dir = tmp_path / "lightning"
    proc = run_example(
        "lightning_mnist_style.py", "--run-dir", str(run_dir), "--epochs", "1", cwd=tmp_path
    )
    assert "last logged energy metrics" in proc.stdout
    run = greentrack.load_run(run_dir)
    assert run.complete and run.meta["carbon"]["intensity"]["region"] == "FR"
    assert greentrack.summarize(run).carbon is not None
