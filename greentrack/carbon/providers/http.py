"""Small JSON-over-HTTPS client for the intensity providers (standard library only).

Every wait and every size from the network is bounded (:class:`HttpOptions`):

* each socket operation (connect, a send, a receive) waits at most ``timeout_s`` (10 s);
* each request, from name resolution through the TLS handshake, the headers and the last byte
  of the body, ends at its deadline, ``deadline_s`` (30 s) after it began: a server that
  sends one byte every 3 s is cut off there, not waited for byte by byte;
* one provider call (``history()``, ``forecast()``: a login and every piece of a long range,
  with their retries) ends ``max_total_s`` (60 s) after it began;
* an answer may hold at most ``max_body_bytes`` (8 MiB; a ``Content-Length`` above it is
  refused before any of the body is read) and JSON nested at most 64 levels.

HTTP 429 and 5xx answers are retried at most ``retries`` times with exponential backoff
(``backoff_s`` x 2^attempt); a ``Retry-After`` of at most ``max_retry_after_s`` seconds is
honoured, a longer one ends the attempt at once. Redirects are refused, so an
``Authorization`` or ``auth-token`` header can never be forwarded to another host. Proxies
from the environment (``https_proxy``...) are used as by ``urllib``.

Errors are :class:`ProviderError`, one line naming the provider, the problem and the fix.
Their messages never contain a key, token, password or ``Authorization`` header (every secret
the caller hands in is replaced by ``***``, in messages and in the parsed answer, which is what
a run directory stores), nor a control character: text from a server is shown with its
control characters escaped (``\\x1b``), so it cannot drive the terminal, a Markdown file or a
page it ends up in.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import select
import socket
import ssl
import threading
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from greentrack._version import __version__
from greentrack.errors import GreentrackError
from greentrack.numbers import duration, num
from greentrack.safeload import InputFileError, Limits, load_json_text

USER_AGENT = f"greentrack/{__version__} (+carbon intensity providers)"
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_ERROR_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 1000
_CHUNK = 64 * 1024


def printable(text: str) -> str:
    """``text`` on one line with every control character (ESC, BEL, bidirectional overrides...)
    shown as a visible escape; line breaks and tabs become spaces.

    >>> printable("zone \\x1b[2J DE\\nnext\\u202e")
    'zone \\\\x1b[2J DE next\\\\u202e'
    """
    out = []
    for ch in str(text):
        if ch in "\n\r\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class ProviderError(GreentrackError):
    """A carbon-intensity provider could not be queried, or answered with nonsense.

    The message names the provider, the problem and the fix, never holds a secret, and is
    one line without control characters (whatever the server sent).
    """

    def __init__(self, message: str) -> None:
        text = printable(message)
        if len(text) > MAX_MESSAGE_CHARS:  # keep the head (what) and the tail (the fix)
            text = text[: MAX_MESSAGE_CHARS - 300] + " [...] " + text[-290:]
        super().__init__(text)


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts, deadlines, retries (seconds) and the largest answer (bytes).

    Attributes:
        timeout_s: the longest wait of one socket operation (connect, send, receive).
        deadline_s: the longest one request may take, connection and whole body included.
        retries: how many times a 429 or 5xx answer is retried (0: never).
        backoff_s: first backoff; attempt ``n`` waits ``backoff_s * 2**n``.
        max_retry_after_s: the longest ``Retry-After`` that is waited for.
        max_total_s: the longest one provider call may take, all its requests and retries.
        max_body_bytes: the largest answer read.
    """

    timeout_s: float = 10.0
    deadline_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    max_retry_after_s: float = 30.0
    max_total_s: float = 60.0
    max_body_bytes: int = MAX_BODY_BYTES

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low = 0 if f.name in ("retries", "backoff_s", "max_retry_after_s") else 1e-3
            if isinstance(value, bool) or not (
                isinstance(value, int | float) and low <= value < float("inf")
            ):
                raise ValueError(
                    f"HttpOptions.{f.name} takes a finite number of at least {num(low, 6)}, "
                    f"got {value!r}"
                )


DEFAULTS = HttpOptions()
"""The options of a provider made without any (tests replace this to shorten the waits)."""


def default_options() -> HttpOptions:
    return DEFAULTS


class _DeadlinePassed(TimeoutError):
    """The request's deadline passed (rather than one socket operation's timeout)."""


