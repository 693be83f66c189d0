"""Reading a written newsbeam output back: the one reader under both `newsbeam report` (pipeline.report_input)
and the notebook reader (newsbeam.output.read_output).

Which files hold what is pipeline.layout's to say (output_files: every batch shard, backfill range and streaming
window file); this module only opens them. Articles come from the JSONL files, or from the Parquet copies where
a run wrote only Parquet (`--format parquet`), as JSON-form records either way. Side records (duplicates, dead
letters) that overlapping backfill ranges both list are returned once (layout.once_each).
"""
from __future__ import annotations

import io
import json
from typing import Iterable, Iterator, Optional

from .layout import ARTICLES, ARTICLES_PARQUET, once_each, output_files
from .parquet_sink import read_parquet_records


def iter_jsonl(path: str, problems: Optional[list[str]] = None) -> Iterator[dict]:
    """The records of one JSONL file on any Beam filesystem. With `problems`, a line that is not a JSON object
    is reported there and skipped (a report still shows the rest); without, it raises ValueError."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        errors = "strict" if problems is None else "replace"
        for n, raw in enumerate(io.TextIOWrapper(fh, encoding="utf-8", errors=errors), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                problem = None if isinstance(rec, dict) else "not a JSON object"
            except ValueError as exc:
                problem = f"not JSON ({exc})"
            if problem is None:
                yield rec
            elif problems is None:
                raise ValueError(f"{path}:{n}: {problem}")
            else:
                problems.append(f"{path}:{n}: {problem}")


def article_files(root: str) -> tuple[list[str], str]:
    """(the article files under `root`, their kind): the JSONL files, else the Parquet copies."""
    jsonl = output_files(root, ARTICLES)
    return (jsonl, ARTICLES) if jsonl else (output_files(root, ARTICLES_PARQUET), ARTICLES_PARQUET)


def file_records(path: str, kind: str, problems: Optional[list[str]] = None) -> Iterable[dict]:
    """The article records of one file of `kind` (layout.ARTICLES or ARTICLES_PARQUET), in JSON form."""
    return read_parquet_records(path) if kind == ARTICLES_PARQUET else iter_jsonl(path, problems)


def article_records(root: str, problems: Optional[list[str]] = None) -> Iterator[dict]:
    """Every article record under `root`, file by file in path order."""
    paths, kind = article_files(root)
    for path in paths:
        yield from file_records(path, kind, problems)


def side_records(paths: Iterable[str], problems: Optional[list[str]] = None) -> Iterator[dict]:
    """The duplicates or dead letters of these files (layout.output_files(root, DUPLICATES | DEAD_LETTER)),
    each record once."""
    return once_each(r for path in paths for r in iter_jsonl(path, problems))
