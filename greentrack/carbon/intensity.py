"""Annual grid carbon intensity: bundled tables and region lookup.

Keys (case-insensitive):

* ``"DE"``: a country, ISO 3166-1 alpha-2 (Our World in Data / Ember, lifecycle).
* ``"US-CA"``: a US state (EPA eGRID2023); ``"CN-BJ"``: a Chinese province (MEE 2023);
  ``"CA-ON"``, ``"AU-NSW"``, ``"IN-SO"``, ``"US-CAL-CISO"``: other sub-national grids
  (Electricity Maps 2024).
* ``"em:DE"``: any Electricity Maps 2024 zone, forcing that source.
* ``"aws:eu-west-1"``, ``"gcp:us-central1"``, ``"azure:westeurope"``: a cloud region. Google
  publishes per-region grid intensity; AWS and Azure regions are mapped to the grid of their
  location (the mapping is in ``data/cloud_regions.csv``).

Every result carries its value's source, year, licence and basis (lifecycle or direct
combustion; generation or consumption), so a report can state them.
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from greentrack.errors import GreentrackError
from greentrack.numbers import num

TABLES = (
    "intensity_countries.csv",
    "intensity_us_states.csv",
    "intensity_china_provinces.csv",
    "intensity_electricitymaps_2024.csv",
)
CLOUD_PROVIDERS = ("aws", "gcp", "azure")
MAX_GCO2E_PER_KWH = 3000.0
"""The plausible ceiling of a grid's intensity (coal-only grids are about 1,000-1,200 on a
lifecycle basis): anything above is a unit error (lbs/MWh, kg/MWh) or garbage."""


class UnknownRegionError(GreentrackError, KeyError):
    """A region name that no bundled table knows; the message lists the closest matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True, slots=True)
class Source:
    """Where a bundled figure comes from."""

    id: str
    title: str
    publisher: str
    licence: str
    retrieved: str

    def cite(self) -> str:
        if not self.publisher:
            return self.title
        return f"{self.title} ({self.publisher}; {self.licence})"


@dataclass(frozen=True, slots=True)
class GridIntensity:
    """Carbon intensity of the electricity a run used.

    Attributes:
        region: the key the user gave, normalised (``"DE"``, ``"aws:eu-west-1"``) or
            ``"explicit"`` for a number the user supplied.
        name: human name of the grid or region.
        gco2e_per_kwh: grams CO2e per kWh.
        year: the year the figure describes (``None`` if the user did not say).
        basis: e.g. ``"lifecycle, generation"``, ``"direct combustion, generation"``.
        source: the :class:`Source` (for user numbers, their own string).
        grid_key: for a cloud region, the grid whose figure was used.
        kind: ``"average"`` or ``"marginal"``.
        pue: a PUE the region's operator publishes for it, if any, with ``pue_source``.
    """

    region: str
    name: str
    gco2e_per_kwh: float
    year: int | None
    basis: str
    source: Source
    grid_key: str | None = None
    kind: str = "average"
    pue: float | None = None
    pue_source: str | None = None
    pue_year: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "name": self.name,
            "gco2e_per_kwh": self.gco2e_per_kwh,
            "year": self.year,
            "basis": self.basis,
            "kind": self.kind,
            "grid_key": self.grid_key,
            "source": self.source.cite(),
            "source_id": self.source.id,
            "licence": self.source.licence,
            "region_pue": self.pue,
            "region_pue_source": self.pue_source,
            "region_pue_year": self.pue_year,
        }


def _data_text(name: str) -> list[dict[str, str]]:
    path = resources.files("greentrack.carbon").joinpath(f"data/{name}")
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=1)
def sources() -> dict[str, Source]:
    """The bundled sources by id (``data/sources.csv``)."""
    return {
        r["id"]: Source(r["id"], r["title"], r["publisher"], r["licence"], r["retrieved"])
        for r in _data_text("sources.csv")
    }


