"""Entity ids and display names that are the same across languages, articles, runs and runners.

`entity_id(base, type, lang)` is a pure function of the name (no index, no run-time state), so two workers, two
runs or two runners give one id to one name. Two sources, tried in order:
1. CLDR names (Babel, pinned), for places and organisations: territory names in every base locale Babel ships (~300), e.g. Germany / Niemcy /
   Германия / Německo -> `cldr:DE`, European Union / Unia Europejska / Европейский союз -> `cldr:EU`; and the
   exemplar city of each time zone (Brussels / Bruksela / Брюссель -> `city:Europe/Brussels`); also the ISO 3166
   official names as iso-codes translates them (pycountry, pinned: "Российская Федерация", "Česká republika"),
   and a country's acronym where the base is one: the initials of its names in the article's language or in
   English ("США", "РФ", "ZDA", "UE", "ЄС", "U.S."; `acronyms`). The display name is CLDR's English name, the
   same for every language.
2. Otherwise a cross-script phonetic key of the base form: transliterated to ASCII (anyascii), letters that
   Latin and Cyrillic Slavic spellings write differently folded together (sz/sh/š -> s, w -> v, ck -> k, ...),
   vowels and j dropped, repeats collapsed, words sorted: "Evropská komise", "Komisja Europejska",
   "Европейская комиссия" -> "kms vrpsk". For people the key is the surname (the last word) alone, so "Donald
   Trump" and "Трамп" meet. Its display name is the base form as written, letters kept ("Markus Söder",
   "Ильхам Алиев"), with its Latin transliteration beside it (`latin_name`) where the script is not Latin; the
   report shows one name per id (the most frequent). A few short English country names CLDR leaves out
   ("Britain", `_SHORT_NAMES`) are matched through the same key, in any script.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import defaultdict
from functools import lru_cache

from modeling.lemmas import GENITIVE_S_LANGS

_APOSTROPHES = str.maketrans({"’": "'", "ʼ": "'", "`": "'", "ё": "е", "Ё": "Е"})


def name_key(s: str) -> str:
    """How names are compared for a CLDR look-up: NFKC, case-folded, one apostrophe, ё as е, spaces collapsed."""
    s = unicodedata.normalize("NFKC", s).translate(_APOSTROPHES).casefold()
    s = re.sub(r"[\"«»„“”()\[\].,]", " ", s).replace("-", " ")
    return " ".join(s.split())


@lru_cache(maxsize=1)
def cldr_names() -> dict[str, tuple[str, str]]:
    """name_key(name in any base locale) -> (id, English name), from Babel's CLDR data (built once per process,
    about 1.5 s). Territories first; a city name does not override a territory name; within one kind, the first
    locale in sorted order wins, so the table is the same everywhere."""
    from babel import Locale
    from babel.localedata import locale_identifiers

    en = Locale.parse("en")
    table: dict[str, tuple[str, str]] = {}
    locales = sorted(i for i in locale_identifiers() if "_" not in i and i != "root")
    loaded = [Locale.parse(i) for i in locales]
    for loc in [en, *loaded]:
        for code, name in sorted(loc.territories.items()):
            if code in en.territories and code not in ("ZZ", "001"):
                table.setdefault(name_key(name), (f"cldr:{code}", en.territories[code]))
    for lang in ("en", *_iso_languages()):
        for code, name in iso_names(lang):
            if code in en.territories:
                table.setdefault(name_key(name), (f"cldr:{code}", en.territories[code]))
    zones = sorted({z for loc in loaded for z in loc.time_zones} | set(en.time_zones))
    zones = [z for z in zones if z.count("/") == 1 and not z.startswith(("Etc/", "SystemV/"))]

    def city_of(loc, zone: str) -> str | None:
        info = loc.time_zones.get(zone)
        city = info.get("city") if info is not None else None
        # English (and root) leave the city out where it is the zone's own name: "Europe/Moscow" -> Moscow
        return city or (zone.split("/")[-1].replace("_", " ") if loc is en else None)

    for loc in [en, *loaded]:
        for zone in zones:
            city = city_of(loc, zone)
            if city:
                table.setdefault(name_key(city), (f"city:{zone}", city_of(en, zone)))
    return table


# Territory names beyond CLDR's short ones: ISO 3166 official and common names as the iso-codes project translates
# them (pycountry ships the translations): "Российская Федерация", "Stany Zjednoczone Ameryki", "Сполучені Штати
# Америки", "Česká republika".
_ISO_DOMAIN = "iso3166-1"


@lru_cache(maxsize=None)
def iso_names(lang: str) -> tuple[tuple[str, str], ...]:
    """(ISO 3166 alpha-2 code, name) for every country's official, common and short name in `lang` ("en": the
    untranslated names); () where iso-codes has no translation into `lang`."""
    import gettext

    import pycountry

    if lang == "en":
        translate = str
    else:
        try:
            translate = gettext.translation(_ISO_DOMAIN, pycountry.LOCALES_DIR, languages=[lang]).gettext
        except OSError:
            return ()
    out = []
    for country in pycountry.countries:
        for attr in ("official_name", "common_name", "name"):
            name = getattr(country, attr, None)
            if name:
                out.append((country.alpha_2, translate(name)))
    return tuple(out)


@lru_cache(maxsize=1)
def _iso_languages() -> tuple[str, ...]:
    import os

    import pycountry

    return tuple(sorted(d for d in os.listdir(pycountry.LOCALES_DIR)
                        if os.path.exists(os.path.join(pycountry.LOCALES_DIR, d, "LC_MESSAGES", f"{_ISO_DOMAIN}.mo"))))


_FUNCTION_WORD = re.compile(r"^[^\W\d_]{1,3}$")  # "of", "the", "and", "de", "и", "та": left out of initials


def content_words(name: str, split: str = r"\s+") -> list[str]:
    """A name's words without short lower-case function words ("of", "the", "и"), split at `split`."""
    return [w for w in re.split(split, name) if w and not (w.islower() and _FUNCTION_WORD.match(w))]


