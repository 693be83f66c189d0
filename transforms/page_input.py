"""A saved HTML page (`.html`/`.htm`) as one article: its main text and metadata extracted by trafilatura.

trafilatura drops navigation, menus, footers and comments and reads the page's metadata (title, date, author,
site name, canonical URL) from its meta tags, JSON-LD and markup. The date is the one the page declares:
htmldate's guessing from the whole text is turned off, and a page without a date is a dead letter, as a seed or
JSONL record without one is (a file's modification time says when it was saved, not when it was published).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .decode import DecodeError, decode_text
from .records import ParseError, ParseLimits, make_article

# htmldate: the publication date (not the last modification), from the page's markup only
DATE_PARAMS = {"extensive_search": False, "original_date": True}
_AUTHOR_SEPARATORS = re.compile(r"\s*[;|]\s*")  # trafilatura joins several authors with "; "
_DECLARED_CHARSET = re.compile(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def page_text(data: bytes) -> str:
    """A page's bytes as text: UTF-16/32 announced by a BOM, UTF-8, or the charset its <meta> declares. Other
    bytes are refused with the reason rather than guessed (a guessed code page silently corrupts names)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")):
        try:
            return decode_text(data)
        except DecodeError as exc:
            raise ParseError(str(exc)) from None
    if b"\x00" in data[:4096]:
        raise ParseError("binary content (NUL bytes); expected an HTML page")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        declared = _DECLARED_CHARSET.search(data[:4096])
        if declared:
            try:
                return data.decode(declared.group(1).decode("ascii"))
            except (LookupError, UnicodeDecodeError):
                pass
        raise ParseError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}) and no <meta "
                         f"charset> that decodes the page") from None


def split_authors(value: Any) -> list[str] | None:
    """trafilatura's author string ("Jane Doe; John Roe") as a list of names, None when there is none."""
    if not isinstance(value, str) or not value.strip():
        return None
    names = [n for n in _AUTHOR_SEPARATORS.split(value.strip()) if n]
    return names or None


def page_fields(data: bytes) -> dict[str, Any]:
    """The article fields trafilatura finds in a page: text, title, published, authors, site_name, url and
    hostname (each None where the page has none). Raises ParseError when the page has no main text."""
    import trafilatura

    from .feedsafety import http_link

    doc = trafilatura.bare_extraction(page_text(data), with_metadata=True, include_comments=False, include_tables=False,
                                      include_images=False, include_links=False, deduplicate=False,
                                      date_extraction_params=DATE_PARAMS)
    text = (getattr(doc, "text", None) or "").strip() if doc is not None else ""
    if not text:
        raise ParseError("no main text could be extracted from the HTML page (trafilatura found none)")
    url = http_link(doc.url)
    return {"text": text, "title": doc.title or None, "published": doc.date or None,
            "authors": split_authors(doc.author), "site_name": (doc.sitename or "").strip() or None,
            "url": url, "hostname": (doc.hostname or "").strip() or None}


def parse_page(data: bytes, ref: str, source: str, fetched_at: dt.datetime | None = None,
               limits: ParseLimits = ParseLimits(), url: str | None = None) -> dict:
    """One saved page -> one article dict (ParseError with the reason otherwise). The source is the publisher
    where the page names it (site name, else the canonical URL's host), else `source` (the file name, or the
    host of a fetched page). The url is the page's canonical URL, else `url` (where a fetched page came from)."""
    fields = page_fields(data)
    if not fields["published"]:
        raise ParseError("missing published date: the page declares none (no date in its meta tags, JSON-LD, "
                         "<time> or byline)")
    return make_article(ref=ref, source=fields["site_name"] or fields["hostname"] or source,
                        title=fields["title"], text=fields["text"], published=fields["published"],
                        url=fields["url"] or url, fetched_at=fetched_at, limits=limits, authors=fields["authors"],
                        site_name=fields["site_name"])
