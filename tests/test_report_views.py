"""`newsbeam report`'s stance views by source and by language over time ("how does this outlet / this language
treat target X"): the aggregation as pure functions over hand-built article dicts (two sources, two languages,
a zero-shot label, a target mentioned without a label, one not mentioned), the chart's numbers, the drill rows,
and the views on a real page written over a real output (tests.test_report's writer) and over the seeds run."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest

from pipeline import report
from pipeline.report_aggregate import (GROUPINGS, STANCE_LABELS, StanceCell, fold_groups, period_range,
                                       stance_by_group, stance_over_time, sum_cells)
from pipeline.report_charts import MAX_GROUPS_IN_CHART, chart_stance_by
from pipeline.report_drills import stance_by_drill
from pipeline.report_rows import publisher
from schemas import Article
from tests.test_report import _csv_of, _rows, check_self_contained, make_article, parse_tables, write_output

D = dt.date
WEEK1, WEEK2 = D(2020, 11, 9), D(2020, 11, 16)  # Mondays


def labelled(target: str, label: str, probs: tuple[float, float, float] | None, measured: bool | None,
             sentences=("S.",), score: float = 0.7) -> dict:
    """A labelled stance entry as pipeline.report_input slims it; probs = (favor, neutral, against)."""
    return {"target": target, "label": label, "score": score, "mentions": 1, "reason": None, "measured": measured,
            "probabilities": None if probs is None else dict(zip(("favor", "neutral", "against"), probs)),
            "sentences": list(sentences)}


def unlabelled(target: str, reason: str, mentions: int) -> dict:
    return {"target": target, "label": None, "score": None, "probabilities": None, "mentions": mentions,
            "reason": reason, "measured": None}


def art(n: int, source: str, lang: str, day: str, *stance: dict) -> dict:
    return {"id": f"a{n}", "source": source, "published": day, "title": f"Story {n}",
            "url": f"https://example.org/{n}", "language": {"code": lang, "confidence": 0.9},
            "stance": list(stance)}


ARTS = [
    art(1, "Wire A", "en", "2020-11-10", labelled("Armenia", "favor", (0.8, 0.1, 0.1), True),
        unlabelled("Azerbaijan", "not mentioned", 0)),
    art(2, "Wire A", "en", "2020-11-11", labelled("Armenia", "against", (0.1, 0.2, 0.7), True)),
    art(3, "Wire B", "hy", "2020-11-11", labelled("Armenia", "favor", (0.6, 0.3, 0.1), False),
        labelled("Azerbaijan", "against", (0.1, 0.1, 0.8), False)),
    art(4, "Wire B", "en", "2020-11-17", unlabelled("Armenia", "models skipped", 2),
        labelled("Azerbaijan", "neutral", (0.2, 0.6, 0.2), True)),
    art(5, "Wire A", "hy", "2020-11-18", labelled("Armenia", "favor", None, False, score=0.9)),  # no probabilities
]


def counts(c: StanceCell) -> tuple:
    return c.favor, c.neutral, c.against, c.zero_shot, c.not_mentioned, c.no_stance


# ---------------------------------------------------------------------------------------- aggregation

def test_stance_by_source_over_time():
    st = stance_by_group(ARTS, "week", GROUPINGS["source"])
    assert list(st) == ["Armenia", "Azerbaijan"]  # the most labelled articles first
    assert list(st["Armenia"]) == ["Wire A", "Wire B"]
    assert list(st["Azerbaijan"]) == ["Wire B", "Wire A"]  # Wire A never labelled it
    a = st["Armenia"]["Wire A"]
    assert counts(a[WEEK1]) == (1, 0, 1, 0, 0, 0) and a[WEEK1].net == pytest.approx((0.7 - 0.6) / 2)
    assert counts(a[WEEK2]) == (1, 0, 0, 1, 0, 0)
    assert a[WEEK2].net == pytest.approx(0.9)  # favor without probabilities: its score
    b = st["Armenia"]["Wire B"]
    assert counts(b[WEEK1]) == (1, 0, 0, 1, 0, 0) and b[WEEK1].net == pytest.approx(0.5)
    assert counts(b[WEEK2]) == (0, 0, 0, 0, 0, 1) and b[WEEK2].net is None  # mentioned, no label: not neutral
    assert counts(st["Azerbaijan"]["Wire A"][WEEK1]) == (0, 0, 0, 0, 1, 0)  # not mentioned
    aze_b = st["Azerbaijan"]["Wire B"]
    assert counts(aze_b[WEEK1]) == (0, 0, 1, 1, 0, 0) and aze_b[WEEK1].net == pytest.approx(-0.7)
    assert counts(aze_b[WEEK2]) == (0, 1, 0, 0, 0, 0) and aze_b[WEEK2].net == pytest.approx(0.0)


def test_stance_by_language_over_time():
    st = stance_by_group(ARTS, "week", GROUPINGS["language"])
    assert list(st["Armenia"]) == ["en", "hy"]  # 2 labelled each: by name
    en, hy = st["Armenia"]["en"], st["Armenia"]["hy"]
    assert counts(en[WEEK1]) == (1, 0, 1, 0, 0, 0) and counts(en[WEEK2]) == (0, 0, 0, 0, 0, 1)
    assert counts(hy[WEEK1]) == (1, 0, 0, 1, 0, 0) and counts(hy[WEEK2]) == (1, 0, 0, 1, 0, 0)
    assert sum_cells(hy.values()).zero_shot == sum_cells(hy.values()).labelled == 2  # every hy label zero-shot
    assert sum_cells(hy.values()).net == pytest.approx((0.5 + 0.9) / 2)
    day = stance_by_group(ARTS, "day", GROUPINGS["language"])
    assert sorted(day["Armenia"]["en"]) == [D(2020, 11, 10), D(2020, 11, 11), D(2020, 11, 17)]


@pytest.mark.parametrize("by", sorted(GROUPINGS))
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_the_groups_add_up_to_stance_over_time(by, period):
    """Split by source or language, every (target, period) sums to the ungrouped view's cell."""
    whole = stance_over_time(ARTS, period)
    grouped = stance_by_group(ARTS, period, GROUPINGS[by])
    assert list(grouped) == list(whole)
    for target, cells in whole.items():
        for p, cell in cells.items():
            parts = sum_cells(g[p] for g in grouped[target].values() if p in g)
            assert counts(parts) == counts(cell) and parts.net_sum == pytest.approx(cell.net_sum)


