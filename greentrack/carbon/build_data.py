"""Rebuild greentrack's bundled carbon tables from the raw source files.

    python -m greentrack.carbon.build_data            # from a checkout of the repository

Reads ``greentrack/carbon/data/raw/`` (the raw inputs, kept in the repository with their
provenance in ``raw/PROVENANCE.md``) and writes the tables in ``greentrack/carbon/data/``.
To move to a new year, replace a raw file with the new release and run this again; the
tables, their row counts and their sources are printed. Each output file keeps one licence.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
RAW = DATA / "raw"
LB_PER_MWH_TO_G_PER_KWH = 0.453592  # 1 lb = 453.592 g; 1 MWh = 1000 kWh

INTENSITY_COLUMNS = ["key", "name", "gco2e_per_kwh", "year", "basis", "source"]


def _write(out: Path, name: str, columns: list[str], rows: Iterable[Mapping[str, Any]]) -> int:
    rows = list(rows)
    with (out / name).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    print(f"{name}: {len(rows)} rows")
    return len(rows)


def countries() -> list[dict[str, Any]]:
    """Our World in Data / Ember, one row per country with an ISO 3166-1 alpha-2 code."""
    out = []
    with (RAW / "owid_ember_country_intensity.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row["alpha-2"]:
                continue
            out.append(
                {
                    "key": row["alpha-2"],
                    "name": row["Entity"],
                    "gco2e_per_kwh": round(
                        float(row["Carbon intensity of electricity (gCO2eq/kWh)"]), 2
                    ),
                    "year": int(row["Year"]),
                    "basis": "lifecycle, generation",
                    "source": "owid-ember",
                }
            )
    return sorted(out, key=lambda r: r["key"])


def us_states() -> list[dict[str, Any]]:
    """EPA eGRID2023 state CO2e output emission rates, lb/MWh converted to g/kWh."""
    raw = json.loads((RAW / "egrid2023_us_states_lb_per_mwh.json").read_text(encoding="utf-8"))
    out = []
    for name, rec in raw.items():
        if name.startswith("_") or name == "usa":
            continue
        out.append(
            {
                "key": f"US-{rec['regionCode']}",
                "name": name.title(),
                "gco2e_per_kwh": round(rec["emissions"] * LB_PER_MWH_TO_G_PER_KWH, 2),
                "year": raw["_source"]["year"],
                "basis": "direct combustion, generation",
                "source": "epa-egrid2023",
            }
        )
    return sorted(out, key=lambda r: r["key"])


def electricitymaps_zones() -> list[dict[str, Any]]:
    """Electricity Maps 2024 yearly zone averages (ODbL), as republished in co2.js."""
    raw = json.loads((RAW / "electricitymaps_zones_yearly_2024.json").read_text(encoding="utf-8"))
    out = []
    for zone, rec in raw.items():
        value = rec.get("carbonIntensity", {}).get("value")
        if value is None:
            continue
        out.append(
            {
                "key": zone,
                "name": rec.get("zone", {}).get("zoneName", zone),
                "gco2e_per_kwh": float(value),
                "year": 2024,
                "basis": "lifecycle, consumption",
                "source": "electricitymaps-2024",
            }
        )
    return sorted(out, key=lambda r: r["key"])


def china_provinces() -> list[dict[str, Any]]:
    raw = json.loads((RAW / "china_provincial_2023.json").read_text(encoding="utf-8"))
    return [
        {
            "key": key,
            "name": rec["description"],
            "gco2e_per_kwh": rec["emission_factor"],
            "year": rec["year"],
            "basis": "CO2 only, consumption",
            "source": "cn-mee-2023",
        }
        for key, rec in sorted(raw["data"].items())
    ]


CLOUD_COLUMNS = [
    "provider",
    "region",
    "location",
    "grid_key",
    "gco2e_per_kwh",
    "year",
    "basis",
    "source",
    "location_source",
    "pue",
    "pue_year",
    "pue_source",
]


def _greenalgorithms() -> list[dict[str, str]]:
    with (RAW / "greenalgorithms_cloud_datacenters.csv").open(encoding="utf-8") as f:
        lines = f.read().splitlines()[1:]  # the first line documents the columns
    return list(csv.DictReader(lines))


def cloud_regions() -> list[dict[str, Any]]:
    ga = _greenalgorithms()
    ga_gcp = {r["Name"]: r for r in ga if r["provider"] == "gcp"}
    rows: list[dict[str, Any]] = []
    with (RAW / "gcp_region_carbon_2024.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            g = ga_gcp.get(r["Google Cloud Region"], {})
            pue = g.get("PUE", "")
            rows.append(
                {
                    "provider": "gcp",
                    "region": r["Google Cloud Region"],
                    "location": r["Location"],
                    "grid_key": g.get("location", ""),
                    "gco2e_per_kwh": float(r["Grid carbon intensity (gCO2eq / kWh)"]),
                    "year": 2024,
                    "basis": "location-based grid average (Google)",
                    "source": "google-region-carbon-2024",
                    "location_source": "google-region-carbon-2024",
                    "pue": pue,
                    "pue_year": 2020 if pue else "",
                    "pue_source": "greenalgorithms-datacenters" if pue else "",
                }
            )
    for r in ga:
        if r["provider"] != "azure" or not r["location"]:
            continue
        pue = r.get("PUE", "") or ""
        try:
            float(pue)
        except ValueError:
            pue = ""
        rows.append(
            {
                "provider": "azure",
                "region": r["Name"].lower().replace(" ", "").split("(")[0],
                "location": r["location_freeForm"].strip() or r["Name"],
                "grid_key": r["location"],
                "location_source": "greenalgorithms-datacenters",
                "pue": pue,
                "pue_year": 2020 if pue else "",
                "pue_source": "greenalgorithms-datacenters" if pue else "",
            }
        )
    with (RAW / "aws_region_locations.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            rows.append(
                {
                    "provider": "aws",
                    "region": r["region"],
                    "location": r["location"],
                    "grid_key": r["grid_key"],
                    "location_source": "aws-region-map",
                }
            )
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        ident = (row["provider"], row["region"])
        if ident not in seen:
            seen.add(ident)
            unique.append(row)
    return sorted(unique, key=lambda r: (r["provider"], r["region"]))


PUE_COLUMNS = ["key", "pue", "year", "scope", "source", "note"]
PUE_PRESETS = [
    {
        "key": "google",
        "pue": 1.10,
        "year": 2023,
        "scope": "Google data-centre fleet, trailing twelve months",
        "source": "google-env-2024",
        "note": "",
    },
    {
        "key": "aws",
        "pue": 1.15,
        "year": 2023,
        "scope": "AWS global data centres",
        "source": "aws-sustainability",
        "note": "secondary: read from AWS's sustainability pages, not a report",
    },
    {
        "key": "azure",
        "pue": 1.18,
        "year": 2024,
        "scope": "Microsoft data-centre fleet (newest designs 1.12)",
        "source": "microsoft-datacenters",
        "note": "secondary: Microsoft statements, not a report",
    },
    {
        "key": "meta",
        "pue": 1.08,
        "year": 2023,
        "scope": "Meta data-centre fleet",
        "source": "meta-sustainability-2023",
        "note": "secondary: as reported by Meta, not checked against the report",
    },
    {
        "key": "uptime-2024",
        "pue": 1.56,
        "year": 2024,
        "scope": "industry average (survey)",
        "source": "uptime-2024",
        "note": "",
    },
    {
        "key": "uptime-2023",
        "pue": 1.58,
        "year": 2023,
        "scope": "industry average (survey)",
        "source": "uptime-2023",
        "note": "",
    },
    {
        "key": "on-premise",
        "pue": 1.63,
        "year": 2024,
        "scope": "typical enterprise on-premise",
        "source": "idc-via-aws",
        "note": "secondary: IDC figure as quoted on AWS pages",
    },
]


def build(out: Path = DATA) -> None:
    """Write every bundled table into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    _write(out, "intensity_countries.csv", INTENSITY_COLUMNS, countries())
    _write(out, "intensity_us_states.csv", INTENSITY_COLUMNS, us_states())
    _write(out, "intensity_electricitymaps_2024.csv", INTENSITY_COLUMNS, electricitymaps_zones())
    _write(out, "intensity_china_provinces.csv", INTENSITY_COLUMNS, china_provinces())
    _write(out, "cloud_regions.csv", CLOUD_COLUMNS, cloud_regions())
    _write(out, "pue_presets.csv", PUE_COLUMNS, PUE_PRESETS)
    name = "gb_carbon_intensity_2023-03-14_to_19.csv"
    shutil.copyfile(RAW / name, out / name)
    print(f"{name}: copied")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Rebuild the bundled carbon tables.")
    parser.add_argument("--out", type=Path, default=DATA, help="output directory")
    build(parser.parse_args().out)


if __name__ == "__main__":
    main()
