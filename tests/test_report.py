"""`newsbeam report`: aggregation (no plotting), the charts' numbers, the self-contained HTML page and its tables,
over a small hand-made output (records validated by the schemas) and over the real seeds output."""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from modeling.entity_ids import entity_id
from pipeline import report, report_input
from pipeline import report_aggregate as agg
from pipeline import report_charts as charts
from pipeline.layout import article_shard, article_shard_name
from pipeline.report_rows import publisher
from schemas import Article, DeadLetter, DuplicateRecord

D = dt.date

# ------------------------------------------------------------------------------------ a small output

LANG = {"en": 0.97, "ru": 0.95, "fr": 0.93, "es": 0.9}


def _probs(label: str) -> dict:
    other = [lab for lab in ("favor", "against", "neutral") if lab != label]
    return {label: 0.7, other[0]: 0.2, other[1]: 0.1}


def make_article(n: int, source: str, day: str, lang: str, entities=(), stance=None, ner="done") -> dict:
    """A schema-valid article; `entities` is [(text, type, count)] (ids from modeling.entity_ids), `stance` {target: label | None (not
    mentioned)} or None when stance was skipped for the language."""
    text, ents = f"Story {n}.", []
    for etext, etype, count in entities:
        mentions = []
        for _ in range(count):
            text += " "
            mentions.append({"start": len(text), "end": len(text) + len(etext), "text": etext, "score": 0.9})
            text += etext + " was named."
        eid, name = entity_id(etext, etype)
        for m in mentions:
            m["base"] = etext
        ents.append({"text": etext, "type": etype, "count": count, "score": 0.9, "base": etext, "id": eid,
                     "name": name, "mentions": mentions})
    stances = []
    for target, label in (stance or {}).items():
        if label is None:
            stances.append({"target": target, "label": None, "score": None, "probabilities": None,
                            "mentions": 0, "reason": "not mentioned"})
        elif label == "unsupported":
            stances.append({"target": target, "label": None, "score": None, "probabilities": None,
                            "mentions": 3, "reason": "unsupported language: hy"})
        else:
            stances.append({"target": target, "label": label, "score": 0.7, "probabilities": _probs(label),
                            "mentions": 2, "reason": None})
    rec = {
        "id": f"{n:024x}", "source": source, "title": f"Story {n}", "text": text, "published": day,
        "input_ref": f"in/{n}.txt",
        "language": {"code": lang, "confidence": LANG[lang], "detector": "test"},
        "entities": ents,
        "ner": {"status": ner, "reason": None if ner == "done" else f"unsupported language: {lang}"},
        "stance": stances,
        "stance_status": ({"status": "done"} if stance is not None
                          else {"status": "skipped", "reason": f"unsupported language: {lang}"}),
    }
    return Article.model_validate(rec).model_dump(mode="json")


ARTICLES = [
    make_article(1, "Wire A", "2020-11-10", "en",
                 [("Armenia", "LOC", 3), ("Azerbaijan", "LOC", 2), ("Nikol Pashinyan", "PER", 1)],
                 {"Armenia": "favor", "Azerbaijan": "against"}),
    make_article(2, "Wire A", "2020-11-10", "en",
                 [("Armenia", "LOC", 1), ("Moscow", "LOC", 1), ("Kremlin", "ORG", 1)],
                 {"Armenia": "neutral", "Azerbaijan": None}),
    make_article(3, "Wire B", "2020-11-12", "ru",
                 [("Армения", "LOC", 2), ("Vladimir Putin", "PER", 2)],
                 {"Armenia": "against", "Azerbaijan": "neutral"}),
    make_article(4, "Wire B", "2020-11-20", "fr", [], None, ner="skipped"),
    make_article(5, "Feed C", "2020-11-20", "en", [("Armenia", "LOC", 2), ("NATO", "ORG", 1)],
                 {"Armenia": "favor", "Azerbaijan": "favor"}),
    make_article(6, "Feed C", "2020-11-25", "es", [("Madrid", "LOC", 1)], None),
]