class _Clock:
    """The waits of one request: each operation at most ``timeout_s``, all before ``at``."""

    def __init__(self, at: float, timeout_s: float) -> None:
        self.at = at
        self.timeout_s = timeout_s

    def wait_s(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed("deadline")
        return min(self.timeout_s, left)


class _DeadlineSocket:
    """A socket whose every send and receive waits at most what is left of the deadline.

    ``http.client`` reads the status line, headers and body through :meth:`makefile`, and
    sends through :meth:`sendall`; everything else is the wrapped socket's. Like a socket, it
    is really closed only once every file made from it is closed too.
    """

    def __init__(self, sock: socket.socket, clock: _Clock) -> None:
        self._sock = sock
        self._clock = clock
        self._files = 0
        self._closed = False

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self._sock.settimeout(self._clock.wait_s())
        return self._sock.recv_into(buffer, nbytes)

    def sendall(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            self._sock.settimeout(self._clock.wait_s())
            sent = self._sock.send(view[:_CHUNK])
            view = view[sent:]

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        if "w" in mode:  # pragma: no cover - http.client only reads through files
            raise ValueError("greentrack's HTTP client writes with sendall()")
        self._files += 1
        return io.BufferedReader(_DeadlineReader(self))

    def file_closed(self) -> None:
        self._files -= 1
        if self._closed and self._files <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closed = True
        if self._files <= 0:
            self._sock.close()

    def detach_socket(self) -> socket.socket:
        """The wrapped socket (for TLS to wrap in turn)."""
        return self._sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket) -> None:
        self._owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._owner.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._owner.file_closed()
        super().close()


def _resolve(host: str, port: int, clock: _Clock) -> list[Any]:
    """``getaddrinfo`` within the deadline: an address literal directly, a name on a helper
    thread that is abandoned (it ends with the resolver's own timeout) if it answers late."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    found: list[Any] = []

    def resolve() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as e:
            found.append(e)

    worker = threading.Thread(target=resolve, name="greentrack-resolve", daemon=True)
    worker.start()
    worker.join(clock.wait_s())
    if not found:
        clock.wait_s()  # raises once the deadline has passed
        raise TimeoutError(f"resolving {host} timed out")
    if isinstance(found[0], OSError):
        raise found[0]
    result: list[Any] = found[0]
    return result


def _connect(clock: _Clock, address: tuple[str, int], *_: Any) -> _DeadlineSocket:
    """``socket.create_connection`` within the deadline, as a :class:`_DeadlineSocket`."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _name, where in _resolve(host, port, clock):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(clock.wait_s())
            sock.connect(where)
        except OSError as e:
            sock.close()
            error = e
            if isinstance(e, _DeadlinePassed):
                raise
            continue
        return _DeadlineSocket(sock, clock)
    raise error or OSError(f"no address found for {host}")


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, *, clock: _Clock, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = lambda address, *rest: _connect(clock, address)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, *, clock: _Clock, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._clock = clock
        self._create_connection = lambda address, *rest: _connect(clock, address)

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)  # TCP, and a proxy's tunnel, in the deadline
        wrapped: Any = self.sock
        name = getattr(self, "_tunnel_host", None) or self.host
        context: ssl.SSLContext = getattr(self, "_context")  # noqa: B009 - private in typeshed
        tls = context.wrap_socket(
            wrapped.detach_socket(), server_hostname=name, do_handshake_on_connect=False
        )
        _handshake(tls, self._clock)
        self.sock = _DeadlineSocket(tls, self._clock)


