"""A note's terminal advice, kept apart from what the note states.

An account note states what happened ("segment 0: rank 1 of 2 left no run directory ...;
its energy is not counted"); some also say what to type about it ("merge the parts with
`greentrack merge`"). A terminal (the summary, the CLI) wants both; a paper only the first.
The account writes the advice last, after :data:`ADVICE`, so that a view takes it off
exactly (:func:`split_advice`) rather than guessing it from the words. A note stays one
string, so every view, the account's JSON and anything that prefixes a note keep working.

>>> note = with_advice("rank 1 left no run directory", "merge it with `greentrack merge`")
>>> note
'rank 1 left no run directory. Fix: merge it with `greentrack merge`'
>>> split_advice(note)
('rank 1 left no run directory', 'merge it with `greentrack merge`')
>>> split_advice("no advice here"), without_advice(note)
(('no advice here', None), 'rank 1 left no run directory')
"""

from __future__ import annotations

ADVICE = ". Fix: "
"""What separates a note from its advice (the advice is the note's last sentence)."""


def with_advice(note: str, advice: str) -> str:
    """``note`` followed by what to type about it (one sentence, no :data:`ADVICE` in it)."""
    if ADVICE in advice:
        raise ValueError(f"advice holds the separator {ADVICE!r}: {advice!r}")
    return f"{note.rstrip('.')}{ADVICE}{advice}"


def split_advice(note: str) -> tuple[str, str | None]:
    """``(what the note states, its advice or None)``."""
    text, sep, advice = note.partition(ADVICE)
    return (text, advice) if sep else (note, None)


def without_advice(note: str) -> str:
    """What ``note`` states, without its terminal advice: the words a paper prints."""
    return split_advice(note)[0]


__all__ = ["ADVICE", "split_advice", "with_advice", "without_advice"]
