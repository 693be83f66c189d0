"""Entities of one article (modeling.entities, lemmas, entity_ids) and target matching by id: pure functions,
no Beam, no model."""
from __future__ import annotations

import pytest

from modeling.entities import clean_spans, group_mentions, resolve_entities, trim_span
from modeling.entity_ids import entity_id, skeleton
from modeling.lemmas import phrase_bases
from modeling.ner import Span
from transforms.stance import target_spans


def spans_of(text: str, *names: tuple[str, str]) -> list[Span]:
    """Spans for each (surface, type) at every occurrence outside a longer name, as the NER would give them."""
    out: list[Span] = []
    for surface, etype in sorted(names, key=lambda n: -len(n[0])):
        start = text.find(surface)
        while start >= 0:
            end = start + len(surface)
            if not any(s.start < end and start < s.end for s in out):
                out.append(Span(start, end, etype, 0.9))
            start = text.find(surface, start + 1)
    return sorted(out, key=lambda s: s.start)


def trimmed(text: str, surface: str) -> str | None:
    start = text.index(surface)
    cut = trim_span(text, start, start + len(surface))
    return None if cut is None else text[cut[0]:cut[1]]


def test_trim_cuts_possessives_and_edge_punctuation_but_keeps_abbreviations():
    text = ("Pashinyan's plan. Pashinyan' again. Microsoft released Windows Server 2019. Then \"Gazprom\" and "
            "the U.S. and Prawo i Sprawiedliwość (PiS) and J. Smith, ok")
    assert trimmed(text, "Pashinyan's") == "Pashinyan"
    assert trimmed(text, "Pashinyan'") == "Pashinyan"
    assert trimmed(text, "Windows Server 2019.") == "Windows Server 2019"
    assert trimmed(text, "\"Gazprom\"") == "Gazprom"
    assert trimmed(text, "U.S.") == "U.S."
    assert trimmed(text, "Prawo i Sprawiedliwość (PiS)") == "Prawo i Sprawiedliwość (PiS)"
    assert trimmed(text, "J. Smith,") == "J. Smith"
    assert trim_span(text, text.index("."), text.index(".") + 1) is None


def completed(text: str, surface: str) -> list[str]:
    start = text.index(surface)
    return [text[a:b] for a, b in clean_spans(text, start, start + len(surface))]


@pytest.mark.parametrize("text, model_span, name", [
    ("Evropská komise | Týden.cz\n\nBrusel", "Týden", "Týden.cz"),          # a web host runs on to its domain
    ("pro Evropu – EurActiv.pl\n\nDziś", "EurActiv.", "EurActiv.pl"),        # ... also past a dot the model took
    ("Vlada :: Evropa.gov.si\n\nEvropska", "Evropa", "Evropa.gov.si"),
    ("ТОВ ім. Чапаєва, ДП «Орелька», ПАТ", "ДП «Орелька", "ДП «Орелька»"),  # an opened quote is closed
    ("przez Parlament Eur., po czym", "Parlament Eur", "Parlament Eur."),    # an abbreviation where the text goes on
    ("kraljica Elizabeta II. in Nelson Mandela", "Elizabeta II", "Elizabeta II."),
])
def test_spans_run_on_to_the_end_of_the_name_the_model_stopped_inside(text, model_span, name):
    assert completed(text, model_span) == [name]


@pytest.mark.parametrize("text, model_span, name", [
    ("Microsoft released Windows Server 2019. Then", "Windows Server 2019.", "Windows Server 2019"),
    ("They flew to Brussels. it rained", "Brussels.", "Brussels"),   # a long word's dot is a full stop
    ("Sanctions on the EU. officials said", "EU", "EU"),              # an acronym takes no dot
    ("Queen Elizabeth II. The crowd", "Elizabeth II", "Elizabeth II"),  # the sentence ends there
    ("He read Gazeta.Later he left", "Gazeta", "Gazeta"),             # no domain: a capital follows the dot
])
def test_spans_are_not_run_on_past_the_name(text, model_span, name):
    assert completed(text, model_span) == [name]


