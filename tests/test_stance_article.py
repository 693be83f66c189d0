"""Article-level stance: the evidence features, the learned head, calibration, the PerSenT reader and split,
and the records the stance stage builds from them (pure functions, synthetic probability vectors)."""
from __future__ import annotations

import csv
import math
import random

import pytest

from modeling.evaluation import stance_article as harness
from modeling.stance import LABELS, MentionInput
from modeling.stance_article import (HEAD_FILE, ArticleEvidence, ArticleHead, article_features, balanced_weights,
                                     centrality, decide, evidence, expected_calibration_error, feature_names,
                                     fit_head, fit_temperature, load_head, mean_rule, title_mention)
from modeling.shipping import DEFAULT_STANCE_MODEL
from modeling.training import corpora
from schemas import Article
from transforms import stance as stage


def features(ev: ArticleEvidence) -> dict[str, float]:
    return dict(zip(feature_names(), article_features(ev)))


def test_features_summarise_the_mentions():
    ev = ArticleEvidence(probs=((0.7, 0.2, 0.1), (0.1, 0.3, 0.6), (0.6, 0.3, 0.1)), positions=(0.1, 0.5, 0.9),
                         count=5, title_probs=None, paragraph_share=0.5, sentence_share=0.25)
    f = features(ev)
    assert len(article_features(ev)) == len(feature_names())
    assert f["mean_against"] == pytest.approx(1.4 / 3) and f["max_favor"] == 0.6 and f["min_against"] == 0.1
    assert f["share_against"] == pytest.approx(2 / 3) and f["share_favor"] == pytest.approx(1 / 3)
    assert f["first_against"] == 0.7 and f["first_position"] == 0.1
    # weights 1, 1/2, 1/3: the lead counts most
    assert f["early_favor"] == pytest.approx((0.1 + 0.6 / 2 + 0.1 / 3) / (1 + 1 / 2 + 1 / 3))
    assert f["log_count"] == pytest.approx(math.log(6)) and f["title_named"] == 0.0 and f["title_favor"] == 0.0
    assert f["agreement"] == pytest.approx(2 / 3) and f["paragraph_share"] == 0.5
    titled = features(ArticleEvidence(ev.probs, ev.positions, 5, (0.0, 0.2, 0.8)))
    assert titled["title_named"] == 1.0 and titled["title_favor"] == 0.8


def test_centrality_counts_paragraphs_and_sentences_naming_the_target():
    text = "Lugo spoke. Others left.\nNothing here.\nLugo again."
    spans = [(0, 4), (text.rindex("Lugo"), text.rindex("Lugo") + 4)]
    para, sent = centrality(text, spans)
    assert para == pytest.approx(2 / 3) and sent == pytest.approx(2 / 4)
    ev = evidence(text, spans, [[0.2, 0.5, 0.3]])  # one classified of two mentions
    assert ev.count == 2 and ev.positions == (0.0,) and ev.paragraph_share == pytest.approx(2 / 3)


def test_title_mention_is_case_insensitive_and_takes_the_longest_name():
    item = title_mention("Rafael Nadal", "TENNIS: NADAL HOPES", ["Rafael Nadal", "Nadal"])
    assert item == MentionInput("Rafael Nadal", "TENNIS: NADAL HOPES", 8, 13)
    assert title_mention("Lugo", "Paraguay leader sacks chief", ["Lugo"]) is None
    assert title_mention("Armenia", "Armenian troops", ["Armenia"]) is None  # word boundaries


def _synthetic(n: int, seed: int = 3):
    """Articles whose label is the mention majority; against is rare, as in news."""
    rng = random.Random(seed)
    evs, ys = [], []
    for _ in range(n):
        y = rng.choices(range(3), weights=(1, 3, 4))[0]
        probs = []
        for _ in range(rng.randint(1, 8)):
            p = [rng.random() * 0.5 for _ in range(3)]
            p[y if rng.random() < 0.7 else rng.randrange(3)] += 1.0
            s = sum(p)
            probs.append(tuple(x / s for x in p))
        evs.append(ArticleEvidence(tuple(probs), tuple(i / 10 for i in range(len(probs))), len(probs)))
        ys.append(y)
    return [article_features(e) for e in evs], ys, evs


