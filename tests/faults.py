"""Faults at the OS boundary, in the manner of SQLite's I/O-error tests: a file system and a
meter that fail on the Nth call (and, optionally, on every call after it)."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from greentrack.meters.base import Channel
from greentrack.rundir.fs import FileSystem

ERRNOS = (errno.ENOSPC, errno.EIO, errno.EROFS, errno.EACCES)


class FaultyFileSystem(FileSystem):
    """The real file system, except that call number ``fail_at`` (1-based, over every
    operation) raises ``OSError(code)``; with ``sticky``, every call after it does too (a disk
    that stays full)."""

    def __init__(self, fail_at: int, code: int = errno.ENOSPC, *, sticky: bool = False) -> None:
        self.fail_at, self.code, self.sticky = fail_at, code, sticky
        self.calls = 0
        self.failed = 0

    def _tick(self, what: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at or (self.sticky and self.calls > self.fail_at):
            self.failed += 1
            raise OSError(
                self.code, f"{os.strerror(self.code)} (injected, call {self.calls})", what
            )

    def mkdir(self, path: Path) -> None:
        self._tick("mkdir")
        super().mkdir(path)

    def open_append(self, path: Path) -> IO[str]:
        self._tick("open")
        return super().open_append(path)

    def write(self, f: IO[str], text: str) -> None:
        self._tick("write")
        super().write(f, text)

    def flush(self, f: IO[str]) -> None:
        self._tick("flush")
        super().flush(f)

    def fsync(self, f: IO[str]) -> None:
        self._tick("fsync")
        super().fsync(f)

    def link(self, src: Path, dst: Path) -> None:
        self._tick("link")
        super().link(src, dst)

    def replace(self, src: Path, dst: Path) -> None:
        self._tick("rename")
        super().replace(src, dst)


class FaultyMeter:
    """Wraps a meter: read number ``fail_at`` of ``operation`` (``read_energy_j`` or
    ``read_power_w``) raises ``error`` (any exception type), and with ``sticky`` every read
    after it too."""

    def __init__(
        self,
        inner: Any,
        operation: str,
        fail_at: int,
        error: BaseException,
        *,
        sticky: bool = False,
    ) -> None:
        self.inner, self.operation, self.fail_at, self.error = inner, operation, fail_at, error
        self.sticky = sticky
        self.calls = 0

    @property
    def channels(self) -> Sequence[Channel]:
        return self.inner.channels  # type: ignore[no-any-return]

    def _maybe_fail(self, operation: str) -> None:
        if operation != self.operation:
            return
        self.calls += 1
        if self.calls == self.fail_at or (self.sticky and self.calls > self.fail_at):
            raise self.error

    def read_energy_j(self) -> dict[str, float]:
        self._maybe_fail("read_energy_j")
        return self.inner.read_energy_j()  # type: ignore[no-any-return]

    def read_power_w(self) -> dict[str, float]:
        self._maybe_fail("read_power_w")
        return self.inner.read_power_w()  # type: ignore[no-any-return]

    def close(self) -> None:
        self.inner.close()