def _dup(n: int, of: int, kind: str, source: str) -> dict:
    return DuplicateRecord.model_validate({
        "id": f"{n:024x}", "duplicate_of": f"{of:024x}", "kind": kind, "similarity": 1.0 if kind == "exact" else 0.9,
        "source": source, "title": f"Copy {n}", "published": "2020-11-11", "input_ref": f"in/{n}.txt",
    }).model_dump(mode="json")


DUPLICATES = [_dup(1, 1, "exact", "Wire A"), _dup(21, 2, "near", "Wire A"), _dup(31, 3, "near", "Feed D")]
DEAD = [DeadLetter.model_validate(d).model_dump(mode="json") for d in (
    {"input_ref": "in/empty.txt", "stage": "parse", "error": "empty file"},
    {"input_ref": "in/bad.txt", "stage": "parse", "error": "not valid UTF-8"},
    {"input_ref": "in/big.txt", "stage": "ner", "error": "RuntimeError: boom", "id": "f" * 24},
)]


def write_output(root: Path, articles=ARTICLES, duplicates=DUPLICATES, dead=DEAD) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    by_day = defaultdict(list)
    for a in articles:
        by_day[a["published"]].append(a)
    for day, recs in by_day.items():
        part = root / f"dt={day}"
        part.mkdir(parents=True)
        by_shard = defaultdict(list)
        for r in recs:  # as WriteArticles lays a day out: a file per shard of the ids (pipeline.layout)
            by_shard[article_shard_name(article_shard(r["id"]), "jsonl")].append(r)
        for name, shard in by_shard.items():
            (part / name).write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sorted(shard, key=lambda r: r["id"])),
                encoding="utf-8")
    (root / "duplicates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in duplicates), encoding="utf-8")
    (root / "dead_letter.jsonl").write_text("".join(json.dumps(r) + "\n" for r in dead), encoding="utf-8")
    return root


class _Tables(HTMLParser):
    """{table id: [[cell text, ...] per body row]} plus the header row under key (id, 'head')."""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.cell, self.in_head = {}, None, None, None, False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table = dict(attrs)["id"]
            self.tables[self.table], self.tables[(self.table, "head")] = [], []
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr" and self.table:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None
        elif tag == "thead":
            self.in_head = False
        elif tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[(self.table, "head") if self.in_head else self.table].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def parse_tables(page: str) -> dict:
    p = _Tables()
    p.feed(page)
    return p.tables


def _rows(tables, table_id):
    rows = tables[table_id]
    return [] if rows == [["none"]] else rows


def check_self_contained(page: str) -> None:
    """Nothing is loaded from elsewhere: images are data: URIs, scripts and styles inline; the only other links
    are the articles' own (a.out, followed only when clicked) and the page's anchors."""
    for attr, value in re.findall(r"""\b(src|href)\s*=\s*["']?([^"'\s>]*)""", page, flags=re.I):
        if attr.lower() == "src":
            assert value.startswith("data:image/png;base64,"), value[:80]
        else:
            assert value.startswith(("#", "http://", "https://", "data:text/csv;charset=utf-8;base64,")), value[:80]
    for attrs in re.findall(r"<a ([^>]*)href=\"data:", page):
        assert 'class="csv"' in attrs and "download=" in attrs, attrs  # a CSV download, never a navigation
    for attrs, _url in re.findall(r"<a ([^>]*)href=\"(https?://[^\"]*)\"", page):
        assert 'class="out"' in attrs, attrs
    assert all("src" not in attrs for attrs in re.findall(r"<script\b([^>]*)>", page, flags=re.I))
    for banned in ("<link", "@import", "url(", "<iframe", "<object"):
        assert banned not in page.lower(), banned


def check_png(path: Path, min_size=(500, 150)) -> None:
    from PIL import Image

    assert path.stat().st_size > 5000, f"{path} is suspiciously small"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width >= min_size[0] and im.height >= min_size[1], im.size
        colours = im.convert("RGB").getcolors(maxcolors=100_000)
        assert colours is None or len(colours) > 20, "an almost blank image"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = write_output(tmp_path_factory.mktemp("out"))
    html_path = tmp_path_factory.mktemp("site") / "report.html"
    gen = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.timezone.utc)
    res = report.write_report(str(root), str(html_path), top=10, generated_at=gen)
    page = html_path.read_text(encoding="utf-8")
    return {"root": root, "html": html_path, "res": res, "page": page, "tables": parse_tables(page)}


