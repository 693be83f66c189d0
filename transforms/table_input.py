"""CSV and TSV files with a header row: each row one article, each bad row its own dead letter.

Columns (by name, any order, case and surrounding spaces ignored; others are ignored): `text` and `published`
(required), `title`, `url`, `source`, `targets`, `authors`. A list cell (`targets`, `authors`) separates its
names with `;` or `|` (not `,`: a name may hold one, "Korea, Republic of"). `--csv-columns text=body,
published=date` says which header column holds a field when the names differ. A row's input_ref is
`path:line`, the line its row starts on (the header is line 1), as JSONL's refs are.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Iterator, Sequence

from .decode import DecodeError, decode_text
from .records import ParseError, ParseLimits, make_article, unexpected

FIELDS = ("text", "published", "title", "url", "source", "targets", "authors")
REQUIRED = ("text", "published")
LIST_SEPARATORS = re.compile(r"\s*[;|]\s*")


def parse_csv_columns(spec: str | Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    """`text=body,published=date` (or the pairs as separate arguments) -> (("text", "body"), ("published",
    "date")); ValueError naming what is wrong (an unknown field, a pair without `=`, a field named twice)."""
    if not spec:
        return ()
    items = [spec] if isinstance(spec, str) else list(spec)
    pairs: dict[str, str] = {}
    for part in (p.strip() for item in items for p in item.split(",")):
        if not part:
            continue
        name, sep, column = part.partition("=")
        name, column = name.strip().lower(), column.strip()
        if not sep or not name or not column:
            raise ValueError(f"{part!r} is not FIELD=COLUMN (e.g. text=body,published=date)")
        if name not in FIELDS:
            raise ValueError(f"unknown field {name!r} in {part!r}; the fields are {', '.join(FIELDS)}")
        if name in pairs:
            raise ValueError(f"field {name!r} is named twice")
        pairs[name] = column
    return tuple(pairs.items())


def split_list(cell: str | None) -> list[str] | None:
    """A targets/authors cell -> its names (split on `;` or `|`), None when the cell is empty."""
    names = [n for n in LIST_SEPARATORS.split(cell.strip())] if cell and cell.strip() else []
    names = [n for n in names if n]
    return names or None


def header_positions(header: list[str], columns: tuple[tuple[str, str], ...]) -> dict[str, int]:
    """field -> index of its column in the header; ParseError (the whole file's) when a required field or a
    column --csv-columns names is missing, or a used column appears twice."""
    names = [h.strip().lstrip("\ufeff").strip().lower() for h in header]
    wanted = {f: f for f in FIELDS}
    wanted.update((f, c.strip().lower()) for f, c in columns)
    shown = ", ".join(repr(h.strip()) for h in header)
    positions: dict[str, int] = {}
    for field_name, column in wanted.items():
        if names.count(column) > 1:
            raise ParseError(f"the header names column {column!r} twice; which one is {field_name} is ambiguous")
        if column in names:
            positions[field_name] = names.index(column)
        elif field_name in REQUIRED or field_name != column:
            how = ("(--csv-columns names it)" if field_name != column
                   else f"(name it with --csv-columns {field_name}=COLUMN)")
            raise ParseError(f"no {column!r} column for {field_name} in the header {how}; the header has {shown}")
    return positions


def row_article(row: list[str], positions: dict[str, int], width: int, ref: str, source: str,
                fetched_at: dt.datetime | None, limits: ParseLimits) -> dict:
    """One data row -> an article dict (ParseError with the reason otherwise)."""
    if len(row) != width:
        raise ParseError(f"the row has {len(row)} fields, the header {width} (a missing or extra delimiter, or "
                         f"an unclosed quote)")
    cell = {f: (row[i].strip() or None) for f, i in positions.items()}
    return make_article(ref=ref, source=cell.get("source") or source, title=cell.get("title"),
                        text=row[positions["text"]], published=cell.get("published"), url=cell.get("url"),
                        fetched_at=fetched_at, targets=split_list(cell.get("targets")),
                        authors=split_list(cell.get("authors")), limits=limits)


def table_records(data: bytes, ref: str, source: str, fetched_at: dt.datetime | None, limits: ParseLimits,
                  delimiter: str = ",") -> Iterator[tuple[str, dict | ParseError]]:
    """(row ref, article or ParseError) for every data row of a CSV/TSV file; one ParseError for the file when
    it cannot be read as a table at all (not text, no usable header, no rows)."""
    try:
        text = decode_text(data)
    except DecodeError as exc:  # a quoted cell may span lines, so the file is decoded whole
        yield ref, ParseError(str(exc))
        return
    # a cell may hold a whole article: csv's default cap (131,072 characters) would refuse one under --max-chars
    csv.field_size_limit(max(csv.field_size_limit(), 2 * limits.max_chars + 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    positions: dict[str, int] = {}
    rows = 0
    end = 0  # the line the previous row ended on
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a cell over the size cap: this row only, when the reader can go on
            line = end + 1
            if reader.line_num <= end:
                yield f"{ref}:{line}", ParseError(f"CSV error: {exc}; the rest of the file was not read")
                return
            end = reader.line_num
            if header is None:
                yield ref, ParseError(f"the header could not be read: CSV error: {exc}")
                return
            rows += 1
            yield f"{ref}:{line}", ParseError(f"CSV error: {exc}")
            continue
        line, end = end + 1, reader.line_num
        if not any(c.strip() for c in row):
            continue  # a blank line
        if header is None:
            header = row
            try:
                positions = header_positions(header, limits.csv_columns)
            except ParseError as exc:
                yield ref, exc
                return
            continue
        rows += 1
        row_ref = f"{ref}:{line}"
        try:
            yield row_ref, row_article(row, positions, len(header), row_ref, source, fetched_at, limits)
        except Exception as exc:  # noqa: BLE001 - this row only
            yield row_ref, exc if isinstance(exc, ParseError) else unexpected(exc)
    if header is None:
        yield ref, ParseError("empty file")
    elif rows == 0:
        yield ref, ParseError("no rows under the header")
