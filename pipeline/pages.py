"""Article pages over HTTP (`--urls FILE`) as a batch source: each URL fetched once, politely, through the feeds'
guarded client (pipeline.feeds.fetch_page: timeouts, size cap, checked redirects, retries, public hosts only
unless allowed), and emitted as a raw input that parse_raw reads exactly as a saved `.html` page
(transforms.page_input). A URL that is not fetched becomes a raw input carrying `error`, so a dead letter.

Politeness, per host (the URL's host name, lower-cased, whatever the scheme or port):
  - one request at a time: the URLs are grouped by host (GroupByKey) and one thread fetches a host's URLs in
    the file's order, so no two requests to one host overlap, on one worker or across workers;
  - `delay` seconds (--urls-delay) from the end of one request to the start of the next to the same host, the
    robots.txt request included (HostPacer); a longer robots.txt `Crawl-delay` for newsbeam is honoured, up to
    MAX_CRAWL_DELAY;
  - robots.txt (urllib.robotparser, user agent `newsbeam`), fetched once per origin (scheme, host, port) before
    any page of it, through the same client and address check. A disallowed URL is a dead letter saying so.

robots.txt outcomes (RFC 9309): a 2xx is read for its rules (an empty one allows everything); any 4xx (404,
also 401/403) means there is none: everything is allowed; anything else (5xx or 429 after the retries, a timeout,
a dropped connection, too many redirects, a refused redirect target) means it is unreachable, and then no page of
that origin is fetched: each is a dead letter naming the robots.txt failure, and a later run may try again.

Not covered: a page that redirects to another host is fetched without that host's pacing or robots.txt check.
"""
from __future__ import annotations

import contextlib
import time
import urllib.robotparser
from concurrent.futures import as_completed
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import apache_beam as beam
import requests

from transforms.common import counter

from .feeds import (DEFAULT_CONCURRENT_FETCHES, FetchFailed, FetchLimits, FetchResult, ThreadedFetchDoFn,
                    check_public, error_raw, fetch_batches, fetch_feed, fetch_page, page_html, validate_feed_url)

DEFAULT_URL_DELAY = 1.0  # seconds between two requests to one host (--urls-delay)
MAX_CRAWL_DELAY = 30.0  # a robots.txt Crawl-delay is honoured up to this many seconds
ROBOTS_AGENT = "newsbeam"  # the product token robots.txt groups are matched against
ACCEPT_ROBOTS = "text/plain, */*;q=0.1"
OUTCOMES = ("fetched", "failed", "disallowed")  # counters pages_fetched, pages_failed, pages_disallowed


# ------------------------------------------------------------------ per-host politeness (pure)
def host_key(url: str) -> str:
    """The host a URL's requests are paced by: its host name, lower-cased (ports and schemes share it)."""
    return (urlsplit(url).hostname or "").lower()


def by_host(urls: Iterable[str]) -> list[tuple[str, list[str]]]:
    """The URLs grouped by host_key, each group and the groups in first-seen order (what ReadPages does with a
    GroupByKey, for one process)."""
    groups: dict[str, list[str]] = {}
    for url in urls:
        groups.setdefault(host_key(url), []).append(url)
    return list(groups.items())


def pause_before(last_end: float | None, delay: float, now: float) -> float:
    """Seconds to wait before the next request to a host whose previous request ended at `last_end` (None: no
    request yet), so that `delay` seconds pass between the two."""
    return 0.0 if last_end is None else max(0.0, last_end + delay - now)


