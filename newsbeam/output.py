"""`newsbeam.read_output`: a run's output as a pandas DataFrame, one call, fixed columns and dtypes.

Every file of the kind is read, whichever mode wrote it (batch, backfill `_backfill/`, streaming `stream-*`:
the globs are pipeline.layout's), on any Beam filesystem (local, gs://, s3://), by the reader `newsbeam report`
uses too (pipeline.output_reader): a side record that overlapping backfill ranges both list is returned once,
and articles come from the JSONL files, or from the Parquet copies where a run wrote only Parquet
(`--format parquet`).
"""
from __future__ import annotations

from typing import Any

from pipeline import output_reader
from pipeline.layout import DEAD_LETTER, DUPLICATES, output_files

KINDS = ("articles", "duplicates", "dead_letters", "entities", "stance")

STR, FLOAT, INT, BOOL = "string", "Float64", "Int64", "boolean"
DAY, UTC, OBJ = "datetime64[ns]", "datetime64[ns, UTC]", "object"
_ARTICLE_KEYS = {"article_id": STR, "published": DAY, "source": STR, "language": STR, "title": STR, "url": STR}
COLUMNS: dict[str, dict[str, str]] = {
    "articles": {"schema_version": STR, "id": STR, "published": DAY, "source": STR, "title": STR, "url": STR,
                 "language": STR, "language_confidence": FLOAT, "text": STR, "published_at": UTC,
                 "fetched_at": UTC, "input_ref": STR, "guid": STR, "authors": OBJ, "site_name": STR,
                 "ner_status": STR, "stance_status": STR, "entity_count": INT, "entities": OBJ, "stance": OBJ,
                 "targets": OBJ},
    "entities": {**_ARTICLE_KEYS, "entity": STR, "type": STR, "entity_id": STR, "name": STR, "base": STR,
                 "count": INT, "score": FLOAT},
    "stance": {**_ARTICLE_KEYS, "target": STR, "label": STR, "score": FLOAT, "measured": BOOL, "mentions": INT,
               "reason": STR, "p_favor": FLOAT, "p_neutral": FLOAT, "p_against": FLOAT},
    "duplicates": {"schema_version": STR, "id": STR, "duplicate_of": STR, "kind": STR, "similarity": FLOAT,
                   "published": DAY, "source": STR, "title": STR, "url": STR, "input_ref": STR},
    "dead_letters": {"schema_version": STR, "input_ref": STR, "stage": STR, "error": STR, "id": STR,
                     "excerpt": STR},
}


def article_records(root: str) -> list[dict]:
    """Every article record under `root` (JSONL; the Parquet copies if there is no JSONL), in JSON form."""
    return list(output_reader.article_records(root))


def _article_row(a: dict) -> dict[str, Any]:
    lang = a.get("language") or {}
    return {"article_id": a.get("id"), "published": a.get("published"), "source": a.get("source"),
            "language": lang.get("code"), "title": a.get("title"), "url": a.get("url")}


def rows(records: list[dict], kind: str) -> list[dict[str, Any]]:
    """Output records -> DataFrame rows of `kind` (entities and stance: one row per entity / per target)."""
    if kind == "articles":
        return [{**{k: a.get(k) for k in COLUMNS["articles"]}, "language": (a.get("language") or {}).get("code"),
                 "language_confidence": (a.get("language") or {}).get("confidence"),
                 "ner_status": (a.get("ner") or {}).get("status"),
                 "stance_status": (a.get("stance_status") or {}).get("status"),
                 "entity_count": len(a.get("entities") or []),
                 "entities": list(a.get("entities") or []), "stance": list(a.get("stance") or [])} for a in records]
    if kind == "entities":
        return [{**_article_row(a), "entity": e.get("text"), "type": e.get("type"), "entity_id": e.get("id"),
                 "name": e.get("name"), "base": e.get("base"), "count": e.get("count"), "score": e.get("score")}
                for a in records for e in a.get("entities") or []]
    if kind == "stance":
        return [{**_article_row(a), **{k: s.get(k) for k in ("target", "label", "score", "measured", "mentions",
                                                           "reason")},
                 **{f"p_{label}": (s.get("probabilities") or {}).get(label) for label in ("favor", "neutral",
                                                                                         "against")}}
                for a in records for s in a.get("stance") or []]
    return [{k: r.get(k) for k in COLUMNS[kind]} for r in records]


def frame(records: list[dict[str, Any]], columns: dict[str, str]):
    """A DataFrame with exactly `columns`, each of its dtype (the same whether 0 or a million rows)."""
    import pandas as pd

    df = pd.DataFrame.from_records(records, columns=list(columns))
    for name, dtype in columns.items():
        col = df[name]
        if dtype == DAY:
            df[name] = pd.to_datetime(col.astype("string").str.slice(0, 10), format="%Y-%m-%d").astype(DAY)
        elif dtype == UTC:
            df[name] = pd.to_datetime(col.astype("string"), utc=True, format="ISO8601").astype(UTC)
        elif dtype != OBJ:
            df[name] = col.astype(dtype)
    return df


def read_output(path: str, kind: str = "articles"):
    """The `kind` records under an output root as a pandas DataFrame.

    kind: "articles" (one row per article, entities and stance kept as lists of dicts), "entities" (one row per
    entity of an article), "stance" (one row per stance target of an article; label <NA> where none was
    computed, with the reason), "duplicates" or "dead_letters". Columns and dtypes are fixed per kind
    (`COLUMNS`): schema_version is a string, days are datetime64[ns], timestamps UTC, counts Int64."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind in ("duplicates", "dead_letters"):
        side = output_files(path, DUPLICATES if kind == "duplicates" else DEAD_LETTER)
        records = list(output_reader.side_records(side))
    else:
        records = article_records(path)
    df = frame(rows(records, kind), COLUMNS[kind])
    order = [c for c in ("published", "article_id", "id", "input_ref") if c in df.columns]
    return df.sort_values(order, kind="stable", ignore_index=True)
