"""The GerNTSA reader on the real file (no model run): count, label mapping, offsets, by-target split."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from modeling.stance import mention_input
from modeling.training import corpora


@pytest.fixture(scope="module")
def gerntsa():
    path = corpora.shared_data_dir() / "stance" / "gerntsa" / "gerntsa_dev.json"
    if not path.exists():
        pytest.skip(f"GerNTSA not found at {path} (../shared/data beside the project root, or "
                    f"$NEWSBEAM_SHARED_DATA)")
    skipped: Counter = Counter()
    examples = corpora.gerntsa_examples(path, skipped)
    return json.loads(path.read_text(encoding="utf-8")), examples, skipped


def test_every_item_read_with_its_label_mapped(gerntsa):
    raw, examples, skipped = gerntsa
    assert len(raw) == 2730 and len(examples) == 2730 and not skipped
    assert Counter(e.label for e in examples) == {"neutral": 1623, "favor": 695, "against": 412}
    for item, e in zip(raw, examples):
        assert e.label == corpora.GERNTSA_POLARITY[item["sentiment"]["polarity"]]
        assert e.source == "gerntsa"


def test_offsets_give_the_target_here_and_in_the_pipeline_input(gerntsa):
    _, examples, _ = gerntsa
    for e in examples:
        assert e.text[e.start:e.end] == e.target
        m = mention_input(e.target, e.text, e.start, e.end)
        assert m.sentence[m.start:m.end] == e.target


def test_split_is_disjoint_by_target_and_about_30_percent(gerntsa):
    _, examples, _ = gerntsa
    train, dev = corpora.split_by_target(examples)
    assert len(train) + len(dev) == len(examples)
    assert not {e.target.casefold() for e in train} & {e.target.casefold() for e in dev}
    assert 0.25 < len(dev) / len(examples) < 0.35
    assert corpora.split_by_target(examples) == (train, dev)  # deterministic


def test_bad_anchors_are_skipped_and_counted(tmp_path):
    items = [{"opinion_snippet": "Scholz lobt Habeck.", "target": "Scholz", "target_anchor": {"from": 0, "to": 6},
              "sentiment": {"polarity": "positive"}},
             {"opinion_snippet": "Scholz lobt Habeck.", "target": "Habeck", "target_anchor": {"from": 0, "to": 6},
              "sentiment": {"polarity": "neutral"}},
             {"opinion_snippet": "x", "target": "x", "target_anchor": {"from": 0, "to": 1},
              "sentiment": {"polarity": "mixed"}},
             {"opinion_snippet": "x", "target": "x"}]
    path = tmp_path / "g.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    skipped: Counter = Counter()
    examples = corpora.gerntsa_examples(path, skipped)
    assert [(e.target, e.label) for e in examples] == [("Scholz", "favor")]
    assert skipped == {"anchor mismatch": 1, "unknown polarity": 1, "malformed": 1}
