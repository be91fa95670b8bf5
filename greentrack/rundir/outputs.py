"""The one door for a path greentrack writes (a report, its ``.bib``, an export), shared by
the command line (``greentrack.cli.values``, which turns a refusal into an argparse error)
and the Python API (``greentrack.report(..., output=...)``, which raises it as it is): a bad
path is one line naming the value and the fix, before anything is written, never a raw
``OSError`` from a half-written figures folder.

>>> check_output("-", stdout_ok=True).as_posix()
'-'
>>> control_character("run \\x1b[2J"), control_character("lr=3e-4 (bs 64) \\u00e9")
('\\\\x1b', None)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional embeddings, overrides and isolates: they reorder what a terminal or a page
shows (a "Trojan Source" name), so no text option takes them."""


def control_character(text: str) -> str | None:
    """The first control character of ``text`` (ESC, a bell, a line break, a tab, a
    bidirectional override...) as a visible escape, or ``None``: a label reaches terminals,
    Markdown, HTML, LaTeX and trackers' params, where such a character drives or breaks them."""
    import unicodedata

    for ch in text:
        if unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS:
            return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"
    return None


def check_output(text: str, *, folder_ok: bool = False, stdout_ok: bool = False) -> Path:
    """``text`` as a path to write, or ``ValueError`` (``'VALUE': why; fix``) when it is
    empty, holds a control character, names an existing folder (unless ``folder_ok``) or a
    device or pipe, or when its folder is missing, not a folder or not writable. ``-``
    (stdout) passes with ``stdout_ok``."""

    def refuse(why: str) -> NoReturn:
        from greentrack.safeload import shown

        raise ValueError(f"{shown(text, 120)}: {why}")

    if text == "-" and stdout_ok:
        return Path(text)
    if not text.strip():
        refuse("give the name of the file to write" + (" (or - for stdout)" if stdout_ok else ""))
    if control_character(text) is not None:
        refuse("holds a control character; name the file in plain text")
    path = Path(text)
    if path.is_dir() and not folder_ok:
        refuse("is a folder; name the file to write in it")
    if path.exists() and not path.is_dir() and not path.is_file():
        refuse("is not a regular file (a device or a pipe); name a file, or - for stdout")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        refuse(f"{parent} is a file, not a folder; fix the path")
    if not parent.is_dir():
        refuse(f"the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        refuse(f"the folder {parent} is not writable (read-only, or not yours); write elsewhere")
    return path


__all__ = ["BIDI_CONTROLS", "check_output", "control_character"]