def test_fold_groups_keeps_the_top_and_sums_the_rest():
    arts = [art(i, f"S{i}", "en", "2020-11-10", *[labelled("X", "favor", (0.9, 0.05, 0.05), True)] * (10 - i))
            for i in range(9)]
    arts.append(art(99, "Silent", "en", "2020-11-10", unlabelled("X", "not mentioned", 0)))
    groups = stance_by_group(arts, "day", GROUPINGS["source"])["X"]
    folded = fold_groups(groups, 3, "source")
    assert list(folded) == ["S0", "S1", "S2", "other (6 sources)"]  # 'Silent' has no label: not a line
    other = folded["other (6 sources)"][D(2020, 11, 10)]
    assert other.favor == sum(10 - i for i in range(3, 9)) and other.net == pytest.approx(0.85)
    assert list(fold_groups(groups, 8, "source")) == [f"S{i}" for i in range(9)]  # one extra: no fold


# ----------------------------------------------------------------------------------------------- chart

def _panels(fig) -> dict[str, dict[str, list[float]]]:
    """{panel title: {legend label: the y values of that line}}."""
    out = {}
    for ax in fig.axes:
        lines = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines() if not ln.get_label().startswith("_")}
        out[ax.get_title(loc="left")] = lines
    return out


def test_chart_plots_the_mean_net_per_group_and_marks_zero_shot():
    st = stance_by_group(ARTS, "week", GROUPINGS["language"])
    fig = chart_stance_by(st, period_range(D(2020, 11, 10), D(2020, 11, 18), "week"), "week", "language")
    panels = _panels(fig)
    arm = panels["Armenia: mean net stance per week, by language"]
    assert list(arm) == ["en (2)", "hy (2, 2 zero-shot)"]
    assert arm["en (2)"] == pytest.approx([0.05])  # week 2 has no label: no point
    assert arm["hy (2, 2 zero-shot)"] == pytest.approx([0.5, 0.9])
    ax = fig.axes[0]
    hy = [ln for ln in ax.get_lines() if ln.get_label().startswith("hy")][0]
    assert hy.get_linestyle() == "--"  # all of its labels zero-shot
    hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
    assert [list(ln.get_ydata()) for ln in hollow] == [pytest.approx([0.5, 0.9])]


def test_chart_bounds_the_sources_per_panel():
    arts = [art(i, f"Source {i}", "en", "2020-11-10", labelled("X", "favor", (0.9, 0.05, 0.05), True))
            for i in range(MAX_GROUPS_IN_CHART + 4)]
    st = stance_by_group(arts, "day", GROUPINGS["source"])
    fig = chart_stance_by(st, [D(2020, 11, 10)], "day", "source")
    (lines,) = _panels(fig).values()
    assert len(lines) == MAX_GROUPS_IN_CHART + 1 and list(lines)[-1] == "other (4 sources) (4)"


# ------------------------------------------------------------------------------------------ drill rows