def test_head_learns_and_gives_probabilities():
    X, y, evs = _synthetic(400)
    head = fit_head(X[:300], y[:300], l2=1.0, class_weight=balanced_weights(y[:300]))
    probs = head.predict_proba_rows(X[300:])
    assert all(abs(sum(p) - 1) < 1e-9 for p in probs)
    acc = sum(max(range(3), key=p.__getitem__) == g for p, g in zip(probs, y[300:])) / 100
    assert acc > 0.8
    label, score, vec = decide(evs[0], head)
    assert label in LABELS and score == max(vec)


def test_balanced_weights_favour_the_rare_label():
    w = balanced_weights([1, 1, 1, 2, 2, 2, 0])
    assert w[0] > w[1] == w[2]
    assert balanced_weights([1, 1, 0], power=0.0) == [1.0, 1.0, 1.0]


def test_temperature_recovers_the_sharpening():
    rng = random.Random(5)
    logits, y = [], []
    for _ in range(3000):
        z = [rng.gauss(0, 1.5) for _ in range(3)]
        s = [math.exp(v) for v in z]
        y.append(rng.choices(range(3), weights=s)[0])
        logits.append([3 * v for v in z])  # three times too confident
    assert fit_temperature(logits, y) == pytest.approx(3.0, rel=0.15)


def test_ece_is_zero_when_confidence_is_accuracy_and_large_when_overconfident():
    probs = [[0.75, 0.25, 0.0]] * 4
    assert expected_calibration_error(probs, [0, 0, 0, 1]) == 0.0
    assert expected_calibration_error([[1.0, 0.0, 0.0]] * 2, [1, 2]) == 1.0
    assert expected_calibration_error([], []) == 0.0


def test_head_json_round_trip_and_feature_check():
    X, y, evs = _synthetic(60)
    head = fit_head(X, y, 1.0, None, temperature=1.5, meta={"note": "synthetic"})
    back = ArticleHead.from_json(head.to_json())
    assert back.predict(evs[1]) == pytest.approx(head.predict(evs[1]))
    wrong = head.to_json().replace('"log_count"', '"log_cnt"')
    with pytest.raises(ValueError):
        ArticleHead.from_json(wrong)


def test_without_a_head_the_mean_rule_decides(tmp_path):
    ev = ArticleEvidence(((0.6, 0.3, 0.1), (0.2, 0.3, 0.5)), (0.0, 0.5), 2)
    assert decide(ev, None) == ("against", 0.4, [0.4, 0.3, 0.3])
    assert mean_rule(ev) == pytest.approx([0.4, 0.3, 0.3])
    assert load_head(tmp_path) is None and load_head(None) is None


def test_shipped_head_loads_and_gives_probabilities():
    head = load_head(DEFAULT_STANCE_MODEL)
    if head is None:
        pytest.skip(f"no {HEAD_FILE} shipped beside the stance model (the mean rule decides)")
    ev = ArticleEvidence(((0.1, 0.3, 0.6), (0.2, 0.6, 0.2)), (0.05, 0.4), 7, (0.1, 0.2, 0.7), 0.5, 0.2)
    probs = head.predict(ev)
    assert sum(probs) == pytest.approx(1.0) and all(0 <= p <= 1 for p in probs)


