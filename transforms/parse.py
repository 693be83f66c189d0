"""Parse raw inputs (seed text files, JSONL, RSS/Atom XML, saved HTML pages, CSV/TSV) into normalised Article
records (pages: transforms.page_input; tables: transforms.table_input).

A raw input is one file (`{"ref", "data": bytes, "mtime"}`); one file may hold many records (JSONL lines, feed
entries). Every record read is counted once as `read` and ends as an article or a dead letter here. Optional
keys: `error` (the input could not be read: one dead letter), `format` (the source knows it, e.g. a page fetched
by --urls, whatever its URL's ending), `url` (a fetched page's address, when the page names no canonical URL).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import itertools
from typing import Any, Callable, Iterable, Iterator

import apache_beam as beam

from .common import DEAD, counter, tagged_dead
from .decode import DecodeError, decode_text as _decode_text, text_lines
from .records import FullTextPolicy, ParseError, ParseLimits, make_article, parse_date, unexpected

# The seed format (docs in README "Input formats"). First line: `date` + a date; the body may start on that same
# line after the date (the design's sample article does). The date is an ISO date or timestamp when the body
# follows it; a date line with nothing after the date may also hold an RFC 822 date.
DATE_LINE = re.compile(r"^date\b\s*[:=]?\s*(?P<rest>.*?)\s*$", re.IGNORECASE)
ISO_DATE_PREFIX = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)"
    r"(?:\s+(?P<body>\S.*))?$")
# Header lines: a lowercase key, then `:`/`=` or a space, then the value; only in the block right after a date
# line that holds nothing but the date. Lowercase keys keep body sentences ("Targets of the strike were ...",
# "Source: ...") out of the headers.
HEADER_LINE = re.compile(r"^(title|url|source|targets)(?:\s*[:=]\s*|\s+)(\S.*?)\s*$")
log = logging.getLogger("newsbeam.parse")


# ------------------------------------------------------------------ formats
def decode_text(data: bytes) -> str:
    """Bytes of a one-document input -> str (transforms.decode.decode_text), its failure as a ParseError."""
    try:
        return _decode_text(data)
    except DecodeError as exc:
        raise ParseError(str(exc)) from None


PAGE_SUFFIXES = (".html", ".htm", ".xhtml")
TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}  # the delimiter of each table extension
_COMPRESSED = re.compile(r"\.(?:gz|bz2|zst|xz|lzma|deflate)$")


def detect_format(ref: str, data: bytes) -> str:
    """'jsonl', 'feed', 'page', 'csv', 'tsv' or 'seed', by extension (a compression suffix aside) first, then by
    content: a document whose root element is <html> is a page (a saved page or a fetched URL without a
    telling name), other markup a feed, `{` JSONL, anything else a seed. An unnamed table is not guessed: the
    seed parser says what it expected."""
    low = ref.lower()
    plain = _COMPRESSED.sub("", low)
    if plain.endswith(PAGE_SUFFIXES):
        return "page"
    for suffix, delimiter in TABLE_SUFFIXES.items():
        if plain.endswith(suffix):
            return "csv" if delimiter == "," else "tsv"
    if low.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "jsonl"
    if low.endswith((".xml", ".rss", ".atom", ".rdf")):
        return "feed"
    if low.endswith((".txt", ".text", ".md")):
        return "seed"
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body[:1] == b"<":
        from .feedsafety import looks_like_html

        return "page" if looks_like_html(body) else "feed"
    return "jsonl" if body[:1] == b"{" else "seed"


def split_date_line(line: str) -> tuple[str, str]:
    """(date string, start of the body) from a seed's first line; the body part is '' when the line holds only
    the date. Raises ParseError saying what was expected."""
    expected = "expected `date YYYY-MM-DD` (or an ISO timestamp), optionally followed by the body on the same line"
    m = DATE_LINE.match(line)
    if not m:
        raise ParseError(f"first line must be `date YYYY-MM-DD`, got {line[:60]!r}; {expected}")
    rest = m.group("rest")
    if not rest:
        raise ParseError(f"the date line has no date; {expected}")
    iso = ISO_DATE_PREFIX.match(rest)
    if iso:
        return iso.group("date"), iso.group("body") or ""
    if re.match(r"\d{4}-\d{2}-\d{2}\S", rest):  # "2020-12-13It insisted": where does the date end?
        raise ParseError(f"unparseable date {rest[:40]!r}: {expected}, with a space before the body")
    try:  # the whole rest is the date (e.g. RFC 822), or the line is not what the format expects
        parse_date(rest, today=dt.date.max - dt.timedelta(days=10))  # only the form is checked here
    except ParseError as exc:
        raise ParseError(f"{exc}: {expected}") from None
    return rest, ""


def parse_seed(text: str, ref: str, source: str, fetched_at=None, limits: ParseLimits = ParseLimits()) -> dict:
    """The seed format: a first line `date YYYY-MM-DD`, which may carry the start of the body after the date;
    when it does not, an optional header block of `title`/`url`/`source`/`targets` lines (lowercase keys, each
    at most once) right after it; then the body. Leading whitespace, a BOM and CRLF line ends are accepted."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff \t\n").split("\n")
    if not lines[0].strip():
        raise ParseError("empty file")
    published, body_start = split_date_line(lines[0].strip())
    fields: dict[str, Any] = {}
    i = 1
    if not body_start:
        while i < len(lines):
            h = HEADER_LINE.match(lines[i].strip())
            if not h or h.group(1) in fields:
                break
            fields[h.group(1)] = h.group(2)
            i += 1
    targets = None
    if "targets" in fields:
        targets = [t.strip() for t in re.split(r"[,;]", fields["targets"]) if t.strip()]
    body = "\n".join(([body_start] if body_start else []) + lines[i:])
    return make_article(ref=ref, source=fields.get("source", source), title=fields.get("title"),
                        text=body, published=published, url=fields.get("url"),
                        fetched_at=fetched_at, targets=targets, limits=limits)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_lone_surrogates(line: str, obj: dict) -> None:
    """JSON may spell a lone UTF-16 surrogate (`"\\ud800"`); json.loads accepts it, but it is not Unicode text
    and no UTF-8 coder can carry it, so the record (`obj`, parsed from `line`) is refused here (a dead letter)
    rather than failing later."""
    if not _SURROGATE_ESCAPE.search(line):
        return
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start:exc.end]
        raise ParseError(f"invalid JSON string: lone surrogate {bad.encode('unicode_escape').decode()} "
                         f"(not valid Unicode text)") from None