def test_drill_rows_per_target_group_and_period():
    drill = stance_by_drill("d", "source", ARTS, "week")
    assert drill.columns[:8] == ["target", "source", "week starting Monday", "label", "confidence", "net",
                                 "stance quality", "sentences"]
    rows = {(r[0], r[-3]): r for r in drill.rows}  # (target, title)
    assert len(drill.rows) == drill.total == 6  # every labelled entry; the unlabelled ones are counted, not listed
    assert ("Azerbaijan", "Story 1") not in rows and ("Armenia", "Story 4") not in rows
    zs = rows[("Armenia", "Story 3")]
    assert zs[1:5] == ["Wire B", "2020-11-09", "favor", 0.7] and zs[5] == pytest.approx(0.5)
    assert zs[6] == "zero-shot" and zs[7] == {"sentences": ["S."]}
    assert rows[("Armenia", "Story 1")][6] == "measured"
    assert rows[("Armenia", "Story 5")][2] == "2020-11-16" and rows[("Armenia", "Story 5")][5] == pytest.approx(0.9)
    assert [r[8] for r in drill.rows] == sorted((r[8] for r in drill.rows), reverse=True)  # newest first
    by_lang = stance_by_drill("d", "language", ARTS, "week")
    assert Counter((r[0], r[1], r[2]) for r in by_lang.rows) == Counter({
        ("Armenia", "en", "2020-11-09"): 2, ("Armenia", "hy", "2020-11-09"): 1, ("Armenia", "hy", "2020-11-16"): 1,
        ("Azerbaijan", "hy", "2020-11-09"): 1, ("Azerbaijan", "en", "2020-11-16"): 1})
    old = stance_by_drill("d", "source", [art(9, "W", "en", "2020-11-10",
                                              dict(labelled("X", "favor", None, None)))], "day")
    assert old.rows[0][6] == "not recorded"  # an output written before labels said whether stance is measured


# ----------------------------------------------------------------------------------- a real page

def _with_measured(rec: dict) -> dict:
    """What the stance stage writes since schema 2.2: each label says whether stance is measured in the
    article's language (transforms.stance.STANCE_MEASURED: en, ru)."""
    measured = rec["language"]["code"] in ("en", "ru")
    rec["stance"] = [dict(s, measured=measured) if s["label"] else s for s in rec["stance"]]
    return Article.model_validate(rec).model_dump(mode="json")


PAGE_ARTICLES = [_with_measured(a) for a in (
    make_article(1, "Wire A", "2020-11-10", "en", [("Armenia", "LOC", 1)], {"Armenia": "favor", "Azerbaijan": None}),
    make_article(2, "Wire A", "2020-11-11", "es", [("Armenia", "LOC", 1), ("Azerbaijan", "LOC", 1)],
                 {"Armenia": "against", "Azerbaijan": "favor"}),
    make_article(3, "Wire B", "2020-11-11", "ru", [("Армения", "LOC", 2)],
                 {"Armenia": "neutral", "Azerbaijan": "unsupported"}),
    make_article(4, "Wire B", "2020-11-12", "es", [("Armenia", "LOC", 1)], {"Armenia": "favor", "Azerbaijan": None}),
)]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = write_output(tmp_path_factory.mktemp("out"), articles=PAGE_ARTICLES, duplicates=[], dead=[])
    html = tmp_path_factory.mktemp("site") / "report.html"
    res = report.write_report(str(root), str(html))
    text = html.read_text(encoding="utf-8")
    return {"page": text, "tables": parse_tables(text), "res": res}


def test_the_page_shows_stance_by_source_and_language(page):
    text, t = page["page"], page["tables"]
    check_self_contained(text)
    for by in ("source", "language"):
        assert f'<section id="stance-by-{by}"' in text and f'href="#stance-by-{by}"' in text
        assert f"the {MAX_GROUPS_IN_CHART} {by}s with the most labelled articles on it" in text  # the bound, said
        assert any(p.endswith(f"stance_by_{by}.png") for p in page["res"]["charts"])
        assert 'id="drill-stance-by-' + by + '-details"' in text
    totals = {(r[0], r[1]): r[2:] for r in _rows(t, "stance-by-source-totals")}
    assert t[("stance-by-source-totals", "head")] == [["target", "source", "favor", "neutral", "against",
                                                        "zero-shot", "not mentioned", "no stance", "net"]]
    assert totals[("Armenia", "Wire A")][:6] == ["1", "0", "1", "1", "0", "0"]  # the es label is zero-shot
    assert totals[("Azerbaijan", "Wire B")][:6] == ["0", "0", "0", "0", "1", "1"]  # ru: mentioned, no label
    assert totals[("Azerbaijan", "Wire B")][6] == "–"
    by_lang = {(r[0], r[1]): r[2:] for r in _rows(t, "stance-by-language-totals")}
    assert by_lang[("Armenia", "es")][:4] == ["1", "0", "1", "2"]
    over_time = {(r[0], r[1], r[2]) for r in _rows(t, "stance-by-source-over-time")}
    assert ("Armenia", "Wire B", "2020-11-12") in over_time
    assert ("Azerbaijan", "Wire A", "2020-11-10") not in over_time  # not mentioned there: no row


