"""The examples run end to end as their docstrings say, leave loadable run directories, and
rerun cleanly: a fresh run directory each time, or one line (exit 2) for a named one that
already holds a run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def _torchrun(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``torchrun --nproc_per_node 2 examples/SCRIPT ARGS`` (gloo on CPU), as documented."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(ROOT / "examples" / script),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "GREENTRACK_CPU_TDP_W": "20"},
    )


def _run_dir_printed(stdout: str) -> Path:
    lines = [x for x in stdout.splitlines() if x.startswith("run directory: ")]
    assert len(lines) == 1, stdout[-2000:]
    return Path(lines[0].removeprefix("run directory: ").split()[0])


JOB_TROUBLE = ("incomplete", "did not stop cleanly", "left no run directory", "Traceback")


def test_plain_torch_reruns_into_a_fresh_directory(tmp_path):
    """The documented command, twice: two runs, two directories, fresh figures."""
    dirs = []
    for _ in range(2):
        proc = run_example("plain_torch.py", "--epochs", "1", cwd=tmp_path)
        dirs.append(tmp_path / _run_dir_printed(proc.stdout))
    assert dirs[0] != dirs[1] and all(d.parent == tmp_path / "runs" for d in dirs)
    runs = [greentrack.load_run(d) for d in dirs]
    assert all(r.complete for r in runs)
    assert runs[0].meta["run_id"] != runs[1].meta["run_id"]


def test_torchrun_ddp_reruns_into_a_fresh_directory_per_job(tmp_path):
    """`torchrun --nproc_per_node 2 examples/torchrun_ddp.py`, twice: each job its own
    `runs/torchrun-<job id>` with rank 1's part, and rank 0's summary covers both ranks."""
    dirs = []
    for _ in range(2):
        proc = _torchrun("torchrun_ddp.py", "--steps", "5", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert not any(t in proc.stdout + proc.stderr for t in JOB_TROUBLE), proc.stdout
        assert "2 processes" in proc.stdout
        dirs.append(tmp_path / _run_dir_printed(proc.stdout))
    assert dirs[0] != dirs[1] and all(d.name.startswith("torchrun-") for d in dirs)
    for d in dirs:
        run = greentrack.load_run(d)
        assert run.complete and [p.path.name for p in run.parts] == ["seg0-rank1"]


def test_accelerate_loop_under_torchrun_is_distributed(tmp_path):
    """Under torchrun on a CPU-only machine Accelerate joins the two processes (MULTI_CPU),
    each trains on its half of the data, and rank 0 summarises after both stopped."""
    pytest.importorskip("accelerate")
    proc = _torchrun("accelerate_loop.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the two ranks share torchrun's stdout: their lines may interleave
    ranks = sorted(
        re.findall(r"rank (\d) of (\d) \((DistributedType\.\w+)\): (\d+) batches", proc.stdout)
    )
    # 512 samples, batches of 32, two ranks, two epochs: 8 batches a rank per epoch
    assert ranks == [(r, "2", "DistributedType.MULTI_CPU", "16") for r in "01"], proc.stdout
    assert not any(t in proc.stdout + proc.stderr for t in JOB_TROUBLE), proc.stdout
    run = greentrack.load_run(tmp_path / _run_dir_printed(proc.stdout))
    assert run.complete and [p.path.name for p in run.parts] == ["seg0-rank1"]


@pytest.mark.parametrize(
    "script",
    [
        "plain_torch.py",
        "lightning_mnist_style.py",
        "torchrun_ddp.py",
        "accelerate_loop.py",
        "flower_simulation.py",
        "flower_app/deploy_local.py",
    ],
)
def test_a_named_run_directory_that_holds_a_run_is_refused_in_one_line(tmp_path, script):
    """Before any training, process group or Flower process starts: one line naming the
    directory and the fix, exit 2, the old run untouched."""
    if script in ("lightning_mnist_style.py", "accelerate_loop.py", "flower_simulation.py"):
        pytest.importorskip({"l": "lightning", "a": "accelerate", "f": "flwr"}[script[0]])
    old = tmp_path / "old"
    old.mkdir()
    (old / "meta.json").write_text('{"run_id": "old"}')
    before = sorted(p.name for p in old.iterdir())
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--run-dir", str(old)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(old) in lines[0] and "--run-dir" in lines[0], proc.stderr
    assert sorted(p.name for p in old.iterdir()) == before
    assert not (tmp_path / "runs").exists()