# ---------------------------------------------------------------------------------- pure aggregation

def test_periods():
    assert agg.choose_period([D(2020, 11, 1), D(2020, 12, 10)]) == "day"
    assert agg.choose_period([D(2020, 10, 23), D(2021, 3, 29)]) == "week"
    assert agg.choose_period([D(2019, 1, 1), D(2021, 3, 29)]) == "month"
    assert agg.period_start(D(2020, 11, 27), "week") == D(2020, 11, 23)  # a Friday -> its Monday
    assert agg.period_start(D(2020, 11, 27), "month") == D(2020, 11, 1)
    assert agg.period_range(D(2020, 11, 20), D(2021, 1, 3), "month") == [D(2020, 11, 1), D(2020, 12, 1),
                                                                          D(2021, 1, 1)]
    assert agg.period_range(D(2020, 11, 27), D(2020, 12, 7), "week") == [D(2020, 11, 23), D(2020, 11, 30),
                                                                         D(2020, 12, 7)]


def test_aggregates_without_plotting():
    per_day = agg.articles_per_day_source(ARTICLES)
    assert {d.isoformat(): sum(c.values()) for d, c in per_day.items()} == {
        "2020-11-10": 2, "2020-11-12": 1, "2020-11-20": 2, "2020-11-25": 1}
    assert per_day[D(2020, 11, 20)] == Counter({"Wire B": 1, "Feed C": 1})
    assert [(s, n) for s, n, _, _ in agg.articles_per_source(ARTICLES)] == [("Feed C", 2), ("Wire A", 2),
                                                                          ("Wire B", 2)]
    assert [(c, n) for c, n, _ in agg.languages(ARTICLES)] == [("en", 3), ("es", 1), ("fr", 1), ("ru", 1)]

    ents = agg.top_entities(ARTICLES, top=10, period="day")
    # "Armenia" and "Армения" have one id: one row, shown by its name, with both languages
    assert [(e.text, e.articles, e.mentions, e.languages) for e in ents["LOC"]] == [
        ("Armenia", 4, 8, ("en", "ru")), ("Azerbaijan", 1, 2, ("en",)), ("Madrid", 1, 1, ("es",)),
        ("Moscow", 1, 1, ("en",))]
    assert ents["LOC"][0].by_period == {D(2020, 11, 10): 2, D(2020, 11, 12): 1, D(2020, 11, 20): 1}
    assert [(e.text, e.articles) for e in ents["PER"]] == [("Vladimir Putin", 1), ("Nikol Pashinyan", 1)]
    assert "MISC" not in ents
    assert [e.text for e in agg.top_entities(ARTICLES, top=1, period="day")["LOC"]] == ["Armenia"]

    st = agg.stance_over_time(ARTICLES, "day")
    assert list(st) == ["Armenia", "Azerbaijan"]
    arm = st["Armenia"]
    assert (sum(c.favor for c in arm.values()), sum(c.neutral for c in arm.values()),
            sum(c.against for c in arm.values())) == (2, 1, 1)
    aze = st["Azerbaijan"]
    assert aze[D(2020, 11, 10)].against == 1 and aze[D(2020, 11, 10)].not_mentioned == 1
    assert aze[D(2020, 11, 10)].neutral == 0  # "not mentioned" is never counted as neutral
    assert arm[D(2020, 11, 10)].net == pytest.approx(((0.7 - 0.2) + (0.2 - 0.1)) / 2)  # favor, neutral


