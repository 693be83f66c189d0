"""`newsbeam report`'s numbers: pure functions over the slimmed article dicts (pipeline.report_input) and the
side records, no plotting and no I/O, each tested on its own (tests/test_report.py, tests/test_report_views.py).

Time periods (day, week starting Monday, month), articles per day / period / source, languages, the top entities
per type, stance per target over time, and the same stance split by a grouping key (the source or the language
of the article: `stance_by_group`), duplicates per source, dead letters per stage and the run's totals.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from schemas.article import NOT_MENTIONED

from .report_rows import publisher

ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
ENTITY_TYPE_NAMES = {"PER": "people", "ORG": "organisations", "LOC": "locations", "MISC": "other names"}
STANCE_LABELS = ("favor", "neutral", "against")
PERIODS = ("day", "week", "month")
NO_SOURCE = "(no source)"
LANGUAGE_NAMES = {
    "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fa": "Persian", "fi": "Finnish",
    "fr": "French", "he": "Hebrew", "hi": "Hindi", "hu": "Hungarian", "hy": "Armenian", "it": "Italian",
    "ja": "Japanese", "ka": "Georgian", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian", "zh": "Chinese", "und": "undetermined",
}


# ----------------------------------------------------------------------------------------- time periods

def day_of(value) -> Optional[dt.date]:
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

def article_source(a: dict) -> str:
    """The publisher an article is counted under (pipeline.report_input sets it while slimming)."""
    return a.get("source") or NO_SOURCE


def article_language(a: dict) -> str:
    """The detected language code; no language info counts as 'und'."""
    return (a.get("language") or {}).get("code") or "und"


GROUPINGS: dict[str, Callable[[dict], str]] = {"source": article_source, "language": article_language}


def articles_per_day_source(articles: Iterable[dict]) -> dict[dt.date, Counter]:
    """{day: Counter(source -> articles)}, days ascending."""
    out: dict[dt.date, Counter] = defaultdict(Counter)
    for a in articles:
        out[day_of(a["published"])][article_source(a)] += 1
    return dict(sorted(out.items()))


def articles_per_source(articles: Iterable[dict]) -> list[tuple[str, int, dt.date, dt.date]]:
    """[(source, articles, first day, last day)], most articles first."""
    stats: dict[str, list] = {}
    for a in articles:
        day, src = day_of(a["published"]), article_source(a)
        s = stats.setdefault(src, [0, day, day])
        s[0] += 1
        s[1], s[2] = min(s[1], day), max(s[2], day)
    return sorted(((src, n, first, last) for src, (n, first, last) in stats.items()), key=lambda r: (-r[1], r[0]))


def articles_per_period_source(articles: Iterable[dict], period: str) -> dict[dt.date, Counter]:
    out: dict[dt.date, Counter] = defaultdict(Counter)
    for a in articles:
        out[period_start(day_of(a["published"]), period)][article_source(a)] += 1
    return dict(sorted(out.items()))


def languages(articles: Iterable[dict]) -> list[tuple[str, int, float]]:
    """[(code, articles, mean detector confidence)], most articles first; no language info counts as 'und'."""
    n: Counter = Counter()
    conf: dict[str, float] = defaultdict(float)
    for a in articles:
        code = article_language(a)
        n[code] += 1
        conf[code] += float((a.get("language") or {}).get("confidence") or 0.0)
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
        day = day_of(a["published"])
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
    """The stance entries toward one target in one period (and group): each label, and apart from them the
    entries without a label."""

    favor: int = 0
    neutral: int = 0
    against: int = 0
    not_mentioned: int = 0
    no_stance: int = 0  # mentioned, but no label computed (unsupported language, models skipped, ...)
    net_sum: float = 0.0  # sum over labelled articles of P(favor) - P(against)
    zero_shot: int = 0  # of the labelled: `measured: false`, stance quality not measured in the language

    @property
    def labelled(self) -> int:
        return self.favor + self.neutral + self.against

    @property
    def mentioned(self) -> int:
        return self.labelled + self.no_stance

    @property
    def net(self) -> Optional[float]:
        return self.net_sum / self.labelled if self.labelled else None

    def add(self, s: dict) -> None:
        """Count one stance entry. One without a label had no model call: it is counted apart, never as
        neutral: as 'not mentioned' when the article does not name the target, as 'no stance' when it does."""
        if s.get("reason") or s.get("label") not in STANCE_LABELS:
            if s.get("reason") == NOT_MENTIONED or not s.get("mentions"):
                self.not_mentioned += 1
            else:
                self.no_stance += 1
            return
        setattr(self, s["label"], getattr(self, s["label"]) + 1)
        self.net_sum += stance_net(s)
        if s.get("measured") is False:
            self.zero_shot += 1


def sum_cells(cells: Iterable[StanceCell]) -> StanceCell:
    out = StanceCell()
    for c in cells:
        for name in ("favor", "neutral", "against", "not_mentioned", "no_stance", "net_sum", "zero_shot"):
            setattr(out, name, getattr(out, name) + getattr(c, name))
    return out


def stance_net(s: dict) -> float:
    """P(favor) − P(against) of one labelled entry (from its label and score where no probabilities are kept)."""
    probs = s.get("probabilities")
    if probs:
        return float(probs.get("favor", 0.0)) - float(probs.get("against", 0.0))
    score = float(s.get("score") or 0.0)
    return score if s.get("label") == "favor" else -score if s.get("label") == "against" else 0.0


def _labelled(cells: Iterable[StanceCell]) -> int:
    return sum(c.labelled for c in cells)


def stance_over_time(articles: Iterable[dict], period: str) -> dict[str, dict[dt.date, StanceCell]]:
    """{target: {period: StanceCell}}; targets with the most labelled articles first."""
    grouped = stance_by_group(articles, period, lambda a: "")
    return {t: groups[""] for t, groups in grouped.items()}


def stance_by_group(articles: Iterable[dict], period: str, group: Callable[[dict], str]
                    ) -> dict[str, dict[str, dict[dt.date, StanceCell]]]:
    """{target: {group: {period: StanceCell}}}: how each group of articles (`group(article)`: its source,
    its language) treats each target over time. Targets with the most labelled articles first, as
    stance_over_time; within a target, the groups with the most labelled articles on it first, then by name."""
    out: dict[str, dict[str, dict[dt.date, StanceCell]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(StanceCell)))
    for a in articles:
        p, g = period_start(day_of(a["published"]), period), group(a)
        for s in a.get("stance") or []:
            out[s.get("target") or "?"][g][p].add(s)

    def target_weight(item):
        return (-sum(_labelled(cells.values()) for cells in item[1].values()), item[0])

    def group_weight(item):
        return (-_labelled(item[1].values()), item[0])

    return {t: {g: dict(sorted(cells.items())) for g, cells in sorted(groups.items(), key=group_weight)}
            for t, groups in sorted(out.items(), key=target_weight)}


def fold_groups(groups: dict[str, dict[dt.date, StanceCell]], top: int, noun: str
                ) -> dict[str, dict[dt.date, StanceCell]]:
    """The groups of one target with a label, the `top` first ones kept and the rest summed per period as
    'other (k <noun>s)' (so a chart's lines stay few); no fold for a single extra group."""
    ranked = [g for g, cells in groups.items() if _labelled(cells.values())]
    if len(ranked) <= top + 1:
        return {g: groups[g] for g in ranked}
    out = {g: groups[g] for g in ranked[:top]}
    rest = ranked[top:]
    periods = sorted({p for g in rest for p in groups[g]})
    out[f"other ({len(rest)} {noun}s)"] = {p: sum_cells(groups[g][p] for g in rest if p in groups[g])
                                          for p in periods}
    return out


def duplicates_per_source(duplicates: Iterable[dict], articles: Iterable[dict] = ()) -> list[tuple]:
    """[(source, exact, near, written articles from that source)], most duplicates first."""
    exact: Counter = Counter()
    near: Counter = Counter()
    for d in duplicates:
        src = publisher(d)  # as the articles are counted: the dropped copy's publisher
        (exact if d.get("kind") == "exact" else near)[src] += 1
    written = Counter(article_source(a) for a in articles)
    rows = [(s, exact[s], near[s], written[s]) for s in set(exact) | set(near)]
    return sorted(rows, key=lambda r: (-(r[1] + r[2]), r[0]))


def dead_letters_by_stage(dead: Iterable[dict]) -> list[tuple[str, int]]:
    return sorted(Counter(d.get("stage") or "?" for d in dead).items(), key=lambda r: (-r[1], r[0]))


def totals(data) -> dict:
    """The run's totals over `data` (pipeline.report_input.OutputData: articles, duplicates, dead)."""
    days = [day_of(a["published"]) for a in data.articles]
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
        "languages": len({article_language(a) for a in data.articles}),
        "ner": dict(ner),
        "stance": dict(stance),
        "entities": sum(len(a.get("entities") or []) for a in data.articles),
    }


