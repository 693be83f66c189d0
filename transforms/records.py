"""The article record every input format builds: its limits, its id, its date rules and its checks.

Its own module so that each format (seed, JSONL and feeds in transforms.parse, pages in transforms.page_input,
tables in transforms.table_input) builds records the same way without importing the others.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"'»”)]*(?=\s)")
MIN_DATE = dt.date(1900, 1, 1)
MAX_TARGETS = 50  # targets one record may name; more is a dead letter (each target costs a stance pass)


class ParseError(ValueError):
    """A record that cannot become an article; the message is the dead-letter reason. `fields` (a feed entry
    whose fields could not be read) carries its guid/url, so streaming can remember it as seen."""

    fields: dict | None = None


def unexpected(exc: BaseException) -> ParseError:
    """Any other exception met while parsing one record, as that record's ParseError (type and message kept):
    a parser or library failure on one record must cost that record only, never the rest of its file."""
    return ParseError(f"{type(exc).__name__}: {str(exc)[:300]}")


@dataclass(frozen=True)
class ParseLimits:
    """What a record may hold and still become an article (the caps of parsing; no network policy here), and
    how a CSV/TSV header names the fields, since that is read with the records."""
    max_chars: int = 200_000  # a long news article is ~50k characters; beyond this it is rejected, not truncated
    max_targets: int = MAX_TARGETS  # a record's own targets; stance runs per target, so the list is bounded
    future_days: int = 2  # a published date more than this many days after today is implausible
    csv_columns: tuple[tuple[str, str], ...] = ()  # --csv-columns: (field, header column) pairs (table_input)


@dataclass(frozen=True)
class FullTextPolicy:
    """--fetch-full-text: which feed entries get their article page downloaded, and from which hosts.

    Fetch policy, apart from the parse caps: an entry without <content>, or with less text than `min_chars`, is
    only a summary; its link is downloaded (the fetcher given to ParseArticles) and the page's main text
    replaces it. Entry links resolving to non-public addresses are refused unless `allow_private_hosts`."""
    enabled: bool = False
    min_chars: int = 600
    allow_private_hosts: bool = False


# ------------------------------------------------------------------ normalisation and identity
def normalise_text(text: str) -> str:
    """NFC, unified newlines, control characters dropped, trailing spaces and blank-line runs trimmed."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text).replace("\ufeff", "")
    lines = [ln.rstrip() for ln in text.split("\n")]
    text = "\n".join(lines)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def _identity_form(s: str | None) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s or "")).strip().lower()


def article_id(url: str | None, title: str, text: str) -> str:
    """Content-derived id: stable across runs and runners (sha256 of normalised url, title and text)."""
    key = "\n".join((_identity_form(url), _identity_form(title), _identity_form(text)))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def first_sentence(text: str, limit: int = 200) -> str:
    """A title for untitled text: its first sentence or first line, at most `limit` characters."""
    first_line = text.strip().split("\n", 1)[0]
    m = _SENTENCE_END.search(first_line)
    title = first_line[: m.start()] if m else first_line
    if len(title) > limit:
        cut = title.rfind(" ", 0, limit)
        title = title[: cut if cut > 0 else limit].rstrip() + "…"
    return title.strip()


def parse_date(value: Any, limits: ParseLimits = ParseLimits(), today: dt.date | None = None
               ) -> tuple[dt.date, dt.datetime | None]:
    """A published date from 'YYYY-MM-DD', an ISO timestamp or an RFC 822 feed date; UTC; plausibility-checked."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ParseError("missing published date")
    stamp: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        stamp = value
    elif isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        s = value.strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
                day = dt.date.fromisoformat(s)
            else:
                stamp = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                stamp = parsedate_to_datetime(s)
            except (TypeError, ValueError, IndexError):
                raise ParseError(f"unparseable date {s[:40]!r}") from None
    else:
        raise ParseError(f"date has the wrong type ({type(value).__name__})")
    if stamp is not None:
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.timezone.utc)
        try:
            stamp = stamp.astimezone(dt.timezone.utc)
        except OverflowError:  # 9999-12-31T23:00-05:00 is in year 10000 in UTC
            raise ParseError(f"published date out of range in UTC ({stamp.isoformat()})") from None
        day = stamp.date()
    today = today or dt.datetime.now(dt.timezone.utc).date()
    if day < MIN_DATE:
        raise ParseError(f"implausible published date {day} (before {MIN_DATE})")
    if day > today + dt.timedelta(days=limits.future_days):
        raise ParseError(f"implausible published date {day} (in the future)")
    return day, stamp


def make_article(*, ref: str, source: str, title: str | None, text: Any, published: Any, url: str | None = None,
                 fetched_at: dt.datetime | None = None, guid: str | None = None, targets: Any = None,
                 published_at: Any = None, limits: ParseLimits = ParseLimits(), id_text: str | None = None,
                 authors: list[str] | None = None, site_name: str | None = None) -> dict:
    """Validate and normalise one record's fields into an article dict (raises ParseError with the reason).

    id_text: the text the id is derived from when it is not `text` (a feed entry whose page was fetched keeps the
    id of its feed summary, so a rerun where the fetch fails or the page changed does not make a second article)."""
    if not isinstance(text, str):
        raise ParseError(f"text is missing or not a string ({type(text).__name__})")
    if len(text) > 2 * limits.max_chars:  # refuse before normalising megabytes that will be refused anyway
        raise ParseError(f"text too long ({len(text)} characters > --max-chars {limits.max_chars})")
    if title is not None and not isinstance(title, str):
        raise ParseError(f"title is not a string ({type(title).__name__})")
    if url is not None and not isinstance(url, str):
        raise ParseError(f"url is not a string ({type(url).__name__})")
    body = normalise_text(text)
    if not body:
        raise ParseError("empty text")
    if len(body) > limits.max_chars:
        raise ParseError(f"text too long ({len(body)} characters > --max-chars {limits.max_chars})")
    title_n = normalise_text(title or "").replace("\n", " ") or first_sentence(body)
    day, stamp = parse_date(published_at if published_at is not None else published, limits)
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, str) and t.strip() for t in targets):
            raise ParseError("targets must be a list of non-empty strings")
        if len(targets) > limits.max_targets:
            raise ParseError(f"too many targets ({len(targets)} > {limits.max_targets} per record); the record "
                             f"was not read")
        targets = [t.strip() for t in targets]
    rec = {
        "id": article_id(url, title_n, body if id_text is None else normalise_text(id_text)),
        "source": source,
        "url": url.strip() if url else None,
        "title": title_n,
        "text": body,
        "published": day.isoformat(),
        "published_at": stamp.isoformat() if stamp else None,
        "fetched_at": fetched_at.isoformat() if fetched_at else None,
        "input_ref": ref,
        "guid": guid,
    }
    if targets is not None:
        rec["targets"] = targets
    authors = [a for a in (normalise_text(a).replace("\n", " ") for a in authors or []) if a]
    if authors:
        rec["authors"] = authors
    site_name = normalise_text(site_name or "").replace("\n", " ")
    if site_name:
        rec["site_name"] = site_name
    return rec