def test_the_page_lists_each_point_s_articles_with_quality_and_sentences(page):
    t = page["tables"]
    head = t[("drill-stance-by-source", "head")][0]
    rows = [dict(zip(head, r)) for r in _rows(t, "drill-stance-by-source")]
    assert len(rows) == sum(1 for a in PAGE_ARTICLES for s in a["stance"] if s["label"])
    story2 = {r["target"]: r for r in rows if r["title"] == "Story 2"}
    assert story2["Armenia"]["stance quality"] == "zero-shot" and story2["Armenia"]["label"] == "against"
    assert story2["Armenia"]["sentences"] == "Armenia was named." and story2["Armenia"]["net"].startswith("-")
    assert story2["Armenia"]["source"] == "Wire A" and story2["Armenia"]["day"] == "2020-11-11"
    assert {r["title"]: r["stance quality"] for r in rows if r["target"] == "Armenia"} == {
        "Story 1": "measured", "Story 2": "zero-shot", "Story 3": "measured", "Story 4": "zero-shot"}
    lang_head = t[("drill-stance-by-language", "head")][0]
    lang_rows = [dict(zip(lang_head, r)) for r in _rows(t, "drill-stance-by-language")]
    assert Counter((r["target"], r["language"]) for r in lang_rows) == Counter(
        {("Armenia", "en"): 1, ("Armenia", "es"): 2, ("Armenia", "ru"): 1, ("Azerbaijan", "es"): 1})
    for table_id in ("stance-by-source-totals", "stance-by-language-over-time", "drill-stance-by-language"):
        csv_rows = _csv_of(page["page"], table_id)
        assert len(csv_rows) - 1 == len(_rows(t, table_id))


def test_stance_by_source_over_the_seeds_output(seeds_run, tmp_path):
    """Over a real run (models on): the by-source totals are the labels an independent count finds per
    (target, publisher), and every label is one row of the drill-down."""
    html = tmp_path / "seeds.html"
    assert report.main(["--output", str(seeds_run["out"]), "--html", str(html)]) == 0
    t = parse_tables(html.read_text(encoding="utf-8"))
    expected: dict[tuple, Counter] = defaultdict(Counter)
    for a in seeds_run["articles"]:
        for s in a["stance"]:
            if s["label"] in STANCE_LABELS:
                expected[(s["target"], publisher(a))][s["label"]] += 1
                expected[(s["target"], publisher(a))]["zero-shot"] += s.get("measured") is False
    got = {(r[0], r[1]): Counter({"favor": int(r[2]), "neutral": int(r[3]), "against": int(r[4]),
                                  "zero-shot": int(r[5])}) for r in _rows(t, "stance-by-source-totals")}
    assert {k: +v for k, v in got.items() if +v} == {k: +v for k, v in expected.items()}
    assert len(_rows(t, "drill-stance-by-source")) == sum(sum(c[lab] for lab in STANCE_LABELS)
                                                          for c in expected.values())


def test_the_drill_shows_each_mention_with_its_own_label():
    """Schema 2.3 records keep their classified mentions: the drill-down lists each one's label, score and
    sentence as written, without finding the mentions again."""
    from pipeline.report_input import slim_article

    text = "Armenia signed. Critics attacked Armenia over the deal."
    rec = dict(make_article(1, "Wire A", "2020-11-10", "en"), text=text)
    rec["stance"] = [{"target": "Armenia", "label": "against", "score": 0.6, "mentions": 2, "reason": None,
                      "measured": True, "probabilities": {"favor": 0.2, "neutral": 0.2, "against": 0.6},
                      "mention_labels": [
                          {"start": 0, "end": 7, "sentence": "Armenia signed.", "label": "neutral", "score": 0.7},
                          {"start": 33, "end": 40, "sentence": "Critics attacked Armenia over the deal.",
                           "label": "against", "score": 0.81}]}]
    (slim,) = slim_article(rec)["stance"]
    assert slim["sentences"] == ["neutral 0.70: Armenia signed.",
                                 "against 0.81: Critics attacked Armenia over the deal."]
    assert "mention_labels" not in slim  # the slim record keeps the lines, not the offsets
