"""XML safety for feeds: refuse documents whose DOCTYPE declares entities before any XML parser sees them.

Used for every feed, fetched over HTTP or read from a file (transforms.parse.feed_entries).
"""
from __future__ import annotations

import codecs
import functools
import re

class UnsafeFeedError(ValueError):
    """A document refused before any XML parser sees it."""


_MISC = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.S)  # what may precede a DOCTYPE (XML 1.0 prolog: S, PI, Comment)
_Q = rb"(?:\"[^\"]*\"|'[^']*')"
_DOCTYPE_NO_SUBSET = re.compile(rb"<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM\s+" + _Q + rb"|PUBLIC\s+" + _Q + rb"\s+"
                                + _Q + rb"))?\s*>", re.I)
_ENTITY = re.compile(rb"<!ENTITY", re.I)
_DECLARED = re.compile(rb"\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_BOMLESS = ((b"\x00\x00\x00<", "utf-32-be"), (b"<\x00\x00\x00", "utf-32-le"), (b"\x00<\x00?", "utf-16-be"),
            (b"<\x00?\x00", "utf-16-le"), (b"\x4c\x6f\xa7\x94", "cp037"))
_BOMS = ((codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF16_BE, "utf-16"),
         (codecs.BOM_UTF16_LE, "utf-16"))
_PROBE = bytes(range(0x20, 0x7F)) + b"\t\r\n"


@functools.lru_cache(maxsize=64)
def _ascii_transparent(encoding: str) -> bool:
    """True when printable ASCII is the same bytes in `encoding` (so markup can be checked on the raw bytes).

    False for UTF-16/32, EBCDIC and UTF-7 (where `+ADw-` decodes to `<`): there markup can hide from a byte scan."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        return True  # unknown codec: feedparser cannot use it either and falls back to ASCII-compatible ones
    try:
        return _PROBE.decode(encoding) == _PROBE.decode("ascii") and _PROBE.decode("ascii").encode(encoding) == _PROBE
    except UnicodeError:
        return False


def declared_encoding(data: bytes) -> str | None:
    """The encoding named in the XML declaration, if any (ASCII-compatible documents only)."""
    m = _DECLARED.match(data[:512].removeprefix(codecs.BOM_UTF8))
    return m.group(1).decode("ascii") if m else None


def hidden_encoding(data: bytes) -> str | None:
    """The encoding in which an XML parser would read `data` when a byte-level scan would be misled, else None."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    for head, name in _BOMLESS:
        if data.startswith(head):
            return name
    name = declared_encoding(data)
    return name if name and not _ascii_transparent(name) else None


def _declares_entities(view: bytes) -> bool:
    """True if the prolog's DOCTYPE has (or may have) an internal subset and an ENTITY declaration follows.

    The prolog is walked by the XML grammar (whitespace, PIs, comments) so a DOCTYPE cannot hide behind a comment;
    a DOCTYPE after the root element is a well-formedness error that parsers reject, so it is harmless. A DOCTYPE
    with only an external DTD is allowed: feedparser's expat never loads external DTDs or entities."""
    pos = 3 if view.startswith(codecs.BOM_UTF8) else 0
    while (m := _MISC.match(view, pos)) and m.end() > pos:
        pos = m.end()
    if view[pos:pos + 9].upper() != b"<!DOCTYPE":
        return False
    if _DOCTYPE_NO_SUBSET.match(view, pos):
        return False
    return _ENTITY.search(view, pos) is not None


def refuse_entity_declarations(data: bytes) -> bytes:
    """`data` unchanged if no XML parser reading it could meet an entity declaration; UnsafeFeedError otherwise
    (a check, never a rewrite: nothing is removed from the document).

    Why: feedparser strips DOCTYPE/ENTITY lines with line-anchored regexes only, so a one-line
    `<?xml ...?><!DOCTYPE x [<!ENTITY ...>]>` reaches expat, which expands it (billion laughs: ~0.5 s and ~70 MB
    before expat 2.5's amplification limit stops it). Refusing is cheap (the prolog only is looked at) and the
    refusal becomes a dead letter with this reason. The check runs on the bytes and, for UTF-16/32, EBCDIC or
    UTF-7 documents, on the text the parser would decode."""
    views = [data]
    hidden = hidden_encoding(data)
    if hidden:
        views.append(data.decode(hidden, errors="replace").encode("utf-8"))
    for view in views:
        if _declares_entities(view):
            raise UnsafeFeedError("refused: the document's DOCTYPE declares entities (<!ENTITY ...>); entity "
                                  "expansion (billion laughs) and external entities (XXE) are not allowed in feeds")
    return data


_HTML_ROOT = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s+|<\?.*?\?>|<!--.*?-->)*(?:<!DOCTYPE\s+html\b[^>]*>\s*"
                        rb"(?:<!--.*?-->\s*)*)?<(?:html|head|body)\b", re.I | re.S)

def looks_like_html(data: bytes) -> bool:
    """True when the document's root element is <html> (a web page, an error or login page, not a feed)."""
    return _HTML_ROOT.match(data[:8192]) is not None


def http_link(link: object) -> str | None:
    """An entry link if it is an absolute http(s) URL, else None. Feed content is untrusted: a `javascript:`,
    `data:` or `vbscript:` link stored in `url` would run in any tool that renders it as a link, and relative or
    other-scheme links point nowhere useful. (feedparser already resolves relative links against the feed.)"""
    if not isinstance(link, str):
        return None
    link = link.strip()
    scheme, sep, rest = link.partition(":")
    if sep and scheme.lower() in ("http", "https") and rest.startswith("//") and len(rest) > 2:
        return link
    return None