@lru_cache(maxsize=1)
def _grid_tables() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(default table by upper-case key, Electricity Maps zones by upper-case key)."""
    default: dict[str, dict[str, str]] = {}
    zones: dict[str, dict[str, str]] = {}
    for table in TABLES:
        for row in _data_text(table):
            key = row["key"].upper()
            if row["source"] == "electricitymaps-2024":
                zones[key] = row
            if key not in default:  # earlier tables win: OWID countries, eGRID states, ...
                default[key] = row
    return default, zones


@lru_cache(maxsize=1)
def _cloud_table() -> dict[str, dict[str, str]]:
    return {f"{r['provider']}:{r['region']}".upper(): r for r in _data_text("cloud_regions.csv")}


def _grid(row: dict[str, str], region: str) -> GridIntensity:
    return GridIntensity(
        region=region,
        name=row["name"],
        gco2e_per_kwh=float(row["gco2e_per_kwh"]),
        year=int(row["year"]),
        basis=row["basis"],
        source=sources()[row["source"]],
        grid_key=row["key"],
    )


def all_region_keys() -> list[str]:
    """Every key :func:`resolve_region` accepts (cloud regions with their provider prefix)."""
    default, zones = _grid_tables()
    cloud = [f"{r['provider']}:{r['region']}" for r in _cloud_table().values()]
    return sorted(
        {r["key"] for r in default.values()} | {f"em:{r['key']}" for r in zones.values()}
    ) + sorted(cloud)


def resolve_region(region: str) -> GridIntensity:
    """Annual intensity for a region key (see the module docstring for the forms).

    >>> resolve_region("us-ca").grid_key
    'US-CA'

    Raises:
        UnknownRegionError: no table knows ``region``; the message lists close matches.
    """
    if not isinstance(region, str) or not region.strip():
        raise UnknownRegionError(f"region must be a non-empty string like 'DE', got {region!r}")
    key = region.strip()
    upper = key.upper()
    default, zones = _grid_tables()
    if upper.startswith("EM:"):
        row = zones.get(upper[3:])
        if row is not None:
            return _grid(row, f"em:{row['key']}")
    elif upper.split(":", 1)[0].lower() in CLOUD_PROVIDERS and ":" in upper:
        cloud = _cloud_table().get(upper)
        if cloud is not None:
            return _cloud(cloud)
    elif upper in default:
        return _grid(default[upper], default[upper]["key"])
    named = _by_name(key)
    if named is not None and named in default:
        return _grid(default[named], default[named]["key"])
    raise UnknownRegionError(_unknown_message(key))


ALIASES = {
    # common English names that are not a table's name, and countries' own names
    "UK": "GB",
    "UNITED KINGDOM": "GB",
    "GREAT BRITAIN": "GB",
    "BRITAIN": "GB",
    "ENGLAND": "GB",
    "USA": "US",
    "UNITED STATES OF AMERICA": "US",
    "AMERICA": "US",
    "DEUTSCHLAND": "DE",
    "FRANCE METROPOLITAINE": "FR",
    "ESPANA": "ES",
    "ITALIA": "IT",
    "NEDERLAND": "NL",
    "HOLLAND": "NL",
    "SCHWEIZ": "CH",
    "SUISSE": "CH",
    "SVIZZERA": "CH",
    "OSTERREICH": "AT",
    "SVERIGE": "SE",
    "NORGE": "NO",
    "SUOMI": "FI",
    "DANMARK": "DK",
    "POLSKA": "PL",
    "CESKO": "CZ",
    "CZECHIA": "CZ",
    "BELGIQUE": "BE",
    "BELGIE": "BE",
    "EIRE": "IE",
    "TURKIYE": "TR",
    "BRASIL": "BR",
    "NIPPON": "JP",
    "NIHON": "JP",
    "ZHONGGUO": "CN",
    "BHARAT": "IN",
    "SOUTH KOREA": "KR",
    "KOREA": "KR",
}
"""Other names of a country, without accents, upper case: resolved like its key."""


def _plain(text: str) -> str:
    """Upper case without accents or punctuation ("Österreich" -> "OSTERREICH")."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return " ".join(re.sub(r"[^A-Za-z ]", " ", folded).upper().split())


def _by_name(text: str) -> str | None:
    """The key of a country or grid called ``text``: a table's own name ("Germany") or one of
    :data:`ALIASES` ("Deutschland", "UK"), accents and case aside."""
    plain = _plain(text)
    if not plain:
        return None
    if plain in ALIASES:
        return ALIASES[plain]
    for row in _grid_tables()[0].values():
        if _plain(row["name"]) == plain:
            return str(row["key"]).upper()
    return None


