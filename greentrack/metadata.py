"""What a run records about where and how it ran: host, hardware, software, code, command."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from greentrack._version import __version__
from greentrack.meters.tdp import cpu_model_and_packages, lookup_tdp

# The ML packages a run may use, by the module it imports -> the distribution that installs it
# (the version comes from the distribution's metadata, never by importing anything). A run
# records those of them it imported (in ``sys.modules`` when the versions are gathered), so
# a Trainer run lists transformers, accelerate and datasets, and an idle install of flwr is
# not listed. Bounded: one metadata read per name, once per process.
KNOWN_PACKAGES: dict[str, str] = {
    "torch": "torch",
    "lightning": "lightning",
    "pytorch_lightning": "pytorch-lightning",
    "transformers": "transformers",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "tokenizers": "tokenizers",
    "safetensors": "safetensors",
    "peft": "peft",
    "trl": "trl",
    "diffusers": "diffusers",
    "sentence_transformers": "sentence-transformers",
    "deepspeed": "deepspeed",
    "bitsandbytes": "bitsandbytes",
    "xformers": "xformers",
    "flash_attn": "flash-attn",
    "vllm": "vllm",
    "timm": "timm",
    "torchvision": "torchvision",
    "torchaudio": "torchaudio",
    "torchmetrics": "torchmetrics",
    "flwr": "flwr",
    "ray": "ray",
    "jax": "jax",
    "jaxlib": "jaxlib",
    "flax": "flax",
    "optax": "optax",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "onnxruntime": "onnxruntime",
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "numpy": "numpy",
    "pandas": "pandas",
    "pynvml": "nvidia-ml-py",
}
FRAMEWORKS = tuple(KNOWN_PACKAGES.values())
"""The distributions whose versions a run may record (:data:`KNOWN_PACKAGES`)."""


def utc_iso(t_unix_s: float) -> str:
    """ISO 8601 UTC timestamp with milliseconds, e.g. ``2026-11-23T09:00:00.000+00:00``."""
    return datetime.fromtimestamp(t_unix_s, tz=timezone.utc).isoformat(timespec="milliseconds")


# What does not change while a process runs is gathered once per process (and the git state
# once per process and directory): a second tracker in the same process starts in
# milliseconds. A tracker's first start leaves what is not gathered yet (DEFERRED) to a
# background thread; prefetch() starts gathering it earlier.
_CACHE: dict[tuple[str, ...], Any] = {}
_CACHE_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple[str, ...], threading.Lock] = {}


def _cached(key: tuple[str, ...], compute: Any) -> Any:
    """``compute()``, once per process for ``key``; a caller arriving while another thread
    (the prefetch) computes it waits for that result instead of computing it again."""
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        value = compute()
        with _CACHE_LOCK:
            _CACHE[key] = value
        return value


def _after_fork_in_child() -> None:
    # a prefetch thread may have held a lock when the process forked: it is gone in the child
    global _CACHE_LOCK
    _CACHE_LOCK = threading.Lock()
    _KEY_LOCKS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def clear_cache() -> None:
    """Forget what :func:`collect` cached (the next start gathers it again)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def prefetch(cwd: Path | None = None) -> threading.Thread:
    """Gather the cached parts of :func:`collect` (host, package versions, git state) in a
    background thread, off the critical path of a tracker's start: call it when the run is
    configured, long before it starts (the Flower strategy wrappers do). :func:`collect`
    then finds it ready (or, with ``defer``, leaves what is still in flight pending)."""

    def work() -> None:
        try:
            model = host_info()["cpu_model"]
            package_versions()
            git_info(cwd)
            lookup_tdp(str(model))  # the CPU estimate's table, read at the start's discovery
        except Exception:  # collect() gathers (and reports) it again
            pass

    thread = threading.Thread(target=work, name="greentrack-metadata", daemon=True)
    thread.start()
    return thread


DEFERRED = ("software", "git")
"""Fields of :func:`collect` that a tracker's start need not wait for (package versions and
the git state cost ~20 ms together, git much more in a large repository): with
``defer=True`` one not gathered yet is ``None`` and named in ``meta["pending"]``, and
:func:`complete` gathers it (the tracker does so in a background thread, in this order, and
rewrites ``meta.json`` after each: a slow git never holds the package versions back)."""


def _packages_key(names: Sequence[str] = FRAMEWORKS) -> tuple[str, ...]:
    return ("packages", *names)


