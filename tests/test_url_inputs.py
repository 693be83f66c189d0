"""Article pages by URL (`newsbeam run --urls FILE`): the per-host pacing and the robots.txt policy as plain
functions (a fake clock, no waiting), then a real loopback server and the real pipeline: two article pages
written with their trafilatura fields, a page robots.txt disallows, a 404 and a PDF dead-lettered with their
reasons, and a loopback host refused without --urls-allow-private-hosts."""
from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from pipeline.feeds import FetchResult, new_session
from pipeline.pages import HostPacer, ReadPages, by_host, fetch_host, pause_before, robots_rules
from tests.conftest import beam_pipeline, read_output, run_cli
from tests.feed_server import FeedServer, Route
from transforms.parse import ParseArticles

FAST = dict(connect_timeout=10.0, read_timeout=10.0, total_timeout=60.0, retries=1, backoff=0.01, max_backoff=0.05)
BODY = ("Armenia and Azerbaijan resumed talks in Brussels on Tuesday, the first meeting of their foreign ministers "
        "since the ceasefire. Both delegations described the discussions as constructive and agreed to meet again. ")


def page(title: str, published: str, author: str, body: str, canonical: str | None = None) -> bytes:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | Caucasus Desk</title>
<meta property="og:title" content="{title}"><meta property="og:site_name" content="Caucasus Desk">
<meta name="author" content="{author}"><meta property="article:published_time" content="{published}">{link}
</head><body><nav><a href="/">Home</a> | <a href="/world">World</a></nav>
<article><h1>{title}</h1><p>{body * 3}</p><p>Łukasz Żółć reported from Baku.</p></article>
<footer>Contact us | Privacy</footer></body></html>""".encode()


TALKS = page("Talks resume in Brussels", "2020-12-01T09:00:00Z", "Jane Doe", BODY)
CEASEFIRE = page("Ceasefire holds", "2020-12-02T10:00:00Z", "John Roe", BODY.replace("Tuesday", "Wednesday"),
                 canonical="https://example.org/news/ceasefire-holds")
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


def result(status: int | None, data: bytes | None = None, error: str | None = None) -> FetchResult:
    return FetchResult("http://h/robots.txt", status, data, None, None, "2020-12-01T00:00:00+00:00", error=error)


# ------------------------------------------------------------------ politeness and robots.txt, pure
class FakeClock:
    """Time that moves only when slept through or when a request `takes` its time."""

    def __init__(self) -> None:
        self.now, self.slept = 128.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_pause_before_waits_out_the_delay_from_the_end_of_the_previous_request():
    assert pause_before(None, 1.0, 5.0) == 0.0  # a host's first request goes at once
    assert pause_before(10.0, 1.0, 10.25) == 0.75
    assert pause_before(10.0, 1.0, 11.5) == 0.0  # the delay already passed
    assert pause_before(10.0, 0.0, 10.0) == 0.0


def test_host_pacer_spaces_requests_from_end_to_start_and_honours_a_longer_crawl_delay():
    clock = FakeClock()
    pacer = HostPacer(1.0, clock=clock, sleep=clock.sleep)
    for took in (0.5, 0.2, 3.0):  # each request takes its time; the delay counts from its end
        with pacer.request():
            clock.now += took
    assert clock.slept == [1.0, 1.0]
    clock.now += 0.25  # time spent elsewhere counts towards the delay
    with pacer.request():
        pass
    assert clock.slept == [1.0, 1.0, 0.75]
    pacer.slow_down(5)  # robots.txt Crawl-delay: 5
    pacer.slow_down(0.5)  # a shorter one never speeds up
    pacer.slow_down(10_000)  # capped
    with pacer.request():
        pass
    assert pacer.delay == 30.0 and clock.slept[-1] == 30.0
    with pytest.raises(ValueError):
        HostPacer(-1)


def test_urls_are_grouped_by_host_name_in_file_order():
    urls = ["https://a.example/1", "http://B.example:8080/x", "http://a.example/2", "https://b.example/y"]
    assert by_host(urls) == [("a.example", ["https://a.example/1", "http://a.example/2"]),
                             ("b.example", ["http://B.example:8080/x", "https://b.example/y"])]


def test_robots_txt_policy():
    rules = robots_rules("http://h", result(200, b"User-agent: newsbeam\nDisallow: /drafts/\nCrawl-delay: 2\n"
                                                 b"\nUser-agent: *\nDisallow: /\n"))
    assert rules.refusal("http://h/news/1") is None  # the newsbeam group applies, not `*`
    assert rules.refusal("http://h/drafts/1") == "disallowed by robots.txt (http://h/robots.txt, user agent newsbeam)"
    assert rules.crawl_delay() == 2.0
    for missing in (result(404, error="HTTP 404 Not Found"), result(403, error="HTTP 403 Forbidden"),
                    result(200, error="empty response: no body")):  # none, or empty: everything allowed
        assert robots_rules("http://h", missing).refusal("http://h/any") is None
        assert robots_rules("http://h", missing).crawl_delay() is None
    for failed in (result(503, error="HTTP 503 Service Unavailable"), result(429, error="HTTP 429 Too Many"),
                   result(None, error="connection failed or dropped: refused")):
        refusal = robots_rules("http://h", failed).refusal("http://h/any")
        assert refusal.startswith(f"not fetched: http://h/robots.txt could not be fetched ({failed.error})")
        assert "RFC 9309" in refusal


# ------------------------------------------------------------------ a real server
@pytest.fixture
def site():
    with FeedServer() as srv:
        srv.add("/robots.txt", Route(body=ROBOTS, content_type="text/plain"))
        srv.add("/news/talks", Route(body=TALKS, content_type="text/html", charset="utf-8"))
        srv.add("/news/ceasefire", Route(body=CEASEFIRE, content_type="text/html"))
        srv.add("/private/draft", Route(body=TALKS, content_type="text/html"))
        srv.add("/report.pdf", Route(body=b"%PDF-1.4 " + b"x" * 2000, content_type="application/pdf"))
        yield srv


def test_fetch_host_checks_robots_once_and_paces_every_request(site):
    urls = [site.url(p) for p in ("/news/talks", "/private/draft", "/missing", "/news/ceasefire")]
    clock = FakeClock()
    session = new_session()
    try:
        got = list(fetch_host(urls, session, HostPacer(0.5, clock=clock, sleep=clock.sleep),
                              allow_private_hosts=True, **FAST))
    finally:
        session.close()
    assert [outcome for outcome, _ in got] == ["fetched", "disallowed", "failed", "fetched"]
    assert [raw["ref"] for _, raw in got] == urls
    assert clock.slept == [0.5] * 3  # robots.txt, then three pages: each after the delay (the clock stood still)
    assert len(site.requests_to("/robots.txt")) == 1 and site.requests_to("/private/draft") == []
    talks = got[0][1]
    assert (talks["format"], talks["url"], talks["source"]) == ("page", urls[0], "127.0.0.1")


def test_cli_fetches_the_pages_and_dead_letters_the_rest_with_reasons(site, tmp_path):
    listing = tmp_path / "urls.txt"
    talks, ceasefire, draft, missing, pdf = (site.url(p) for p in (
        "/news/talks", "/news/ceasefire", "/private/draft", "/missing", "/report.pdf"))
    listing.write_text(f"# article pages\n{talks}\n\n{ceasefire}  # with a canonical URL\n{draft}\n{missing}\n"
                       f"{pdf}\n{talks}\n")  # the repeated URL is fetched once
    out = tmp_path / "out"
    proc = run_cli(["run", "--urls", str(listing), "--output", str(out), "--skip-models", "--quiet",
                    "--urls-delay", "0", "--urls-allow-private-hosts", "--verbose"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "read 5, written 2, duplicates 0, dead-lettered 3" in proc.stdout, proc.stdout
    assert "every record accounted for" in proc.stdout
    res = read_output(out)
    articles = {a["title"]: a for a in res["articles"]}
    assert set(articles) == {"Talks resume in Brussels", "Ceasefire holds"}
    a, b = articles["Talks resume in Brussels"], articles["Ceasefire holds"]
    assert a["url"] == talks  # no canonical URL: where it was fetched from
    assert b["url"] == "https://example.org/news/ceasefire-holds"  # the page's own canonical URL
    assert (a["published"], a["authors"], a["source"], a["site_name"]) == (
        "2020-12-01", ["Jane Doe"], "Caucasus Desk", "Caucasus Desk")
    assert "first meeting of their foreign ministers" in a["text"] and "Łukasz Żółć" in a["text"]
    assert "Wednesday" in b["text"] and "Contact us" not in b["text"] and "Home" not in b["text"]
    assert a["language"]["code"] == "en"
    dead = {d["input_ref"]: d["error"] for d in res["dead"]}
    assert dead == {
        draft: f"disallowed by robots.txt ({site.base}/robots.txt, user agent newsbeam)",
        missing: "page fetch failed: HTTP 404 Not Found",
        pdf: "page fetch failed: not an HTML page (Content-Type application/pdf); body not read",
    }
    assert site.requests_to("/private/draft") == [] and len(site.requests_to("/robots.txt")) == 1
    assert len(site.requests_to("/news/talks")) == 1
    assert "pages_disallowed 1" in proc.stdout and "pages_failed 2" in proc.stdout
    assert "pages_fetched 2" in proc.stdout


def test_a_loopback_host_is_refused_without_the_opt_in_and_never_requested(site):
    url = site.url("/news/talks")
    with beam_pipeline() as p:
        parsed = p | ReadPages([url], delay=0, **FAST) | ParseArticles()
        assert_that(parsed.articles, equal_to([]), label="no article")
        assert_that(parsed.dead_letter | beam.Map(lambda d: (d["input_ref"], d["error"])), equal_to([(
            url, "page fetch failed: refused: host '127.0.0.1' resolves to the non-public address 127.0.0.1 "
                 "(loopback, private, link-local or reserved; allowed only with --full-text-allow-private-hosts "
                 "for entry links, --urls-allow-private-hosts for --urls)")]), label="refused")
    assert site.seen == []  # neither robots.txt nor the page was requested


def test_the_url_list_is_checked_before_anything_runs(tmp_path):
    from pipeline.launch import UsageError, graph_config, page_urls
    from pipeline.options import NewsbeamOptions

    def opts(*flags: str) -> NewsbeamOptions:
        return PipelineOptions(["--output", str(tmp_path), *flags]).view_as(NewsbeamOptions)

    listing = tmp_path / "urls.txt"
    listing.write_text("https://example.org/a\n# comment\nftp://example.org/b\n")
    with pytest.raises(UsageError, match=r"urls.txt:3: page URL must be http:// or https://, got ftp:"):
        page_urls(opts("--urls", str(listing)))
    with pytest.raises(UsageError, match=r"--urls .*nothing.txt: .*No such file"):
        page_urls(opts("--urls", str(tmp_path / "nothing.txt")))
    assert page_urls(opts()) == []
    cfg = graph_config(opts("--urls", str(listing), "--urls-delay", "0.25", "--skip-models"))
    assert (cfg.urls_delay, cfg.urls_allow_private_hosts) == (0.25, False)
    assert graph_config(opts("--urls", str(listing), "--urls-allow-private-hosts",
                             "--skip-models")).urls_allow_private_hosts is True
