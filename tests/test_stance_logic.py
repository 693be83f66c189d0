"""Stance pure logic: target specs, mentions, sentences, aggregation, the no-mention rule."""
from __future__ import annotations

import pytest

from modeling.stance import aggregate, find_mentions, mark_mention, sentence_around
from transforms.stance import parse_target_specs, plan_mentions, stance_records, targets_for


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
    assert plan == {"Armenia": []}
    rec = stance_records(plan, {})
    assert rec == [{"target": "Armenia", "label": "neutral", "score": 1.0, "probabilities": None, "mentions": 0,
                    "reason": "not mentioned"}]


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
