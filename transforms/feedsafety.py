"""Feed safety: refuse XML documents whose DOCTYPE declares entities before any XML parser sees them (every
feed, fetched over HTTP or read from a file: transforms.parse.feed_entries), and tell which IP addresses an
entry link may be fetched from (`non_global_reason`, the SSRF guard of pipeline.feeds).
"""
from __future__ import annotations

import codecs
import functools
import ipaddress
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


# ------------------------------------------------------------------ addresses (SSRF guard for entry links)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the IPv4 address in the last 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix: never global
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated (RFC 4291); :: and ::1 are in it too
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT (RFC 2765), not the IPv4-mapped ::ffff:0:0/96
# Not global whatever the interpreter: releases of `ipaddress` from mid-2024 on (and patched older ones) list
# these as not globally reachable, earlier ones call them global. Listed here so the guard is the same everywhere.
_NOT_GLOBAL_V6 = (ipaddress.ip_network("2002::/16"),  # 6to4 relays (deprecated, RFC 7526)
                  ipaddress.ip_network("3fff::/20"))  # documentation (RFC 9637)


def _last_32_bits(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)


def embedded_ipv4(ip: IPAddress) -> list[tuple[str, ipaddress.IPv4Address]]:
    """(form, IPv4 address) for every IPv4 address an IPv6 address carries and a host or gateway may deliver to:
    IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4 and Teredo (server and client). Why: the stack or
    a translator on the path connects to the embedded address, so `64:ff9b::7f00:1` reaches 127.0.0.1 although
    `ipaddress` calls the IPv6 address itself global."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = []
    if ip.ipv4_mapped is not None:
        found.append(("IPv4-mapped", ip.ipv4_mapped))
    if ip in _IPV4_TRANSLATED:
        found.append(("IPv4-translated", _last_32_bits(ip)))
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are the unspecified and loopback addresses
        found.append(("IPv4-compatible", _last_32_bits(ip)))
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        found.append(("NAT64", _last_32_bits(ip)))
    if ip.sixtofour is not None:
        found.append(("6to4", ip.sixtofour))
    if ip.teredo is not None:
        server, client = ip.teredo
        found += [("Teredo server", server), ("Teredo client", client)]
    return found


_SPELLINGS = ("IPv4-mapped", "IPv4-translated", "IPv4-compatible")


def _not_global(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in _NOT_GLOBAL_V6):
        return True
    return not ip.is_global or ip.is_multicast  # some multicast ranges count as global


def non_global_reason(ip: IPAddress) -> str | None:
    """Why an entry link must not be fetched from `ip` (not global itself: loopback, private, link-local,
    reserved, multicast, unspecified, a local-use NAT64 prefix, 6to4; or carrying such an IPv4 address), or
    None when it is public."""
    embedded = embedded_ipv4(ip)
    if ip in _NAT64_LOCAL:
        return f"{ip} is in the local-use NAT64 prefix {_NAT64_LOCAL}"
    for form, v4 in embedded:  # the embedded address first: the reason then names where the link leads
        if _not_global(v4):
            return f"{ip} carries the non-global IPv4 address {v4} ({form})"
    # an IPv4-mapped, -translated or -compatible address is the IPv4 address written in IPv6: it alone counts
    # (`ipaddress` calls every IPv4-mapped address private, ::ffff:8.8.8.8 too)
    if not any(form in _SPELLINGS for form, _v4 in embedded) and _not_global(ip):
        return f"{ip} is not a global address"
    return None
