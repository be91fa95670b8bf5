"""Grid carbon-intensity providers: history and forecasts from public APIs, offline-safe.

``get_provider(id)`` gives one of :data:`PROVIDER_IDS`:

* ``ukci``: UK Carbon Intensity API (NESO), GB national and regional, average, no key;
* ``electricitymaps``: Electricity Maps, zones worldwide, average, lifecycle or direct,
  key in ``ELECTRICITYMAPS_API_KEY``;
* ``watttime``: WattTime, marginal (MOER), ``WATTTIME_USERNAME`` / ``WATTTIME_PASSWORD``.

Each returns a :class:`ProviderResult` (series in gCO2e/kWh, provenance, raw response) that
round-trips through JSON and rebuilds its series offline. Any failure is a
:class:`ProviderError` whose message says what to fix and never holds a secret; the caller
falls back to the bundled annual figure. ``GREENTRACK_<ID>_URL`` overrides a base URL
(mirrors, tests). See docs/carbon-providers.md.

Importing this package imports neither pandas nor the provider modules.

>>> sorted(PROVIDER_IDS)
['electricitymaps', 'ukci', 'watttime']
"""

from __future__ import annotations

from greentrack.carbon.providers.base import (
    MAX_GCO2E_PER_KWH,
    PROVIDER_MODULES,
    FactorType,
    Kind,
    Provider,
    ProviderQuery,
    ProviderResult,
    RequestRecord,
)
from greentrack.carbon.providers.http import HttpOptions, ProviderError

PROVIDER_IDS: tuple[str, ...] = tuple(PROVIDER_MODULES)


def check_provider_id(provider_id: str) -> str:
    """``provider_id`` when it names a provider; a ValueError naming the valid ones otherwise
    (checked where it enters, before any training starts)."""
    if provider_id not in PROVIDER_IDS:
        raise ValueError(_unknown(provider_id))
    return provider_id


def _unknown(provider_id: str) -> str:
    return f"unknown intensity provider {provider_id!r}; valid ids: {', '.join(PROVIDER_IDS)}"


def get_provider(provider_id: str, *, http: HttpOptions | None = None) -> Provider:
    """The provider called ``provider_id`` (``ukci``, ``electricitymaps``, ``watttime``).

    ``http`` sets timeouts and retries. An unknown id is a ValueError naming the valid ones.
    """
    key = provider_id.strip().lower()
    if key == "ukci":
        from greentrack.carbon.providers.ukci import UKCIProvider

        return UKCIProvider(http=http)
    if key == "electricitymaps":
        from greentrack.carbon.providers.electricitymaps import ElectricityMapsProvider

        return ElectricityMapsProvider(http=http)
    if key == "watttime":
        from greentrack.carbon.providers.watttime import WattTimeProvider

        return WattTimeProvider(http=http)
    raise ValueError(_unknown(provider_id))


__all__ = [
    "MAX_GCO2E_PER_KWH",
    "PROVIDER_IDS",
    "FactorType",
    "HttpOptions",
    "Kind",
    "Provider",
    "ProviderError",
    "ProviderQuery",
    "ProviderResult",
    "RequestRecord",
    "check_provider_id",
    "get_provider",
]
