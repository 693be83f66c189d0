"""Where a stance target's words stand in a text, inflected or not: names, products and common nouns alike.

Users name policies and common nouns as targets ("Maskenpflicht", "the ceasefire", "перемирие"), which NER
gives no entity for; matching them only as whole words misses "Maskenpflichten", "Waffenruhen", "перемирием".
The rules, the same for every target (none is tuned to a data set's items):

- Words: a text is read as runs of letters and digits; a target's words must follow one another, separated by
  spaces or a hyphen where the target has a space or hyphen, by the target's own punctuation otherwise. A
  leading article of the target's language is optional and left out of the span ("the ceasefire" finds
  "ceasefire"). Each span covers the whole words matched, and no span overlaps another (longer names first).
- Endings: a target word of at least MIN_STEM letters matches a text word that is the target word, or its stem,
  plus one short inflectional ending of the article's language (`ENDINGS`: case, number and article suffixes,
  one to three letters). The stem of a common noun is the word without a dictionary-form ending of its language
  (`BASE_ENDINGS`: the nominative's vowel in Slavic languages and Italian, German final -e), so "перемирие"
  finds "перемирия" and "перемирием"; a name is its own stem (a name is given in its base form; its other
  Slavic case forms come through entity ids and aliases). With no language known, no endings: whole words only.
- Derivation is not inflection: endings that make a surname, demonym or agent noun out of a word (Russian -ов,
  Polish -ów, German -er) are allowed after common nouns only, or not at all (German -er: "Spieler" is not
  "Spiel", "Kieler" is not "Kiel"), and no ending makes "Armenia" into "Armenian".
- Case: a common noun (a target word written in lower case, or any capitalised word in German, which
  capitalises every noun, unless the caller knows the target is a name) is compared case-insensitively; a name
  with its case as written; an acronym (all capitals or digits) exactly, with no ending. A capitalised German
  noun matches capitalised words only: the lower-case word is a verb or adjective ("geimpft", "testen").
- Compounds: hyphenated compounds hold the target as a word of their own ("Corona-Maskenpflicht"). German closed
  compounds are not searched for the target as their head ("Bundeswehreinsatz" for "Einsatz"): measured on
  GerNTSA (docs/quality.md, "Targets found in the text"), no annotated target is such a head, and most of what
  the rule adds is a kind of the target, not the target ("Bratwurst" for "Wurst").
- Places: a target that names a CLDR place (modeling.entity_ids) keeps whole-word matching
  (modeling.stance.find_mentions): its other forms come through entity ids, and a demonym or adjective ("Russian",
  "Schweizer", "Polski") is not the place. The one ending a place takes is the German genitive -s/-es
  (`PLACE_ENDINGS`: "Russlands"), which forms no demonym and which the ids miss (German names are not
  lemmatised).

Why endings and not lemmas (modeling.lemmas): lemmatising every word of every article costs a dictionary look-up
per word (simplemma's German dictionary alone takes about 100 MB and 4 s to load), and the dictionaries know few
names; modeling.lemmas stays what gives entities their base forms and ids.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

MIN_STEM = 3  # a word or stem shorter than this takes no ending: "EU" + "s", "Ту" + "ы" would be other words

# Inflectional endings a word may take, per language (short, longest tried first by the matcher).
ENDINGS: dict[str, tuple[str, ...]] = {
    "en": ("s", "es"),
    "de": ("e", "n", "en", "s", "es", "ns", "ens", "nen"),
    "nl": ("s", "e", "n", "en"),
    "da": ("e", "n", "en", "t", "et", "r", "er", "ne", "ene", "rne", "erne", "s"),
    "es": ("s", "es"),
    "fr": ("s", "x"),
    "it": ("a", "e", "i", "o"),
    "pt": ("s", "es", "a", "o", "as", "os"),
    "pl": ("a", "ą", "ę", "e", "i", "y", "u", "o", "ie", "em", "om", "ach", "ami", "ów", "owi", "ego", "emu",
           "ej", "ym", "ich", "ych"),
    "cs": ("a", "e", "ě", "i", "í", "y", "ý", "u", "ů", "o", "ou", "em", "ům", "ách", "ech", "ích", "ami", "ové",
           "ovi", "ého", "ému", "ém", "ým", "ých"),
    "sl": ("a", "e", "i", "o", "u", "em", "om", "ih", "im", "ov", "ev", "ega", "emu", "ima", "ami", "ah"),
    "hr": ("a", "e", "i", "o", "u", "om", "em", "ima", "ama", "ih", "im", "ovi", "ove", "ova"),
    "sr": ("a", "e", "i", "o", "u", "om", "em", "ima", "ama", "ih", "im", "ovi", "ove", "ova",
           "а", "е", "и", "о", "у", "ом", "ем", "има", "ама", "их", "им", "ови", "ове", "ова"),
    "ru": ("а", "я", "у", "ю", "е", "и", "ы", "о", "ь", "й", "ой", "ей", "ом", "ем", "ам", "ям", "ах", "ях", "ами",
           "ями", "ью", "ие", "ия", "ию", "ии", "ием", "ов", "ев", "ый", "ий", "ая", "яя", "ое", "ее", "ые", "ую",
           "юю", "ого", "его", "ому", "ему", "ым", "им", "ых", "их"),
    "uk": ("а", "я", "у", "ю", "е", "є", "і", "и", "ї", "о", "ь", "й", "ою", "ею", "ом", "ем", "ам", "ям", "ах",
           "ях", "ами", "ями", "ів", "їв", "ові", "еві", "ий", "ій", "ої", "ого", "ому", "им", "их"),
    "bg": ("а", "я", "о", "е", "и", "ът", "ят", "та", "то", "те", "ите", "ове", "ата", "ята", "ото", "ето", "ия"),
}
# Endings a dictionary form (nominative singular) has, dropped to find a common noun's stem.
BASE_ENDINGS: dict[str, tuple[str, ...]] = {
    "de": ("e",),
    "da": ("e",),
    "it": ("a", "e", "i", "o"),
    "pl": ("a", "o", "e", "ie", "um"),
    "cs": ("a", "o", "e", "í", "ě"),
    "sl": ("a", "o", "e"),
    "hr": ("a", "o", "e"),
    "sr": ("a", "o", "e", "а", "о", "е"),
    "ru": ("а", "я", "о", "е", "ие", "ия", "ь", "й", "ый", "ий", "ой", "ая", "яя", "ое", "ее"),
    "uk": ("а", "я", "о", "е", "ь", "й", "ий", "ій"),
    "bg": ("а", "я", "о", "е", "ия"),
}
# Endings that also make a new word out of a name (surnames, possessives): for common nouns only.
NOUN_ONLY: dict[str, tuple[str, ...]] = {
    "ru": ("ов", "ев"), "uk": ("ів", "їв"), "bg": ("ове",), "pl": ("ów",), "cs": ("ové", "ovi"),
    "sl": ("ov", "ev"), "hr": ("ovi", "ove", "ova"), "sr": ("ovi", "ove", "ova", "ови", "ове", "ова"),
    "da": ("er", "erne"),
}
# Leading articles of a target, left out of the match ("the ceasefire" -> "ceasefire").
ARTICLES: dict[str, tuple[str, ...]] = {
    "en": ("the", "a", "an"),
    "de": ("der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines"),
    "nl": ("de", "het", "een"),
    "da": ("den", "det", "de", "en", "et"),
    "es": ("el", "la", "los", "las", "un", "una"),
    "fr": ("le", "la", "les", "l", "un", "une"),
    "it": ("il", "lo", "la", "i", "gli", "le", "l", "un", "una"),
    "pt": ("o", "a", "os", "as", "um", "uma"),
}
# Endings a place name takes as a string match: only those that never make a demonym or adjective of it.
PLACE_ENDINGS: dict[str, tuple[str, ...]] = {"de": ("s", "es")}
NOUN_CAPITALISING = ("de", "lb")  # every noun is capitalised: a capital says nothing about a name

_WORD = re.compile(r"\w+")
_SPACE_OR_HYPHEN = re.compile(r"\s*[-‐‑–]\s*|\s+")
_APOSTROPHES = re.compile(r"\s*['’ʼ]\s*")


@dataclass(frozen=True)
class Word:
    """One target word as the matcher compares it: its stems, the endings it may take, how case counts."""

    stems: tuple[str, ...]  # the forms a text word must start with (lower-cased where case does not count)
    endings: tuple[str, ...]
    fold: bool  # compare case-insensitively
    capital: bool = False  # the text word must start with a capital (a German noun)


def _kind(word: str, lang: str, name: Optional[bool]) -> str:
    letters = [c for c in word if c.isalpha()]
    if len(letters) < 2 or any(c.isdigit() for c in word) or all(c.isupper() for c in letters):
        return "fixed"
    if word[0].islower():
        return "noun"
    if name is None:
        return "noun" if lang in NOUN_CAPITALISING else "name"
    return "name" if name else "noun"


def target_word(word: str, lang: str, name: Optional[bool] = None, place: bool = False) -> Word:
    """How `word` (one word of a target) matches in a text of language `lang` (see the module docstring)."""
    kind = _kind(word, lang, name)
    if kind == "fixed" or len(word) < MIN_STEM:
        return Word((word,), (), False)
    if place:
        return Word((word,), PLACE_ENDINGS.get(lang, ()), False)
    endings = ENDINGS.get(lang, ())
    if kind == "name":
        endings = tuple(e for e in endings if e not in NOUN_ONLY.get(lang, ()))
    fold = kind == "noun"
    form = word.lower() if fold else word
    stems = [form]
    if kind == "noun":
        stems += [form[: -len(e)] for e in BASE_ENDINGS.get(lang, ()) if form.endswith(e)
                  and len(form) - len(e) >= MIN_STEM]
    capital = kind == "noun" and word[0].isupper() and lang in NOUN_CAPITALISING
    return Word(tuple(dict.fromkeys(stems)), tuple(sorted(set(endings), key=len, reverse=True)), fold, capital)


def word_matches(token: str, word: Word) -> bool:
    """Whether a text word is `word` or one of its inflected forms."""
    if word.capital and not token[0].isupper():
        return False
    form = token.lower() if word.fold else token
    for stem in word.stems:
        if form.startswith(stem):
            rest = form[len(stem):]
            if not rest or rest in word.endings:
                return True
    return False


def _split(target: str) -> tuple[list[str], list[str]]:
    """A target's words and the separators between them."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(target)]
    return ([target[s:e] for s, e in words], [target[e:s2] for (_, e), (s2, _) in zip(words, words[1:])])


