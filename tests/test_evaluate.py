"""`newsbeam eval ner|stance` on small gold files in the shared corpora's formats, with the shipped models.

The files are written here (not read from ../shared/data), so these tests run anywhere the package is installed.
"""
from __future__ import annotations

import json

import pytest

from modeling.evaluation import evaluate

SENTENCES = [
    [("Angela", "B-PER"), ("Merkel", "I-PER"), ("visited", "O"), ("Paris", "B-LOC"), ("on", "O"), ("Monday", "O"),
     (".", "O")],
    [("Microsoft", "B-ORG"), ("opened", "O"), ("an", "O"), ("office", "O"), ("in", "O"), ("Warsaw", "B-LOC"),
     (".", "O")],
    # gold deliberately wrong: Berlin is a place, so the model's LOC must show up as a "wrong type" error
    [("She", "O"), ("moved", "O"), ("to", "O"), ("Berlin", "B-PER"), ("in", "O"), ("2019", "O"), (".", "O")],
]


def write_conll(path, sentences) -> None:
    lines = []
    for sent in sentences:
        lines += [f"{i}\t{tok}\t{tag}" for i, (tok, tag) in enumerate(sent)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_json(capsys, argv) -> dict:
    assert evaluate.main(argv + ["--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_ner_conll_scores_and_names_the_errors(tmp_path, capsys):
    gold = tmp_path / "gold.conllu"
    write_conll(gold, SENTENCES)
    res = run_json(capsys, ["ner", "--gold", str(gold), "--format", "conll", "--errors", "5"])
    assert {"precision", "recall", "f1", "per_type"} <= set(res)
    assert res["n_texts"] == 3 and res["misc_scored"] is False
    # 5 gold entities, 4 of them right; the wrong gold "Berlin"/PER costs one false negative and one false positive
    assert res["precision"] == pytest.approx(0.8) and res["recall"] == pytest.approx(0.8)
    assert res["per_type"]["LOC"]["support"] == 2 and res["per_type"]["PER"]["support"] == 2
    report = res["errors"]
    assert report["counts"] == {"wrong_type": 1, "wrong_boundary": 0, "missed": 0, "spurious": 0}
    assert (report["texts"], report["texts_with_errors"]) == (3, 1)
    [row] = report["sample"]
    assert row["index"] == 2  # the third sentence of the file
    [err] = row["errors"]
    assert err["kind"] == "wrong_type"
    assert (err["gold"]["text"], err["gold"]["type"]) == ("Berlin", "PER")
    assert [(p["text"], p["type"]) for p in err["pred"]] == [("Berlin", "LOC")]
    assert row["text"][err["gold"]["start"]:err["gold"]["end"]] == "Berlin"


def test_eval_ner_text_output_lists_the_sample(tmp_path, capsys):
    gold = tmp_path / "gold.conllu"
    write_conll(gold, SENTENCES)
    assert evaluate.main(["ner", "--gold", str(gold), "--format", "conll", "--errors", "2"]) == 0
    out = capsys.readouterr().out
    assert "errors in 1 of 3 texts; spans: wrong type 1, wrong boundary 0, missed 0, spurious 0" in out
    assert "[text 2] She moved to Berlin in 2019 ." in out
    assert "wrong type     gold 'Berlin'/PER  predicted 'Berlin'/LOC" in out


def test_eval_ner_brat_folder(tmp_path, capsys):
    text = "Президент России Владимир Путин провёл встречу в Москве."
    (tmp_path / "doc1.txt").write_text(text, encoding="utf-8")
    ann = []
    for i, (surface, etype) in enumerate([("России", "COUNTRY"), ("Владимир Путин", "PERSON"), ("Москве", "CITY")]):
        start = text.index(surface)
        ann.append(f"T{i + 1}\t{etype} {start} {start + len(surface)}\t{surface}")
    (tmp_path / "doc1.ann").write_text("\n".join(ann) + "\n", encoding="utf-8")
    res = run_json(capsys, ["ner", "--gold", str(tmp_path), "--format", "brat"])
    assert res["n_texts"] == 1
    assert res["per_type"]["PER"]["support"] == 1 and res["per_type"]["LOC"]["support"] == 2
    assert res["f1"] == pytest.approx(1.0)


def test_eval_stance_newsmtsc(tmp_path, capsys):
    rows = [
        ("Critics praised Smith for his brave and generous leadership.", "Smith", 6.0),
        ("Smith was condemned for lying to voters and wasting public money.", "Smith", 2.0),
        ("Smith arrived in Boston on Tuesday.", "Smith", 4.0),
    ]
    with open(tmp_path / "gold.jsonl", "w", encoding="utf-8") as fh:
        for k, (sentence, mention, polarity) in enumerate(rows):
            start = sentence.index(mention)
            fh.write(json.dumps({"primary_gid": f"g{k}", "sentence_normalized": sentence, "targets": [
                {"Input.gid": f"g{k}t", "from": start, "to": start + len(mention), "mention": mention,
                 "polarity": polarity}]}) + "\n")
    res = run_json(capsys, ["stance", "--gold", str(tmp_path / "gold.jsonl"), "--format", "newsmtsc"])
    assert {"accuracy", "macro_f1", "confusion"} <= set(res)
    assert res["n"] == 3
    assert sum(sum(row.values()) for row in res["confusion"].values()) == 3
    assert res["accuracy"] == pytest.approx(1.0)  # three unambiguous sentences


def test_eval_refuses_a_missing_gold_path(tmp_path, capsys):
    assert evaluate.main(["ner", "--gold", str(tmp_path / "absent.conllu"), "--format", "conll"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_paired_bootstrap_interval():
    from modeling.evaluation.evaluate import paired_bootstrap

    def acc(g, p):
        return sum(a == b for a, b in zip(g, p)) / len(g)

    gold = ["x"] * 200
    same = ["x"] * 150 + ["y"] * 50
    assert paired_bootstrap(gold, same, same, acc) == (0.0, 0.0)  # identical predictions: no difference at all
    better = ["x"] * 200
    lo, hi = paired_bootstrap(gold, same, better, acc, seed=3)
    assert 0.15 < lo <= 0.25 <= hi < 0.35  # the true gain, 0.25, inside a tight interval above 0


def test_bootstrap_interval_of_one_model():
    from modeling.evaluation.evaluate import bootstrap_interval

    def acc(g, p):
        return sum(a == b for a, b in zip(g, p)) / len(g)

    gold = ["x"] * 400
    assert bootstrap_interval(gold, gold, acc) == (1.0, 1.0)
    lo, hi = bootstrap_interval(gold, ["x", "y"] * 200, acc)
    assert 0.4 < lo < 0.5 < hi < 0.6


def write_newsmtsc(path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for k, (sentence, mention, polarity) in enumerate(rows):
            start = sentence.index(mention)
            fh.write(json.dumps({"primary_gid": f"g{k}", "sentence_normalized": sentence, "targets": [
                {"Input.gid": f"g{k}t", "from": start, "to": start + len(mention), "mention": mention,
                 "polarity": polarity}]}) + "\n")


def test_eval_stance_against_another_model(tmp_path, capsys):
    """--against on enough examples gives both models' intervals and the paired one; the shipped model against
    itself must agree everywhere and differ by exactly 0."""
    from pipeline.options import DEFAULT_STANCE_MODEL

    names = ["Smith", "Garcia", "Novak", "Tanaka", "Okafor", "Larsen", "Rossi", "Dubois", "Kowalski", "Petrov"]
    rows = []
    for name in names:
        rows += [(f"Critics praised {name} for brave and generous leadership.", name, 6.0),
                 (f"{name} was condemned for lying to voters and wasting public money.", name, 2.0),
                 (f"{name} arrived in Boston on Tuesday.", name, 4.0)]
    write_newsmtsc(tmp_path / "gold.jsonl", rows)
    argv = ["stance", "--gold", str(tmp_path / "gold.jsonl"), "--format", "newsmtsc", "--against",
            str(DEFAULT_STANCE_MODEL)]
    res = run_json(capsys, argv)
    other = res["against"]
    assert res["n"] == 30 and other["label_agreement"] == 1.0
    assert other["model_minus_against_macro_f1"] == 0.0
    assert other["model_minus_against_macro_f1_95ci"] == [0.0, 0.0]
    assert other["model_macro_f1_95ci"] == other["against_macro_f1_95ci"]
    lo, hi = other["model_macro_f1_95ci"]
    assert lo <= res["macro_f1"] <= hi
    assert evaluate.main(argv) == 0
    assert "not told apart on this set" in capsys.readouterr().out


def test_eval_stance_against_on_too_few_examples_gives_no_interval(tmp_path, capsys):
    from pipeline.options import DEFAULT_STANCE_MODEL

    write_newsmtsc(tmp_path / "gold.jsonl", [("Critics praised Smith for his brave leadership.", "Smith", 6.0)])
    res = run_json(capsys, ["stance", "--gold", str(tmp_path / "gold.jsonl"), "--format", "newsmtsc",
                            "--against", str(DEFAULT_STANCE_MODEL)])
    assert "model_minus_against_macro_f1_95ci" not in res["against"]
    assert "fewer than 30" in res["against"]["intervals_skipped"]


def test_eval_rejects_options_of_the_other_task(tmp_path):
    (tmp_path / "gold.jsonl").write_text("", encoding="utf-8")
    (tmp_path / "gold.conllu").write_text("", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["stance", "--gold", str(tmp_path / "gold.jsonl"), "--format", "newsmtsc", "--errors", "5"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["ner", "--gold", str(tmp_path / "gold.conllu"), "--format", "conll", "--rusentne-heldout"])
    assert exc.value.code == 2


def test_excerpt_shows_the_text_around_a_span():
    from modeling.evaluation.evaluate import excerpt

    text = "a" * 500 + " Berlin " + "b" * 500
    start = text.index("Berlin")
    shown = excerpt(text, start, start + 6, context=10)
    assert shown == "..." + text[start - 10:start + 16] + "..."
    assert excerpt("Berlin", 0, 6) == "Berlin"


def test_eval_ner_against_itself_differs_by_exactly_zero(tmp_path, capsys):
    """--against for NER: the shipped model against itself gives the same spans in every text and a paired
    interval of [0, 0]; its own interval holds its F1."""
    from pipeline.options import DEFAULT_NER_MODEL

    gold = tmp_path / "gold.conllu"
    write_conll(gold, SENTENCES * 11)  # 33 texts, above the bootstrap minimum
    argv = ["ner", "--gold", str(gold), "--format", "conll", "--against", str(DEFAULT_NER_MODEL)]
    res = run_json(capsys, argv)
    other = res["against"]
    assert other["same_spans"] == 1.0 and other["f1"] == res["f1"]
    assert other["model_minus_against_f1"] == 0.0 and other["model_minus_against_f1_95ci"] == [0.0, 0.0]
    lo, hi = other["model_f1_95ci"]
    assert lo <= res["f1"] <= hi
    assert evaluate.main(argv) == 0
    assert "the same spans in 100.0% of the texts" in capsys.readouterr().out


def test_compare_ner_resamples_texts_and_signs_the_difference():
    """Ours finds every entity, theirs misses one in each of the first 20 texts: ours minus theirs is positive and
    its paired interval lies above 0; F1 is computed from per-text counts exactly as span_prf does."""
    from modeling.evaluation.evaluate import compare_ner
    from modeling.ner import f1_of_counts, span_prf, text_counts

    gold = [[(0, 5, "PER"), (10, 15, "LOC")] for _ in range(40)]
    ours = [list(g) for g in gold]
    theirs = [g[:1] if i < 20 else list(g) for i, g in enumerate(gold)]
    assert f1_of_counts(text_counts(g, p) for g, p in zip(gold, theirs)) == pytest.approx(
        span_prf(gold, theirs)["f1"], abs=1e-4)
    out = compare_ner(gold, ours, theirs, None, "theirs", resamples=200)
    assert out["f1"] == pytest.approx(span_prf(gold, theirs)["f1"], abs=1e-4)
    assert out["model_minus_against_f1"] == pytest.approx(1.0 - out["f1"], abs=1e-4)
    assert out["same_spans"] == 0.5
    lo, hi = out["model_minus_against_f1_95ci"]
    assert 0 < lo <= out["model_minus_against_f1"] <= hi


def test_text_counts_leave_out_types_not_scored():
    from modeling.ner import f1_of_counts, text_counts

    gold, pred = [(0, 5, "PER"), (6, 9, "MISC")], [(0, 5, "PER"), (6, 9, "LOC")]
    assert text_counts(gold, pred) == (1, 1, 1)
    assert text_counts(gold, pred, ("PER", "ORG", "LOC")) == (1, 1, 0)
    assert f1_of_counts([]) == 0.0


def test_eval_precision_option_runs_the_model_in_that_precision(tmp_path, capsys):
    gold = tmp_path / "gold.conllu"
    write_conll(gold, SENTENCES[:2])
    res = run_json(capsys, ["ner", "--gold", str(gold), "--format", "conll", "--precision", "int8"])
    assert res["model_precision"] == "int8" and "requested" in res["model_precision_choice"]
    assert res["f1"] == 1.0  # two plain sentences: quantised, the model still gets every entity
    auto = run_json(capsys, ["ner", "--gold", str(gold), "--format", "conll"])
    assert auto["model_precision"] in ("fp32", "bf16", "int8") and "auto" in auto["model_precision_choice"]
