"""Run the app with Flower's deployment engine on this machine: a SuperLink and N SuperNodes
as separate processes on loopback, then ``flwr run``. At the end, compare greentrack's byte
counts with the SuperLink's own network-traffic counter for the run.

    python examples/flower_app/deploy_local.py [--nodes 2 --rounds 2]

Prints one JSON object (greentrack's bytes, the SuperLink's, the run directory). Each run
gets a fresh directory, ``runs/fl-deploy-<UTC time>-<id>``; ``--run-dir DIR`` names it instead
(once: a directory that exists is refused with one line before anything starts, so the
figures printed are always this run's). Needs the ``flower-superlink``, ``flower-supernode``
and ``flwr`` commands of the Python environment greentrack is installed in; the SuperLink
runs the app in that environment (``--disable-runtime-dependency-installation``: no
``uv sync`` of the app's dependencies). All traffic stays on 127.0.0.1. About 45 s with two
SuperNodes and two rounds on 2 vCPUs (measured; longer on a loaded machine).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

APP = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{path.name} did not say {text!r} within {timeout:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="default: a fresh runs/fl-deploy-<time>-<id>"
    )
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.run_dir is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        args.run_dir = Path("runs") / f"fl-deploy-{stamp}-{uuid.uuid4().hex[:6]}"
    elif args.run_dir.exists():
        # the ServerApp would refuse it inside Flower, and the old run's files would be read
        print(f"{args.run_dir} exists: pass a new --run-dir (or none)", file=sys.stderr)
        return 2
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "flwr-home"
        home.mkdir()
        env = {
            **os.environ,
            "FLWR_HOME": str(home),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        port = free_port()
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "local-deploy"\n\n[superlink.local-deploy]\n'
            f'address = "127.0.0.1:{port}"\ninsecure = true\n'
        )
        procs: list[subprocess.Popen[bytes]] = []

        def start(cmd: list[str], log: Path) -> None:
            procs.append(
                subprocess.Popen(
                    cmd,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            )

        try:
            link_log = Path(tmp) / "superlink.log"
            start(
                [
                    str(bin_dir / "flower-superlink"),
                    "--insecure",
                    "--port",
                    str(port),
                    "--disable-runtime-dependency-installation",
                    "--database",
                    str(Path(tmp) / "state.db"),
                ],
                link_log,
            )
            wait_for(link_log, "Application startup complete", 60)
            for i in range(args.nodes):
                node_log = Path(tmp) / f"supernode{i}.log"
                start(
                    [
                        str(bin_dir / "flower-supernode"),
                        "--insecure",
                        "--superlink",
                        f"127.0.0.1:{port}",
                        "--port",
                        str(free_port()),
                        "--node-config",
                        f"partition-id={i}",
                    ],
                    node_log,
                )
                wait_for(node_log, "SuperNode ID", 60)
            run_config = f'run-dir="{args.run_dir.resolve()}" num-server-rounds={args.rounds}'
            run = subprocess.run(
                [
                    str(bin_dir / "flwr"),
                    "run",
                    str(APP),
                    "local-deploy",
                    "--run-config",
                    run_config,
                    "--stream",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if run.returncode != 0 or not (args.run_dir / "summary.json").exists():
                # the ServerApp failed inside Flower (flwr run may still exit 0): its log says why
                sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
                print(f"the Flower run wrote no finished run to {args.run_dir}", file=sys.stderr)
                return 1
            listing = subprocess.run(
                [str(bin_dir / "flwr"), "ls", "local-deploy", "--format", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            traffic = json.loads(listing.stdout)["runs"][0]["network-traffic"]
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
    rows = [json.loads(x) for x in (args.run_dir / "fl.jsonl").read_text().splitlines()]
    print(
        json.dumps(
            {
                "run_dir": str(args.run_dir),
                "messages": len(rows),
                "greentrack_upload_bytes": sum(r["upload_bytes"] or 0 for r in rows),
                "greentrack_download_bytes": sum(r["download_bytes"] or 0 for r in rows),
                "superlink_inbound_bytes": traffic["inbound-bytes"],
                "superlink_outbound_bytes": traffic["outbound-bytes"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
