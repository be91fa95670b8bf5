"""What a run records about where and how it ran: host, hardware, software, code, command."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from greentrack._version import __version__
from greentrack.meters.tdp import cpu_model_and_packages

FRAMEWORKS = ("torch", "lightning", "pytorch-lightning", "flwr", "nvidia-ml-py", "pandas", "numpy")


def utc_iso(t_unix_s: float) -> str:
    """ISO 8601 UTC timestamp with milliseconds, e.g. ``2026-11-23T09:00:00.000+00:00``."""
    return datetime.fromtimestamp(t_unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


def package_versions(names: Sequence[str] = FRAMEWORKS) -> dict[str, str]:
    """Installed versions of the frameworks that matter, read without importing them."""
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def git_info(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git repository around ``cwd``, or ``None``."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "branch": branch, "dirty": dirty}


def host_info() -> dict[str, Any]:
    import psutil

    model, packages = cpu_model_and_packages()
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": model,
        "cpu_packages": packages,
        "cpu_logical_cores": psutil.cpu_count(logical=True),
        "cpu_physical_cores": psutil.cpu_count(logical=False),
        "memory_total_bytes": psutil.virtual_memory().total,
        "container": Path("/.dockerenv").exists() or Path("/run/.containerenv").exists(),
    }


def collect(
    *,
    run_id: str,
    project: str | None,
    name: str | None,
    config: Mapping[str, Any] | None,
    command: Sequence[str] | None,
    start_unix_s: float,
) -> dict[str, Any]:
    """The metadata block of ``meta.json`` (channels and boundary are added by the tracker)."""
    return {
        "run_id": run_id,
        "project": project,
        "name": name,
        "start_utc": utc_iso(start_unix_s),
        "start_unix_s": start_unix_s,
        "greentrack_version": __version__,
        "host": host_info(),
        "software": package_versions(),
        "git": git_info(),
        "command": list(command) if command is not None else list(sys.argv),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "config": dict(config) if config else {},
    }
