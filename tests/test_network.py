from __future__ import annotations

import pytest

from greentrack.carbon.network import coefficient, coefficients, network_kwh, network_range


def test_default_is_cited_and_arithmetic_is_exact():
    c = coefficient()
    assert c.key == "aslan-2018-end-to-end" and c.kwh_per_gb == 0.06 and c.data_year == 2015
    assert "10.1111/jiec.12630" in c.source
    assert network_kwh(5e8, c) == pytest.approx(0.03)
    assert network_kwh(0, c) == 0.0


def test_range_spans_the_literature():
    rows = network_range(1e9)
    values = [kwh for _, kwh in rows]
    assert values == sorted(values)
    assert values[-1] / values[0] >= 100  # two orders of magnitude, as published
    assert all(c.source for c in coefficients().values())


def test_user_values_and_errors():
    assert coefficient(0.02).kwh_per_gb == 0.02
    assert coefficient("carbon-trust-2021-mobile").kwh_per_gb == 0.1
    with pytest.raises(ValueError, match="unknown network coefficient"):
        coefficient("fast")
    with pytest.raises(ValueError, match=r"kWh per GB in \(0, 10\)"):
        coefficient(-1.0)
    with pytest.raises(ValueError, match=">= 0"):
        network_kwh(-5, coefficient())