def initials(name: str) -> str:
    """The acronym a name's words give: the first letter of each content word (hyphenated parts are words),
    upper-cased: "United States of America" -> "USA", "Корейская Народно-Демократическая Республика" -> "КНДР",
    "Unia Europejska" -> "UE"."""
    return "".join(w[0] for w in content_words(name, r"[\s\-‐'’]+") if w[0].isalpha()).upper()


@lru_cache(maxsize=None)
def acronyms(lang: str) -> dict[str, tuple[str, str]]:
    """Acronym -> (id, English name) in one language: the initials of the CLDR territory names and the ISO 3166
    names in `lang` ("США", "РФ", "ЕС", "ZDA", "UE", "RFN"). A title and the country's own one-word name
    ("Республика Фиджи", "Królestwo Eswatini") gives none: such initials are not how the country is written. An
    acronym that two territories' names give is left out: it names neither for sure."""
    from babel import Locale, UnknownLocaleError

    en = Locale.parse("en")
    names: list[tuple[str, str]] = list(iso_names(lang))
    try:
        names += [(code, name) for code, name in Locale.parse(lang).territories.items()]
    except (UnknownLocaleError, ValueError):
        pass
    names = [(code, name) for code, name in names if code in en.territories and code not in ("ZZ", "001")]
    own: dict[str, set[str]] = defaultdict(set)
    for code, name in names:
        own[code].add(name.casefold())
    found: dict[str, set[str]] = defaultdict(set)
    for code, name in names:
        words = content_words(name)
        if len(words) == 2 and any(w.casefold() in own[code] for w in words):
            continue
        acronym = initials(name)
        if 2 <= len(acronym) <= 6:
            found[acronym].add(code)
    return {a: (f"cldr:{code}", en.territories[code]) for a, codes in found.items() if len(codes) == 1
            for code in codes}


def acronym_of(surface: str) -> str | None:
    """The letters of a surface written as an acronym ("США", "U.S.", "EU"), else None."""
    letters = surface.replace(".", "").strip()
    if 2 <= len(letters) <= 6 and letters.isalpha() and letters.isupper():
        return letters
    return None


_FOLDS = [("sch", "s"), ("sh", "s"), ("sz", "s"), ("zh", "z"), ("rz", "z"), ("ch", "h"), ("kh", "h"), ("cz", "c"),
          ("ts", "c"), ("tz", "c"), ("ck", "k"), ("ph", "f"), ("th", "t"), ("w", "v"), ("q", "k"), ("x", "ks"),
          ("g", "h"), ("dj", "d")]


