"""RSS/Atom feeds over HTTP as a source: fetch each feed once (batch pull) and emit raw inputs for `parse_raw`.

A raw input is `{"ref": url, "data": bytes, "fetched_at": iso, "source": None}` (plus `max_entries`, read by
`parse_raw`). A feed that cannot be fetched, or whose content is refused (HTML page, a DOCTYPE declaring
entities), becomes one raw input carrying `"error"`, so it ends as a dead letter instead of vanishing. A 304 (the
feed did not change since the ETag / Last-Modified passed in `state`; streaming polls) yields no raw input.

HTTP goes through `requests` (a dependency of apache-beam, so always present with it). The retry policy is
urllib3's `Retry` (which failures and statuses are retried, how many times, exponential backoff with jitter,
Retry-After parsing); the loop that applies it is here because urllib3 retries only inside one request, and a
fetch also fails after the headers (a body cut short, an empty body), checks every redirect hop itself (public
hosts only, for entry pages) and runs under one total deadline. Redirects, timeouts and size caps are decided
here too, not left to library defaults. `--fetch-full-text` fetches an entry's
article page with the same client (`fetch_page`, `FullTextFetcher`) and extracts its main text with trafilatura;
`--urls` (pipeline.pages) fetches listed article pages with it too.
"""
from __future__ import annotations

import codecs
import datetime as dt
import ipaddress
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urljoin, urlsplit

import apache_beam as beam
import requests
import requests.adapters
import urllib3.response
from urllib3.exceptions import InvalidHeader, MaxRetryError
from urllib3.util.retry import Retry

from transforms.common import counter
from transforms.records import FullTextPolicy, ParseLimits