def parse_jsonl_record(line: str, ref: str, default_source: str, fetched_at=None,
                       limits: ParseLimits = ParseLimits()) -> dict:
    """One JSON object per line: text (or body/content), published (or date), optional title/url/source/targets."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ParseError("invalid JSON: arrays or objects nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than sys.get_int_max_str_digits() (4300)
        raise ParseError(f"invalid JSON: integer with more than {sys.get_int_max_str_digits()} digits "
                         f"({str(exc)[:120]})" if "digits" in str(exc) else f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ParseError(f"a JSONL record must be an object, got {type(obj).__name__}")
    _refuse_lone_surrogates(line, obj)
    text = next((obj[k] for k in ("text", "body", "content") if obj.get(k) is not None), None)
    published = next((obj[k] for k in ("published", "date", "published_at") if obj.get(k) is not None), None)
    source = obj.get("source") if isinstance(obj.get("source"), str) and obj.get("source") else default_source
    return make_article(ref=ref, source=source, title=obj.get("title"), text=text, published=published,
                        url=obj.get("url") or obj.get("link"), fetched_at=fetched_at,
                        guid=str(obj["guid"]) if obj.get("guid") is not None else None,
                        targets=obj.get("targets"), limits=limits)


_LINE_END_TAGS = frozenset({"br", "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"})
_NO_TEXT_TAGS = frozenset({"script", "style"})
_SPACES = re.compile(r"[ \t\u00a0]+")


def html_to_text(html: str) -> str:
    """The text of a feed's HTML summary/content or title, parsed by lxml's HTML parser (so a `>` inside an
    attribute, a comment or an unclosed tag cannot leak markup into the text, and entities are decoded once).

    Layout: the end of a paragraph, div, list item, heading, table row or blockquote and a <br> are line breaks;
    any other tag is a space (`<td>a</td><td>b</td>` is "a b"); script and style contents are dropped; runs of
    spaces, tabs and no-break spaces become one space and each line is trimmed."""
    if "<" not in html and "&" not in html:
        text = html
    else:
        from lxml import html as lxml_html

        # NUL is refused by lxml; normalise_text drops it (a control character) anyway
        root = lxml_html.fragment_fromstring(html.replace("\x00", ""), create_parent="div")
        parts: list[str] = []
        todo: list = [*reversed(root), root.text or ""]  # a stack popped in document order: no recursion limit
        while todo:
            item = todo.pop()
            if isinstance(item, str):
                parts.append(item)
                continue
            tag = item.tag.lower() if isinstance(item.tag, str) else ""  # "" for a comment or processing instruction
            if tag and tag != "br" and tag not in _NO_TEXT_TAGS:
                end = "\n" if tag in _LINE_END_TAGS else " "
                todo += [item.tail or "", end, *reversed(item), item.text or "", " "]
            else:
                todo += [item.tail or "", "\n" if tag == "br" else " "]
        text = "".join(parts)
    return "\n".join(_SPACES.sub(" ", ln).strip() for ln in text.split("\n"))


def cap_entries(records: Iterable[tuple[str, Any]], max_entries: int | None) -> Iterator[tuple[str, Any]]:
    """The first `max_entries` records of one raw input, then (if more exist) one ParseError saying the rest
    were skipped, so a runaway feed cannot flood a run and the truncation is visible as a dead letter."""
    it = iter(records)
    if max_entries is None:
        yield from it
        return
    yield from itertools.islice(it, max_entries)
    extra = next(it, None)
    if extra is not None:
        yield extra[0], ParseError(f"feed has more than max_entries {max_entries} entries; this entry and the "
                                   f"ones after it were skipped")


_PARTIAL_LOGGED: set[str] = set()  # feeds whose bozo_exception was logged (once per feed and process)


def _note_partial(ref: str, exc: Any, entries: int) -> None:
    """A partly readable feed (feedparser's `bozo` set, entries still read): counted every time as
    `feeds_partial`, its bozo_exception logged once per feed."""
    counter("feeds_partial").inc()
    if ref in _PARTIAL_LOGGED:
        return
    if len(_PARTIAL_LOGGED) >= 10_000:  # a long streaming run over many feeds: bounded memory
        _PARTIAL_LOGGED.clear()
    _PARTIAL_LOGGED.add(ref)
    log.warning("feed %s is partly readable (%d entries read): %s: %s", ref, entries,
                type(exc).__name__ if exc is not None else "bozo", exc)


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
INVALID_CHAR_MARK = "\uffff"  # what an invalid character reference becomes before feedparser reads the bytes


def mark_invalid_char_refs(data: bytes) -> bytes:
    """Character references to a lone surrogate (`&#xD800;`, `&#55296;`) or beyond U+10FFFF replaced by
    `&#xFFFF;`, whose character (INVALID_CHAR_MARK) then marks the entry that held one.

    feedparser turns such a reference into a lone surrogate and fails on the whole document with a
    UnicodeEncodeError (or a ValueError from chr()), losing every entry; marked, only the entry holding it is
    refused (feed_entries). ASCII-compatible encodings only: in a UTF-16 document the reference is not matched
    and the document fails as one record, with the reason."""
    if b"&#" not in data:
        return data

    def sub(m: re.Match) -> bytes:
        digits = m.group(1) or m.group(2)
        if len(digits.lstrip(b"0")) > 8:
            return b"&#xFFFF;"
        value = int(digits, 16) if m.group(1) else int(digits)
        return b"&#xFFFF;" if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF else m.group(0)

    return _CHAR_REF.sub(sub, data)


def _entry_fields(e: Any, feed_title: str, with_content_flag: bool) -> dict:
    """One feedparser entry -> article fields (ParseError when the entry itself is unusable). Only an http(s)
    link is kept as the url (others are dropped and counted: entry_links_dropped)."""
    import calendar

    from .feedsafety import http_link

    content = ""
    if e.get("content"):
        content = "\n\n".join(c.get("value", "") for c in e["content"])
    has_content = bool(content.strip())
    content = content or e.get("summary", "") or ""
    parsed_time = e.get("published_parsed") or e.get("updated_parsed")
    if parsed_time:
        try:
            published = dt.datetime.fromtimestamp(calendar.timegm(parsed_time), dt.timezone.utc)
        except (ValueError, OverflowError, OSError):  # e.g. 9999-12-31T23:00-05:00 is in year 10000 in UTC
            raise ParseError(f"published date out of range in UTC ({e.get('published') or e.get('updated')})"
                             ) from None
    else:
        published = e.get("published") or e.get("updated")
    title = html_to_text(e.get("title", "") or "").strip() or None
    # a headline-only entry (common in news feeds) is still news: its title is its text
    url = http_link(e.get("link"))
    if url is None and e.get("link"):  # javascript:, data:, vbscript:, ... never stored
        counter("entry_links_dropped").inc()
    fields = {"source": feed_title, "title": title, "text": html_to_text(content).strip() or title,
              "published": published, "url": url, "guid": e.get("id")}
    if any(isinstance(v, str) and INVALID_CHAR_MARK in v for v in fields.values()):
        raise ParseError("invalid character reference in the entry (a lone surrogate such as &#xD800;, or "
                         "beyond U+10FFFF): not Unicode text")
    if with_content_flag:
        fields["_has_content"] = has_content
    return fields


def _entry_keys(e: Any) -> dict:
    """guid, link and title of an entry whose fields could not be read, those usable (streaming's seen filter
    keys the entry by them: pipeline.streaming)."""
    keys = {}
    for name, key in (("guid", "id"), ("url", "link"), ("title", "title")):
        try:
            value = e.get(key)
        except Exception:  # noqa: BLE001 - a broken entry: no key
            continue
        if isinstance(value, str) and value.strip() and INVALID_CHAR_MARK not in value:
            keys[name] = value
    return keys


def feed_entries(data: bytes, ref: str, with_content_flag: bool = False
                 ) -> Iterator[tuple[str, dict | ParseError]]:
    """(entry ref, article fields or ParseError) for every entry of an RSS/Atom document, via feedparser.

    The bytes are checked first (transforms.feedsafety): a DOCTYPE declaring entities is refused, so no entity
    expansion or external entity can be triggered. A document with no readable entry yields one ParseError for
    the document itself (the bozo reason); one with a problem (feedparser's `bozo`) that still has entries
    yields them and counts `feeds_partial`. Each entry is read on its own: one that fails (a date out of range,
    an invalid character reference, any exception) is that entry's ParseError, the others are still yielded.
    `with_content_flag` adds `_has_content` (the entry had a <content> element, not only a summary) to the
    fields, for --fetch-full-text; make_article does not take it.
    """
    import feedparser

    from .feedsafety import UnsafeFeedError, looks_like_html, refuse_entity_declarations

    try:
        refuse_entity_declarations(data)
    except UnsafeFeedError as exc:
        yield ref, ParseError(str(exc))
        return
    try:
        parsed = feedparser.parse(mark_invalid_char_refs(data))
    except Exception as exc:  # noqa: BLE001 - feedparser failing on the document: no entry is readable
        yield ref, ParseError(f"the feed could not be parsed: {type(exc).__name__}: {str(exc)[:300]}")
        return
    if not parsed.entries:
        reason = str(parsed.get("bozo_exception") or "") if parsed.get("bozo") else ""
        if looks_like_html(data):
            reason = "not an RSS/Atom feed (an HTML page)"
        elif not parsed.get("version"):
            reason = f"not an RSS/Atom feed ({reason})" if reason else "not an RSS/Atom feed"
        yield ref, ParseError(f"no entries could be read from the feed: {reason or 'feed is empty'}")
        return
    if parsed.get("bozo"):
        _note_partial(ref, parsed.get("bozo_exception"), len(parsed.entries))
    feed_title = (parsed.feed.get("title") or "").replace(INVALID_CHAR_MARK, "").strip() or ref.rsplit("/", 1)[-1]
    for i, e in enumerate(parsed.entries):
        try:
            fields = _entry_fields(e, feed_title, with_content_flag)
        except Exception as exc:  # noqa: BLE001 - this entry only
            err = exc if isinstance(exc, ParseError) else unexpected(exc)
            err.fields = _entry_keys(e)
            yield f"{ref}#{i}", err
            continue
        yield f"{ref}#{i}", fields


FullText = Callable[[Any, str], "tuple[str | None, str | None]"]  # (link, summary) -> (text, None) | (None, why)


def feed_records(data: bytes, ref: str, fetched_at, limits: ParseLimits, full_text: FullText | None = None,
                 max_entries: int | None = None, full_text_min_chars: int = FullTextPolicy.min_chars,
                 only: Iterable[str] | None = None
                 ) -> Iterator[tuple[str, dict | ParseError, dict | None]]:
    """(entry ref, article or ParseError, the entry's fields) for each entry of a feed document, the first
    `max_entries` only (cap_entries); the fields are None for a problem of the whole document. Shared by batch
    (parse_raw) and streaming (through parse_raw too), so both isolate a bad entry the same way.

    With `full_text` (--fetch-full-text), an entry that carries only a summary (no <content>, or fewer than
    `full_text_min_chars` characters) gets its page's main text before the article (and its id) is made; when that fails the summary is kept (the fetcher counts and logs why).
    `only` (streaming: the entries its seen filter found new) keeps just those entry refs, so an entry already
    written is neither parsed again nor its page fetched again."""
    entries = feed_entries(data, ref, with_content_flag=full_text is not None)
    if only is not None:
        keep = set(only)
        entries = (e for e in entries if e[0] in keep or e[0] == ref)
    for entry_ref, fields in cap_entries(entries, max_entries):
        if isinstance(fields, ParseError):
            yield entry_ref, fields, (fields.fields if entry_ref != ref else None)
            continue
        try:
            has_content = fields.pop("_has_content", True)
            summary = fields.get("text") or ""
            if full_text is not None and (not has_content or len(summary) < full_text_min_chars):
                text, _reason = full_text(fields.get("url"), summary)
                if text:
                    fields["text"] = text
                    fields["id_text"] = summary
            if fields.get("published") is None and fetched_at is not None:
                fields["published"] = fetched_at  # an undated entry (RSS 0.91 has no dates) was new when fetched
            yield entry_ref, make_article(ref=entry_ref, fetched_at=fetched_at, limits=limits, **fields), fields
        except Exception as exc:  # noqa: BLE001 - this entry only
            yield entry_ref, exc if isinstance(exc, ParseError) else unexpected(exc), fields


def guarded(records: Iterable[tuple], ref: str, width: int = 2) -> Iterator[tuple]:
    """The records of one raw input, and if producing them raises anyway (a bug: every parser above turns a bad
    record into its own ParseError), one more ParseError for `ref` saying where it stopped (padded with None to
    `width`). What was produced before is kept: a failure costs the rest of the file, never the records read."""
    it = iter(records)
    n = 0
    while True:
        try:
            rec = next(it)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - see the docstring
            yield (ref, ParseError(f"parsing stopped after {n} records: {type(exc).__name__}: {str(exc)[:300]}"),
                   *([None] * (width - 2)))
            return
        n += 1
        yield rec


def parse_raw(raw: dict, limits: ParseLimits = ParseLimits(), full_text: FullText | None = None,
              full_text_min_chars: int = FullTextPolicy.min_chars) -> Iterator[tuple[str, dict | ParseError]]:
    """(record ref, article dict or ParseError) for every record in one raw input. `full_text` (a
    pipeline.feeds.FullTextFetcher) fetches the page of feed entries that carry only a summary."""
    return guarded(_parse_raw(raw, limits, full_text, full_text_min_chars), raw.get("ref", "?"))


def _parse_raw(raw: dict, limits: ParseLimits, full_text: FullText | None,
               full_text_min_chars: int) -> Iterator[tuple[str, Any]]:
    ref, data = raw["ref"], raw["data"]
    fetched_at = raw.get("fetched_at")
    if isinstance(fetched_at, str):
        fetched_at = dt.datetime.fromisoformat(fetched_at)
    source = raw.get("source") or ref.rsplit("/", 1)[-1]
    if raw.get("error"):
        yield ref, ParseError(raw["error"])
        return
    if not data or not data.strip():
        yield ref, ParseError("empty file")
        return
    fmt = raw.get("format") or detect_format(ref, data)  # a source that knows the format says so (--urls: page)
    if fmt in ("page", "csv", "tsv") and "max_entries" in raw:  # fetched from --feeds: a feed whatever its URL
        fmt = "feed"
    if fmt == "feed":
        for entry_ref, result, _fields in feed_records(data, ref, fetched_at, limits, full_text,
                                                       raw.get("max_entries"), full_text_min_chars,
                                                       only=raw.get("entries")):
            yield entry_ref, result
        return
    if fmt == "jsonl":
        yield from _jsonl_records(data, ref, source, fetched_at, limits)
        return
    if fmt in ("csv", "tsv"):
        from .table_input import table_records

        yield from table_records(data, ref, source, fetched_at, limits, delimiter="," if fmt == "csv" else "\t")
        return
    if fmt == "page":
        from .page_input import parse_page

        try:
            yield ref, parse_page(data, ref, source, fetched_at, limits, url=raw.get("url"))
        except Exception as exc:  # noqa: BLE001 - one page is one record
            yield ref, exc if isinstance(exc, ParseError) else unexpected(exc)
        return
    try:
        text = decode_text(data)
    except ParseError as exc:
        yield ref, exc
        return
    if not text.strip():  # e.g. only a BOM, or UTF-16 whitespace: non-blank bytes, blank text
        yield ref, ParseError("empty file")
        return
    try:
        yield ref, parse_seed(text, ref, source, fetched_at, limits)
    except Exception as exc:  # noqa: BLE001 - one seed file is one record
        yield ref, exc if isinstance(exc, ParseError) else unexpected(exc)


def _jsonl_records(data: bytes, ref: str, source: str, fetched_at, limits: ParseLimits
                   ) -> Iterator[tuple[str, Any]]:
    """Each line its own record, decoded on its own: a bad byte or a NUL costs only its line."""
    any_line = False
    for n, line in text_lines(data):
        any_line = True
        line_ref = f"{ref}:{n}" if n else ref
        if isinstance(line, DecodeError):
            yield line_ref, ParseError(str(line))
            continue
        try:
            yield line_ref, parse_jsonl_record(line, line_ref, source, fetched_at, limits)
        except Exception as exc:  # noqa: BLE001 - this line only
            yield line_ref, exc if isinstance(exc, ParseError) else unexpected(exc)
    if not any_line:  # e.g. only a BOM, or UTF-16 whitespace: non-blank bytes, blank text
        yield ref, ParseError("empty file")


class _ParseDoFn(beam.DoFn):
    def __init__(self, limits: ParseLimits, full_text_fetcher: Callable[[], Any] | None, full_text_min_chars: int):
        self.limits = limits
        self.full_text_fetcher, self.full_text_min_chars = full_text_fetcher, full_text_min_chars
        self.read = counter("read")
        self.full_text = None

    def setup(self):
        if self.full_text_fetcher is not None:  # one HTTP client per worker
            self.full_text = self.full_text_fetcher()

    def teardown(self):
        if self.full_text is not None:
            self.full_text.close()

    def process(self, raw: dict):
        # parse_raw never raises: each bad record is its own ParseError (guarded keeps the records before a bug)
        for ref, result in parse_raw(raw, self.limits, self.full_text, self.full_text_min_chars):
            self.read.inc()
            if isinstance(result, ParseError):
                yield tagged_dead(ref, "parse", str(result), excerpt=raw.get("data") if ref == raw["ref"] else None)
            else:
                yield result


class ParseArticles(beam.PTransform):
    """Raw inputs -> article dicts (main) and dead letters (tag `dead_letter`).

    `full_text_fetcher`: with `full_text.enabled`, a picklable factory of the page fetcher (a FullText
    callable with a close(); the pipeline passes its HTTP client, pipeline.feeds.FullTextFetcher), made once per
    worker. Injected, so parsing does not import the network layer above it."""

    def __init__(self, limits: ParseLimits = ParseLimits(), full_text_fetcher: Callable[[], Any] | None = None,
                 full_text: FullTextPolicy = FullTextPolicy()):
        super().__init__()
        if full_text.enabled and full_text_fetcher is None:
            raise ValueError("full_text.enabled needs full_text_fetcher (e.g. pipeline.feeds.full_text_fetcher)")
        self.limits, self.full_text_min_chars = limits, full_text.min_chars
        self.full_text_fetcher = full_text_fetcher if full_text.enabled else None

    def expand(self, raws):
        fn = _ParseDoFn(self.limits, self.full_text_fetcher, self.full_text_min_chars)
        return raws | "Parse" >> beam.ParDo(fn).with_outputs(DEAD, main="articles")