def test_records_keep_the_mention_labels_and_validate():
    text = "Lugo won the vote. Critics attacked Lugo.\nThe weather was fine."
    article = {"text": text, "title": "LUGO WINS", "targets": None, "entities": []}
    plan = stage.plan_mentions(article, {"Lugo": []})
    p = plan["Lugo"]
    assert p.spans == ((0, 4), (36, 40)) and p.title == MentionInput("Lugo", "LUGO WINS", 0, 4)
    X, y, _ = _synthetic(80)
    head = fit_head(X, y, 1.0, None)
    for h in (None, head):
        (rec,) = stage.stance_records(plan, {"Lugo": [[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]]}, h,
                                      {"Lugo": [0.1, 0.1, 0.8]})
        assert rec["score"] == max(rec["probabilities"].values())
        assert sum(rec["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
        assert [(m["start"], m["label"], m["score"]) for m in rec["mention_labels"]] == [
            (0, "favor", 0.7), (36, "against", 0.8)]
        assert rec["mention_labels"][1]["sentence"] == "Critics attacked Lugo."
        Article.model_validate({"id": "x" * 24, "source": "s", "title": "LUGO WINS", "text": text,
                                "published": "2026-12-01", "input_ref": "t", "stance": [rec]})


def test_the_harness_finds_mentions_as_the_stage_does():
    assert harness.MAX_MENTIONS == stage.MAX_MENTIONS
    text = "Nikol Pashinyan met Pashinyan's allies. Armenia and Armenian troops. Baku too."
    from modeling.entity_ids import entity_id

    entities = [{"id": entity_id("Nikol Pashinyan", "PER")[0], "mentions": [{"start": 20, "end": 29}]}]
    article = {"text": text, "entities": entities, "language": {"code": "en"}}
    for target, aliases in (("Nikol Pashinyan", []), ("Armenia", ["Baku"]), ("Georgia", [])):
        assert harness.pipeline_spans(text, entities, target, aliases) == stage.target_spans(article, target,
                                                                                             aliases)


def _write_persent(path, rows):
    cols = ["DOCUMENT_INDEX", "TITLE", "TARGET_ENTITY", "DOCUMENT", "MASKED_DOCUMENT", "TRUE_SENTIMENT",
            *[f"Paragraph{i}" for i in range(16)]]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, cols)
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})


def test_persent_reader_maps_labels_and_counts_what_it_leaves_out(tmp_path):
    path = tmp_path / "persent.csv"
    _write_persent(path, [
        {"DOCUMENT_INDEX": "1", "TITLE": "T", "TARGET_ENTITY": "Lugo", "DOCUMENT": "Lugo spoke.\n Lugo left.",
         "TRUE_SENTIMENT": "Negative", "Paragraph0": "Neutral", "Paragraph1": "Negative"},
        {"DOCUMENT_INDEX": "2", "TARGET_ENTITY": "Nadal", "DOCUMENT": "Nadal won.", "TRUE_SENTIMENT": "Positive"},
        {"DOCUMENT_INDEX": "3", "TARGET_ENTITY": "X", "DOCUMENT": "X.", "TRUE_SENTIMENT": "Mixed"},
        {"DOCUMENT_INDEX": "4", "TARGET_ENTITY": "", "DOCUMENT": "Y.", "TRUE_SENTIMENT": "Neutral"}])
    skipped = corpora.Counter()
    arts = corpora.persent_articles(path, skipped)
    assert [(a.doc_id, a.label) for a in arts] == [("1", "against"), ("2", "favor")]
    assert arts[0].paragraph_labels[:3] == ("neutral", "against", None) and len(arts[0].paragraph_labels) == 16
    assert skipped == {"unknown TRUE_SENTIMENT": 1, "no target or document": 1}


def test_persent_split_keeps_an_entity_on_one_side():
    arts = [corpora.PersentArticle(str(i), "", f"Entity {i % 50}", "x", "neutral", ()) for i in range(500)]
    train, test = corpora.persent_split(arts)
    assert {a.target for a in train}.isdisjoint({a.target for a in test})
    assert 0.25 < len({a.target for a in test}) / 50 < 0.55
    assert corpora.persent_in_test("Lugo") == corpora.persent_in_test(" lugo ")


def test_persent_dev_split_counts():
    path = corpora.persent_path()
    if not path.exists():
        pytest.skip(f"PerSenT dev is not at {path} (../shared/data/stance/persent/dev.csv)")
    arts = corpora.persent_articles(path)
    train, test = corpora.persent_split(arts)
    assert len(arts) == 578 and (len(train), len(test)) == (339, 239)