def skeleton(word: str) -> str:
    """A word's cross-script phonetic skeleton: ASCII, Slavic spelling differences folded, vowels and j/y dropped,
    repeats collapsed ("Komisja" / "komise" / "комиссия" -> "kms"). Short words and acronyms keep their letters."""
    from anyascii import anyascii

    a = re.sub(r"[^a-z0-9]", "", anyascii(word).lower())  # digits kept: "G7" and "G20" are two names
    if not a:
        return word.casefold()
    if a.startswith("eu"):  # Europa / Evropa / Европа
        a = "ev" + a[2:]
    elif a.startswith(("ie", "ye")):  # Ukrainian Є- / Russian Е- transliterated
        a = "e" + a[2:]
    for src, dst in _FOLDS:
        a = a.replace(src, dst)
    head = "_" if a[0] in "aeiouy" else ""
    cons = re.sub(r"[aeiouyj]", "", a)
    cons = re.sub(r"(.)\1+", r"\1", cons)
    if len(cons) < 2:
        return "=" + a
    return head + cons


_FEMININE_SURNAME = re.compile(r"(?<=[^aeiouy])(?:ova|owa|eva|ewa)$")


def phonetic_key(base: str, etype: str) -> str:
    """Sorted word skeletons; for a person the surname alone, without a Slavic feminine suffix ("Clintonová",
    "Clintonova" -> "Clinton")."""
    words = re.findall(r"\w+", base)
    if not words:
        return base.casefold()
    if etype == "PER":
        from anyascii import anyascii

        surname = re.sub(r"[^a-z]", "", anyascii(words[-1]).lower())
        return skeleton(_FEMININE_SURNAME.sub("", surname) if len(surname) > 6 else surname)
    return " ".join(sorted(skeleton(w) for w in words))


def latin_name(base: str) -> str:
    """The name in Latin letters: as written where it is Latin already ("Markus Söder" keeps its ö), else a
    transliteration ("Ильхам Алиев" -> "Ilkham Aliev")."""
    from anyascii import anyascii

    base = unicodedata.normalize("NFC", base).strip()
    if is_latin(base):
        return base
    return anyascii(base).replace("'", "").strip()


def is_latin(name: str) -> bool:
    """Whether every letter of a name is a Latin one (accented letters included)."""
    return all("LATIN" in unicodedata.name(ch, "") for ch in name if ch.isalpha())


# Short English names of countries that neither CLDR's territory names nor ISO 3166 give. Matched through the
# phonetic key, so the same short name in another script meets them too ("Британия", "Brytania").
_SHORT_NAMES = {"Britain": "GB", "Great Britain": "GB", "Holland": "NL"}


@lru_cache(maxsize=1)
def _short_name_keys() -> dict[str, tuple[str, str]]:
    from babel import Locale

    en = Locale.parse("en")
    return {phonetic_key(name, "LOC"): (f"cldr:{code}", en.territories[code]) for name, code in _SHORT_NAMES.items()}


def entity_id(base: str, etype: str, lang: str | None = None, forms: tuple[str, ...] = ()) -> tuple[str, str]:
    """(id, display name) of an entity from its base form and type (see the module docstring). `forms`: the
    entity's surface forms, tried in CLDR after the base (a lemmatiser's wrong guess does not hide "Francija")."""
    if etype in ("LOC", "ORG"):  # not MISC ("Azerbaijani" is a CLDR name for the country in some locale)
        table = cldr_names()
        names = (base, *forms)
        if (lang or "").split("-")[0].lower() in GENITIVE_S_LANGS:  # "Russlands" alone in its article
            names += tuple(n[:-1] for n in names if n.endswith("s"))
        for name in names:
            hit = table.get(name_key(name))
            if hit is not None:
                return hit
        letters = acronym_of(base)  # "США", "ZDA", "U.S.": initials of a territory name in this language or English
        for language in dict.fromkeys(l for l in (lang, "en") if l and letters):
            hit = acronyms(language).get(letters)
            if hit is not None:
                return hit
    key = phonetic_key(base, etype)
    if etype == "LOC" and key in _short_name_keys():
        return _short_name_keys()[key]
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
    return f"name:{digest}", unicodedata.normalize("NFC", base).strip()
