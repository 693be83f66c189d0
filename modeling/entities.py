"""Entities of one article: mentions cleaned, grouped into one entity per real-world thing, with a base form, an id
and a display name. Pure functions (no Beam, no model); transforms.ner calls `resolve_entities` on the NER spans.

Steps, each measured on BSNLP-2017 dev (docs/quality.md):
1. `trim_span`: possessives ("Pashinyan's" -> "Pashinyan") and surrounding punctuation ("Windows Server 2019.")
   leave the span; `complete_span` runs it on where the model stopped inside a name ("Týden" of "Týden.cz",
   "ДП «Орелька" + "»", "Parlament Eur" + "." where the sentence goes on). Offsets stay exact (a slice of the text).
2. `modeling.lemmas.phrase_base`: each mention's dictionary form in the article's language, with agreement
   ("Komisji Europejskiej" -> "Komisja Europejska"); forms of one name found in the same article help with names
   the dictionaries do not know ("Trumpa" -> "Trump" when "Trump" is in the article).
3. Grouping: mentions with one base form and type are one entity (Хабиба / Хабиб); a short form whose words are
   part of a longer name of the same type joins it ("Shoigu" in "Sergei Shoigu", "Komisja" in "Komisja
   Europejska"), and so does an acronym of a longer name ("KE", "ЕС") -- only when exactly one longer name fits.
4. `modeling.entity_ids.entity_id`: an id derived from the name alone (no state, so the same on every runner and
   run): CLDR territory and city names in ~300 locales (Babel) give "Germany" for Niemcy / Германия / Německo;
   other names get a cross-script phonetic key of their base form.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from collections import Counter, defaultdict
from typing import Any, Iterable, Sequence

_POSSESSIVE = re.compile(r"(?:['’ʼ]s|['’ʼ])$")
# Characters never at the edge of a name (unless balanced inside it): quotes, brackets, punctuation, dashes.
_EDGE = set("\"'«»„“”‘’‚‹›()[]{}<>.,;:!?…–—-*•/\\|")
_PAIRS = {")": "(", "]": "[", "»": "«", "”": "“", "\"": "\"", "›": "‹"}


def trim_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span without a possessive and without punctuation at its edges; None when nothing is left.

    A final dot stays where it belongs to the name: initials and abbreviations ("U.S.", "J.", "Inc."). A closing
    bracket or quote stays when its opening one is inside the span ("Prawo i Sprawiedliwość (PiS)").
    """
    while True:
        before = (start, end)
        while start < end and (text[start].isspace() or text[start] in _EDGE):
            ch = text[start]
            closing = next((c for c, o in _PAIRS.items() if o == ch and c != ch), None)
            if closing and closing in text[start + 1:end] and not text[start + 1:end].endswith(closing):
                break  # "(PiS) party": an opening bracket closed inside the name stays
            start += 1
        m = _POSSESSIVE.search(text, start, end)
        if m and m.start() > start:
            end = m.start()
        while end > start and (text[end - 1].isspace() or text[end - 1] in _EDGE):
            ch = text[end - 1]
            if ch == "." and _keeps_dot(text, start, end):
                break
            opening = _PAIRS.get(ch)
            if opening and opening != ch and opening in text[start:end - 1]:
                break
            end -= 1
        if (start, end) == before:
            break
    return (start, end) if end > start and any(c.isalnum() for c in text[start:end]) else None


