"""`newsbeam eval ner|stance` on small gold files in the shared corpora's formats, with the shipped models.

The files are written here (not read from ../shared/data), so these tests run anywhere the package is installed.
"""
from __future__ import annotations

import json

import pytest

from modeling import evaluate

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
    assert report["counts"] == {"wrong type": 1, "wrong boundary": 0, "missed": 0, "spurious": 0}
    assert report["texts_with_errors"] == 1
    [row] = report["sample"]
    [err] = row["errors"]
    assert err["kind"] == "wrong type"
    assert (err["gold"]["text"], err["gold"]["type"]) == ("Berlin", "PER")
    assert [(p["text"], p["type"]) for p in err["pred"]] == [("Berlin", "LOC")]
    assert row["text"][err["gold"]["start"]:err["gold"]["end"]] == "Berlin"


def test_eval_ner_text_output_lists_the_sample(tmp_path, capsys):
    gold = tmp_path / "gold.conllu"
    write_conll(gold, SENTENCES)
    assert evaluate.main(["ner", "--gold", str(gold), "--format", "conll", "--errors", "2"]) == 0
    out = capsys.readouterr().out
    assert "errors in 1 texts: wrong type 1, wrong boundary 0, missed 0, spurious 0" in out
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
    from modeling.evaluate import paired_bootstrap

    def acc(g, p):
        return sum(a == b for a, b in zip(g, p)) / len(g)

    gold = ["x"] * 200
    same = ["x"] * 150 + ["y"] * 50
    assert paired_bootstrap(gold, same, same, acc) == (0.0, 0.0)  # identical predictions: no difference at all
    better = ["x"] * 200
    lo, hi = paired_bootstrap(gold, same, better, acc, seed=3)
    assert 0.15 < lo <= 0.25 <= hi < 0.35  # the true gain, 0.25, inside a tight interval above 0


def test_eval_stance_against_itself(tmp_path, capsys):
    from pipeline.options import DEFAULT_STANCE_MODEL

    sentence = "Critics praised Smith for his brave and generous leadership."
    (tmp_path / "gold.jsonl").write_text(json.dumps({"primary_gid": "g", "sentence_normalized": sentence, "targets": [
        {"Input.gid": "t", "from": 16, "to": 21, "mention": "Smith", "polarity": 6.0}]}) + "\n", encoding="utf-8")
    res = run_json(capsys, ["stance", "--gold", str(tmp_path / "gold.jsonl"), "--format", "newsmtsc",
                            "--against", str(DEFAULT_STANCE_MODEL)])
    assert res["against"]["label_agreement"] == 1.0
    assert res["against"]["macro_f1_difference_95ci"] == [0.0, 0.0]
