"""Small JSON-over-HTTPS client for the intensity providers (standard library only).

Every request has a timeout (``HttpOptions.timeout_s``, default 10 s). HTTP 429 and 5xx
answers are retried at most ``retries`` times with exponential backoff
(``backoff_s`` x 2^attempt); a ``Retry-After`` of at most ``max_retry_after_s`` seconds is
honoured, a longer one ends the attempt at once, and no retry starts once ``max_total_s``
seconds have passed. Redirects are refused, so an ``Authorization`` or ``auth-token`` header
can never be forwarded to another host.

Errors are :class:`ProviderError` and name the provider, the problem and the fix. Their
messages never contain a key, token, password or ``Authorization`` header: every secret the
caller hands in (``secrets=``) is replaced by ``***`` in anything that becomes a message.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from greentrack._version import __version__
from greentrack.errors import GreentrackError

USER_AGENT = f"greentrack/{__version__} (+carbon intensity providers)"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024


class ProviderError(GreentrackError):
    """A carbon-intensity provider could not be queried, or answered with nonsense.

    The message names the provider, the problem and the fix, and never holds a secret.
    """


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts and retries, all in seconds.

    Attributes:
        timeout_s: socket timeout of every request.
        retries: how many times a 429 or 5xx answer is retried (0: never).
        backoff_s: first backoff; attempt ``n`` waits ``backoff_s * 2**n``.
        max_retry_after_s: the longest ``Retry-After`` that is waited for.
        max_total_s: no retry starts after this many seconds since the first attempt.
    """

    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    max_retry_after_s: float = 30.0
    max_total_s: float = 60.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirect)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``.

    >>> redact("token abc123 refused", ["abc123", ""])
    'token *** refused'
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def strip_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part (safe to store and print).

    >>> strip_userinfo("https://me:pw@mirror.example/api")
    'https://mirror.example/api'
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def build_url(base_url: str, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """``base_url`` + ``path`` + the encoded query string.

    >>> build_url("http://127.0.0.1:8000/", "/v3/x", [("zone", "DE")])
    'http://127.0.0.1:8000/v3/x?zone=DE'
    """
    url = base_url.rstrip("/") + path
    return url + ("?" + urllib.parse.urlencode(list(params)) if params else "")


def get_json(
    provider: str,
    base_url: str,
    path: str,
    params: Sequence[tuple[str, str]] = (),
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Sequence[str] = (),
    options: HttpOptions | None = None,
    auth_fix: str = "check the credentials",
    url_env: str = "GREENTRACK_<ID>_URL",
) -> Any:
    """GET ``base_url + path`` and return the parsed JSON body.

    ``provider`` is the human name used in messages; ``secrets`` are the values that must
    never appear in one; ``auth_fix`` says how to fix a 401/403; ``url_env`` names the
    variable that overrides the base URL.
    """
    opts = options or HttpOptions()
    url = build_url(base_url, path, params)
    shown = strip_userinfo(build_url(base_url, path))  # never the query or credentials
    request = urllib.request.Request(
        url,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            with _OPENER.open(request, timeout=opts.timeout_s) as response:
                body = response.read(MAX_BODY_BYTES + 1)
            break
        except urllib.error.HTTPError as e:
            status = e.code
            detail = redact(_error_detail(e), secrets)[:200]  # redact first, then cut
            retry_after = _retry_after_s(e.headers.get("Retry-After") if e.headers else None)
            e.close()
            retryable = status == 429 or status >= 500
            if not retryable or attempt >= opts.retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise ProviderError(
                    redact(
                        f"{provider}: HTTP {status} from {shown}{tries}"
                        f"{': ' + detail if detail else ''}. "
                        + _fix_for_status(status, auth_fix, url_env),
                        secrets,
                    )
                ) from None
            if retry_after is not None and retry_after > opts.max_retry_after_s:
                raise ProviderError(
                    f"{provider}: HTTP {status} from {shown}, and the server asks to wait "
                    f"{retry_after:g} s (Retry-After). Try again later, or use the bundled "
                    "annual figure meanwhile"
                ) from None
            wait = retry_after if retry_after is not None else opts.backoff_s * 2**attempt
            if time.monotonic() - started + wait > opts.max_total_s:
                raise ProviderError(
                    f"{provider}: HTTP {status} from {shown}; gave up after {attempt + 1} "
                    f"attempts ({opts.max_total_s:g} s budget). Try again later"
                ) from None
            time.sleep(max(0.0, wait))
            attempt += 1
        except TimeoutError:
            raise ProviderError(
                f"{provider}: no answer from {shown} within {opts.timeout_s:g} s (timed out). "
                "Check the network or try again later; offline, greentrack falls back to the "
                "bundled annual figure"
            ) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):
                raise ProviderError(
                    f"{provider}: no answer from {shown} within {opts.timeout_s:g} s "
                    "(timed out). Check the network or try again later; offline, greentrack "
                    "falls back to the bundled annual figure"
                ) from None
            raise ProviderError(
                redact(
                    f"{provider}: cannot reach {shown} ({reason}). Check the network, or point "
                    f"greentrack at a mirror with {url_env}; "
                    "offline, greentrack falls back to the bundled annual figure",
                    secrets,
                )
            ) from None
    if len(body) > MAX_BODY_BYTES:
        raise ProviderError(f"{provider}: the answer from {shown} is larger than 64 MiB")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProviderError(
            f"{provider}: the answer from {shown} is not JSON. Check that the base URL points "
            f"at the provider's API ({url_env})"
        ) from None


def _error_detail(e: urllib.error.HTTPError) -> str:
    """The server's own words about an error (whole: the caller redacts, then cuts)."""
    try:
        raw = e.read(MAX_ERROR_BYTES).decode("utf-8", "replace")
    except OSError:
        return ""
    try:
        parsed = json.loads(raw)
    except ValueError:
        return " ".join(raw.split())
    if isinstance(parsed, dict):
        for key in ("message", "error", "detail"):
            value = parsed.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if isinstance(value, str) and value:
                return " ".join(value.split())
    return " ".join(raw.split())


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: use the backoff instead
    return max(0.0, seconds)


def _fix_for_status(status: int, auth_fix: str, url_env: str) -> str:
    if status in (401, 403):
        return f"Not authorised: {auth_fix}"
    if status == 404:
        return "No data there: check the region/zone and that the time range has data"
    if status == 400:
        return "The request was refused: check the region/zone and the time range"
    if status == 429:
        return "Rate limited: wait a few minutes before asking again"
    if 300 <= status < 400:
        return (
            "Redirects are not followed (they could carry credentials elsewhere): set "
            f"{url_env} to the final address"
        )
    return "The provider failed: try again later; offline, use the bundled annual figure"