def _sep_matches(target_sep: str, text_sep: str) -> bool:
    if _SPACE_OR_HYPHEN.fullmatch(target_sep):
        return bool(_SPACE_OR_HYPHEN.fullmatch(text_sep))
    if _APOSTROPHES.fullmatch(target_sep):
        return bool(_APOSTROPHES.fullmatch(text_sep))
    return text_sep.strip() == target_sep.strip() and bool(text_sep.strip() or not target_sep.strip())


@lru_cache(maxsize=4096)
def is_place(name: str) -> bool:
    """Whether CLDR names `name` as a place (modeling.entity_ids.entity_id as a LOC gives a cldr:/city: id)."""
    from modeling.entity_ids import entity_id

    return not entity_id(name, "LOC")[0].startswith("name:")


def _plan(target: str, lang: str, name: Optional[bool], place: bool) -> tuple[list[Word], list[str]]:
    words, seps = _split(target)
    articles = ARTICLES.get(lang or "en", ())
    while len(words) > 1 and words[0].casefold() in articles:
        words, seps = words[1:], seps[1:]
    return [target_word(w, lang, name, place) for w in words], seps


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _WORD.finditer(text)]


def _matches(text: str, tokens: list[tuple[int, int]], target: str, lang: str, name: Optional[bool],
             place: bool = False) -> list[tuple[int, int]]:
    plan, seps = _plan(target, lang, name, place)
    if not plan:
        return []
    out = []
    n = len(plan)
    for i in range(len(tokens) - n + 1):
        ok = True
        for j in range(n):
            s, e = tokens[i + j]
            if not word_matches(text[s:e], plan[j]):
                ok = False
                break
            if j and not _sep_matches(seps[j - 1], text[tokens[i + j - 1][1]:s]):
                ok = False
                break
        if ok:
            out.append((tokens[i][0], tokens[i + n - 1][1]))
    return out


