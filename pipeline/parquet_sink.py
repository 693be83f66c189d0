"""Parquet output (`--format parquet|both`): each shard of a published day's articles as a Parquet file beside its
JSONL, `<root>/dt=YYYY-MM-DD/articles-SSSSS-of-NNNNN.parquet` (pipeline.layout), so pandas, DuckDB or Spark read
the folders directly.

The Arrow schema is derived from the pydantic models (schemas.Article): nested entities and stance stay lists of
structs, days are date32, timestamps UTC. pipeline.sinks.WriteArticles writes them
beside (or instead of) the JSONL, from the same lines as the shard's JSONL (merged by id with what earlier runs
wrote, or replacing what backfills own): rows sorted by id, written whole to a temporary name and renamed; the
same rows give the same bytes (no write time is stored).
"""
from __future__ import annotations

import datetime as dt
import io
import types
import typing
from typing import Any, Literal, Union

from apache_beam.io.filesystems import FileSystems
from pydantic import BaseModel

from transforms.files import write_atomically

JSONL, PARQUET = "jsonl", "parquet"
FORMATS = {"jsonl": (JSONL,), "parquet": (PARQUET,), "both": (JSONL, PARQUET)}


def arrow_type(annotation: Any):
    """The Arrow type of a pydantic field annotation (Optional[X] is X: every Arrow field is nullable)."""
    import pyarrow as pa

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return arrow_type(inner)
    if origin is Literal or annotation is str:
        return pa.string()
    if origin is list:
        return pa.list_(arrow_type(args[0]))
    if origin is dict:  # dict[Literal[...], float] (stance probabilities): a struct with one field per key
        keys = typing.get_args(args[0])
        return pa.struct([pa.field(str(k), arrow_type(args[1])) for k in keys])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return arrow_schema(annotation, as_struct=True)
    simple = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), dt.date: pa.date32(),
              dt.datetime: pa.timestamp("us", tz="UTC")}
    if annotation in simple:
        return simple[annotation]
    raise TypeError(f"no Arrow type for {annotation!r}")


def arrow_schema(model: type[BaseModel], as_struct: bool = False):
    """A pydantic model's fields, in order, as an Arrow schema (or a struct type, for a nested model)."""
    import pyarrow as pa

    hints = typing.get_type_hints(model)
    fields = [pa.field(name, arrow_type(hints[name])) for name in model.model_fields]
    return pa.struct(fields) if as_struct else pa.schema(fields)


def article_schema():
    from schemas import Article

    return arrow_schema(Article)


def parquet_bytes(records: list[dict]) -> bytes:
    """Article records (JSON form, as validated for the JSONL) -> one Parquet file's bytes, rows as given."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from schemas import Article

    rows = [Article.model_validate(r).model_dump() for r in records]  # dates and datetimes as Python objects
    table = pa.Table.from_pylist(rows, schema=article_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def read_parquet_records(path: str) -> list[dict]:
    """The articles of one Parquet file, in JSON form (as the JSONL has them), [] if there is none."""
    import pyarrow.parquet as pq
    from schemas import Article

    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as fh:
        table = pq.read_table(io.BytesIO(fh.read()))
    return [Article.model_validate(r).model_dump(mode="json") for r in table.to_pylist()]


def write_parquet_file(path: str, records: list[dict]) -> str:
    """One Parquet file of articles, one row per id (the last record of an id wins), sorted by id."""
    by_id = {r["id"]: r for r in records}
    write_atomically(path, parquet_bytes([by_id[k] for k in sorted(by_id)]))
    return path