_log = logging.getLogger("newsbeam.feeds")
USER_AGENT = "newsbeam/0.1 (+https://github.com/newsbeam)"
DEFAULT_MAX_ENTRIES = 500
ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, application/xml;q=0.9, " \
         "text/xml;q=0.9, */*;q=0.1"
ACCEPT_HTML = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"  # article pages (--fetch-full-text)
_DECODABLE = {"", "identity", "gzip", "x-gzip", "deflate"}
_RETRY_STATUS = frozenset({429} | set(range(500, 600)))


# ------------------------------------------------------------------ feed lists and URLs
def validate_feed_url(url: str, what: str = "feed URL") -> str:
    """The URL, stripped, if it is absolute http(s) with a host; ValueError otherwise (naming `what` it is).

    Only http(s) is fetched: file://, ftp:// and friends would let a feed list (or a redirect) read local files
    or talk to services the pipeline has no business with."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"{what} must be a non-empty string, got {url!r}")
    url = url.strip()
    if any(c.isspace() for c in url):
        raise ValueError(f"{what} contains whitespace: {url!r}")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        got = f"{parts.scheme}:" if parts.scheme else "no scheme"
        raise ValueError(f"{what} must be http:// or https://, got {got} in {url!r}")
    try:
        host, _ = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError as exc:
        raise ValueError(f"{what} has an invalid port: {url!r} ({exc})") from None
    if not host:
        raise ValueError(f"{what} has no host: {url!r}")
    return url


def read_feed_list(path: str | Path, what: str = "feed URL") -> list[str]:
    """URLs from a text file (feeds; article pages for --urls, `what` naming them in errors): one per line, blank
    lines and `#` comment lines (or trailing ` # ...`) allowed.

    Duplicates are dropped (first kept) so a URL is not fetched twice in one run; a bad line is an error naming
    the file and line, raised before anything is fetched."""
    urls: list[str] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) > 1 and not words[1].startswith("#"):
            raise ValueError(f"{path}:{n}: expected one URL per line, got {line.strip()!r}")
        try:
            urls.append(validate_feed_url(words[0], what))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from None
    return list(dict.fromkeys(urls))


# ------------------------------------------------------------------ fetching
@dataclass(frozen=True)
class FetchLimits:
    """Every bound on one feed fetch; small values make tests fast, defaults suit real publishers."""
    connect_timeout: float = 5.0
    read_timeout: float = 20.0  # per socket read, so a stalled server is noticed
    total_timeout: float = 60.0  # whole fetch incl. retries, so a slow-drip server cannot hold a worker forever
    max_bytes: int = 10 * 1024 * 1024  # decoded body; beyond it reading stops and the fetch fails
    max_redirects: int = 5
    retries: int = 3  # extra attempts after the first, on 5xx/429, timeouts and dropped connections
    backoff: float = 0.5  # urllib3's backoff_factor: the first retry is at once, then backoff * 2**(n-1) s, plus
    # up to 25% of `backoff` of jitter
    max_backoff: float = 8.0  # cap on one delay of our own backoff
    max_retry_after: float = 30.0  # a server's Retry-After is waited for in full up to this; beyond it, or beyond
    # the time left before total_timeout, the fetch fails with the reason instead of retrying early
    user_agent: str = USER_AGENT


@dataclass
class FetchResult:
    """Outcome of one feed fetch. `data` is the decoded body (None on error or 304)."""
    url: str
    status: int | None
    data: bytes | None
    etag: str | None
    last_modified: str | None
    fetched_at: str
    error: str | None = None
    not_modified: bool = False
    final_url: str | None = None
    content_type: str | None = None
    attempts: int = 1

    def state(self) -> dict:
        """The validators to keep for the next poll of this feed (pass back as `state=`)."""
        return {"url": self.url, "etag": self.etag, "last_modified": self.last_modified}


class FetchFailed(Exception):
    """One attempt failed; `retryable` says whether another attempt may succeed. `response` (urllib3's) is kept
    for a retryable HTTP status, for the retry policy to read its Retry-After."""

    def __init__(self, reason: str, retryable: bool, status: int | None = None,
                 response: urllib3.response.BaseHTTPResponse | None = None):
        super().__init__(reason)
        self.reason, self.retryable, self.status, self.response = reason, retryable, status, response


def _now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _validator(state: Any, key: str) -> str | None:
    """ETag / Last-Modified from a previous FetchResult or a dict (e.g. loaded from a state file)."""
    if state is None:
        return None
    value = getattr(state, key, None) if not isinstance(state, Mapping) else state.get(key)
    return value if isinstance(value, str) and value else None


def request_headers(state: Any, limits: FetchLimits, accept: str = ACCEPT) -> dict[str, str]:
    """Headers for one fetch: identity, accepted types and encodings, and the conditional-GET validators."""
    headers = {"User-Agent": limits.user_agent, "Accept": accept, "Accept-Encoding": "gzip, deflate"}
    etag, modified = _validator(state, "etag"), _validator(state, "last_modified")
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    return headers


def retry_policy(limits: FetchLimits) -> Retry:
    """urllib3's Retry for one fetch: `retries` retries of any kind in all (a failure is only handed to it when
    retrying may help: a timeout, a dropped connection, an empty body, a 429 or 5xx), exponential backoff with
    jitter capped at max_backoff, Retry-After respected. Redirects are followed (and checked) by _attempt, never
    here; Retry-After is read unclipped so one beyond max_retry_after can be refused with its value."""
    return Retry(total=limits.retries, redirect=False, status_forcelist=_RETRY_STATUS, allowed_methods={"GET"},
                 backoff_factor=limits.backoff, backoff_max=limits.max_backoff, backoff_jitter=limits.backoff / 4,
                 respect_retry_after_header=True, raise_on_status=False, retry_after_max=2 ** 31)


def _retry_after(retry: Retry, failed: FetchFailed) -> float | None:
    """The server's Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if failed.response is None:
        return None
    try:
        return retry.get_retry_after(failed.response)
    except InvalidHeader:
        return None


def _describe(exc: requests.RequestException, limits: FetchLimits) -> FetchFailed:
    """A requests exception as a reason a person can act on, and whether retrying makes sense."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return FetchFailed(f"connect timeout after {limits.connect_timeout:g} s", True)
    if isinstance(exc, requests.exceptions.ReadTimeout) or "Read timed out" in text:
        return FetchFailed(f"read timeout after {limits.read_timeout:g} s", True)
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return FetchFailed(f"cannot decode the compressed body: {text[:200]}", False)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        return FetchFailed(f"connection failed or dropped: {text[:300]}", True)
    return FetchFailed(f"request failed: {type(exc).__name__}: {text[:300]}", False)


# ------------------------------------------------------------------ the total deadline, enforced mid-read
# requests/urllib3 time out each socket operation (urllib3's Timeout(total=...) too: it clips the connect and the
# per-read timeouts, it does not bound a response that keeps arriving). A server sending one byte per second,
# of headers or of body, never trips them. So each fetch runs under a _Watchdog: at the deadline it shuts down
# the sockets the fetch is using, which ends a read in progress at once; the fetch then fails with the reason.
_ACTIVE = threading.local()


def _shutdown(target: Any) -> None:
    """Shut down the socket of a urllib3 connection (while it sends the request and reads the headers) or of a
    urllib3 response (while its body is read: http.client detaches the socket from a connection that will
    close, so the response's own `shutdown()`, urllib3 >= 2.3, is the way to reach it)."""
    try:
        if isinstance(target, urllib3.response.HTTPResponse):
            target.shutdown()
        elif getattr(target, "sock", None) is not None:
            target.sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, RuntimeError):  # already closed or released, or no socket to shut down
        pass


class _Watchdog:
    """Cuts the connections of the fetch running in this thread when `deadline` (time.monotonic) passes."""

    def __init__(self, deadline: float):
        self.deadline, self.expired, self.conns = deadline, False, []
        self.lock = threading.Lock()
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self.timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self.outer = getattr(_ACTIVE, "watchdog", None)
        _ACTIVE.watchdog = self
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()
        _ACTIVE.watchdog = self.outer

    def watch(self, conn: Any) -> None:
        with self.lock:
            self.conns.append(conn)
            if self.expired:
                _shutdown(conn)

    def _expire(self) -> None:
        with self.lock:
            self.expired = True
            for conn in self.conns:
                _shutdown(conn)


def _watch(conn: Any) -> None:
    watchdog = getattr(_ACTIVE, "watchdog", None)
    if watchdog is not None:
        watchdog.watch(conn)


def _watched_connection(cls: type) -> type:
    class Watched(cls):
        def connect(self):  # a connection opened after the deadline passed is cut at once
            super().connect()
            _watch(self)
    Watched.__name__ = f"Watched{cls.__name__}"
    return Watched


def _watched_pool(cls: type) -> type:
    class Watched(cls):
        ConnectionCls = _watched_connection(cls.ConnectionCls)

        def _get_conn(self, timeout=None):  # every connection a fetch takes, new or reused from the pool
            conn = super()._get_conn(timeout)
            _watch(conn)
            return conn
    Watched.__name__ = f"Watched{cls.__name__}"
    return Watched


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with urllib3 pools whose connections the current fetch's _Watchdog can cut."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self._watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy, **kwargs):
        manager = super().proxy_manager_for(proxy, **kwargs)
        self._watch_pools(manager)
        return manager

    @staticmethod
    def _watch_pools(manager) -> None:
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        manager.pool_classes_by_scheme = {"http": _watched_pool(HTTPConnectionPool),
                                          "https": _watched_pool(HTTPSConnectionPool)}


def _past_deadline(limits: FetchLimits, what: str) -> FetchFailed:
    return FetchFailed(f"total_timeout {limits.total_timeout:g} s exceeded while receiving the {what}", False)


def _check_deadline(limits: FetchLimits, what: str) -> None:
    watchdog = getattr(_ACTIVE, "watchdog", None)
    if watchdog is not None and watchdog.expired:
        raise _past_deadline(limits, what)


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length", "").strip()
    return int(value) if value.isdigit() else None


def _read_capped(resp: requests.Response, limits: FetchLimits, deadline: float) -> bytes:
    """The decoded body, refusing more than `max_bytes` (checked while streaming, so a huge or endless body or a
    gzip bomb costs at most one chunk beyond the cap) and giving up at the overall deadline."""
    encoding = resp.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in _DECODABLE:
        raise FetchFailed(f"unsupported Content-Encoding {encoding!r} (asked for gzip or deflate)", False)
    length = _content_length(resp)
    if length is not None and length > limits.max_bytes:
        raise FetchFailed(f"response too large: Content-Length {length} > max_bytes {limits.max_bytes}", False)
    body = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=64 * 1024):
            body += chunk
            if len(body) > limits.max_bytes:
                raise FetchFailed(f"response too large: more than max_bytes {limits.max_bytes} bytes "
                                   f"(decoded); stopped reading", False)
            if time.monotonic() > deadline:
                raise _past_deadline(limits, "body")
    except requests.RequestException:
        _check_deadline(limits, "body")  # the watchdog cut the connection: say so, not "connection dropped"
        raise
    _check_deadline(limits, "body")
    if not body:
        # a 2xx without a single body byte is no feed; it is also what a response cut off in the middle of its
        # headers looks like (http.client ends the headers at EOF), so it is a failed fetch, retried
        raise FetchFailed("empty response: no body (the connection closed before any body byte, possibly in "
                           "the middle of the headers)", True, resp.status_code)
    return bytes(body)


def _get(session: requests.Session, url: str, headers: dict, limits: FetchLimits,
         deadline: float) -> requests.Response:
    """One GET without following redirects (each hop is checked here), timeouts clipped to the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(f"total_timeout {limits.total_timeout:g} s exceeded", False)
    timeout = (min(limits.connect_timeout, left), min(limits.read_timeout, left))
    try:
        resp = session.get(url, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
    except requests.RequestException as exc:
        _check_deadline(limits, "headers")
        raise _describe(exc, limits) from None
    watchdog = getattr(_ACTIVE, "watchdog", None)
    if watchdog is not None:
        if watchdog.expired:
            resp.close()
            raise _past_deadline(limits, "headers")
        watchdog.watch(resp.raw)  # from here the body is read through the response
    return resp


def _next_hop(resp: requests.Response, url: str) -> str:
    """The redirect target, resolved and re-validated: a redirect must not lead to file:// or another scheme."""
    target = urljoin(url, resp.headers["Location"])
    try:
        return validate_feed_url(target)
    except ValueError as exc:
        raise FetchFailed(f"redirect refused: {exc}", False, resp.status_code) from None


# ------------------------------------------------------------------ public hosts only (entry pages: SSRF guard)
def non_public_address(host: str) -> str | None:
    """The first address `host` resolves to that is not global (loopback, private, link-local such as the cloud
    metadata service 169.254.169.254, multicast, reserved, unspecified), or that embeds such an IPv4 address
    (IPv4-mapped or -compatible, NAT64, 6to4, Teredo: transforms.feedsafety.non_global_reason), "unresolvable"
    when it does not resolve, or None when every address is public. A literal IP is checked without any network
    access."""
    from transforms.feedsafety import non_global_reason

    host = (host or "").strip("[]")
    try:
        addrs = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addrs = sorted({info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)})
        except (socket.gaierror, UnicodeError, OSError):
            return "unresolvable"
    for addr in addrs:
        try:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
        except ValueError:
            return addr
        if non_global_reason(ip) is not None:  # the address itself, or an IPv4 address embedded in it
            return addr
    return None if addrs else "unresolvable"


def check_public(url: str) -> None:
    """FetchFailed unless the URL's host resolves only to public addresses (checked before every hop).

    Remaining limit: DNS rebinding. The host is resolved here and again by requests when it connects; a hostile
    DNS server can answer a public address now and a private one a moment later. Pinning the checked address for
    the connection is not done."""
    host = urlsplit(url).hostname or ""
    bad = non_public_address(host)
    if bad == "unresolvable":
        raise FetchFailed(f"refused: cannot resolve host {host!r} to check it is public", False)
    if bad is not None:
        raise FetchFailed(f"refused: host {host!r} resolves to the non-public address {bad} (loopback, "
                           f"private, link-local or reserved; allowed only with --full-text-allow-private-hosts "
                           f"for entry links, --urls-allow-private-hosts for --urls)", False)


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _attempt(session: requests.Session, url: str, headers: dict, limits: FetchLimits,
             deadline: float, only_types: tuple[str, ...] | None = None,
             public_only: bool = False) -> FetchResult:
    """One attempt: follow at most `max_redirects` redirects, then read the feed (or note a 304).

    With `only_types`, a response declaring another Content-Type is refused before its body is read. With
    `public_only`, the host of the URL and of every redirect target must resolve to public addresses only."""
    current = url
    for _ in range(limits.max_redirects + 1):
        if public_only:
            check_public(current)
        resp = _get(session, current, headers, limits, deadline)
        with resp:
            status = resp.status_code
            if resp.is_redirect:
                current = _next_hop(resp, current)
                continue
            etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            if status == 304:
                return FetchResult(url, 304, None, etag, modified, _now_iso(), not_modified=True, final_url=current)
            if status in _RETRY_STATUS:
                raise FetchFailed(f"HTTP {status} {resp.reason or ''}".strip(), True, status, resp.raw)
            if not 200 <= status < 300:
                raise FetchFailed(f"HTTP {status} {resp.reason or ''}".strip(), False, status)
            ctype = _mime(resp.headers.get("Content-Type"))
            if only_types is not None and ctype and ctype not in only_types:
                raise FetchFailed(f"not an HTML page (Content-Type {resp.headers['Content-Type']}); body not "
                                   f"read", False, status)
            try:
                data = _read_capped(resp, limits, deadline)
            except requests.RequestException as exc:
                raise _describe(exc, limits) from None
            return FetchResult(url, status, data, etag, modified, _now_iso(), final_url=current,
                               content_type=resp.headers.get("Content-Type"))
    raise FetchFailed(f"too many redirects (more than max_redirects {limits.max_redirects})", False)


def fetch_feed(url: str, state: Any = None, *, session: requests.Session | None = None, accept: str = ACCEPT,
               only_types: tuple[str, ...] | None = None, public_only: bool = False,
               **limits: Any) -> FetchResult:
    """Fetch one feed with bounded time, size, redirects and retries; never raises for network/HTTP trouble
    (the reason is in `.error`), only ValueError for a non-http(s) URL or TypeError for an unknown limit.

    `state` is the previous FetchResult (or a dict with `etag` / `last_modified`): its validators are sent so an
    unchanged feed costs a 304 and yields nothing. On a 304 the previous validators are kept if none are resent.
    `accept` is the Accept header and `only_types` the Content-Types read (article pages: fetch_page);
    `public_only` refuses hosts that resolve to non-public addresses (entry pages; not the configured feeds)."""
    url = validate_feed_url(url)
    lim = FetchLimits(**limits)
    own = session is None
    session = session or new_session()
    headers = request_headers(state, lim, accept)
    deadline = time.monotonic() + lim.total_timeout
    retry = retry_policy(lim)
    try:
        while True:
            try:
                with _Watchdog(deadline):
                    result = _attempt(session, url, headers, lim, deadline, only_types, public_only)
            except FetchFailed as failed:
                attempts = len(retry.history) + 1
                reason = failed.reason
                if failed.retryable:
                    try:
                        retry = retry.increment("GET", url, response=failed.response,
                                                error=None if failed.response is not None else failed)
                    except MaxRetryError:
                        pass  # no retry left: this attempt's reason is the fetch's
                    else:
                        delay, refused = _retry_delay(retry, failed, lim, deadline)
                        if refused is None:
                            time.sleep(delay)
                            continue
                        reason += refused
                return FetchResult(url, failed.status, None, None, None, _now_iso(), error=reason, attempts=attempts)
            result.attempts = len(retry.history) + 1
            if result.not_modified:
                result.etag = result.etag or _validator(state, "etag")
                result.last_modified = result.last_modified or _validator(state, "last_modified")
            return result
    finally:
        if own:
            session.close()


def _retry_delay(retry: Retry, failed: FetchFailed, limits: FetchLimits, deadline: float
                 ) -> tuple[float, str | None]:
    """(seconds to wait before the next attempt, None), or (0, why not to retry): the server's Retry-After is
    waited for in full, but one beyond max_retry_after, or any wait past the total deadline, ends the fetch."""
    retry_after = _retry_after(retry, failed)
    if retry_after is not None and retry_after > limits.max_retry_after:
        return 0.0, (f"; the server asked to retry after Retry-After {retry_after:g} s, more than "
                     f"max_retry_after {limits.max_retry_after:g} s")
    delay = max(retry.get_backoff_time(), retry_after or 0.0)
    if time.monotonic() + delay >= deadline:
        return 0.0, (f"; Retry-After {retry_after:g} s would pass total_timeout {limits.total_timeout:g} s"
                     if retry_after is not None else "")
    return delay, None


def new_session() -> requests.Session:
    """A session for feed fetching (connection reuse; proxy and CA-bundle environment variables honoured) whose
    connections a fetch's total deadline can cut (_Watchdog)."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _WatchedAdapter())
    return session


# ------------------------------------------------------------------ XML safety (shared with file inputs)
from transforms.feedsafety import (UnsafeFeedError, hidden_encoding, declared_encoding,  # noqa: E402,F401
                                   looks_like_html, refuse_entity_declarations)


# ------------------------------------------------------------------ content checks and raw inputs
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)


def apply_http_charset(data: bytes, content_type: str | None) -> bytes:
    """Honour the HTTP `charset` when the document itself says nothing and is not UTF-8.

    parse_raw hands feedparser bytes only (no headers); without this a windows-1251 feed served with
    `charset=windows-1251` but no XML encoding declaration would be read as windows-1252 mojibake. The result is
    UTF-8, which is what an XML document without an encoding declaration means.

    Not `feedparser.parse(data, response_headers=...)`: feedparser follows RFC 3023, where the HTTP charset
    overrides the document's own declaration and `text/xml` without a charset means us-ascii. On the 65 captured
    feeds (../shared/data/feeds) that made 26 served as `text/xml` "partly readable" (CharacterEncodingOverride,
    counted as feeds_partial) and decoded 21 UTF-8 or Latin-1 feeds as windows-1251 under a wrong server charset;
    here the document's declaration, a BOM or valid UTF-8 wins and the header only fills the gap."""
    m = _CHARSET.search(content_type or "")
    if not m or declared_encoding(data) or hidden_encoding(data) or data.startswith(codecs.BOM_UTF8):
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        pass
    try:
        return data.decode(m.group(1)).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return data


def error_raw(result: FetchResult, reason: str, data: bytes = b"") -> dict:
    return {"ref": result.url, "data": data, "fetched_at": result.fetched_at, "source": None, "error": reason}


def feed_raw_inputs(result: FetchResult, max_entries: int = DEFAULT_MAX_ENTRIES) -> list[dict]:
    """Raw inputs for parse_raw: [] on 304, one error input on a failed fetch or refused content, else one input
    with the feed bytes and `max_entries` (applied by `parse_raw`)."""
    if result.not_modified:
        return []
    if result.error is not None or result.data is None:
        return [error_raw(result, f"feed fetch failed: {result.error or 'no body'}")]
    data = apply_http_charset(result.data, result.content_type)
    if looks_like_html(data):
        return [error_raw(result, f"not a feed: the server returned an HTML page "
                                   f"(Content-Type {result.content_type or 'unknown'}); expected RSS/Atom XML",
                           data[:1024])]
    try:
        refuse_entity_declarations(data)
    except UnsafeFeedError as exc:
        return [error_raw(result, str(exc), data[:1024])]
    return [{"ref": result.url, "data": data, "fetched_at": result.fetched_at, "source": None,
             "max_entries": max_entries}]


# ------------------------------------------------------------------ full text of an entry (--fetch-full-text)
_HTML_TYPES = ("text/html", "application/xhtml+xml")


def fetch_page(url: str, *, session: requests.Session | None = None, allow_private_hosts: bool = False,
               **limits: Any) -> FetchResult:
    """An entry's article page, fetched exactly like a feed (fetch_feed: timeouts, size cap, bounded redirects
    re-checked for http/https, gzip/deflate, the User-Agent, retries with backoff), asking for HTML. A response
    that declares a non-HTML Content-Type (a PDF, an image) fails before its body is downloaded.

    Entry links come from untrusted feed content, so unless `allow_private_hosts`, the link and every redirect
    target must resolve to public addresses only (no loopback, private network or cloud metadata service)."""
    return fetch_feed(url, None, session=session, accept=ACCEPT_HTML, only_types=_HTML_TYPES,
                      public_only=not allow_private_hosts, **limits)


def page_html(result: FetchResult) -> bytes | str:
    """The page body for the extractor, or FetchFailed when it is not an HTML page.

    A declared charset decodes the bytes; without one the bytes go as they are and the extractor detects the
    encoding (meta charset, then a guess)."""
    if result.error is not None or result.data is None:
        raise FetchFailed(f"page fetch failed: {result.error or 'no body'}", False, result.status)
    ctype = _mime(result.content_type)
    if ctype not in _HTML_TYPES and not (not ctype and looks_like_html(result.data)):
        raise FetchFailed(f"not an HTML page (Content-Type {result.content_type or 'unknown'})", False,
                           result.status)
    m = _CHARSET.search(result.content_type or "")
    if m:
        try:
            return result.data.decode(m.group(1), errors="replace")
        except LookupError:
            pass
    return result.data


def extract_main_text(html: bytes | str, url: str | None = None) -> str | None:
    """The main text of an article page (trafilatura: navigation, menus, sidebars, footers and comments
    dropped), or None when no main text could be found. Paragraphs are separated by line breaks."""
    import trafilatura

    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=False,
                               include_images=False, include_links=False, deduplicate=False)
    return text.strip() if text and text.strip() else None


class FullTextFetcher:
    """`fetcher(link, summary)` -> (the page's main text, None) or (None, reason); never raises.

    Counters (namespace newsbeam): full_text_fetched (the summary was replaced), full_text_failed (download or
    extraction failed, or the page had less text than the summary: the summary is kept). Each failure is
    logged with its reason: the Article schema has no field for it. One requests session per fetcher.
    Links resolving to non-public addresses are refused unless `allow_private_hosts` (fetch_page)."""

    def __init__(self, max_chars: int | None = None, allow_private_hosts: bool = False, **limits: Any):
        FetchLimits(**limits)  # an unknown limit is a TypeError now
        self.limits, self.max_chars = limits, max_chars
        self.allow_private_hosts = allow_private_hosts
        self.fetched, self.failed = counter("full_text_fetched"), counter("full_text_failed")
        self.session: requests.Session | None = None

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None

    def __call__(self, link: str | None, summary: str) -> tuple[str | None, str | None]:
        try:
            text = self._full_text(link, summary)
        except FetchFailed as failed:
            reason = failed.reason
        except Exception as exc:  # an extractor bug must not lose the entry: the summary is kept
            reason = f"extraction failed: {type(exc).__name__}: {str(exc)[:300]}"
        else:
            self.fetched.inc()
            return text, None
        self.failed.inc()
        _log.warning("full text not fetched for %s (the feed's summary is kept): %s", link, reason)
        return None, reason

    def _full_text(self, link: str | None, summary: str) -> str:
        if not link:
            raise FetchFailed("the entry has no link", False)
        try:
            link = validate_feed_url(link)
        except ValueError as exc:
            raise FetchFailed(f"link refused: {exc}", False) from None
        if self.session is None:
            self.session = new_session()
        result = fetch_page(link, session=self.session, allow_private_hosts=self.allow_private_hosts,
                            **self.limits)
        text = extract_main_text(page_html(result), result.final_url or link)
        if text is None:
            raise FetchFailed("no main text found in the page", False)
        if len(text) < len(summary.strip()):
            raise FetchFailed(f"the page's main text ({len(text)} characters) is shorter than the feed's "
                               f"summary ({len(summary.strip())})", False)
        if self.max_chars is not None and len(text) > self.max_chars:
            raise FetchFailed(f"the page's main text is too long ({len(text)} characters > --max-chars "
                               f"{self.max_chars})", False)
        return text


# ------------------------------------------------------------------ Beam
DEFAULT_CONCURRENT_FETCHES = 8


class ThreadedFetchDoFn(beam.DoFn):
    """The base of the batch fetching DoFns (feeds here, article pages in pipeline.pages): a pool of
    `concurrency` threads per DoFn instance and one requests session per thread (`session()`: connections reused
    across that thread's fetches). Subclasses count in the bundle's thread (Beam metrics belong to it), not in
    the fetching threads."""

    def __init__(self, concurrency: int = DEFAULT_CONCURRENT_FETCHES):
        self.concurrency = concurrency
        self.pool: ThreadPoolExecutor | None = None
        self.sessions: list[requests.Session] = []
        self.local = None

    def setup(self):
        self.pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="newsbeam-fetch")
        self.local = threading.local()
        self.sessions = []

    def teardown(self):
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for session in self.sessions:
            session.close()

    def session(self) -> requests.Session:
        """This thread's session, made on first use."""
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = new_session()
            self.sessions.append(session)
        return session


def fetch_batches(concurrency: int) -> beam.PTransform:
    """Elements in batches for a ThreadedFetchDoFn: a batch ends with its slowest fetch, so several per thread
    keep the threads busy."""
    batch = 4 * concurrency
    return beam.BatchElements(min_batch_size=batch, max_batch_size=batch)


class _FetchDoFn(ThreadedFetchDoFn):
    """A batch of URLs -> their raw inputs, fetched concurrently by at most `concurrency` threads, each fetch
    with its own total deadline (fetch_feed), so one slow feed holds one thread, not every feed behind it."""

    def __init__(self, max_entries: int, limits: dict, concurrency: int = DEFAULT_CONCURRENT_FETCHES):
        super().__init__(concurrency)
        self.max_entries, self.limits = max_entries, limits
        self.fetched, self.not_modified = counter("feeds_fetched"), counter("feeds_not_modified")
        self.failed, self.refused = counter("feeds_failed"), counter("feeds_refused")

    def _fetch(self, url: str) -> FetchResult:
        return fetch_feed(url, session=self.session(), **self.limits)

    def process(self, urls: list[str]):
        for url, result in zip(urls, self.pool.map(self._fetch, urls)):
            raws = feed_raw_inputs(result, self.max_entries)
            self._count(result, raws)
            yield from raws

    def _count(self, result: FetchResult, raws: list[dict]) -> None:
        if result.not_modified:
            self.not_modified.inc()
        elif result.error is not None:
            self.failed.inc()
        else:
            self.fetched.inc()
            if raws and raws[0].get("error"):
                self.refused.inc()


class ReadFeeds(beam.PTransform):
    """Feed URLs -> raw inputs (batch, one pull per feed). Counters: feeds_fetched (HTTP 2xx), feeds_not_modified
    (304), feeds_failed (fetch error after retries), feeds_refused (fetched but HTML or unsafe XML).

    The URLs are spread over workers (Reshuffle) and, on each, fetched `concurrency` at a time (_FetchDoFn).
    Every feed is fetched unconditionally: conditional GET (ETag / Last-Modified) is streaming's, which polls."""

    def __init__(self, urls: Iterable[str], max_entries: int = DEFAULT_MAX_ENTRIES,
                 concurrency: int = DEFAULT_CONCURRENT_FETCHES, **limits: Any):
        super().__init__()
        self.urls = list(dict.fromkeys(validate_feed_url(u) for u in urls))
        FetchLimits(**limits)  # an unknown limit is a TypeError now, not inside a worker
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.max_entries, self.limits, self.concurrency = max_entries, limits, concurrency

    def expand(self, pbegin):
        fetch = beam.ParDo(_FetchDoFn(self.max_entries, self.limits, self.concurrency))
        return (pbegin
                | "FeedURLs" >> beam.Create(self.urls)
                | "Spread" >> beam.Reshuffle()  # fetches spread over workers instead of one fused bundle
                | "Batch" >> fetch_batches(self.concurrency)
                | "Fetch" >> fetch)


def full_text_fetcher(limits: ParseLimits, policy: FullTextPolicy) -> Callable[[], FullTextFetcher]:
    """The picklable factory ParseArticles makes its page fetcher with (once per worker): the parse cap on text
    length and the policy's host rule."""
    import functools

    return functools.partial(FullTextFetcher, max_chars=limits.max_chars,
                             allow_private_hosts=policy.allow_private_hosts)