def test_mentioned_without_a_label_is_no_stance_not_unmentioned():
    arts = [make_article(1, "Wire", "2020-11-10", "fr", [], {"Armenia": "unsupported", "Azerbaijan": None})]
    st = agg.stance_over_time(arts, "day")
    cell_arm, cell_aze = st["Armenia"][D(2020, 11, 10)], st["Azerbaijan"][D(2020, 11, 10)]
    assert (cell_arm.no_stance, cell_arm.not_mentioned, cell_arm.labelled) == (1, 0, 0)
    assert (cell_aze.no_stance, cell_aze.not_mentioned, cell_aze.labelled) == (0, 1, 0)

    assert agg.duplicates_per_source(DUPLICATES, ARTICLES) == [("Wire A", 1, 1, 2), ("Feed D", 0, 1, 0)]
    assert agg.dead_letters_by_stage(DEAD) == [("parse", 2), ("ner", 1)]


def test_read_output_slims_records(tmp_path):
    data = report_input.read_output(str(write_output(tmp_path)))
    assert len(data.articles) == 6 and len(data.duplicates) == 3 and len(data.dead) == 3
    assert not data.problems
    assert all("text" not in a and all("mentions" not in e for e in a["entities"]) for a in data.articles)
    tot = agg.totals(data)
    assert (tot["read"], tot["first_day"], tot["last_day"], tot["sources"]) == (12, D(2020, 11, 10),
                                                                                 D(2020, 11, 25), 3)
    assert tot["ner"] == {"done": 5, "skipped": 1} and tot["stance"] == {"done": 4, "skipped": 2}


def test_report_reads_batch_backfill_and_streaming_files_together(tmp_path):
    """One output root written by a batch run, a backfill range and a streaming run: the report sees all of it."""
    root = tmp_path / "out"
    (root / "dt=2020-11-10").mkdir(parents=True)
    batch, stream = ARTICLES[:3], ARTICLES[3:]
    (root / "dt=2020-11-10" / "articles-00005-of-00064.jsonl").write_text(  # a shard of a day
        "".join(json.dumps(dict(r, published="2020-11-10")) + "\n" for r in batch[:2]), encoding="utf-8")
    (root / "dt=2020-11-10" / "articles-00000-of-00001.jsonl").write_text(  # a day of the older, unsharded layout
        "".join(json.dumps(dict(r, published="2020-11-10")) + "\n" for r in batch[2:]), encoding="utf-8")
    (root / "dt=2020-11-25").mkdir()
    (root / "dt=2020-11-25" / "stream-20201125T000000-abc.jsonl").write_text(
        "".join(json.dumps(dict(r, published="2020-11-25")) + "\n" for r in stream), encoding="utf-8")
    (root / "duplicates.jsonl").write_text(json.dumps(DUPLICATES[0]) + "\n", encoding="utf-8")
    (root / "duplicates").mkdir()
    (root / "duplicates" / "stream-20201125T000000-def.jsonl").write_text(json.dumps(DUPLICATES[1]) + "\n",
                                                                          encoding="utf-8")
    side = root / "_backfill" / "2020-11-01_2020-11-30"
    side.mkdir(parents=True)
    (side / "duplicates.jsonl").write_text(json.dumps(DUPLICATES[2]) + "\n", encoding="utf-8")
    (side / "dead_letter.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DEAD[:2]), encoding="utf-8")
    (root / "dead_letter").mkdir()
    (root / "dead_letter" / "stream-20201125T000000-0aa.jsonl").write_text(json.dumps(DEAD[2]) + "\n",
                                                                           encoding="utf-8")
    data = report_input.read_output(str(root))
    assert (len(data.articles), len(data.duplicates), len(data.dead)) == (6, 3, 3), data.files
    assert not data.problems


def test_bad_lines_are_reported_not_fatal(tmp_path):
    root = write_output(tmp_path)
    with (root / "duplicates.jsonl").open("a") as fh:
        fh.write("{not json\n")
    data = report_input.read_output(str(root))
    assert len(data.duplicates) == 3
    assert len(data.problems) == 1 and "duplicates.jsonl:4" in data.problems[0]


# --------------------------------------------------------------------------------- the charts' numbers

def _bar_totals_by_date(fig) -> dict:
    import matplotlib.dates as mdates

    out = Counter()
    for ax in fig.axes:
        for patch in ax.patches:
            if patch.get_height():
                out[mdates.num2date(patch.get_x()).date()] += patch.get_height()
    return dict(out)


def test_charts_plot_the_aggregated_numbers():
    fig = charts.chart_articles(agg.articles_per_period_source(ARTICLES, "day"), "day")
    assert _bar_totals_by_date(fig) == {D(2020, 11, 10): 2, D(2020, 11, 12): 1, D(2020, 11, 20): 2,
                                        D(2020, 11, 25): 1}
    fig = charts.chart_articles(agg.articles_per_period_source(ARTICLES, "week"), "week")
    assert _bar_totals_by_date(fig) == {D(2020, 11, 9): 3, D(2020, 11, 16): 2, D(2020, 11, 23): 1}

    fig = charts.chart_duplicates(agg.duplicates_per_source(DUPLICATES, ARTICLES))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    widths = Counter()
    for patch in ax.patches:
        widths[labels[round(patch.get_y() + patch.get_height() / 2)]] += patch.get_width()
    assert dict(widths) == {"Wire A": 2, "Feed D": 1}

    periods = agg.period_range(D(2020, 11, 10), D(2020, 11, 25), "day")
    fig = charts.chart_stance(agg.stance_over_time(ARTICLES, "day"), periods, "day")
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "Stance toward Armenia (4 articles that mention it)", "Stance toward Azerbaijan (3 articles that mention it)"]
    assert sum(p.get_height() for p in fig.axes[0].patches) == 4

    stats = agg.top_entities(ARTICLES, 10, "day")["LOC"]
    fig = charts.chart_entities(stats, periods, "day")
    grid = fig.axes[0].images[0].get_array()
    assert grid.shape == (4, len(periods)) and grid.sum() == 7  # 4 + 1 + 1 + 1 article mentions