def test_short_forms_join_the_one_longer_name_that_holds_them():
    text = "Sergei Shoigu met Nikol Pashinyan. Shoigu said Pashinyan's team agreed. Ivanka Trump, Donald Trump, Trump."
    ents = resolve_entities(text, spans_of(text, ("Sergei Shoigu", "PER"), ("Nikol Pashinyan", "PER"),
                                           ("Shoigu", "PER"), ("Pashinyan's", "PER"), ("Ivanka Trump", "PER"),
                                           ("Donald Trump", "PER"), ("Trump.", "PER"), ("Pashinyan", "PER")), "en")
    by_text = {e["text"]: e for e in ents}
    assert by_text["Sergei Shoigu"]["count"] == 2 and by_text["Nikol Pashinyan"]["count"] == 2
    assert [m["text"] for m in by_text["Nikol Pashinyan"]["mentions"]] == ["Nikol Pashinyan", "Pashinyan"]
    # "Trump" fits two longer names: it stays on its own rather than be guessed
    assert {"Ivanka Trump", "Donald Trump", "Trump"} <= set(by_text)
    for e in ents:
        for m in e["mentions"]:
            assert text[m["start"]:m["end"]] == m["text"]


def test_shoigu_is_not_split_by_the_model_span_ending_with_a_word():
    ms = [{"type": "PER", "text": "Sergei Shoigu", "base": "Sergei Shoigu"},
          {"type": "PER", "text": "Shoigu", "base": "Shoigu"},
          {"type": "LOC", "text": "Shoigu", "base": "Shoigu"}]
    assert sorted(group_mentions(ms)) == [[0, 1], [2]]  # another type never joins


def test_inflected_forms_are_one_entity_with_a_base_form():
    ru = "Хабиб Нурмагомедов победил. У Хабиба нет соперников. Европейской комиссии ответила Европейская комиссия."
    ents = resolve_entities(ru, spans_of(ru, ("Хабиб Нурмагомедов", "PER"), ("Хабиба", "PER"),
                                         ("Европейской комиссии", "ORG"), ("Европейская комиссия", "ORG")), "ru")
    by_base = {e["base"]: e for e in ents}
    assert by_base["Хабиб Нурмагомедов"]["count"] == 2
    assert by_base["Европейская комиссия"]["count"] == 2
    pl = "Komisja Europejska ostrzega. Według Komisji Europejskiej to błąd. Komisji nie chodzi o to."
    ents = resolve_entities(pl, spans_of(pl, ("Komisja Europejska", "ORG"), ("Komisji Europejskiej", "ORG"),
                                         ("Komisji", "ORG")), "pl")
    assert len(ents) == 1 and ents[0]["base"] == "Komisja Europejska" and ents[0]["count"] == 3


@pytest.mark.parametrize("lang, surface, etype, base", [
    ("pl", "Komisji Europejskiej", "ORG", "Komisja Europejska"),
    ("pl", "Europejskiego Trybunału Sprawiedliwości", "ORG", "Europejski Trybunał Sprawiedliwości"),
    ("cs", "Evropské komise", "ORG", "Evropská komise"),
    ("sl", "Evropske komisije", "ORG", "Evropska komisija"),
    ("ru", "Азербайджана", "LOC", "Азербайджан"),
    ("ru", "Министерства иностранных дел", "ORG", "Министерство иностранных дел"),
    ("ru", "Владимиру Путину", "PER", "Владимир Путин"),
    ("uk", "Європейської комісії", "ORG", "Європейська комісія"),
    ("uk", "Ради Європи", "ORG", "Рада Європи"),
    ("pl", "Hillary Clinton", "PER", "Hillary Clinton"),
    ("cs", "Věry Jourové", "PER", "Věra Jourová"),
    ("en", "United States", "LOC", "United States"),
])
def test_base_forms_agree(lang, surface, etype, base):
    assert phrase_bases([(surface, etype)], lang) == [base]


def test_unknown_names_take_their_base_from_the_article():
    assert phrase_bases([("Trumpova", "PER"), ("Trump", "PER")], "cs")[0] == "Trump"


