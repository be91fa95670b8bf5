"""`greentrack run -- CMD` passes arguments, stdio, signals and the exit code through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

GT = [sys.executable, "-m", "greentrack", "run", "--cpu-tdp-w", "10", "--quiet"]


def _gt(tmp_path, child_code: str, *options: str):
    return [
        *GT,
        "--run-dir",
        str(tmp_path / "run"),
        *options,
        "--",
        sys.executable,
        "-c",
        textwrap.dedent(child_code),
    ]


@pytest.mark.parametrize("code", [0, 3, 255])
def test_exit_code_arguments_and_stdio(tmp_path, code):
    child = f"""
        import sys
        data = sys.stdin.read()
        print("out:" + data.upper() + "|" + "|".join(sys.argv[1:]))
        print("err-line", file=sys.stderr)
        sys.exit({code})
    """
    proc = subprocess.run(
        [*_gt(tmp_path, child), "a b", "--flag", "ünï"],
        input="hello",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == code
    assert proc.stdout == "out:HELLO|a b|--flag|ünï\n"  # stdout is the child's alone
    assert "err-line" in proc.stderr
    events = (tmp_path / "run" / "events.jsonl").read_text()
    assert f'"returncode": {code}' in events


def test_name_any_characters_kept(tmp_path):
    name = 'sweep lr=0.1 & μ=50% "quoted" $HOME {x}_y \\n'
    proc = subprocess.run(_gt(tmp_path, "pass", "--name", name), capture_output=True, timeout=60)
    assert proc.returncode == 0
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["name"] == name
    assert meta["command"][0] == sys.executable


def test_summary_goes_to_stderr(tmp_path):
    cmd = [c for c in _gt(tmp_path, "print('x')") if c != "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.stdout == "x\n"
    assert "greentrack run" in proc.stderr and "estimated" in proc.stderr


CHILD_WAITS = """
    import signal, sys, time
    def handler(signum, frame):
        print("child got", signal.Signals(signum).name, flush=True)
        sys.exit(7)
    if {trap}:
        signal.signal(signal.{sig}, handler)
    print("ready", flush=True)
    time.sleep(30)
    sys.exit(1)
"""


def _start(tmp_path, sig: str, trap: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        _gt(tmp_path, CHILD_WAITS.format(sig=sig, trap=trap)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"])
def test_signal_forwarded_to_child(tmp_path, sig):
    proc = _start(tmp_path, sig, trap=True)
    os.kill(proc.pid, getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert out.strip() == f"child got {sig}", err
    assert proc.returncode == 7, err


def test_child_killed_by_signal_kills_greentrack_the_same_way(tmp_path):
    proc = _start(tmp_path, "SIGTERM", trap=False)
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "command killed by signal 15 (SIGTERM)"


def test_command_not_found(tmp_path):
    proc = subprocess.run(
        [*GT, "--run-dir", str(tmp_path / "run"), "--", "no-such-cmd-xyz"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 127
    assert "no-such-cmd-xyz: command not found" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_missing_command(tmp_path):
    proc = subprocess.run(
        [*GT, "--run-dir", str(tmp_path / "run")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "no command given" in proc.stderr


def test_existing_run_dir_refused_before_running(tmp_path):
    subprocess.run(_gt(tmp_path, "pass"), check=True, timeout=60)
    marker = tmp_path / "ran"
    proc = subprocess.run(
        _gt(tmp_path, f"open({str(marker)!r}, 'w')"), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert not marker.exists()
