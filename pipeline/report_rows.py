"""Row-level helpers of `newsbeam report`, kept apart from the aggregation (pipeline.report_aggregate) and the
charts (pipeline.report_charts): who published a record, the dead-letter list, how a cell's value is shown, and
each table as CSV. Pure functions over record dicts.
"""
from __future__ import annotations

import base64
import csv
import io
import posixpath
from typing import Iterable, Optional
from urllib.parse import urlsplit

NO_PUBLISHER = "(publisher not known)"
MAX_ERROR_CHARS = 500  # per dead letter in the page (the record keeps the whole message)
MAX_EXCERPT_CHARS = 120


def _file_name(input_ref: Optional[str]) -> str:
    """The file name an input_ref points into (`seeds/a.jsonl:3` -> `a.jsonl`, `f.xml#2` -> `f.xml`)."""
    ref = (input_ref or "").split("#", 1)[0]
    name = posixpath.basename(ref.rstrip("/"))
    head, sep, tail = name.rpartition(":")
    return head if sep and tail.isdigit() else name


def url_host(url: Optional[str]) -> Optional[str]:
    """`https://www.example.org/a` -> `example.org`; None for anything that is not an http(s) URL."""
    if not url or not url.startswith(("http://", "https://")):
        return None
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host or None


def publisher(rec: dict) -> str:
    """Who published a record: its site name, else the feed title or the source the input named, else the host
    of its URL. The parser falls back to the input's file name as `source`; a file name says where a copy was
    kept, not who wrote it, so it is not a publisher (and a report would count every seed file as one)."""
    for key in ("site_name", "sitename"):
        if rec.get(key):
            return str(rec[key])
    source = (rec.get("source") or "").strip()
    if source and source != _file_name(rec.get("input_ref")):
        return source
    return url_host(rec.get("url")) or NO_PUBLISHER


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Signed(float):
    """A value shown with its sign (the net stance, P(favor) − P(against)); every other number is shown plain,
    so a label's confidence never reads as a direction."""


def signed(v: Optional[float]) -> Optional[Signed]:
    return None if v is None else Signed(v)


def fmt(v) -> str:
    """A table cell as the page shows it: '–' for none, floats with two decimals, a Signed with its sign."""
    if v is None:
        return "–"
    if isinstance(v, Signed):
        return f"{v:+.2f}" if v else "0.00"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _short(text: Optional[str], n: int) -> Optional[str]:
    if text is None:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


DEAD_LETTER_COLUMNS = ["stage", "input", "reason", "record id", "excerpt"]


def dead_letter_rows(dead: Iterable[dict]) -> list[list]:
    """One row per dead letter, with the reason it was rejected; ordered by stage, then input."""
    rows = [[d.get("stage") or "?", d.get("input_ref"), _short(d.get("error"), MAX_ERROR_CHARS), d.get("id"),
             _short(d.get("excerpt"), MAX_EXCERPT_CHARS)] for d in dead]
    return sorted(rows, key=lambda r: (r[0], r[1] or "", r[2] or ""))


def csv_cell(value) -> str:
    """A table cell as CSV text: a link is its URL, read sentences are joined with ' | ', None is empty. Text
    that a spreadsheet would run as a formula (=, +, -, @ first, and not a number) gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, dict):
        if "url" in value:
            return value.get("url") or ""
        if "sentences" in value:
            return " | ".join(value.get("sentences") or [])
        return str(value.get("text", ""))
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def table_csv(columns: list[str], rows: Iterable[list]) -> str:
    """The header and rows as CSV (RFC 4180, CRLF line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buf.getvalue()


def csv_data_uri(columns: list[str], rows: Iterable[list]) -> str:
    """A `data:` URI of the table's CSV, for an `<a download>` link: works from a file, with no script. UTF-8
    with a byte-order mark, so spreadsheets read Cyrillic and accents right."""
    payload = ("\ufeff" + table_csv(columns, rows)).encode("utf-8")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(payload).decode("ascii")
