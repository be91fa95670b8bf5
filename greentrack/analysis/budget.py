"""An energy or CO2e budget for a run: warn, or stop cleanly, when the forecast of the whole
run or the running total passes it. Shared by the Lightning callback (per epoch) and the
Flower wrapper (per round)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Limits in kWh and/or kgCO2e; ``on_budget`` is ``"warn"`` or ``"stop"``.

    >>> Budget(kwh=2.0).check(total_kwh=1.0, forecast_kwh=2.5)
    'forecast or total 2.5 kWh > budget 2 kWh'
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
            over.append(f"{kwh:.4g} kWh > budget {self.kwh:g} kWh")
        kg = max(total_kg, forecast_kg or 0.0)
        if self.kgco2e is not None and kg > self.kgco2e:
            over.append(f"{kg:.4g} kgCO2e > budget {self.kgco2e:g} kgCO2e")
        return "forecast or total " + "; ".join(over) if over else None
