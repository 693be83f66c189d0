"""Base (dictionary) forms of names, in the article's language, with agreement inside multi-word names.

Chosen by measurement on BSNLP-2017 dev (docs/quality.md):
- Russian and Ukrainian: pymorphy3 with its OpenCorpora / VESUM dictionaries (wheels on PyPI); each word goes to
  the nominative with its own gender and number kept, adjectives agree with their head noun ("Европейской
  комиссии" -> "Европейская комиссия"), words after the head and its adjectives stay as they are ("Министерства
  иностранных дел" -> "Министерство иностранных дел").
- Other languages simplemma knows (cs, pl, sl, bg, hr, sk, ...): simplemma's word lemmas (its data ships in the
  wheel), then rules that make the adjectives next to the head noun agree with the head's gender ("Komisji
  Europejskiej" -> komisja + europejski -> "Komisja Europejska").
- English, German, Dutch, Spanish, French and other languages where names barely inflect: the surface form,
  except the genitive -s of German, Dutch and the Scandinavian languages, stripped only when the article's names
  hold the form without it ("Armeniens" -> "Armenien" beside "Armenien"; "Paris" stays).
Names the dictionaries do not know get help from the article: an unknown word whose stem plus a case ending is
another form in the same article's names goes to the shortest such form ("Trumpa" -> "Trump").
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

PYMORPHY_LANGS = ("ru", "uk")
SIMPLEMMA_LANGS = ("cs", "pl", "sl", "sk", "hr", "bg", "sr", "mk", "lt", "lv", "et", "fi", "hu")
# case endings (longest first) stripped to find a name's nominative among the article's own forms
_CASE_ENDINGS = {
    "pl": ("owi", "iem", "em", "ie", "a", "u", "ę", "y", "i", "ą", "om"),
    # cs and sl: also the possessive adjectives made from names ("Trumpova", "Trumpovi" -> "Trump")
    "cs": ("ových", "ovým", "ova", "ovy", "ově", "ovu", "ovo", "ovi", "em", "ou", "a", "u", "e", "y", "i", "ě", "ům"),
    "sl": ("ovega", "ovemu", "ovih", "ova", "ove", "ovi", "ovo", "om", "em", "a", "u", "e", "i", "o", "ih"),
    "ru": ("ым", "ом", "ем", "ой", "ей", "ою", "а", "у", "е", "ы", "и", "я", "ю"),
    "uk": ("ові", "ом", "ем", "ою", "ої", "ей", "а", "у", "е", "і", "и", "я", "ю"),
}
# languages whose names inflect only by a genitive -s: no dictionary, the article's own forms decide
GENITIVE_S_LANGS = ("de", "nl", "sv", "da", "no", "nb", "nn")
for _lang in GENITIVE_S_LANGS:
    _CASE_ENDINGS[_lang] = ("s",)
# adjective lemma endings by language, and how the lemma (masculine) becomes feminine / neuter
_ADJ = {
    "pl": re.compile(r"(?:[sc]ki|dzki|[^aeiouyąęó]y|ni|czy|[kg]i)$"),
    "cs": re.compile(r"[ýí]$"),
    "sl": re.compile(r"(?:ski|ški|čki|ni|ji|ski|ov|ev|in)$"),
    "sk": re.compile(r"[ýí]$"),
    "hr": re.compile(r"(?:ski|ški|čki|ni)$"),
}


def _gender_pl(lemma: str) -> str:
    low = lemma.casefold()
    if low.endswith(("a", "ść")):
        return "f"
    if low.endswith(("o", "e", "ę", "um")):
        return "n"
    return "m"


def _gender_cs(lemma: str) -> str:
    low = lemma.casefold()
    if low.endswith(("a", "e", "ost")) and not low.endswith(("ie",)):
        return "f"
    if low.endswith(("o", "í", "um")):
        return "n"
    return "m"


def _gender_sl(lemma: str) -> str:
    low = lemma.casefold()
    if low.endswith("a"):
        return "f"
    if low.endswith(("o", "e")):
        return "n"
    return "m"


def _agree(adj: str, gender: str, lang: str) -> str:
    """A masculine adjective lemma in the head's gender."""
    if gender == "m":
        return adj
    if lang == "pl":
        if adj.endswith(("ki", "gi")):
            return adj[:-1] + ("a" if gender == "f" else "ie")
        if adj.endswith("y"):
            return adj[:-1] + ("a" if gender == "f" else "e")
        if adj.endswith("i"):
            return adj + ("a" if gender == "f" else "e")
        return adj
    if lang in ("cs", "sk"):
        if adj.endswith("ý"):
            return adj[:-1] + ("á" if gender == "f" else "é")
        return adj
    if lang in ("sl", "hr"):
        if adj.endswith("i"):
            return adj[:-1] + ("a" if gender == "f" else "o")
        return adj + ("a" if gender == "f" else "o")
    return adj


_GENDER = {"pl": _gender_pl, "cs": _gender_cs, "sk": _gender_cs, "sl": _gender_sl, "hr": _gender_sl}
_TOKEN = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]+|\s+")


