r"""Escaping user text (run names, devices, commands) for Markdown.

>>> md_escape("a|b *c* <img src=x>\nnext")
'a\\|b \\*c\\* \\<img src=x\\> next'
"""

from __future__ import annotations


def md_escape(text: object) -> str:
    """Escape ``text`` for a Markdown table cell or inline text: markup characters and raw
    HTML (``<``, ``>``) are backslash-escaped and line breaks become spaces."""
    out = str(text).replace("\\", "\\\\")
    for ch in "|*_`[]<>#!":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.replace("\r", " ").split("\n"))