class HostPacer:
    """The requests to one host, one after another, `delay` seconds apart (end of one to start of the next).
    Clock and sleep are injectable, so the schedule is tested without waiting."""

    def __init__(self, delay: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if delay < 0:
            raise ValueError("delay must be 0 or more seconds")
        self.delay, self.clock, self.sleep = delay, clock, sleep
        self.last_end: float | None = None

    def slow_down(self, delay: float | None) -> None:
        """Honour a host's own wish (robots.txt Crawl-delay), up to MAX_CRAWL_DELAY, never below `delay`."""
        if delay is not None and delay > 0:
            self.delay = max(self.delay, min(float(delay), MAX_CRAWL_DELAY))

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Wait for the host's turn, then run the request in the `with` block; its end starts the next delay."""
        wait = pause_before(self.last_end, self.delay, self.clock())
        if wait > 0:
            self.sleep(wait)
        try:
            yield
        finally:
            self.last_end = self.clock()


# ------------------------------------------------------------------ robots.txt (pure, from a fetch result)
@dataclass(frozen=True)
class RobotsRules:
    """One origin's robots.txt: its parsed rules, or why it is unreachable (then nothing there is fetched)."""
    origin: str
    parser: urllib.robotparser.RobotFileParser | None = None
    unreachable: str | None = None

    @property
    def url(self) -> str:
        return f"{self.origin}/robots.txt"

    def refusal(self, url: str) -> str | None:
        """Why `url` must not be fetched, or None when it may be."""
        if self.unreachable is not None:
            return (f"not fetched: {self.url} could not be fetched ({self.unreachable}); as RFC 9309 asks, no page "
                    f"of a site whose robots.txt is unreachable is fetched")
        if self.parser is not None and not self.parser.can_fetch(ROBOTS_AGENT, url):
            return f"disallowed by robots.txt ({self.url}, user agent {ROBOTS_AGENT})"
        return None

    def crawl_delay(self) -> float | None:
        delay = self.parser.crawl_delay(ROBOTS_AGENT) if self.parser is not None else None
        return float(delay) if delay is not None else None


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def robots_rules(origin: str, result: FetchResult) -> RobotsRules:
    """The rules a robots.txt fetch gives (the module docstring has the policy)."""
    parser = urllib.robotparser.RobotFileParser(f"{origin}/robots.txt")
    if result.error is None and result.data is not None:
        parser.parse(result.data.decode("utf-8", errors="replace").splitlines())
        return RobotsRules(origin, parser)
    status = result.status or 0
    if (400 <= status < 500 and status != 429) or 200 <= status < 300:  # none, or an empty body: all allowed
        parser.parse([])
        return RobotsRules(origin, parser)
    return RobotsRules(origin, unreachable=result.error or "no body")


# ------------------------------------------------------------------ fetching one host's pages
def page_raw_input(url: str, result: FetchResult) -> dict:
    """A fetched page as a raw input parsed as an HTML page (`format` page; `url` where it came from, the
    article's url unless the page names a canonical one), or one carrying the reason it is not a page.

    A charset the server declares decodes the body (pipeline.feeds.page_html), handed on as UTF-8."""
    try:
        html = page_html(result)
    except FetchFailed as failed:
        return error_raw(result, failed.reason)
    return {"ref": url, "data": html.encode("utf-8") if isinstance(html, str) else html,
            "fetched_at": result.fetched_at, "source": host_key(url), "format": "page",
            "url": result.final_url or url}


def _refused_raw(url: str, reason: str) -> dict:
    return {"ref": url, "data": b"", "fetched_at": None, "source": None, "error": reason}


def fetch_host(urls: list[str], session: requests.Session, pacer: HostPacer, allow_private_hosts: bool = False,
               **limits: Any) -> Iterator[tuple[str, dict]]:
    """(outcome, raw input) for each URL of one host, in order: its robots.txt checked (once per origin), the
    host's address checked first unless `allow_private_hosts`, each request paced by `pacer`. Outcome is one of
    OUTCOMES; never raises for network or HTTP trouble."""
    robots: dict[str, RobotsRules] = {}
    for url in urls:
        if not allow_private_hosts:
            try:
                check_public(url)  # before robots.txt too: a refused host is not requested at all
            except FetchFailed as failed:
                yield "failed", _refused_raw(url, f"page fetch failed: {failed.reason}")
                continue
        origin = origin_of(url)
        if origin not in robots:
            with pacer.request():
                result = fetch_feed(f"{origin}/robots.txt", session=session, accept=ACCEPT_ROBOTS,
                                    public_only=not allow_private_hosts, **limits)
            robots[origin] = robots_rules(origin, result)
            pacer.slow_down(robots[origin].crawl_delay())
        refusal = robots[origin].refusal(url)
        if refusal is not None:
            yield "disallowed", _refused_raw(url, refusal)
            continue
        with pacer.request():
            result = fetch_page(url, session=session, allow_private_hosts=allow_private_hosts, **limits)
        raw = page_raw_input(url, result)
        yield ("failed" if raw.get("error") else "fetched"), raw


# ------------------------------------------------------------------ Beam
def _keyed(item: tuple[int, str]) -> tuple[str, tuple[int, str]]:
    return host_key(item[1]), item


def _in_file_order(host: str, items: Iterable[tuple[int, str]]) -> tuple[str, list[str]]:
    return host, [url for _, url in sorted(items)]


class _FetchPagesDoFn(ThreadedFetchDoFn):
    """A batch of (host, its URLs) -> raw inputs: one thread per host at a time, up to `concurrency` hosts at
    once. Counters pages_fetched / pages_failed / pages_disallowed, counted in the bundle's thread."""

    def __init__(self, delay: float, allow_private_hosts: bool, limits: dict,
                 concurrency: int = DEFAULT_CONCURRENT_FETCHES):
        super().__init__(concurrency)
        self.delay, self.allow_private_hosts, self.limits = delay, allow_private_hosts, limits
        self.counters = {o: counter(f"pages_{o}") for o in OUTCOMES}

    def _host(self, urls: list[str]) -> list[tuple[str, dict]]:
        out = []
        pages = fetch_host(urls, self.session(), HostPacer(self.delay), self.allow_private_hosts, **self.limits)
        try:
            out.extend(pages)
        except Exception as exc:  # a bug must not lose the host's other URLs: each left is a dead letter
            reason = f"page fetch failed: {type(exc).__name__}: {str(exc)[:300]}"
            out.extend(("failed", _refused_raw(url, reason)) for url in urls[len(out):])
        return out

    def process(self, groups: list[tuple[str, list[str]]]):
        # a host's pages are held until its last is fetched: memory is that of the largest host's pages
        for done in as_completed([self.pool.submit(self._host, urls) for _, urls in groups]):
            for outcome, raw in done.result():
                self.counters[outcome].inc()
                yield raw


class ReadPages(beam.PTransform):
    """Article page URLs -> raw inputs (batch, one fetch per URL), politely per host (module docstring).

    `concurrency` hosts are fetched at once on each worker; `limits` are pipeline.feeds.FetchLimits."""

    def __init__(self, urls: Iterable[str], delay: float = DEFAULT_URL_DELAY, allow_private_hosts: bool = False,
                 concurrency: int = DEFAULT_CONCURRENT_FETCHES, **limits: Any):
        super().__init__()
        self.urls = list(dict.fromkeys(validate_feed_url(u, "page URL") for u in urls))
        FetchLimits(**limits)  # an unknown limit is a TypeError now, not inside a worker
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if delay < 0:
            raise ValueError("delay must be 0 or more seconds")
        self.delay, self.allow_private_hosts = delay, allow_private_hosts
        self.limits, self.concurrency = limits, concurrency

    def expand(self, pbegin):
        fetch = _FetchPagesDoFn(self.delay, self.allow_private_hosts, self.limits, self.concurrency)
        return (pbegin
                | "PageURLs" >> beam.Create(list(enumerate(self.urls)))
                | "ByHost" >> beam.Map(_keyed)
                | "OneFetcherPerHost" >> beam.GroupByKey()  # also spreads the hosts over workers
                | "InFileOrder" >> beam.MapTuple(_in_file_order)
                | "Batch" >> fetch_batches(self.concurrency)
                | "Fetch" >> beam.ParDo(fetch))
