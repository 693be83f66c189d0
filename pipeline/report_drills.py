"""The articles behind each chart of `newsbeam report`: one searchable, sortable drill-down table per chart (the
template's `drill` macro, with a CSV download), built from the slimmed articles and the side records. For stance,
each labelled target's confidence and sentences; in the by-source and by-language views also the period it is
counted in, its net P(favor) − P(against) and whether stance quality is measured in the article's language.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .report_aggregate import (ENTITY_TYPE_NAMES, GROUPINGS, LANGUAGE_NAMES, PERIOD_HEADER, STANCE_LABELS,
                               article_language, day_of, period_label, period_start, stance_net)
from .report_rows import publisher, signed


@dataclass
class Drill:
    """The articles behind one chart: a searchable, sortable table under it. A cell is a value, {"text", "url"}
    (a link) or {"sentences": [...]}."""

    id: str
    caption: str
    columns: list[str]
    rows: list[list]
    numeric: tuple[int, ...] = ()
    total: int = 0
    order: str = "newest first"
    date_col: int = -1  # the published-day column (kept on one line)


MAX_DRILL_ROWS = 2000  # per table: a report over a large output lists the newest rows and says so


def _link(url: Optional[str]):
    return {"text": url, "url": url} if url and url.startswith(("http://", "https://")) else (url or None)


def _article_cells(a: dict) -> list:
    """published, source, title, language, link."""
    day = day_of(a.get("published"))
    return [day.isoformat() if day else None, a.get("source"), a.get("title"), article_language(a), _link(a.get("url"))]


ARTICLE_COLUMNS = ["published", "source", "title", "language", "link"]


def _drill(id_: str, caption: str, columns: list[str], rows: list[list], date_col: int,
           numeric: tuple[int, ...] = ()) -> Drill:
    """Rows newest first (stable for equal days), cut at MAX_DRILL_ROWS."""
    rows = sorted(rows, key=lambda r: r[date_col] or "", reverse=True)
    return Drill(id_, caption, columns, rows[:MAX_DRILL_ROWS], numeric, total=len(rows), date_col=date_col)


def drill_tables(data, top_entity_stats: dict[str, list], period: str = "day") -> dict[str, Drill]:
    """{chart file name: the articles behind that chart} over `data` (pipeline.report_input.OutputData)."""
    arts = data.articles
    by_id = {a.get("id"): a for a in arts}
    out = {
        "articles_per_period.png": _drill("drill-articles", "Articles behind this chart", ARTICLE_COLUMNS,
                                          [_article_cells(a) for a in arts], 0),
        "languages.png": _drill("drill-languages", "Articles by language", ["language", "name", *ARTICLE_COLUMNS[:3],
                                                                            "link"],
                                [[article_language(a), LANGUAGE_NAMES.get(article_language(a), ""),
                                  *_article_cells(a)[:3], _link(a.get("url"))] for a in arts], 2),
    }
    stance_rows = [[s.get("target"), s.get("label"), s.get("score"), {"sentences": s.get("sentences") or []},
                    *_article_cells(a)]
                   for a in arts for s in a.get("stance") or [] if s.get("label") in STANCE_LABELS]
    out["stance.png"] = _drill("drill-stance", "Articles behind the stance labels, with the sentences read",
                               ["target", "label", "confidence", "sentences", *ARTICLE_COLUMNS], stance_rows, 4,
                               numeric=(2,))
    out["stance_by_source.png"] = stance_by_drill("drill-stance-by-source", "source", arts, period)
    out["stance_by_language.png"] = stance_by_drill("drill-stance-by-language", "language", arts, period)
    dup_rows = [[publisher(d), d.get("kind"), d.get("similarity"), str(d.get("published") or "")[:10] or None,
                 d.get("title"), _link(d.get("url")), (by_id.get(d.get("duplicate_of")) or {}).get("title")
                 or d.get("duplicate_of")] for d in data.duplicates]
    out["duplicates.png"] = _drill("drill-duplicates", "Duplicates behind this chart",
                                   ["source", "kind", "similarity", "published", "title", "link", "kept article"],
                                   dup_rows, 3, numeric=(2,))
    for etype, stats in top_entity_stats.items():
        shown = {s.text for s in stats}
        rows = []
        for a in arts:
            names = sorted({e.get("name") or e.get("text") for e in a.get("entities") or []
                            if e.get("type") == etype and (e.get("name") or e.get("text")) in shown})
            rows += [[name, *_article_cells(a)] for name in names]
        out[f"entities_{etype}.png"] = _drill(f"drill-entities-{etype}",
                                              f"Articles mentioning these {ENTITY_TYPE_NAMES[etype]}",
                                              ["entity", *ARTICLE_COLUMNS], rows, 1)
    return out


QUALITY = {True: "measured", False: "zero-shot", None: "not recorded"}  # a labelled entry's `measured`


def stance_quality(s: dict) -> str:
    """'measured' or 'zero-shot' (stance quality not measured in the article's language: docs/quality.md);
    'not recorded' for outputs written before labels said so."""
    return QUALITY.get(s.get("measured"), QUALITY[None])


# the grouping column of each view, and the article cells shown beside it (the group itself is not repeated)
ARTICLE_CELLS_BESIDE = {"source": ["published", "title", "language", "link"],
                        "language": ["published", "source", "title", "link"]}


def stance_by_drill(id_: str, by: str, arts: list[dict], period: str) -> Drill:
    """One row per labelled (article, target), keyed (target, source | language, period) as the by-source and
    by-language charts and tables count them, with the label, confidence, net, stance quality and sentences."""
    group, cells = GROUPINGS[by], ARTICLE_CELLS_BESIDE[by]
    rows = []
    for a in arts:
        day = day_of(a.get("published"))
        when = period_label(period_start(day, period), period)
        values = {"published": day.isoformat(), "source": a.get("source"), "title": a.get("title"),
                  "language": article_language(a), "link": _link(a.get("url"))}
        for s in a.get("stance") or []:
            if s.get("label") in STANCE_LABELS:
                rows.append([s.get("target"), group(a), when, s.get("label"), s.get("score"), signed(stance_net(s)),
                             stance_quality(s), {"sentences": s.get("sentences") or []},
                             *(values[c] for c in cells)])
    columns = ["target", by, PERIOD_HEADER[period], "label", "confidence", "net", "stance quality", "sentences",
               *cells]
    return _drill(id_, f"Articles behind each point, by target, {by} and {period}, with the sentences read",
                  columns, rows, columns.index("published"), numeric=(4, 5))
