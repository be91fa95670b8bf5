r"""Escaping user text (run names, devices, commands) for Markdown, HTML and a terminal.

>>> md_escape("a|b *c* <img src=x>\nnext")
'a\\|b \\*c\\* \\<img src=x\\> next'
>>> terminal_safe("run \x1b[2J\x07 ok\nnext")
'run \\x1b[2J\\x07 ok\nnext'
"""

from __future__ import annotations


def md_escape(text: object) -> str:
    r"""Escape ``text`` for a Markdown table cell or inline text: markup characters and raw
    HTML (``<``, ``>``) are backslash-escaped, line breaks become spaces, and every other
    control character (ESC sequences, bells, bidirectional overrides) is shown as a visible
    escape, as :func:`terminal_safe` shows it: a Markdown file is read with ``cat`` too.

    >>> md_escape("run\x1b[2J\x07 ok")
    'run\\\\x1b\\[2J\\\\x07 ok'
    """
    flat = " ".join(str(text).replace("\r\n", " ").replace("\r", " ").split("\n"))
    out = terminal_safe(flat).replace("\\", "\\\\")
    for ch in "|*_`[]<>#!":
        out = out.replace(ch, "\\" + ch)
    return out


def html_escape(text: object) -> str:
    """Escape ``text`` for HTML text or a quoted attribute (a notebook cell): ``& < > " '``
    become entities, and control characters (bidirectional overrides included) are shown as
    visible escapes, as :func:`terminal_safe` shows them.

    >>> html_escape('<b onclick="x">R&D</b>')
    '&lt;b onclick=&quot;x&quot;&gt;R&amp;D&lt;/b&gt;'
    """
    import html

    return html.escape(terminal_safe(str(text)), quote=True)


def terminal_safe(text: str) -> str:
    """``text`` with every control character but the line break (ESC sequences that clear the
    screen or retitle the window, bells, carriage returns, bidirectional overrides, the
    Unicode line and paragraph separators) shown as a visible escape (``\\x1b``), so a run's
    name cannot drive the terminal it is printed to."""
    import unicodedata

    return "".join(
        ch
        if ch == "\n" or unicodedata.category(ch) not in _ESCAPED
        else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        for ch in text
    )


_ESCAPED = ("Cc", "Cf", "Zl", "Zp")  # controls, formats, line and paragraph separators


def one_line(text: object) -> str:
    r"""``text`` for one line of a terminal (a name in the summary): :func:`terminal_safe`,
    and the line break shown as ``\n`` too, so a name cannot split a line or fake a row.

    >>> print(one_line("first\nsecond\r\x1b[2J\u2028x"))
    first\nsecond\x0d\x1b[2J\u2028x
    """
    return terminal_safe(str(text)).replace("\n", "\\n")