def clean_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A NER span as the names it holds: split at line breaks (a name never spans lines), each part trimmed
    (trim_span) and completed where the model stopped short (complete_span); parts written all in lower case in a
    script that has case are dropped: names are capitalised, and what the model tags in lower case is mostly an
    adjective ("americký", "российского")."""
    out = []
    pos = start
    for part in re.split(r"(\n)", text[start:end]):
        cut = trim_span(text, pos, pos + len(part)) if part != "\n" else None
        pos += len(part)
        if cut is None:
            continue
        cut = complete_span(text, *cut)
        cased = [c for c in text[cut[0]:cut[1]] if c.lower() != c.upper()]
        if cased and not any(c.isupper() for c in cased):
            continue
        out.append(cut)
    return out


# A name written as a web host ("Týden.cz", "RMF24.pl", "Evropa.gov.si"): the model often stops before the
# top-level domain, or after its dot. A missing space before a two-letter word ("Apple.it fell") reads as a host too.
_HOST_TAIL = re.compile(r"(?:\.[a-z0-9-]+)*\.([a-z]{2,6})(?!\w)")
_GENERIC_TLDS = frozenset({"com", "org", "net", "info", "gov", "edu", "biz", "news", "online", "media"})
_CLOSERS = {"«": "»", "„": "“”", "“": "”", "‹": "›", "(": ")", "[": "]"}


@lru_cache(maxsize=1)
def _country_tlds() -> frozenset[str]:
    """Two-letter country domains: the ISO 3166 territory codes CLDR knows (Babel), plus "uk" and "eu"."""
    from babel import Locale

    return frozenset({c.lower() for c in Locale("en").territories if len(c) == 2 and c.isalpha()} | {"uk", "eu"})


def complete_span(text: str, start: int, end: int) -> tuple[int, int]:
    """A trimmed span run on to the end of the name it stops inside: a web host's domain ("Týden" of
    "Týden.cz"), a closing quote or bracket whose opening one is in the span ("ДП «Орелька" -> "ДП «Орелька»"),
    and an abbreviation's dot where the sentence goes on ("Parlament Eur" of "Parlament Eur., po czym")."""
    if end > start and text[end - 1].isalnum():
        m = _HOST_TAIL.match(text, end)
        if m and (m.group(1) in _GENERIC_TLDS or m.group(1) in _country_tlds()):
            end = m.end()
    span = text[start:end]
    for opening, closing in _CLOSERS.items():
        if end < len(text) and text[end] in closing and span.count(opening) > sum(span.count(c) for c in closing):
            return start, end + 1
    if text[end:end + 1] == "." and _abbreviation_dot(text, start, end + 1):
        end += 1
    return start, end


def _keeps_dot(text: str, start: int, end: int) -> bool:
    """Does the final "." of text[start:end] belong to the name (an initial or abbreviation)?"""
    words = text[start:end - 1].split()
    if not words:
        return False
    last = words[-1]
    if "." in last:  # U.S.  e.V.
        return True
    if len(last) == 1 and last.isalpha():  # an initial: "J."
        return True
    if last.lower() in {"inc", "corp", "co", "ltd", "jr", "sr", "st", "bros", "dr", "mr", "mrs", "prof"}:
        return True
    return _abbreviation_dot(text, start, end)


def _abbreviation_dot(text: str, start: int, end: int) -> bool:
    """A dot after a short capitalised word (not an acronym: "EU.") or a Roman numeral, where the sentence goes on
    (in lower case or after a comma): "Parlament Eur., po", "Elizabeta II. in", "Sp. z o.o.". Only such a dot is
    added to a span the model ended before it."""
    words = text[start:end - 1].split()
    if not words:
        return False
    last = words[-1]
    short = (2 <= len(last) <= 4 and last[0].isupper() and last[1:].islower()) or re.fullmatch(r"[IVXLC]{1,6}", last)
    after = text[end:end + 40].lstrip()
    return bool(short) and bool(after) and (after[0] in ",;" or after[0].islower())


def normalise(s: str) -> str:
    """NFKC, one kind of apostrophe, whitespace collapsed: how forms are compared (case kept)."""
    s = unicodedata.normalize("NFKC", s).replace("’", "'").replace("ʼ", "'")
    return " ".join(s.split())


def _words(s: str) -> list[str]:
    return [w for w in re.split(r"[\s\-‐]+", s.casefold()) if w]


def _initials(base: str) -> str:
    return "".join(w[0] for w in re.findall(r"\w+", base) if w[0].isalpha()).casefold()


def _is_acronym(surface: str) -> bool:
    letters = [c for c in surface if c.isalpha()]
    return 2 <= len(letters) <= 6 and all(c.isupper() for c in letters) and " " not in surface.strip()


def _contains(longer: Sequence[str], shorter: Sequence[str]) -> bool:
    """Is `shorter` a contiguous run of whole words of `longer`?"""
    n, k = len(longer), len(shorter)
    return k < n and any(list(longer[i:i + k]) == list(shorter) for i in range(n - k + 1))