def target_mentions(text: str, names: Sequence[str], lang: Optional[str] = None, name: Optional[bool] = None
                    ) -> list[tuple[int, int]]:
    """Non-overlapping spans of any of `names` (a target and its aliases) in `text`, in text order, longest
    name first where two overlap. `lang`: the text's language (ISO 639-1; None or unknown: whole words only).
    `name`: whether the target is known to be a name (True: NER found it as an entity), known not to be one
    (False), or unknown (None: the spelling decides, see the module docstring). Place names match as whole
    words (modeling.stance.find_mentions)."""
    from modeling.stance import find_mentions

    lang = (lang or "").split("-")[0].lower()
    names = sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True)
    tokens = word_spans(text)
    found: list[tuple[int, int]] = []
    for target in names:
        if not _WORD.search(target):
            spans = find_mentions(text, [target])
        elif is_place(target):
            spans = find_mentions(text, [target])
            if lang in PLACE_ENDINGS:
                spans += _matches(text, tokens, target, lang, True, place=True)
        else:
            spans = _matches(text, tokens, target, lang, name)
        for s, e in spans:
            if not any(s < fe and fs < e for fs, fe in found):
                found.append((s, e))
    return sorted(found)


def target_ids(target: str) -> set[str]:
    """The entity ids a target name stands for: a place or organisation CLDR names ("Armenia" -> cldr:AM) is
    that id alone (a man called Armen is not Armenia); any other name is read both as an organisation and as a
    person (a person's id keys on the surname, so "Nikol Pashinyan" also finds "Пашинян")."""
    from modeling.entity_ids import entity_id

    place = entity_id(target, "LOC")[0]
    if not place.startswith("name:"):
        return {place}
    return {place, entity_id(target, "PER")[0]}


def target_spans(text: str, entities: Sequence[dict], target: str, aliases: Sequence[str],
                 lang: Optional[str] = None) -> list[tuple[int, int]]:
    """A target's mentions in reading order: the mentions of the entities (the NER stage's, with ids) that have
    the target's id, then the name and aliases found as words of the text (target_mentions, inflected forms in
    `lang` included) where they do not overlap those. An entity with the target's id makes the target a name
    (its case counts); else its spelling decides, so common nouns ("Maskenpflicht", "the ceasefire") are found
    too. The stance stage and the stance evaluations both find mentions here."""
    ids = target_ids(target)
    spans = sorted({(m["start"], m["end"]) for e in entities if e.get("id") in ids for m in e["mentions"]})
    name = True if spans else None
    for start, end in target_mentions(text, [target, *aliases], lang, name):
        if not any(start < e and s < end for s, e in spans):
            spans.append((start, end))
    return sorted(spans)
