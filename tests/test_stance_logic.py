"""Stance pure logic: target specs, mentions, sentences, aggregation, the no-mention rule."""
from __future__ import annotations

import pytest

from modeling.stance import aggregate, find_mentions, mark_mention, sentence_around
from transforms.stance import (MentionPlan, parse_target_specs, plan_mentions, skip_stance, stance_records,
                               targets_for, with_config_aliases)


def test_target_specs_with_aliases():
    assert parse_target_specs(["Armenia", "Azerbaijan=Azerbaijani, Baku"]) == {
        "Armenia": [], "Azerbaijan": ["Azerbaijani", "Baku"]}
    with pytest.raises(ValueError):
        parse_target_specs(["=x"])


def test_mentions_at_word_boundaries():
    text = "Armenian troops left Armenia's border; Armenia agreed."
    assert [text[s:e] for s, e in find_mentions(text, ["Armenia"])] == ["Armenia", "Armenia"]
    assert find_mentions("Baku and Azerbaijan", ["Azerbaijan", "Baku"]) == [(0, 4), (9, 19)]


def test_sentence_around_and_marking():
    text = "First sentence here. Armenia signed the deal. Last one."
    left, right = sentence_around(text, 21, 28)
    assert text[left:right] == "Armenia signed the deal."
    assert mark_mention("Armenia signed", 0, 7) == "<< Armenia >> signed"


def test_aggregate_mean_of_probabilities():
    label, score, mean = aggregate([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    assert label == "against" and score == 0.4 and mean == [0.4, 0.3, 0.3]


def test_not_mentioned_costs_no_model_call():
    article = {"text": "Nothing about those countries.", "targets": None}
    plan = plan_mentions(article, {"Armenia": []})
    assert plan == {"Armenia": MentionPlan(0, [])}
    rec = stance_records(plan, {})
    # no label: a groupby on label must not count an unmentioned target as a confident neutral
    assert rec == [{"target": "Armenia", "label": None, "score": None, "probabilities": None, "mentions": 0,
                    "reason": "not mentioned"}]


def test_mention_count_is_every_mention_not_only_the_classified_ones():
    article = {"text": " ".join(["Armenia said so."] * 12), "targets": None}
    plan = plan_mentions(article, {"Armenia": []}, max_mentions=3)
    assert plan["Armenia"].count == 12 and len(plan["Armenia"].items) == 3
    rec = stance_records(plan, {"Armenia": [[0.2, 0.1, 0.7]] * 3})
    assert rec[0]["mentions"] == 12 and rec[0]["label"] is not None


def test_skipped_stance_still_lists_every_target_with_its_mentions():
    article = {"text": "Armenia and Baku met. Armenia left.", "targets": None, "entities": [],
               "ner": {"status": "done"}}
    out = skip_stance(article, {"Armenia": [], "Azerbaijan": ["Baku"], "Georgia": []}, "unsupported language: hy")
    assert out["stance_status"] == {"status": "skipped", "reason": "unsupported language: hy"}
    assert [(s["target"], s["mentions"], s["label"], s["reason"]) for s in out["stance"]] == [
        ("Armenia", 2, None, "unsupported language: hy"), ("Azerbaijan", 1, None, "unsupported language: hy"),
        ("Georgia", 0, None, "not mentioned")]


def test_without_entities_a_target_is_never_called_not_mentioned():
    """NER skipped: a count of 0 says only that no alias string is in the text ("Грузия" is Georgia unread)."""
    article = {"text": "Армения и Грузия.", "targets": None, "entities": [],
               "ner": {"status": "skipped", "reason": "unsupported language: bg"}}
    out = skip_stance(article, {"Georgia": []}, "unsupported language: bg (stance covers en, ru)")
    assert [(s["mentions"], s["label"], s["reason"]) for s in out["stance"]] == [
        (0, None, "unsupported language: bg (stance covers en, ru)")]


def test_command_line_targets_keep_the_config_aliases():
    config = {"Azerbaijan": ["Baku", "Азербайджана"], "Armenia": ["Yerevan"]}
    assert with_config_aliases({"azerbaijan": ["Ganja"], "Turkey": []}, config) == {
        "azerbaijan": ["Ganja", "Baku", "Азербайджана"], "Turkey": []}


def test_record_targets_replace_configured_ones():
    assert targets_for({"targets": ["Russia"]}, {"Armenia": [], "Russia": ["Moscow"]}) == {"Russia": ["Moscow"]}
    assert targets_for({}, {"Armenia": []}) == {"Armenia": []}


def test_auto_targets_take_top_named_entities_with_their_surface_forms():
    article = {"entities": [
        {"text": "Azerbaijan", "type": "LOC", "mentions": [{"text": "Azerbaijan"}, {"text": "AZERBAIJAN"}]},
        {"text": "Azerbaijani", "type": "MISC", "mentions": [{"text": "Azerbaijani"}]},
        {"text": "Shoigu", "type": "PER", "mentions": [{"text": "Shoigu"}]},
        {"text": "Moscow", "type": "LOC", "mentions": [{"text": "Moscow"}]}]}
    assert targets_for(article, {"auto": []}, auto_top_n=2) == {"Azerbaijan": ["AZERBAIJAN"], "Shoigu": []}


def test_stance_languages_default_to_the_ner_languages_and_only_those():
    from transforms.stance import STANCE_MEASURED, parse_stance_languages

    ner = ("en", "de", "fr", "pl")
    assert parse_stance_languages(None, ner) == ner
    assert parse_stance_languages("measured", ner) == tuple(c for c in ner if c in STANCE_MEASURED)
    assert parse_stance_languages("fr, EN,fr", ner) == ("fr", "en")
    with pytest.raises(ValueError, match="NER does not run on it"):
        parse_stance_languages("sv", ner)
    with pytest.raises(ValueError, match="not an ISO 639"):
        parse_stance_languages("xx1", ner)
    with pytest.raises(ValueError, match="at least one"):
        parse_stance_languages(" , ", ner)


def test_a_label_in_an_unmeasured_language_says_so_and_an_unlabelled_entry_says_nothing():
    from transforms.stance import STANCE_MEASURED, with_measured, zero_shot_reason

    records = [{"target": "Armenia", "label": "neutral", "score": 0.6, "mentions": 2, "reason": None},
               {"target": "Georgia", "label": None, "score": None, "mentions": 0, "reason": "not mentioned"}]
    assert [r.get("measured") for r in with_measured(records, "fr")] == [False, None]
    assert [r.get("measured") for r in with_measured(records, STANCE_MEASURED[0])] == [True, None]
    assert zero_shot_reason(STANCE_MEASURED[0]) is None
    assert zero_shot_reason("fr").startswith("zero-shot: stance quality is not measured for fr")
    assert ", ".join(STANCE_MEASURED) in zero_shot_reason("fr")