# ------------------------------------------------------------------------------------- the HTML page

def test_page_is_self_contained_and_charts_are_written(rendered):
    page, res = rendered["page"], rendered["res"]
    check_self_contained(page)
    charts_dir = rendered["html"].parent / "report_charts"
    names = sorted(p.name for p in charts_dir.glob("*.png"))
    assert names == sorted(["articles_per_period.png", "languages.png", "entities_LOC.png", "entities_PER.png",
                            "entities_ORG.png", "stance.png", "stance_by_source.png", "stance_by_language.png",
                            "duplicates.png"])
    assert sorted(Path(p).name for p in res["charts"]) == names
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(names)
    on_disk = {(charts_dir / n).read_bytes() for n in names}
    assert {base64.b64decode(b) for b in embedded} == on_disk
    for n in names:
        check_png(charts_dir / n)
    assert re.search(r'<img [^>]*alt="[^"]{20,}"', page)  # every chart has a text alternative
    assert "Generated 2026-11-25 05:00:00 UTC" in page


def test_page_tables_hold_the_expected_numbers(rendered):
    t = rendered["tables"]
    assert {r[0]: int(r[1]) for r in _rows(t, "articles-per-day")} == {
        "2020-11-10": 2, "2020-11-12": 1, "2020-11-20": 2, "2020-11-25": 1}
    assert _rows(t, "articles-per-day")[0][2] == "Wire A (2)"
    assert [(r[0], int(r[1])) for r in _rows(t, "articles-per-source")] == [("Feed C", 2), ("Wire A", 2),
                                                                             ("Wire B", 2)]
    assert [(r[0], r[1], int(r[2])) for r in _rows(t, "languages-table")] == [
        ("en", "English", 3), ("es", "Spanish", 1), ("fr", "French", 1), ("ru", "Russian", 1)]
    assert [(r[0], r[1], int(r[2]), int(r[3])) for r in _rows(t, "entities-LOC")][:3] == [
        ("Armenia", "en, ru", 4, 8), ("Azerbaijan", "en", 1, 2), ("Madrid", "es", 1, 1)]
    assert _rows(t, "entities-LOC")[0][6] == "2020-11-10: 2, 2020-11-12: 1, 2020-11-20: 1"
    assert "entities-MISC" not in t
    assert {r[0]: [int(x) for x in r[1:5]] for r in _rows(t, "stance-totals")} == {
        "Armenia": [2, 1, 1, 0], "Azerbaijan": [1, 1, 1, 1]}
    over_time = {(r[0], r[1]): [int(x) for x in r[2:6]] for r in _rows(t, "stance-over-time")}
    assert over_time[("Azerbaijan", "2020-11-10")] == [0, 0, 1, 1]
    assert over_time[("Armenia", "2020-11-20")] == [1, 0, 0, 0]
    assert [[r[0], *map(int, r[1:])] for r in _rows(t, "duplicates-per-source")] == [
        ["Wire A", 1, 1, 2, 2], ["Feed D", 0, 1, 1, 0]]
    assert [(r[0], int(r[1])) for r in _rows(t, "dead-letters-by-stage")] == [("parse", 2), ("ner", 1)]
    totals = {r[0]: r[1] for r in _rows(t, "totals")}
    assert totals["articles written"] == "6" and totals["duplicates"] == "3" and totals["dead letters"] == "3"
    assert totals["records read (written + duplicates + dead letters)"] == "12"
    assert totals["duplicates, exact"] == "1" and totals["duplicates, near"] == "2"
    assert totals["NER"] == "done 5, skipped 1"