def _handshake(tls: ssl.SSLSocket, clock: _Clock) -> None:
    """The TLS handshake without blocking, so that the deadline bounds all of it."""
    tls.setblocking(False)
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            ready = select.select([tls], [], [], clock.wait_s())[0]
        except ssl.SSLWantWriteError:
            ready = select.select([], [tls], [], clock.wait_s())[1]
        if not ready:
            clock.wait_s()
            raise TimeoutError("TLS handshake timed out")


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_Connection, req, clock=self._clock)  # type: ignore[arg-type]


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock
        self._tls = ssl.create_default_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(
            _TlsConnection,  # type: ignore[arg-type]
            req,
            context=self._tls,
            clock=self._clock,
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx as an HTTPError


def _opener(clock: _Clock) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect, _HttpHandler(clock), _HttpsHandler(clock))


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``.

    >>> redact("token abc123 refused", ["abc123", ""])
    'token *** refused'
    """
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redact_json(data: Any, secrets: Sequence[str]) -> Any:
    """``data`` (parsed JSON) with every secret replaced by ``***`` in every text, keys
    included (a server that echoes a key must not have it stored).

    >>> redact_json({"echo": ["key k-123", {"k-123": 1}]}, ["k-123"])
    {'echo': ['key ***', {'***': 1}]}
    """
    if not any(secrets):
        return data
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, list):
        return [redact_json(x, secrets) for x in data]
    if isinstance(data, dict):
        return {redact(str(k), secrets): redact_json(v, secrets) for k, v in data.items()}
    return data


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
    call_deadline: float | None = None,
) -> Any:
    """GET ``base_url + path`` and return the parsed JSON body, every secret redacted.

    ``provider`` is the human name used in messages; ``secrets`` are the values that must
    never appear in one, nor in the answer returned; ``auth_fix`` says how to fix a 401/403;
    ``url_env`` names the variable that overrides the base URL; ``call_deadline`` (a
    ``time.monotonic()`` time) ends the provider call this request belongs to (default:
    ``options.max_total_s`` from now).
    """
    opts = options or default_options()
    url = build_url(base_url, path, params)
    shown = printable(strip_userinfo(build_url(base_url, path)))  # never the query or userinfo
    request = urllib.request.Request(
        url,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
    )
    started = time.monotonic()
    ends = call_deadline if call_deadline is not None else started + opts.max_total_s
    attempt = 0
    while True:
        clock = _Clock(min(time.monotonic() + opts.deadline_s, ends), opts.timeout_s)
        try:
            body = _fetch(_opener(clock), request, clock, opts, provider, shown)
            break
        except urllib.error.HTTPError as e:
            status = e.code
            detail = _error_detail(e, secrets)
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
                    f"{retry_after:.6g} s (Retry-After). Try again later"  # raw value
                ) from None
            wait = retry_after if retry_after is not None else opts.backoff_s * 2**attempt
            if time.monotonic() + wait > ends:
                raise ProviderError(
                    f"{provider}: HTTP {status} from {shown}; gave up after {attempt + 1} "
                    f"attempts ({duration(opts.max_total_s, 4)} for one call). Try again later"
                ) from None
            time.sleep(max(0.0, wait))
            attempt += 1
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, TimeoutError):
                raise ProviderError(_timed_out(provider, shown, opts, clock, ends)) from None
            raise ProviderError(
                redact(
                    f"{provider}: cannot reach {shown} ({reason}). Check the network, or point "
                    f"greentrack at a mirror with {url_env}",
                    secrets,
                )
            ) from None
    try:
        data = load_json_text(
            body,
            source=f"the answer from {shown}",
            limits=Limits(max_bytes=opts.max_body_bytes, max_depth=MAX_JSON_DEPTH),
            fix="",
        )
    except InputFileError as e:
        raise ProviderError(
            redact(
                f"{provider}: {e}. Check that the base URL points at the provider's API "
                f"({url_env})",
                secrets,
            )
        ) from None
    return redact_json(data, secrets)


def _fetch(
    opener: urllib.request.OpenerDirector,
    request: urllib.request.Request,
    clock: _Clock,
    opts: HttpOptions,
    provider: str,
    shown: str,
) -> bytes:
    """The body of one request: at most ``opts.max_body_bytes``, read before the deadline."""
    with opener.open(request, timeout=clock.wait_s()) as response:
        length = response.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > opts.max_body_bytes:
            raise ProviderError(_too_large(provider, shown, opts, int(length)))
        chunks: list[bytes] = []
        size = 0
        while True:
            clock.wait_s()  # the deadline holds between reads as well as within them
            chunk = response.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > opts.max_body_bytes:
                raise ProviderError(_too_large(provider, shown, opts, None))
            chunks.append(chunk)


def _too_large(provider: str, shown: str, opts: HttpOptions, size: int | None) -> str:
    held = f"{size:,} bytes, more than the" if size is not None else "more than the"
    return (
        f"{provider}: the answer from {shown} holds {held} {opts.max_body_bytes:,} bytes "
        "greentrack reads; ask for a shorter range, or check the base URL"
    )


def _timed_out(provider: str, shown: str, opts: HttpOptions, clock: _Clock, ends: float) -> str:
    now = time.monotonic()
    if now >= ends - 1e-3:
        return (
            f"{provider}: no complete answer from {shown} within "
            f"{duration(opts.max_total_s, 4)} (the limit of one call, retries included). "
            "Check the network or try again later"
        )
    if now >= clock.at - 1e-3:
        return (
            f"{provider}: no complete answer from {shown} within "
            f"{duration(opts.deadline_s, 4)} (the deadline of one request: the server is too "
            "slow or stalled). Try again later"
        )
    return (
        f"{provider}: no answer from {shown} within {duration(opts.timeout_s, 4)} (timed out). "
        "Check the network or try again later"
    )


def _error_detail(e: urllib.error.HTTPError, secrets: Sequence[str]) -> str:
    """The server's own words about an error: redacted, then cut, on one printable line."""
    try:
        raw = e.read(MAX_ERROR_BYTES).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    try:
        parsed = load_json_text(raw, source="error", limits=Limits(max_depth=MAX_JSON_DEPTH))
    except InputFileError:
        parsed = None
    text = raw
    if isinstance(parsed, dict):
        for key in ("message", "error", "detail"):
            value = parsed.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if isinstance(value, str) and value:
                text = value
                break
    return printable(" ".join(redact(text, secrets).split()))[:200]


def _retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: use the backoff instead
    return max(0.0, seconds) if seconds == seconds else None


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
    return "The provider failed: try again later"