def _cloud(row: dict[str, str]) -> GridIntensity:
    region = f"{row['provider']}:{row['region']}"
    pue = float(row["pue"]) if row["pue"] else None
    pue_source = sources()[row["pue_source"]].cite() if row["pue_source"] else None
    pue_year = int(row["pue_year"]) if row["pue_year"] else None
    if row["gco2e_per_kwh"]:
        return GridIntensity(
            region=region,
            name=row["location"],
            gco2e_per_kwh=float(row["gco2e_per_kwh"]),
            year=int(row["year"]),
            basis=row["basis"],
            source=sources()[row["source"]],
            grid_key=row["grid_key"] or None,
            pue=pue,
            pue_source=pue_source,
            pue_year=pue_year,
        )
    default, _ = _grid_tables()
    grid_key = row["grid_key"].upper()
    note = ""
    if grid_key not in default and grid_key.split("-")[0] in default:
        note = f" (no figure for {grid_key}: country average)"
        grid_key = grid_key.split("-")[0]
    grid = default[grid_key]
    return GridIntensity(
        region=region,
        name=f"{row['location']} -> {grid['name']}{note}",
        gco2e_per_kwh=float(grid["gco2e_per_kwh"]),
        year=int(grid["year"]),
        basis=grid["basis"],
        source=sources()[grid["source"]],
        grid_key=grid["key"],
        pue=pue,
        pue_source=pue_source,
        pue_year=pue_year,
    )


def search_regions(query: str = "", limit: int | None = None) -> list[GridIntensity]:
    """Regions whose key or name contains ``query`` (case-insensitive), best first."""
    q = query.strip().lower()
    default, zones = _grid_tables()
    out: list[GridIntensity] = []
    for row in default.values():
        if not q or q in row["key"].lower() or q in row["name"].lower():
            out.append(_grid(row, row["key"]))
    for row in zones.values():
        if (
            q
            and (q in f"em:{row['key']}".lower())
            and row["key"].upper() in default
            and default[row["key"].upper()]["source"] != "electricitymaps-2024"
        ):
            out.append(_grid(row, f"em:{row['key']}"))
    for row in _cloud_table().values():
        key = f"{row['provider']}:{row['region']}"
        if not q or q in key.lower() or q in row["location"].lower():
            out.append(_cloud(row))
    out.sort(key=lambda g: (g.region.lower() != q, not g.region.lower().startswith(q), g.region))
    return out[:limit] if limit else out


def _unknown_message(key: str) -> str:
    keys = all_region_keys()
    names = {row["name"].lower(): row["key"] for row in _grid_tables()[0].values()}
    close = difflib.get_close_matches(key.upper(), [k.upper() for k in keys], n=5, cutoff=0.6)
    close += [
        names[n] for n in difflib.get_close_matches(key.lower(), list(names), n=3, cutoff=0.6)
    ]
    upper_to_key = {k.upper(): k for k in keys}
    suggestions = list(dict.fromkeys(upper_to_key.get(c, c) for c in close))
    hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
    return (
        f"unknown region {key!r}{hint}. Use an ISO country code ('DE'), a sub-national grid "
        "('US-CA', 'CA-ON'), 'em:<zone>', or a cloud region ('aws:eu-west-1'); list them with "
        "`greentrack regions QUERY`; or, where the command takes one, give the intensity "
        "itself with its source (greentrack run and estimate: --intensity GCO2E_PER_KWH "
        "--intensity-source TEXT; Python: intensity=, intensity_source=)"
    )


def explicit_intensity(
    gco2e_per_kwh: float, source: str, year: int | None = None, kind: str = "average"
) -> GridIntensity:
    """A user-supplied intensity, validated, with the user's source string."""
    if (
        isinstance(gco2e_per_kwh, bool)
        or not isinstance(gco2e_per_kwh, int | float)
        or not 0 <= gco2e_per_kwh <= MAX_GCO2E_PER_KWH
    ):
        raise ValueError(
            f"intensity must be gCO2e/kWh in [0, {num(MAX_GCO2E_PER_KWH, 6)}] (the dirtiest "
            f"grids are about 1,200), got {gco2e_per_kwh!r}"
        )
    if not source or not str(source).strip():
        raise ValueError(
            "an explicit intensity needs intensity_source='where the number comes from'"
        )
    if kind not in ("average", "marginal"):
        raise ValueError(f"intensity kind must be 'average' or 'marginal', got {kind!r}")
    return GridIntensity(
        region="explicit",
        name="given by the user",
        gco2e_per_kwh=float(gco2e_per_kwh),
        year=year,
        basis="as given",
        source=Source("user", str(source), "user", "as stated by the user", ""),
        kind=kind,
    )