def test_a_german_genitive_takes_the_base_and_the_id_of_its_name():
    names = [("Armenien", "LOC"), ("Armeniens", "LOC"), ("Nikol Paschinjans", "PER"), ("Nikol Paschinjan", "PER"),
             ("Paris", "LOC")]
    assert phrase_bases(names, "de") == ["Armenien", "Armenien", "Nikol Paschinjan", "Nikol Paschinjan", "Paris"]
    # alone in its article, a country's genitive still finds the country; a name ending in s keeps its own id
    assert entity_id("Russlands", "LOC", "de")[0] == "cldr:RU" and entity_id("Russlands", "LOC", "en")[0] != "cldr:RU"
    assert entity_id("Paris", "LOC", "de")[0] == "city:Europe/Paris"


def test_one_id_across_languages_and_cases():
    ids = {entity_id(n, "LOC")[0] for n in ("Germany", "Niemcy", "Германия", "Německo", "Nemčija", "Німеччина")}
    assert ids == {"cldr:DE"} and entity_id("Niemcy", "LOC")[1] == "Germany"
    assert entity_id("Bruksela", "LOC") == entity_id("Брюссель", "LOC") == ("city:Europe/Brussels", "Brussels")
    # names CLDR does not have: the phonetic key across scripts
    assert entity_id("Evropská komise", "ORG")[0] == entity_id("Европейская комиссия", "ORG")[0] \
        == entity_id("Komisja Europejska", "ORG")[0]
    assert entity_id("Donald Trump", "PER")[0] == entity_id("Трамп", "PER")[0]
    assert entity_id("Donald Trump", "PER")[0] != entity_id("Vladimir Putin", "PER")[0]
    assert skeleton("Komisja") == skeleton("комиссия") == skeleton("komise")
    # an adjective (MISC) is not the country
    assert entity_id("Azerbaijani", "MISC")[0] != "cldr:AZ"


def test_names_keep_their_letters_and_their_digits():
    assert entity_id("Markus Söder", "PER", "de")[1] == "Markus Söder"
    assert entity_id("Ильхам Алиев", "PER", "ru")[1] == "Ильхам Алиев"
    assert entity_id("G7", "ORG")[0] != entity_id("G20", "ORG")[0]
    assert entity_id("G7", "ORG")[0] == entity_id("G7", "ORG", "ru")[0]
    # a name in another script gets its transliteration beside it, a Latin one does not
    text = "Ильхам Алиев и Markus Söder."
    ents = {e["text"]: e for e in resolve_entities(text, spans_of(text, ("Ильхам Алиев", "PER"), ("Markus Söder", "PER")), "ru")}
    assert ents["Ильхам Алиев"]["name_latin"] == "Ilkham Aliev" and "name_latin" not in ents["Markus Söder"]


@pytest.mark.parametrize("name", ["Britain", "Great Britain", "UK", "United Kingdom", "Британия", "Великобритания"])
def test_britain_is_the_united_kingdom(name):
    assert entity_id(name, "LOC", "en")[0] == "cldr:GB"


@pytest.mark.parametrize("surface, etype, lang, eid", [
    ("США", "LOC", "ru", "cldr:US"), ("США", "LOC", "uk", "cldr:US"), ("ZDA", "LOC", "sl", "cldr:US"),
    ("U.S.", "LOC", "en", "cldr:US"), ("US", "LOC", "de", "cldr:US"),        # English initials in any language
    ("РФ", "LOC", "ru", "cldr:RU"), ("ФРГ", "LOC", "ru", "cldr:DE"), ("RFN", "LOC", "pl", "cldr:DE"),
    ("КНР", "LOC", "ru", "cldr:CN"), ("DPRK", "LOC", "en", "cldr:KP"),
    ("ЕС", "ORG", "ru", "cldr:EU"), ("ЄС", "ORG", "uk", "cldr:EU"), ("UE", "ORG", "pl", "cldr:EU"),
    ("Российская Федерация", "LOC", "ru", "cldr:RU"), ("Соединённые Штаты Америки", "LOC", "ru", "cldr:US"),
    ("Česká republika", "LOC", "cs", "cldr:CZ"), ("Federacja Rosyjska", "LOC", "pl", "cldr:RU"),
])
def test_acronyms_and_official_names_of_countries_take_the_countrys_id(surface, etype, lang, eid):
    assert entity_id(surface, etype, lang)[0] == eid