def _case_like(lemma: str, surface: str) -> str:
    """The lemma written like the surface: Capitalised or lower-case (an all-caps acronym is never changed)."""
    if surface[:1].isupper() and not lemma[:1].isupper():
        return lemma[:1].upper() + lemma[1:]
    if surface[:1].islower() and lemma[:1].isupper():
        return lemma[:1].lower() + lemma[1:]
    return lemma


@lru_cache(maxsize=None)
def _morph(lang: str):
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang=lang)


@lru_cache(maxsize=200_000)
def _simplemma(word: str, lang: str) -> str:
    import simplemma

    return simplemma.lemmatize(word, lang=lang)


def _is_word(tok: str) -> bool:
    return any(c.isalpha() for c in tok)


def _fixed(tok: str) -> bool:
    """Acronyms, numbers and single letters do not inflect here."""
    letters = [c for c in tok if c.isalpha()]
    return len(letters) <= 1 or all(c.isupper() for c in letters) or any(c.isdigit() for c in tok)


def _noun_parse(morph, word: str):
    """The word's noun reading, unless its best reading is a full adjective or participle ("рада" is a noun here
    although pymorphy3 ranks the short adjective "рад" first)."""
    parses = morph.parse(word)
    if parses[0].tag.POS in ("ADJF", "PRTF"):
        return None
    nouns = [q for q in parses if q.tag.POS == "NOUN"]
    if not nouns:
        return None
    top = max(q.score for q in nouns)
    # among the likely readings (the Ukrainian dictionary scores them all alike): a singular reading is likelier
    # than a plural one, and a name in the nominative is its own base
    likely = [q for q in nouns if q.score >= top / 2]
    return min(likely, key=lambda q: (q.tag.number == "plur", q.tag.case != "nomn", -q.score))


def _pymorphy_words(words: list[str], etype: str, lang: str) -> list[str]:
    morph = _morph(lang)
    inflecting = [_is_word(w) and not _fixed(w) for w in words]
    out = list(words)
    if etype == "PER":
        for i, w in enumerate(words):
            if not inflecting[i]:
                continue
            parses = morph.parse(w)
            # a name reading first; else a singular one ("Нурмагомедов" is not the plural of "Нурмагомед")
            best = min(parses, key=lambda q: (not {"Name", "Surn", "Patr"} & set(q.tag.grammemes),
                                              q.tag.number == "plur", -q.score))
            if best.tag.number == "plur":  # one person: a word read only as a plural is a surname left as it is
                continue
            form = best.inflect({"nomn"})
            out[i] = _case_like(form.word if form else best.normal_form, w)
        return out
    nouns = [(_noun_parse(morph, w) if inflecting[i] else None) for i, w in enumerate(words)]
    head = next((i for i, p in enumerate(nouns) if p is not None), None)
    if head is None:
        for i, w in enumerate(words):
            if inflecting[i]:
                p = morph.parse(w)[0]
                form = p.inflect({"nomn"})
                out[i] = _case_like(form.word if form else p.normal_form, w)
        return out
    hp = nouns[head]
    head_form = hp.inflect({"nomn"})
    out[head] = _case_like(head_form.word if head_form else hp.normal_form, words[head])
    number = hp.tag.number or "sing"
    want = {"nomn", number} | ({hp.tag.gender} if number == "sing" and hp.tag.gender else set())

    def inflected(q, word: str) -> str:
        form = q.inflect(want) or q.inflect(want - {"sing"}) or q.inflect({"nomn"})
        return _case_like(form.word if form else q.normal_form, word)

    def agreeing(word: str):
        """The word's adjective reading in the head's case, number and gender, if it has one."""
        for q in morph.parse(word):
            if q.tag.POS in ("ADJF", "PRTF") and q.tag.case == hp.tag.case \
                    and (q.tag.number or number) == number \
                    and (number == "plur" or not q.tag.gender or q.tag.gender == hp.tag.gender):
                return q
        return None

    for i in range(head - 1, -1, -1):  # adjectives before the head
        adj = agreeing(words[i]) if inflecting[i] else None
        if adj is None:
            break
        out[i] = inflected(adj, words[i])
    i = head + 1  # adjectives right after the head, when no noun of their own follows them
    after = []
    while i < len(words) and inflecting[i] and agreeing(words[i]) is not None:
        after.append(i)
        i += 1
    if after and (i == len(words) or not inflecting[i]):
        for j in after:
            out[j] = inflected(agreeing(words[j]), words[j])
    return out


_FEMALE_SURNAME = {"cs": re.compile(r"(?:ová|ové|ovou|ská|ské|skou|cká|cké|ckou)$"),
                   "pl": re.compile(r"(?:ska|cka|dzka|skiej|ckiej|dzkiej|ską|cką|dzką|owa|owej|ową)$")}