def test_every_chart_lists_the_articles_behind_it(rendered):
    """Under each chart, a table of its records: every article (by day, by language), each labelled stance with
    the sentences naming the target, every duplicate, and the articles naming each top entity."""
    t, page = rendered["tables"], rendered["page"]
    data = report_input.read_output(str(rendered["root"]))
    drills = re.findall(r'<details class="drill" id="(drill-[^"]+)-details">', page)
    assert len(drills) == len(rendered["res"]["charts"])
    assert sorted(r[2] for r in _rows(t, "drill-articles")) == sorted(a["title"] for a in data.articles)
    assert [r[0] for r in _rows(t, "drill-articles")] == sorted((r[0] for r in _rows(t, "drill-articles")),
                                                                reverse=True)  # newest first
    assert Counter(r[0] for r in _rows(t, "drill-languages")) == Counter(a["language"]["code"] for a in data.articles)
    stance = _rows(t, "drill-stance")
    assert sorted((r[6], r[0], r[1]) for r in stance) == sorted(
        (a["title"], s["target"], s["label"]) for a in data.articles for s in a["stance"] if s["label"])
    sentences = {(r[6], r[0]): r[3] for r in stance}  # (title, target) -> the sentences shown
    assert sentences[("Story 1", "Azerbaijan")] == "Azerbaijan was named."
    assert sentences[("Story 3", "Armenia")].startswith("Армения was named.")  # found by its id, cldr:AM
    assert sentences[("Story 5", "Azerbaijan")] == ""  # labelled here, but the text never names it
    assert sorted((r[0], r[1]) for r in _rows(t, "drill-duplicates")) == sorted(
        (d["source"], d["kind"]) for d in data.duplicates)
    armenia = [r for r in _rows(t, "drill-entities-LOC") if r[0] == "Armenia"]
    assert len(armenia) == 4  # as the entities-LOC table counts it: 4 articles
    assert 'type="search"' in page and "data-report-ready" in page  # the search box and its script


def test_cli_and_an_empty_output(tmp_path, capsys):
    root = write_output(tmp_path / "out", articles=[], duplicates=[], dead=[])
    html_path = tmp_path / "site" / "empty.html"
    assert report.main(["--output", str(root), "--html", str(html_path), "--top", "3"]) == 0
    assert "0 articles, 0 duplicates, 0 dead letters" in capsys.readouterr().out
    page = html_path.read_text(encoding="utf-8")
    check_self_contained(page)
    t = parse_tables(page)
    assert _rows(t, "articles-per-day") == [] and _rows(t, "duplicates-per-source") == []
    assert "No entities in this output" in page and "No stance labels in this output" in page
    assert (tmp_path / "site" / "empty_charts" / "articles_per_period.png").stat().st_size > 1000

    assert report.main(["--output", str(tmp_path / "nothing-here"), "--html", str(html_path)]) == 1
    assert "no newsbeam output" in capsys.readouterr().err


