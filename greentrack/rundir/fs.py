"""The run directory's boundary with the operating system: every call that creates, writes,
syncs or renames a file goes through a :class:`FileSystem`. The default is the real one;
tests pass one that fails on the Nth call (tests/faults.py), the way SQLite tests I/O errors.

Temporary files are unique (``mkstemp``: created with ``O_EXCL``, so a symlink planted where a
temporary file will be is never followed), and a run is claimed by linking its ``meta.json``
into place (``link`` fails if the name exists): of two trackers racing for one directory,
exactly one wins. ``mkstemp`` creates its file 0600: before the rename it takes the mode of the
file it replaces (a README a model card is merged into stays 0644), else the mode the umask
gives a new file, so colleagues on a shared file system read runs and reports as they read
any file of the user's.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO


class FileSystem:
    """The real file system."""

    def mkdir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def _temp_with(self, path: Path, text: str) -> str:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with contextlib.suppress(OSError):  # a file system without modes keeps mkstemp's
                os.fchmod(fd, _mode_for(path))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                self.write(f, text)
                self.flush(f)
                self.fsync(f)
        except BaseException:
            self.unlink(Path(tmp))
            raise
        return tmp

    def create_exclusive(self, path: Path, text: str) -> None:
        """Write ``path`` whole, only if it does not exist (``FileExistsError`` otherwise)."""
        tmp = self._temp_with(path, text)
        try:
            self.link(Path(tmp), path)
        finally:
            self.unlink(Path(tmp))

    def replace_atomic(self, path: Path, text: str) -> None:
        """Write ``path`` whole through a unique temporary file and a rename."""
        tmp = self._temp_with(path, text)
        try:
            self.replace(Path(tmp), path)
        except BaseException:
            self.unlink(Path(tmp))
            raise

    def open_append(self, path: Path) -> IO[str]:
        return path.open("a", encoding="utf-8")

    def write(self, f: IO[str], text: str) -> None:
        f.write(text)

    def flush(self, f: IO[str]) -> None:
        f.flush()

    def fsync(self, f: IO[str]) -> None:
        os.fsync(f.fileno())

    def close(self, f: IO[str]) -> None:
        f.close()

    def link(self, src: Path, dst: Path) -> None:
        os.link(src, dst)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def unlink(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


REAL = FileSystem()


def _mode_for(path: Path) -> int:
    """The permission bits ``path`` should have once written: its own if it is a regular file
    (never following a link), else a new file's under the process's umask. A symbolic link's
    own bits are 0777: a link replaced by the file must not make the file world-writable."""
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return st.st_mode & 0o7777
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The permission bits of a new folder under the process's umask (``0o755`` under
    ``022``): for a folder made 0700 aside (``TemporaryDirectory``) and moved into place."""
    return 0o777 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it (Linux ``/proc``); elsewhere set and
    restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
