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

    @classmethod
    def of(cls, accounts: Sequence[RunAccount]) -> Account:
        """The group of these runs' accounts, with their totals."""
        with_carbon = [a.co2e_g for a in accounts if a.co2e_g is not None]
        return cls(
            runs=tuple(accounts),
            it_kwh=total(a.it_kwh for a in accounts),
            co2e_g=total(with_carbon) if with_carbon else None,
            runs_without_carbon=len(accounts) - len(with_carbon),
        )

    @property
    def measured_kwh(self) -> float:
        return sum(a.measured_kwh for a in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.to_dict() for r in self.runs],
            "it_kwh": self.it_kwh.to_dict(),
            "co2e_g": self.co2e_g.to_dict() if self.co2e_g else None,
            "runs_without_carbon": self.runs_without_carbon,
        }


def account_runs(paths_or_runs: Sequence[Any], options: AccountOptions | None = None) -> Account:
    """Load (paths) or take (:class:`~greentrack.rundir.reader.Run`) each run and account it."""
    from greentrack.rundir.reader import Run, load_run

    runs = [p if isinstance(p, Run) else load_run(Path(p)) for p in paths_or_runs]
    return Account.of([account_run(r, options) for r in runs])