def test_stale_charts_are_removed(tmp_path):
    root = write_output(tmp_path / "out")
    html_path = tmp_path / "r.html"
    report.write_report(str(root), str(html_path))
    assert (tmp_path / "r_charts" / "entities_PER.png").exists()
    no_ner = [dict(a, entities=[]) for a in ARTICLES]
    root2 = write_output(tmp_path / "out2", articles=no_ner)
    report.write_report(str(root2), str(html_path))
    assert not list((tmp_path / "r_charts").glob("entities_*.png"))


class _MemFS:
    """Built on first use: an object store (no directories, like gs:// or s3://) registered with Beam under the
    scheme `memtest://`, to show the report reads and writes only through Beam's FileSystems."""

    cls = None

    @classmethod
    def get(cls):
        if cls.cls is None:
            import io

            from apache_beam.io.filesystem import FileMetadata, FileSystem

            store: dict[str, bytes] = {}

            class _Writer(io.BytesIO):
                def __init__(self, path):
                    super().__init__()
                    self.path = path

                def close(self):
                    store[self.path] = self.getvalue()
                    super().close()

            class MemTestFileSystem(FileSystem):
                files = store

                @classmethod
                def scheme(cls):
                    return "memtest"

                def join(self, basepath, *paths):
                    return "/".join([basepath.rstrip("/"), *[p.strip("/") for p in paths]])

                def split(self, path):
                    return tuple(path.rsplit("/", 1))

                def mkdirs(self, path):
                    pass

                def has_dirs(self):
                    return False

                def _list(self, prefix):
                    return [FileMetadata(p, len(b)) for p, b in store.items() if p.startswith(prefix)]

                def create(self, path, mime_type=None, compression_type=None):
                    return _Writer(path)

                def open(self, path, mime_type=None, compression_type=None):
                    return io.BytesIO(store[path])

                def copy(self, src, dst):
                    for a, b in zip(src, dst):
                        store[b] = store[a]

                def rename(self, src, dst):
                    for a, b in zip(src, dst):
                        store[b] = store.pop(a)

                def exists(self, path):
                    return path in store

                def size(self, path):
                    return len(store[path])

                def last_updated(self, path):
                    return 0.0

                def checksum(self, path):
                    return str(hash(store[path]))

                def metadata(self, path):
                    return FileMetadata(path, len(store[path]))

                def delete(self, paths):
                    for p in paths:
                        del store[p]

            cls.cls = MemTestFileSystem
        return cls.cls


def test_report_reads_and_writes_through_beam_filesystems(tmp_path):
    fs = _MemFS.get()
    local = write_output(tmp_path / "out")
    for f in local.rglob("*.jsonl"):
        fs.files[f"memtest://bucket/news/{f.relative_to(local).as_posix()}"] = f.read_bytes()
    res = report.write_report("memtest://bucket/news", "memtest://bucket/site/report.html")
    assert res["articles"] == 6 and res["duplicates"] == 3 and res["dead_letters"] == 3
    page = fs.files["memtest://bucket/site/report.html"].decode("utf-8")
    assert {r[0]: int(r[1]) for r in _rows(parse_tables(page), "articles-per-day")} == {
        "2020-11-10": 2, "2020-11-12": 1, "2020-11-20": 2, "2020-11-25": 1}
    assert "memtest://bucket/site/report_charts/stance.png" in fs.files


# ------------------------------------------------------------------------------ the real seeds output

