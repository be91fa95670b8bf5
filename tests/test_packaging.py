"""Installation: light core import, extras, and integrations/templates inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    code = (
        "import sys, greentrack; "
        "print(','.join(m for m in ('torch', 'lightning', 'pytorch_lightning', 'flwr', 'pandas',"
        " 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_integrations_and_templates_import_from_this_install():
    import greentrack.integrations as integrations
    import greentrack.templates as templates

    assert Path(integrations.__file__).parent.name == "integrations"
    assert "summary.md.j2" in templates.template_files()


def test_wheel_contains_integrations_and_templates(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("greentrack-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "greentrack/__init__.py",
        "greentrack/integrations/__init__.py",
        "greentrack/integrations/flower/__init__.py",
        "greentrack/integrations/flower/wire.py",
        "greentrack/account/build.py",
        "greentrack/rundir/reader.py",
        "greentrack/cli/__init__.py",
        "greentrack/carbon/providers/ukci.py",
        "greentrack/views/summary.py",
        "greentrack/templates/__init__.py",
        "greentrack/templates/summary.md.j2",
        "greentrack/meters/data/cpu_tdp.csv",
        "greentrack/meters/data/SOURCES.md",
        "greentrack/py.typed",
    ):
        assert required in names, f"{required} missing from {wheel.name}"
    assert not any(n.startswith(("tests/", "integrations/", "templates/")) for n in names)
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for extra in ("lightning", "flower", "all", "dev"):
        assert f"Provides-Extra: {extra}" in text
    requires = [
        ln for ln in text.splitlines() if ln.startswith("Requires-Dist:") and "extra ==" not in ln
    ]
    assert not any(fw in ln for ln in requires for fw in ("torch", "lightning", "flwr"))


def test_missing_framework_names_the_extra(monkeypatch):
    import pytest

    from greentrack.integrations import require

    monkeypatch.setitem(sys.modules, "flwr", None)  # as if flwr were not installed
    monkeypatch.delitem(sys.modules, "flwr.serverapp", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'greentrack\[flower\]'"):
        require("flwr.serverapp")


def test_the_core_never_imports_the_integrations():
    """The integrations sit on top (docs/architecture.md); import-linter checks the other
    layers, but cannot see greentrack.integrations (installed from integrations/)."""
    import re

    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "greentrack").rglob("*.py")
        if re.search(
            r"^\s*(from|import)\s+greentrack\.integrations",
            path.read_text(encoding="utf-8"),
            re.M,
        )
    ]
    assert offenders == []


def test_one_place_for_the_co2e_formula_and_the_joules_per_kwh_constant():
    """The CO2e formula lives in greentrack/account/charge.py and 3.6e6 in greentrack/units.py:
    nothing else multiplies energy by PUE and intensity or spells the constant."""
    import re

    sources = [
        *(ROOT / "greentrack").rglob("*.py"),
        *(ROOT / "integrations").rglob("*.py"),
        *(ROOT / "templates").glob("*.j2"),
    ]
    constant = [
        str(p.relative_to(ROOT))
        for p in sources
        if re.search(r"3\.6e6|3_600_000|3600000|2\.7777", p.read_text(encoding="utf-8"))
    ]
    assert constant == ["greentrack/units.py"]
    formula = re.compile(r"pue[\w.]*\s*\*\s*[\w.]*gco2e_per_kwh|gco2e_per_kwh\s*\*\s*[\w.]*pue")
    multiplied = [
        str(p.relative_to(ROOT)) for p in sources if formula.search(p.read_text(encoding="utf-8"))
    ]
    assert multiplied == ["greentrack/account/charge.py"]