_FEMALE_TO_BASE = {"cs": [(r"ov(?:é|ou)$", "ová"), (r"([sc]k)(?:é|ou)$", r"\1á")],
                   "pl": [(r"([sc]k|dzk)(?:iej|ą)$", r"\1a"), (r"ow(?:ej|ą)$", "owa")]}
_MALE_ENDINGS = ("ovi", "owi", "em")
_CONSONANT_END = re.compile(r"[^aeiouyáéíóúýěůąęó\W]$", re.IGNORECASE)


def _person_words(words: list[str], lemmas: list[str], lang: str) -> list[str]:
    """Person names: dictionaries turn women's names into men's ("Hillary" -> "Hillar", "Ivana" -> "Ivan") and
    do not know most surnames. A feminine surname keeps the name feminine; an unknown man's name loses a case
    ending after a consonant stem ("Zandla" -> "Zandl")."""
    names = [i for i, w in enumerate(words) if _is_word(w) and not _fixed(w)]
    if not names:
        return lemmas
    female_re = _FEMALE_SURNAME.get(lang)
    female = bool(female_re and female_re.search(words[names[-1]].casefold()))
    if not female and lemmas[names[-1]] == words[names[-1]] and lang in _FEMALE_SURNAME:
        # the surname is in the nominative (or unknown): so is the first name ("Hillary Clinton", "Barack Obama")
        return list(words)
    out = list(lemmas)
    for i in names:
        w, low = words[i], words[i].casefold()
        if female:
            if i == names[-1]:
                based = w
                for pat, rep in _FEMALE_TO_BASE.get(lang, ()):
                    based = re.sub(pat, rep, based, flags=re.IGNORECASE)
                out[i] = based
            elif not lemmas[i].casefold().endswith("a"):
                out[i] = w
            continue
        if lemmas[i] == w:
            for ending in _MALE_ENDINGS:
                stem = w[: len(w) - len(ending)]
                if low.endswith(ending) and len(stem) >= 3 and _CONSONANT_END.search(stem):
                    out[i] = stem
                    break
    return out


def _simplemma_words(words: list[str], etype: str, lang: str) -> list[str]:
    lemmas = [(_case_like(_simplemma(w, lang), w) if _is_word(w) and not _fixed(w) else w) for w in words]
    if etype == "PER":
        return _person_words(words, lemmas, lang)
    if lang not in _ADJ:
        return lemmas
    adj_re, gender_of = _ADJ[lang], _GENDER[lang]
    word_idx = [i for i, w in enumerate(words) if _is_word(w)]
    is_adj = {i: bool(adj_re.search(lemmas[i].casefold())) for i in word_idx}
    head = next((i for i in word_idx if not is_adj[i] and not _fixed(words[i])), None)
    if head is None:
        return lemmas
    gender = gender_of(lemmas[head])
    out = list(words)
    out[head] = lemmas[head]
    for i in word_idx:
        if i < head:
            out[i] = _agree(lemmas[i], gender, lang) if is_adj[i] else lemmas[i]
    after = [i for i in word_idx if i > head]
    run = 0
    while run < len(after) and is_adj[after[run]]:
        run += 1
    if run == len(after):  # "Komisji Europejskiej": adjectives after the head, no noun of their own after them
        for i in after:
            out[i] = _agree(lemmas[i], gender, lang)
    return out


def _from_article(word: str, lang: str, vocabulary: set[str]) -> str | None:
    """An unknown word's nominative from the article's own name words: the word minus a case ending."""
    low = word.casefold()
    for ending in _CASE_ENDINGS.get(lang, ()):
        if low.endswith(ending) and len(low) - len(ending) >= 3:
            stem = word[: len(word) - len(ending)]
            if stem.casefold() in vocabulary:
                return stem
    return None


def phrase_bases(names: Sequence[tuple[str, str]], lang: str | None) -> list[str]:
    """(surface, type) of one article's mentions -> each mention's base form (same order)."""
    lang = (lang or "").split("-")[0].lower()
    if lang not in PYMORPHY_LANGS and lang not in SIMPLEMMA_LANGS and lang not in GENITIVE_S_LANGS:
        return [s for s, _ in names]
    vocabulary = {w.casefold() for s, _ in names for w in _TOKEN.findall(s) if _is_word(w)}
    cache: dict[tuple[str, str], str] = {}
    out = []
    for surface, etype in names:
        key = (surface, etype)
        if key not in cache:
            toks = _TOKEN.findall(surface)
            words_at = [i for i, t in enumerate(toks) if not t.isspace()]
            words = [toks[i] for i in words_at]
            if lang in GENITIVE_S_LANGS:
                based = list(words)
            else:
                based = (_pymorphy_words if lang in PYMORPHY_LANGS else _simplemma_words)(words, etype, lang)
            for j, (w, b) in enumerate(zip(words, based)):
                if b == w and _is_word(w) and not _fixed(w):
                    found = _from_article(w, lang, vocabulary)
                    if found:
                        based[j] = found
            for i, b in zip(words_at, based):
                toks[i] = b
            cache[key] = "".join(toks)
        out.append(cache[key])
    return out