def test_report_over_the_seeds_output(seeds_run, tmp_path):
    html_path = tmp_path / "seeds.html"
    assert report.main(["--output", str(seeds_run["out"]), "--html", str(html_path)]) == 0
    page = html_path.read_text(encoding="utf-8")
    check_self_contained(page)
    t = parse_tables(page)

    expected_days = Counter(a["published"][:10] for a in seeds_run["articles"])
    assert {r[0]: int(r[1]) for r in _rows(t, "articles-per-day")} == expected_days
    expected_dups = defaultdict(lambda: [0, 0])
    for d in seeds_run["duplicates"]:  # counted by publisher, as the articles are (a file name is none)
        expected_dups[publisher(d)][0 if d["kind"] == "exact" else 1] += 1
    assert {r[0]: [int(r[1]), int(r[2])] for r in _rows(t, "duplicates-per-source")} == dict(expected_dups)
    assert {r[0]: int(r[1]) for r in _rows(t, "dead-letters-by-stage")} == Counter(d["stage"]
                                                                                  for d in seeds_run["dead"])
    totals = {r[0]: r[1] for r in _rows(t, "totals")}
    assert int(totals["articles written"]) == len(seeds_run["articles"])
    assert int(totals["duplicates"]) == len(seeds_run["duplicates"])
    assert int(totals["dead letters"]) == len(seeds_run["dead"])

    # the most-mentioned location is counted over articles per id, as an independent count gives it
    loc, names = Counter(), {}
    for a in seeds_run["articles"]:
        ids = {e["id"] for e in a["entities"] if e["type"] == "LOC"}
        loc.update(ids)
        names.update({e["id"]: e["name"] for e in a["entities"] if e["type"] == "LOC"})
    if loc:
        top = _rows(t, "entities-LOC")[0]
        assert int(top[2]) == max(loc.values())
        assert top[0] in {names[i] for i, n in loc.items() if n == max(loc.values())}
    for png in (tmp_path / "seeds_charts").glob("*.png"):
        check_png(png)


def test_dead_letters_are_listed_with_their_reasons(rendered):
    rows = _rows(rendered["tables"], "dead-letters")
    assert rendered["tables"][("dead-letters", "head")] == [["stage", "input", "reason", "record id", "excerpt"]]
    assert [r[:3] for r in rows] == [["ner", "in/big.txt", "RuntimeError: boom"],
                                     ["parse", "in/bad.txt", "not valid UTF-8"], ["parse", "in/empty.txt", "empty file"]]
    assert rows[0][3] == "f" * 24


def test_a_label_confidence_is_unsigned_and_only_the_net_has_a_sign(rendered):
    t = rendered["tables"]
    head = t[("drill-stance", "head")][0]
    assert head[:3] == ["target", "label", "confidence"]
    neutral = [r for r in _rows(t, "drill-stance") if r[1] == "neutral"]
    assert neutral and all(r[2] == "0.70" for r in neutral)  # not "+0.70": a neutral label has no direction
    nets = {r[0]: r[6] for r in _rows(t, "stance-totals")}
    assert nets["Armenia"].startswith(("+", "-")) or nets["Armenia"] == "0.00"


def _csv_of(page: str, table_id: str) -> list[list[str]]:
    """The rows of a table's CSV download link, decoded as a spreadsheet would read the file."""
    import csv
    import io

    m = re.search(rf'<a class="csv" id="{table_id}-csv" download="{table_id}.csv" '
                  r'href="data:text/csv;charset=utf-8;base64,([^"]+)"', page)
    assert m, f"no CSV download for table {table_id}"
    return list(csv.reader(io.StringIO(base64.b64decode(m.group(1)).decode("utf-8-sig"))))


def test_every_table_has_a_csv_download_of_its_rows(rendered):
    page, t = rendered["page"], rendered["tables"]
    ids = re.findall(r'<table id="([^"]+)"', page)
    assert len(ids) > 10
    for table_id in ids:
        rows = _csv_of(page, table_id)
        assert [rows[0]] == t[(table_id, "head")], table_id
        assert len(rows) - 1 == len(_rows(t, table_id)), table_id
        assert [r[0] for r in rows[1:]] == [r[0] for r in _rows(t, table_id)], table_id
    dead = _csv_of(page, "dead-letters")
    assert dead[1][:3] == ["ner", "in/big.txt", "RuntimeError: boom"]
