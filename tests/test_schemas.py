"""Schemas: exported JSON Schema files are current; the Article model rejects offsets that do not match."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas import Article
from schemas.export import main as export_main

GOOD = {"id": "x" * 24, "source": "s", "title": "t", "text": "Moscow said.", "published": "2020-11-27",
        "input_ref": "f.txt", "entities": [{"text": "Moscow", "type": "LOC", "count": 1, "score": 0.9,
                                            "base": "Moscow", "id": "city:Europe/Moscow", "name": "Moscow",
                                            "mentions": [{"start": 0, "end": 6, "text": "Moscow", "score": 0.9,
                                                          "base": "Moscow"}]}]}


def test_schema_files_are_current():
    assert export_main(["--check"]) == 0, "run `python -m schemas.export` and commit the result"


def test_article_validates_offsets():
    Article.model_validate(GOOD)
    bad = dict(GOOD, text="Paris said.")
    with pytest.raises(ValidationError, match="does not match"):
        Article.model_validate(bad)


def test_article_rejects_unknown_fields_and_bad_labels():
    with pytest.raises(ValidationError):
        Article.model_validate(dict(GOOD, surprise=1))
    with pytest.raises(ValidationError):
        Article.model_validate(dict(GOOD, stance=[{"target": "A", "label": "love", "score": 0.5, "mentions": 1}]))


@pytest.mark.parametrize("stance, ok", [
    ({"target": "A", "label": None, "score": None, "mentions": 0, "reason": "not mentioned"}, True),
    ({"target": "A", "label": "neutral", "score": 0.6, "mentions": 2, "reason": None}, True),
    ({"target": "A", "label": "neutral", "score": 1.0, "mentions": 0, "reason": "not mentioned"}, False),
    ({"target": "A", "label": None, "score": None, "mentions": 2, "reason": None}, False),
    ({"target": "A", "label": None, "score": 0.5, "mentions": 2, "reason": "unsupported language: hy"}, False),
    ({"target": "A", "label": "favor", "score": 0.7, "mentions": 1, "reason": None, "measured": False}, True),
    ({"target": "A", "label": None, "score": None, "mentions": 0, "reason": "not mentioned", "measured": True},
     False),
])
def test_a_stance_has_a_label_or_a_reason_never_both(stance, ok):
    record = dict(GOOD, stance=[stance])
    if ok:
        Article.model_validate(record)
    else:
        with pytest.raises(ValidationError, match="label"):
            Article.model_validate(record)


def _labelled(mention_labels) -> dict:
    return dict(GOOD, stance=[{"target": "Moscow", "label": "favor", "score": 0.7, "mentions": 1, "reason": None,
                               "probabilities": {"against": 0.1, "neutral": 0.2, "favor": 0.7},
                               "mention_labels": mention_labels}])


def test_a_stance_keeps_its_mention_labels_within_the_text():
    one = {"start": 0, "end": 6, "sentence": "Moscow said.", "label": "neutral", "score": 0.55}
    art = Article.model_validate(_labelled([one]))
    assert art.stance[0].mention_labels[0].label == "neutral"
    with pytest.raises(ValidationError, match="not in the text"):
        Article.model_validate(_labelled([dict(one, sentence="Paris said.")]))
    with pytest.raises(ValidationError, match="not in the text"):
        Article.model_validate(_labelled([dict(one, start=8, end=40)]))
    with pytest.raises(ValidationError):
        Article.model_validate(_labelled([dict(one, label="love")]))
    unlabelled = {"target": "A", "label": None, "score": None, "mentions": 0, "reason": "not mentioned",
                  "mention_labels": [one]}
    with pytest.raises(ValidationError, match="only with a label"):
        Article.model_validate(dict(GOOD, stance=[unlabelled]))
