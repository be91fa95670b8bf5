"""The account: every energy and CO2e figure of one or more runs, computed once, with ranges.

>>> from greentrack.account import account_run  # doctest: +SKIP
>>> acct = account_run(greentrack.load_run("runs/exp1"))  # doctest: +SKIP
>>> acct.it_kwh.value, acct.co2e_g  # doctest: +SKIP

Layering: the account reads run directories (:mod:`greentrack.rundir`) and carbon data
(:mod:`greentrack.carbon`); analysis, views, the CLI and the integrations read the account.
Nothing else multiplies energy by PUE or intensity (:mod:`.charge`).
"""

from greentrack.account.build import (
    DEFAULT_REGIONS,
    AccountOptions,
    CarbonBasis,
    EnergyItem,
    RunAccount,
    account_run,
)
from greentrack.account.figures import Figure
from greentrack.account.group import Account, account_runs
from greentrack.account.live import LiveAccount

__all__ = [
    "DEFAULT_REGIONS",
    "Account",
    "AccountOptions",
    "CarbonBasis",
    "EnergyItem",
    "Figure",
    "LiveAccount",
    "RunAccount",
    "account_run",
    "account_runs",
]
