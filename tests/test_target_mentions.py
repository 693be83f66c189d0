"""A target's words found in the text, inflected forms included, with places and names kept strict."""
from modeling.target_mentions import target_mentions
from transforms.stance import target_spans


def found(text, target, lang, name=None, aliases=()):
    return [text[s:e] for s, e in target_mentions(text, [target, *aliases], lang, name)]


def test_a_german_common_noun_finds_its_inflected_forms_and_hyphenated_compounds():
    text = "Die Maskenpflicht gilt weiter. Gegen Maskenpflichten und die Corona-Maskenpflicht demonstrierten viele."
    assert target_mentions(text, ["Maskenpflicht"], "de") == [(4, 17), (37, 52), (68, 81)]
    assert found(text, "Maskenpflicht", "de") == ["Maskenpflicht", "Maskenpflichten", "Maskenpflicht"]
    # the stem of a base form in -e takes the endings too
    assert found("Die Waffenruhen halten, die Waffenruhe auch.", "Waffenruhe", "de") == ["Waffenruhen", "Waffenruhe"]
    assert found("Das Tier und die Tiere, den Tieren", "Tiere", "de") == ["Tier", "Tiere", "Tieren"]


def test_german_er_and_lower_case_words_are_other_words():
    # -er makes demonyms and agent nouns ("Kieler", "Musiker"), a lower-case word is a verb or adjective
    assert found("Der Kieler Trainer und der Musiker", "Kiel", "de") == []
    assert found("Der Kieler Trainer und der Musiker", "Musik", "de") == []
    assert found("Wer geimpft ist, zählt zu den Geimpften.", "Geimpfte", "de") == ["Geimpften"]
    # a closed compound does not hold its head as a mention: a Bratwurst is not the target Wurst
    assert found("Eine Bratwurst und eine Wurst.", "Wurst", "de") == ["Wurst"]


def test_the_ceasefire_in_any_case_and_number():
    text = "Ceasefire holds. The ceasefire was agreed; both ceasefires failed before."
    for target in ("the ceasefire", "ceasefire", "The Ceasefire"):
        assert found(text, target, "en", name=False) == ["Ceasefire", "ceasefire", "ceasefires"], target
    # a capitalised English word is a name unless the caller knows better: its case counts
    assert found(text, "Ceasefire", "en") == ["Ceasefire"]
    # the target's "the" is left out of the span; a lower-case target is a common noun
    assert target_mentions(text, ["the ceasefire"], "en") == [(0, 9), (21, 30), (48, 58)]


def test_a_russian_common_noun_in_its_cases():
    text = "Перемирие нарушено. Стороны обсуждают условия перемирия и довольны перемирием."
    assert found(text, "перемирие", "ru") == ["Перемирие", "перемирия", "перемирием"]
    # the oblique form given as the target finds the others through its stem
    assert found(text, "перемирия", "ru") == ["Перемирие", "перемирия", "перемирием"]


def test_a_polish_common_noun_in_its_cases():
    text = "Rozejm obowiązuje od wczoraj. Łamanie rozejmu potępiono."
    assert found(text, "rozejm", "pl") == ["Rozejm", "rozejmu"]


def test_a_place_is_not_its_demonym():
    text = "Armenia said Armenian forces and Armenians in Russia; Russians and the Russian army."
    assert found(text, "Armenia", "en") == ["Armenia"]
    assert found(text, "Russia", "en") == ["Russia"]
    assert found("Деловая Россия и российский бизнес, России", "Россия", "ru") == ["Россия"]  # cases through ids
    assert found("Deutschland und deutsche Firmen, Deutschlands Rolle", "Deutschland", "de") == [
        "Deutschland", "Deutschlands"]  # the German genitive is the place
    assert found("Der Schweizer Franken", "Schweiz", "de") == []


def test_a_name_is_not_a_substring_of_a_longer_word_and_keeps_its_case():
    text = "Putins Plan, Rasputin and Putin; putin is a dish; Путина видели, Путинский режим, Путину."
    assert found(text, "Putin", "de", name=True) == ["Putins", "Putin"]
    assert found(text, "Putin", "en") == ["Putins", "Putin"]
    assert found(text, "Путин", "ru") == ["Путина", "Путину"]
    # a surname suffix is no case ending after a name: Иванов is not Иван
    assert found("Иван и Иванов, Ивана", "Иван", "ru") == ["Иван", "Ивана"]
    # acronyms exactly
    assert found("NATO und NATOs, Nato-Gipfel", "NATO", "de") == ["NATO"]


def test_without_a_language_whole_words_only():
    assert found("Maskenpflicht, Maskenpflichten", "Maskenpflicht", None) == ["Maskenpflicht"]
    assert found("Maskenpflicht, Maskenpflichten", "Maskenpflicht", "und") == ["Maskenpflicht"]


def test_multi_word_targets_inflect_word_by_word_and_spans_do_not_overlap():
    text = "Зерновая сделка продлена. Срок зерновой сделки истёк; сделки нет."
    assert found(text, "зерновая сделка", "ru") == ["Зерновая сделка", "зерновой сделки"]
    text = "Olaf Scholz and Scholz's plan"
    assert target_mentions(text, ["Olaf Scholz", "Scholz"], "en") == [(0, 11), (16, 22)]


def test_the_stage_finds_a_common_noun_target_in_the_article_language():
    text = "Die Maskenpflicht bleibt. Kritik an den Maskenpflichten wächst."
    article = {"text": text, "entities": [], "language": {"code": "de"}}
    assert [text[s:e] for s, e in target_spans(article, "Maskenpflicht", [])] == ["Maskenpflicht", "Maskenpflichten"]
