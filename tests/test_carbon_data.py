"""Bundled intensity data: lookup, sources, reproducibility."""

from __future__ import annotations

import csv
import filecmp
import math
from importlib import resources

import pytest

from greentrack.carbon import build_data
from greentrack.carbon.intensity import (
    UnknownRegionError,
    all_region_keys,
    explicit_intensity,
    resolve_region,
    search_regions,
    sources,
)
from greentrack.carbon.pue import resolve_pue, validate_pue

DATA = resources.files("greentrack.carbon").joinpath("data")
TABLES = [
    "intensity_countries.csv",
    "intensity_us_states.csv",
    "intensity_china_provinces.csv",
    "intensity_electricitymaps_2024.csv",
    "cloud_regions.csv",
    "pue_presets.csv",
]


@pytest.mark.parametrize(
    ("key", "grid", "source", "value"),
    [
        ("DE", "DE", "owid-ember", 344.14),
        ("us-ca", "US-CA", "epa-egrid2023", round(394.765 * 0.453592, 2)),
        ("CA-ON", "CA-ON", "electricitymaps-2024", 91.0),
        ("em:DE", "DE", "electricitymaps-2024", 341.0),
        ("CN-BJ", "CN-BJ", "cn-mee-2023", 555.4),
        ("gcp:us-central1", "US-IA", "google-region-carbon-2024", 412.72),
        ("aws:eu-west-1", "IE", "owid-ember", None),
        ("azure:westeurope", "NL", "owid-ember", None),
    ],
)
def test_region_forms(key, grid, source, value):
    g = resolve_region(key)
    assert g.grid_key == grid and g.source.id == source
    if value is not None:
        assert g.gco2e_per_kwh == pytest.approx(value, abs=0.01)
    assert g.year in (2022, 2023, 2024) and g.basis


def test_egrid_conversion_from_raw():
    import json

    raw = json.loads((DATA / "raw" / "egrid2023_us_states_lb_per_mwh.json").read_text())
    assert resolve_region("US-CA").gco2e_per_kwh == pytest.approx(
        raw["california"]["emissions"] * 0.453592, abs=0.01
    )


def test_cloud_regions_resolve_and_carry_pue():
    gcp = resolve_region("gcp:europe-west1")
    assert gcp.pue == 1.08 and "Green Algorithms" in (gcp.pue_source or "")
    rows = list(csv.DictReader((DATA / "cloud_regions.csv").open()))
    assert {r["provider"] for r in rows} == {"aws", "gcp", "azure"}
    for r in rows:
        g = resolve_region(f"{r['provider']}:{r['region']}")
        assert math.isfinite(g.gco2e_per_kwh) and g.gco2e_per_kwh > 0, r


def test_unknown_region_lists_close_matches():
    with pytest.raises(UnknownRegionError) as info:
        resolve_region("aws:eu-west-9")
    assert "aws:eu-west-1" in str(info.value) and "greentrack regions" in str(info.value)
    with pytest.raises(UnknownRegionError, match=r"closest: .*DE"):
        resolve_region("Germny")


def test_every_bundled_row_has_a_known_source():
    known = sources()
    for table in TABLES:
        rows = list(csv.DictReader((DATA / table).open()))
        assert rows, table
        for row in rows:
            ids = [row[c] for c in ("source", "location_source", "pue_source") if row.get(c)]
            assert ids, (table, row)
            assert all(i in known for i in ids), (table, row)
            if row.get("gco2e_per_kwh"):
                assert 0 <= float(row["gco2e_per_kwh"]) < 2000 and row["year"], row
    for s in known.values():
        assert s.licence and s.title


def test_tables_rebuild_identically_from_raw(tmp_path, capsys):
    build_data.build(tmp_path)
    for table in [*TABLES, "gb_carbon_intensity_2023-03-14_to_19.csv"]:
        with resources.as_file(DATA / table) as bundled:
            assert filecmp.cmp(tmp_path / table, bundled, shallow=False), table


def test_search_and_spread():
    assert [g.region for g in search_regions("ontario")] == ["CA-ON"]
    assert len(search_regions("aws:")) >= 30
    assert len(all_region_keys()) > 600
    # the location spread Patterson et al. report (5-10x) is visible in the data
    values = [resolve_region(k).gco2e_per_kwh for k in ("SE", "FR", "US-CA", "DE", "PL", "IN")]
    assert max(values) / min(values) > 10


def test_explicit_intensity_validation():
    g = explicit_intensity(412.0, "utility bill 2025")
    assert (
        g.region == "explicit"
        and g.source.cite() == "utility bill 2025 (user; as stated by the user)"
    )
    with pytest.raises(ValueError, match="intensity_source"):
        explicit_intensity(412.0, "")
    with pytest.raises(ValueError, match=r"\[0, 3000\]"):
        explicit_intensity(-3.0, "x")


def test_pue():
    assert validate_pue(1.1) == 1.1
    with pytest.raises(ValueError, match=r"PUE of 0\.9 is not a PUE.*from 1\.0 .* to 5\.0"):
        validate_pue(0.9)
    with pytest.raises(TypeError):
        validate_pue("1.2")  # type: ignore[arg-type]
    assert resolve_pue("google").value == 1.10
    assert resolve_pue("1.3").value == 1.3
    with pytest.raises(ValueError, match="did you mean google"):
        resolve_pue("gogle")
    assert resolve_pue(None, resolve_region("aws:us-east-1")).value == 1.15
    assert resolve_pue(None, resolve_region("gcp:europe-west1")).value == 1.08
    none = resolve_pue(None, resolve_region("DE"))
    assert none.value == 1.0 and none.source == "not applied"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Germany", "DE"),
        ("deutschland", "DE"),
        ("UK", "GB"),
        ("Österreich", "AT"),
        ("United States", "US"),
        ("  france ", "FR"),
    ],
)
def test_country_names_and_common_aliases_resolve(name: str, key: str) -> None:
    """`--region Deutschland` suggested "NL, TH, FO-SI": a country's table name or its own
    name resolves like its key."""
    from greentrack.carbon.intensity import resolve_region

    assert resolve_region(name).region == key


def test_an_unknown_region_names_no_option_the_command_lacks() -> None:
    from greentrack.carbon.intensity import UnknownRegionError, resolve_region

    with pytest.raises(UnknownRegionError, match="closest: DE") as e:
        resolve_region("germny")
    assert "where the command takes one" in str(e.value)
