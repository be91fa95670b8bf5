"""``greentrack run -- CMD``: measure a program from outside, transparently.

The child inherits stdin, stdout and stderr; greentrack prints only to stderr. Signals sent to
greentrack (SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2) are forwarded to the child. A
SIGINT typed at a terminal already reaches the child (it shares greentrack's foreground process
group), so in that case it is not forwarded a second time. greentrack exits with the child's
exit code, or, when the child died of a signal, by re-raising that signal on itself, so the
caller sees exactly what it would have seen without greentrack.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from greentrack.tracker import Tracker

FORWARDED = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


def _terminal_foreground() -> bool:
    """Whether greentrack's process group is the terminal's foreground group (so that
    keyboard signals reach the child directly)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def resolve_command(command: Sequence[str]) -> list[str]:
    """Check that the command can be started; raise ``FileNotFoundError`` or
    ``PermissionError`` with the shell's wording otherwise."""
    if not command:
        raise ValueError("no command given: greentrack run [OPTIONS] -- COMMAND [ARGS...]")
    exe = command[0]
    if os.sep in exe:
        if not os.path.exists(exe):
            raise FileNotFoundError(f"{exe}: no such file")
        if not os.access(exe, os.X_OK):
            raise PermissionError(f"{exe}: permission denied (not executable)")
    elif shutil.which(exe) is None:
        raise FileNotFoundError(f"{exe}: command not found on PATH")
    return list(command)


def run_command(tracker: Tracker, command: Sequence[str]) -> int:
    """Run ``command`` under ``tracker`` and return the value to exit with (negative: the
    child died of that signal, which the caller re-raises after cleanup)."""
    keyboard_reaches_child = _terminal_foreground()
    previous: dict[int, object] = {}
    child: subprocess.Popen[bytes] | None = None

    pending: list[int] = []  # signals that arrived before Popen returned

    def forward(signum: int, _frame: FrameType | None) -> None:
        if signum in (signal.SIGINT, signal.SIGQUIT) and keyboard_reaches_child:
            return
        if child is None:
            pending.append(signum)
        elif child.poll() is None:
            child.send_signal(signum)

    with tracker:
        for sig in FORWARDED:
            previous[sig] = signal.signal(sig, forward)
        try:
            child = subprocess.Popen(list(command))
            # The child may run (and be signalled) before Popen returns here: deliver what
            # arrived in that window instead of dropping it.
            while pending:
                child.send_signal(pending.pop(0))
            returncode = _wait(child)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
        tracker.event({"event": "child_exit", "returncode": returncode, "pid": child.pid})
        tracker.stop(exit_status(returncode))
    return returncode


def exit_status(returncode: int) -> str:
    """The run's status for a child's return code (negative: killed by that signal).

    >>> exit_status(0), exit_status(3), exit_status(-9)
    ('finished', 'command exited with 3', 'command killed by signal 9 (SIGKILL)')
    """
    if returncode == 0:
        return "finished"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"command killed by signal {-returncode} ({name})"
    return f"command exited with {returncode}"


def _wait(child: subprocess.Popen[bytes]) -> int:
    # A timed wait wakes the main thread regularly, so a signal handler runs promptly even
    # if the kernel delivered the signal to another thread.
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue


def exit_like(returncode: int) -> None:
    """Exit the way the child did: same code, or the same fatal signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if returncode < 0:
        sig = -returncode
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those two cannot be caught or reset
            with contextlib.suppress(OSError, ValueError):
                signal.signal(sig, signal.SIG_DFL)
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), sig)
        sys.exit(128 + sig)  # only reached for signals that do not kill (e.g. SIGCHLD)
    sys.exit(returncode)