def group_mentions(mentions: Sequence[dict]) -> list[list[int]]:
    """Mentions (each with "type", "text", "base") -> groups of indices, one per entity.

    Same type and base form -> one group. Then a group whose base words are a contiguous part of exactly one
    longer name's base words (or, word by word, of its surface forms), or an acronym of exactly one longer name,
    joins it. A short form that fits two longer names ("Trump" with "Donald Trump" and "Ivanka Trump") stays apart.
    """
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, m in enumerate(mentions):
        by_key[(m["type"], m["base"].casefold())].append(i)
    keys = list(by_key)
    forms: dict[tuple[str, str], list[list[str]]] = {}
    for key, idx in by_key.items():
        seen = {tuple(_words(key[1]))}
        seen.update(tuple(_words(normalise(mentions[i]["text"]))) for i in idx)
        forms[key] = [list(f) for f in seen]
    parent = {k: k for k in keys}
    # longest first, so a short form joins the longest name that holds it
    order = sorted(keys, key=lambda k: (-len(_words(k[1])), k))
    for key in sorted(keys, key=lambda k: (len(_words(k[1])), k)):
        etype, base = key
        words = _words(base)
        surface = mentions[by_key[key][0]]["text"]
        candidates = []
        for other in order:
            if other == key or other[0] != etype or len(_words(other[1])) <= len(words):
                continue
            if any(_contains(f, w) for f in forms[other] for w in forms[key]):
                candidates.append(other)
            elif _is_acronym(surface) and len(_words(other[1])) >= 2 and _initials(other[1]) == surface.casefold():
                candidates.append(other)
        roots = {_find(parent, c) for c in candidates}
        if len(roots) == 1:
            parent[key] = roots.pop()
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for key in keys:
        groups[_find(parent, key)].extend(by_key[key])
    return [sorted(g) for g in groups.values()]


def _find(parent: dict, k):
    while parent[k] != k:
        k = parent[k]
    return k


def harmonise_types(mentions: list[dict]) -> None:
    """One name, one type within an article: mentions with the same base form take the type most of them were
    given (ties: the higher summed score), so "Googlu" is not an organisation in one sentence and a person in the
    next."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for m in mentions:
        votes[m["base"].casefold()][m["type"]] += 1 + m["score"] / 1000
    for m in mentions:
        v = votes[m["base"].casefold()]
        m["type"] = max(v, key=lambda t: (v[t], t))


def resolve_entities(text: str, spans: Iterable[Any], lang: str | None) -> list[dict]:
    """NER spans (start, end, type, score) -> the article's entities, most-mentioned first.

    Every entity: text (its most frequent surface form among its longest names), type, count, score (mean mention
    score), base (dictionary form of its longest name), id and name (modeling.entity_ids: from that base, or a
    surface form CLDR knows), and its mentions, each
    with exact offsets (text[start:end] == mention text) and its own base form. Spans that are nothing but
    punctuation are dropped; overlapping duplicates after trimming are kept once.
    """
    from .entity_ids import entity_id, is_latin, latin_name
    from .lemmas import phrase_bases

    raw = []
    seen = set()
    for sp in sorted(spans, key=lambda s: (s.start, s.end)):
        for cut in clean_spans(text, sp.start, sp.end):
            if cut in seen:
                continue
            seen.add(cut)
            raw.append({"start": cut[0], "end": cut[1], "text": text[cut[0]:cut[1]], "type": sp.type,
                        "score": round(float(sp.score), 4)})
    bases = phrase_bases([(normalise(m["text"]), m["type"]) for m in raw], lang)
    for m, b in zip(raw, bases):
        m["base"] = b
    harmonise_types(raw)
    entities = []
    for group in group_mentions(raw):
        ms = [raw[i] for i in group]
        longest = max(len(_words(m["base"])) for m in ms)
        heads = [m for m in ms if len(_words(m["base"])) == longest]
        base_counts = Counter(m["base"] for m in heads)
        base = min(base_counts, key=lambda b: (-base_counts[b], next(m["start"] for m in heads if m["base"] == b)))
        text_counts = Counter(m["text"] for m in heads)
        canonical = min(text_counts, key=lambda t: (-text_counts[t], next(m["start"] for m in heads
                                                                           if m["text"] == t)))
        eid, name = entity_id(base, ms[0]["type"], lang,
                              tuple(sorted({m["text"] for m in ms}, key=lambda t: (-len(t), t))))
        entities.append({
            "text": canonical, "type": ms[0]["type"], "count": len(ms),
            "score": round(sum(m["score"] for m in ms) / len(ms), 4), "base": base, "id": eid, "name": name,
            **({} if is_latin(name) else {"name_latin": latin_name(name)}),
            "mentions": [{"start": m["start"], "end": m["end"], "text": m["text"], "score": m["score"],
                          "base": m["base"]} for m in ms],
        })
    entities.sort(key=lambda e: (-e["count"], e["mentions"][0]["start"]))
    return entities