def test_acronyms_that_name_no_country_for_sure_keep_their_own_id():
    # "Komisja Europejska" is not "Królestwo Eswatini", though both give "KE": a title and the country's own
    # one-word name give no acronym; nor does an acronym two countries' names share
    assert entity_id("KE", "ORG", "pl")[0].startswith("name:")
    assert entity_id("ЕК", "ORG", "ru")[0].startswith("name:")
    assert entity_id("NATO", "ORG", "en")[0].startswith("name:")
    # a long name whose article also has its acronym keeps the long name's id
    text = "Komisja Europejska (KE) ostrzega. KE nie chce."
    ents = resolve_entities(text, spans_of(text, ("Komisja Europejska", "ORG"), ("KE", "ORG")), "pl")
    assert len(ents) == 1 and ents[0]["id"] == entity_id("Komisja Europejska", "ORG", "pl")[0]


def test_a_country_target_finds_its_acronym():
    text = "Госдеп США заявил, что санкции против РФ останутся."
    ents = resolve_entities(text, spans_of(text, ("США", "LOC"), ("РФ", "LOC")), "ru")
    article = {"text": text, "entities": ents}
    assert [text[s:e] for s, e in target_spans(article, "United States", [])] == ["США"]
    assert [text[s:e] for s, e in target_spans(article, "Russia", [])] == ["РФ"]


def test_a_target_finds_its_entity_in_any_language_and_case():
    text = "Лачинский коридор связывает Степанакерт с Арменией. Президент Азербайджана заявил."
    ents = resolve_entities(text, spans_of(text, ("Арменией", "LOC"), ("Азербайджана", "LOC")), "ru")
    article = {"text": text, "entities": ents}
    assert [text[s:e] for s, e in target_spans(article, "Armenia", [])] == ["Арменией"]
    assert [text[s:e] for s, e in target_spans(article, "Azerbaijan", [])] == ["Азербайджана"]
    # a person whose name sounds like the country is not the country; a person target finds the surname alone
    text2 = "Armen Sarkissian met Nikol Pashinyan. Armen said Пашинян agreed."
    ents2 = resolve_entities(text2, spans_of(text2, ("Armen Sarkissian", "PER"), ("Armen", "PER"),
                                             ("Nikol Pashinyan", "PER"), ("Пашинян", "PER")), "en")
    assert target_spans({"text": text2, "entities": ents2}, "Armenia", []) == []
    assert [text2[s:e] for s, e in target_spans({"text": text2, "entities": ents2}, "Nikol Pashinyan", [])] == [
        "Nikol Pashinyan", "Пашинян"]
    # the aliases stay an override for what NER missed
    assert [text[s:e] for s, e in target_spans(article, "Armenia", ["Степанакерт"])] == ["Степанакерт", "Арменией"]


def test_one_name_has_one_type_within_an_article():
    text = "Google said. Googlu se nelíbí. Google again, Google."
    spans = [Span(0, 6, "ORG", 0.9), Span(13, 19, "PER", 0.6), Span(31, 37, "ORG", 0.9), Span(45, 51, "PER", 0.5)]
    ents = resolve_entities(text, spans, "cs")
    google = [e for e in ents if e["base"] == "Google"]
    assert len(google) == 1 and google[0]["type"] == "ORG" and google[0]["count"] == 3


def test_odd_spans_are_dropped_or_kept_never_a_crash():
    text = "«»... 北京 said. americký trh. Microsoft\n\nGoogle."
    spans = [Span(0, 5, "ORG", 0.5), Span(6, 8, "LOC", 0.9), Span(15, 22, "LOC", 0.8),
             Span(28, len(text), "ORG", 0.7)]
    ents = resolve_entities(text, spans, None)
    got = sorted((e["type"], m["text"]) for e in ents for m in e["mentions"])
    # punctuation only: dropped; no case (Chinese): kept; all lower case ("americký"): dropped; a line break
    # splits one span into two names
    assert got == [("LOC", "北京"), ("ORG", "Google"), ("ORG", "Microsoft")]
    assert resolve_entities("", [], "und") == []
    for lang in (None, "und", "ja", "uk", "xx-YY"):
        assert all(e["id"] and e["name"] and e["base"] for e in resolve_entities(text, spans, lang))
