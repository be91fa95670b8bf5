"""The account of several runs: each run's account and their total."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greentrack.account.build import AccountOptions, RunAccount, account_run
from greentrack.account.figures import Figure, total


@dataclass(frozen=True)
class Account:
    """Several runs: ``runs`` in the order given, and their totals (CO2e only over the runs
    that have a carbon basis; ``runs_without_carbon`` says how many do not)."""

    runs: tuple[RunAccount, ...]
    it_kwh: Figure
    co2e_g: Figure | None
    runs_without_carbon: int
    declared: tuple[Any, ...] = ()  # work not tracked, declared (estimated): energy_kwh, co2e_g

    @classmethod
    def of(cls, accounts: Sequence[RunAccount], declared: Sequence[Any] = ()) -> Account:
        """The group of these runs' accounts, and of work declared but not tracked (objects
        with ``energy_kwh`` and ``co2e_g`` figures, e.g.
        :class:`greentrack.analysis.untracked.DeclaredWork`), with their totals."""
        co2e = [a.co2e_g for a in accounts if a.co2e_g is not None]
        co2e += [d.co2e_g for d in declared if d.co2e_g is not None]
        missing = sum(1 for a in accounts if a.co2e_g is None)  # runs; declared apart
        return cls(
            runs=tuple(accounts),
            it_kwh=total([*(a.it_kwh for a in accounts), *(d.energy_kwh for d in declared)]),
            co2e_g=total(co2e) if co2e else None,
            runs_without_carbon=missing,
            declared=tuple(declared),
        )

    @property
    def measured_kwh(self) -> float:
        return sum(a.measured_kwh for a in self.runs)

    @property
    def declared_without_carbon(self) -> int:
        """Declared items with no CO2e (no region given)."""
        return sum(1 for d in self.declared if d.co2e_g is None)

    @property
    def declared_kwh(self) -> float:
        """Energy of the declared (untracked, estimated) work."""
        return float(sum(d.energy_kwh.value for d in self.declared))

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "it_kwh": self.it_kwh.to_dict(),
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "runs_without_carbon": self.runs_without_carbon,
            "declared": [d.to_dict() for d in self.declared],
        }


def account_runs(paths_or_runs: Sequence[Any], options: AccountOptions | None = None) -> Account:
    """Load (paths) or take (:class:`~greentrack.rundir.reader.Run`) each run and account it."""
    from greentrack.rundir.reader import Run, load_run

    runs = [p if isinstance(p, Run) else load_run(Path(p)) for p in paths_or_runs]
    return Account.of([account_run(r, options) for r in runs])