def _git_key(cwd: Path | None) -> tuple[str, ...]:
    """The cache key of the git state around ``cwd`` (``OSError``: no working directory)."""
    return ("git", str((Path(cwd) if cwd is not None else Path.cwd()).resolve()))


def _ready(field: str, cwd: str) -> bool:
    """Whether a :data:`DEFERRED` field is cached (free to read now)."""
    try:
        key = _packages_key() if field == "software" else _git_key(Path(cwd))
    except OSError:
        return True  # no working directory: git_info answers at once
    with _CACHE_LOCK:
        return key in _CACHE


def gather(field: str, meta: Mapping[str, Any]) -> Any:
    """The value of the :data:`DEFERRED` ``field`` for ``meta`` (from :func:`collect`),
    waiting for a prefetch in flight."""
    if field == "software":
        return package_versions()
    if field == "git":
        return git_info(Path(str(meta.get("cwd") or ".")))
    raise ValueError(f"{field!r} is not a deferred field; they are {DEFERRED}")


def complete(meta: Mapping[str, Any], field: str) -> dict[str, Any]:
    """``meta`` with its pending ``field`` gathered (:func:`gather`) and no longer pending
    (``pending`` removed with the last one)."""
    out = {**meta, field: gather(field, meta)}
    rest = [f for f in meta.get("pending") or () if f != field]
    if rest:
        out["pending"] = rest
    else:
        out.pop("pending", None)
    return out


def package_versions() -> dict[str, str]:
    """Versions of the known ML packages (:data:`KNOWN_PACKAGES`) this process has imported,
    by distribution name, read without importing anything.

    The installed versions are read once per process (a prefetch or the start's background
    thread pays for it); which of them were imported is checked at each call, in
    microseconds, so a later call sees what the run imported since (:func:`software_update`).
    """
    installed = dict(_cached(_packages_key(), lambda: _package_versions(FRAMEWORKS)))
    return {dist: installed[dist] for dist in imported_distributions() if dist in installed}


def imported_distributions() -> list[str]:
    """The distributions of :data:`KNOWN_PACKAGES` whose module this process has imported."""
    loaded = sys.modules
    return list(dict.fromkeys(d for m, d in KNOWN_PACKAGES.items() if m in loaded))


def software_update(software: Mapping[str, str] | None) -> dict[str, str] | None:
    """The ``software`` block again if the process imported a known package since
    ``software`` was gathered (a framework imported after the run started), else ``None``:
    call it at a run's stop to rewrite ``meta.json`` only when it changed. Never slower than
    a dict lookup per known package once the versions are cached; ``None`` (nothing to do)
    while they are not, so it never waits for the background read."""
    with _CACHE_LOCK:
        ready = _packages_key() in _CACHE
    if not ready:
        return None
    now = package_versions()
    merged = {**(software or {}), **now}
    return merged if merged != dict(software or {}) else None


def _package_versions(names: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def git_info(cwd: Path | None = None) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git repository around ``cwd``, or ``None``: read
    once per process and directory (a later run in the same process reports the state of
    the first)."""
    try:
        key = _git_key(cwd)
    except OSError:  # the working directory was removed
        return None
    info = _cached(key, lambda: _git_info(cwd))
    return dict(info) if info is not None else None


def _git_info(cwd: Path | None) -> dict[str, Any] | None:
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
    """The machine (once per process)."""
    return dict(_cached(("host",), _host_info))


def _host_info() -> dict[str, Any]:
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
    defer: bool = False,
) -> dict[str, Any]:
    """The metadata block of ``meta.json`` (channels and boundary are added by the tracker).
    ``defer``: leave the :data:`DEFERRED` fields not gathered yet to :func:`complete`."""
    cwd = os.getcwd()
    pending = [f for f in DEFERRED if not _ready(f, cwd)] if defer else []
    meta = {
        "run_id": run_id,
        "project": project,
        "name": name,
        "start_utc": utc_iso(start_unix_s),
        "start_unix_s": start_unix_s,
        "greentrack_version": __version__,
        "host": host_info(),
        "software": None if "software" in pending else package_versions(),
        "git": None if "git" in pending else git_info(Path(cwd)),
        "command": list(command) if command is not None else list(sys.argv),
        "cwd": cwd,
        "pid": os.getpid(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "config": dict(config) if config else {},
    }
    if pending:
        meta["pending"] = pending
    return meta
