"""An energy or CO2e budget for a run: warn, or stop cleanly, when the forecast of the whole
run or the running total passes it. Shared by the Lightning callback (per epoch) and the
Flower wrapper (per round)."""

from __future__ import annotations

from dataclasses import dataclass

from greentrack.numbers import ENERGY, MASS, SIGNIFICANT, Scale, column


@dataclass(frozen=True)
class Budget:
    """Limits in kWh and/or kgCO2e; ``on_budget`` is ``"warn"`` or ``"stop"``.

    >>> Budget(kwh=2.0).check(total_kwh=1.0, forecast_kwh=2.5)
    'forecast or total 2.50 kWh > budget 2.00 kWh'
    >>> Budget(kgco2e=0.5).check(total_kg=0.50001)
    'forecast or total 500.01 g CO2e > budget 500.00 g CO2e'
    >>> Budget(kwh=2.0).check(total_kwh=1.0, forecast_kwh=1.5) is None
    True
    """

    kwh: float | None = None
    kgco2e: float | None = None
    on_budget: str = "warn"

    def __post_init__(self) -> None:
        if self.on_budget not in ("warn", "stop"):
            raise ValueError(f"on_budget must be 'warn' or 'stop', got {self.on_budget!r}")
        for label, value in (("budget_kwh", self.kwh), ("budget_kgco2e", self.kgco2e)):
            if value is not None and not value > 0:
                raise ValueError(f"{label} must be positive, got {value}")

    @property
    def active(self) -> bool:
        return self.kwh is not None or self.kgco2e is not None

    def check(
        self,
        *,
        total_kwh: float = 0.0,
        forecast_kwh: float | None = None,
        total_kg: float = 0.0,
        forecast_kg: float | None = None,
    ) -> str | None:
        """``None`` within budget, else what passed it."""
        over = []
        kwh = max(total_kwh, forecast_kwh or 0.0)
        if self.kwh is not None and kwh > self.kwh:
            over.append(_passed(kwh, self.kwh, ENERGY))
        kg = max(total_kg, forecast_kg or 0.0)
        if self.kgco2e is not None and kg > self.kgco2e:
            over.append(_passed(kg * 1000.0, self.kgco2e * 1000.0, MASS, " CO2e"))
        return "forecast or total " + "; ".join(over) if over else None


def _passed(figure: float, limit: float, scale: Scale, what: str = "") -> str:
    """``figure > budget limit`` in one unit (:func:`greentrack.numbers.column`), to three
    significant figures, or as many more (up to six) as it takes for a figure just past its
    budget not to read as equal to it ("2.00 kWh > budget 2.00 kWh"); where the column's
    finest decimals still cannot tell them apart, the figure is rounded up and the budget
    down (each within one last digit).

    >>> _passed(2.0004, 2.0, ENERGY), _passed(150.4, 150.0, ENERGY)
    ('2.001 kWh > budget 2.000 kWh', '150.4 kWh > budget 150.0 kWh')
    """
    for sig in range(SIGNIFICANT, 7):
        c = column([figure, limit], scale, sig)
        shown, cap = c.text(figure), c.text(limit)
        if shown != cap:
            break
    else:
        shown, cap = c.with_unit(c.cell(figure, "up")), c.with_unit(c.cell(limit, "down"))
    return f"{shown}{what} > budget {cap}{what}"
