"""Where a run was charged, in words: a grid ("Germany"), or a cloud region and the grid its
location draws from ("the AWS us-east-1 region in Ashburn, Virginia, charged at Virginia's
grid intensity"), never the data table's arrow ("Ashburn, Virginia -> Virginia").

The carbon tables name a cloud region's grid as ``"LOCATION -> GRID"`` (and, where the grid
has no figure of its own, ``" (no figure for KEY: country average)"``); this module turns that
name and the region key into the words of a table cell and of a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROVIDERS = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
_MAPPED = re.compile(r"^(?P<loc>.*?) -> (?P<grid>.*?)(?: \(no figure for (?P<key>[^:)]*)[^)]*\))?$")


@dataclass(frozen=True, slots=True)
class Place:
    """``cell``: for a table ("AWS us-east-1, Ashburn, Virginia; Virginia grid");
    ``phrase``: for a sentence, no parentheses ("the AWS us-east-1 region in Ashburn,
    Virginia, charged at Virginia's grid intensity"); ``name``: the grid or location alone."""

    name: str
    cell: str
    phrase: str


def place(region: str | None, name: str | None) -> Place:
    """The words for ``region`` (a key: ``DE``, ``aws:us-east-1``) named ``name`` in the
    carbon tables.

    >>> p = place("aws:us-east-1", "Ashburn, Virginia -> Virginia")
    >>> p.cell
    'AWS us-east-1, Ashburn, Virginia; Virginia grid'
    >>> p.phrase
    "the AWS us-east-1 region in Ashburn, Virginia, charged at Virginia's grid intensity"
    >>> print(place("azure:australiacentral", "Canberra -> Australia (no figure for AU-ACT: "
    ...       "country average)").phrase)  # doctest: +NORMALIZE_WHITESPACE
    the Azure australiacentral region in Canberra, charged at Australia's average intensity,
    there being no figure for AU-ACT
    >>> place("gcp:us-central1", "Council Bluffs, Iowa").phrase
    'the Google Cloud us-central1 region in Council Bluffs, Iowa'
    >>> place("DE", "Germany").phrase, place(None, None).phrase
    ('Germany', 'an unrecorded region')
    """
    text = (name or region or "").strip()
    provider, _, cloud = (region or "").partition(":")
    if not text:
        return Place("", "", "an unrecorded region")
    if provider not in PROVIDERS or not cloud:
        return Place(text, text, text)
    where = f"{PROVIDERS[provider]} {cloud}"
    m = _MAPPED.match(text)
    if m is None:  # the provider publishes the region's own figure (Google Cloud)
        return Place(text, f"{where}, {text}", f"the {where} region in {text}")
    loc, grid, key = m.group("loc"), m.group("grid"), m.group("key")
    if key:
        return Place(
            grid,
            f"{where}, {loc}; {grid} average, no figure for {key}",
            f"the {where} region in {loc}, charged at {grid}'s average intensity, there being "
            f"no figure for {key}",
        )
    return Place(
        grid,
        f"{where}, {loc}; {grid} grid",
        f"the {where} region in {loc}, charged at {grid}'s grid intensity",
    )
