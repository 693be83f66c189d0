"""The CLI over seeds/: what a user gets from `make run`, checked field by field; bad input; reruns."""
from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from tests.conftest import read_output, run_cli

EXPECTED_ENTITIES = ["Azerbaijan", "Armenia", "Karabakh", "Hadrut", "Moscow", "Sergei Shoigu",
                     "Vagharshak Harutiunian"]


def _written(run, name: str) -> dict:
    """The one article the run wrote from seeds/<name>; if none, the failure says what its dead letters said."""
    hits = [a for a in run["articles"] if a["input_ref"].endswith(f"seeds/{name}")]
    assert len(hits) == 1, (f"{name}: {len(hits)} articles written; dead letters: "
                            f"{[d.get('error') for d in run['dead'] if d.get('input_ref', '').endswith(name)]}")
    return hits[0]


def _seed_article(run):
    return _written(run, "armenia_azerbaijan_ceasefire.txt")


def test_seed_article_language_and_entities(seeds_run):
    a = _seed_article(seeds_run)
    assert a["language"]["code"] == "en"
    assert a["ner"]["status"] == "done"
    mentions = {m["text"] for e in a["entities"] for m in e["mentions"]}
    missing = [name for name in EXPECTED_ENTITIES if name not in mentions]
    assert not missing, f"entities not found: {missing}; got {sorted(mentions)}"
    for e in a["entities"]:
        assert e["count"] == len(e["mentions"])
        for m in e["mentions"]:
            assert a["text"][m["start"]:m["end"]] == m["text"]


def test_seed_article_has_a_stance_per_target(seeds_run):
    a = _seed_article(seeds_run)
    stances = {s["target"]: s for s in a["stance"]}
    assert set(stances) == {"Armenia", "Azerbaijan"}
    for s in stances.values():
        assert s["label"] in ("favor", "against", "neutral") and 0 <= s["score"] <= 1
        assert s["mentions"] > 0 and abs(sum(s["probabilities"].values()) - 1) < 0.01


SAMPLE_ENTITIES = ["Azerbaijani", "Karabakh", "Hadrut", "Moscow", "Sergei Shoigu", "Vagharshak Harutiunian"]


def test_sample_article_is_the_designs_file_byte_for_byte():
    shared = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "sample_article.txt"
    if not shared.exists():
        pytest.skip(f"{shared} not present: nothing to compare the repository copy with")
    assert (Path(__file__).resolve().parents[1] / "seeds" / "sample_article.txt").read_bytes() == shared.read_bytes()


def test_design_sample_article_through_the_whole_pipeline(seeds_run):
    a = _written(seeds_run, "sample_article.txt")
    assert a["published"] == "2020-12-13" and a["text"].startswith("It insisted that Azerbaijani forces")
    assert a["language"]["code"] == "en" and a["ner"]["status"] == "done"
    mentions = {m["text"] for e in a["entities"] for m in e["mentions"]}
    missing = [name for name in SAMPLE_ENTITIES if name not in mentions]
    assert not missing, f"entities not found: {missing}; got {sorted(mentions)}"
    stances = {s["target"]: s for s in a["stance"]}
    assert set(stances) == {"Armenia", "Azerbaijan"}
    for s in stances.values():  # both named many times (Armenian, Azerbaijani forces ...): both labelled
        assert s["label"] in ("favor", "against", "neutral") and s["reason"] is None and s["mentions"] >= 5
    # the article reports an Azerbaijani assault on Armenian positions: more against Azerbaijan than Armenia
    assert stances["Azerbaijan"]["probabilities"]["against"] > stances["Armenia"]["probabilities"]["against"]


def test_unmentioned_target_has_no_label(seeds_run):
    for s in _written(seeds_run, "de_lockdown.txt")["stance"]:
        assert (s["label"], s["score"], s["mentions"], s["reason"]) == (None, None, 0, "not mentioned")


def test_russian_seed_stance_comes_from_the_inflected_names(seeds_run):
    """`--targets Armenia Azerbaijan` finds "Арменией" and "Азербайджана" by entity id (no Russian aliases)."""
    a = _written(seeds_run, "ru_mirotvortsy.txt")
    ids = {e["id"]: e for e in a["entities"]}
    assert {m["text"] for m in ids["cldr:AM"]["mentions"]} == {"Арменией"} and ids["cldr:AM"]["base"] == "Армения"
    assert {m["text"] for m in ids["cldr:AZ"]["mentions"]} == {"Азербайджана"} and ids["cldr:AZ"]["name"] == \
        "Azerbaijan"
    stances = {s["target"]: s for s in a["stance"]}
    for target in ("Armenia", "Azerbaijan"):
        assert stances[target]["mentions"] >= 1 and stances[target]["reason"] is None
        assert stances[target]["probabilities"] is not None


def test_german_seed_stance_toward_the_configured_countries(seeds_run):
    """`--targets Armenia Azerbaijan` on a German article: found by id through the German names and their
    genitives ("Armeniens", "Aserbaidschans"), each with a label, and `measured` as the stance languages say."""
    from transforms.stance import STANCE_MEASURED

    a = _written(seeds_run, "de_waffenruhe.txt")
    assert a["language"]["code"] == "de"
    ids = {e["id"]: e for e in a["entities"]}
    assert {"Armeniens", "Armenien"} <= {m["text"] for m in ids["cldr:AM"]["mentions"]}
    assert ids["cldr:AM"]["base"] == "Armenien" and ids["cldr:AZ"]["name"] == "Azerbaijan"
    stances = {s["target"]: s for s in a["stance"]}
    for target in ("Armenia", "Azerbaijan"):
        s = stances[target]
        assert s["label"] in ("favor", "against", "neutral") and s["reason"] is None and s["mentions"] >= 3
        assert s["measured"] is ("de" in STANCE_MEASURED)


def test_entities_carry_base_id_and_name(seeds_run):
    for a in seeds_run["articles"]:
        for e in a["entities"]:
            assert e["base"] and e["id"] and e["name"]
            assert all(m["base"] for m in e["mentions"])


def test_duplicates_point_to_kept_articles(seeds_run):
    seed = _seed_article(seeds_run)
    dups = {Path(d["input_ref"]).name: d for d in seeds_run["duplicates"]}
    assert dups["armenia_azerbaijan_ceasefire_copy.txt"]["duplicate_of"] == seed["id"]
    assert dups["armenia_azerbaijan_ceasefire_copy.txt"]["kind"] == "near"
    assert dups["ecb_rates_republished.txt"]["kind"] == "exact"
    assert dups["suez_ship_wire_update.txt"]["kind"] == "near"
    assert "yerevan_protests.txt" not in dups  # same topic, different story: not merged
    written_ids = {a["id"] for a in seeds_run["articles"]}
    assert all(d["duplicate_of"] in written_ids for d in seeds_run["duplicates"])


def test_every_record_is_accounted_for(seeds_run):
    out = seeds_run["stdout"]
    assert "newsbeam summary" in out and "every record accounted for" in out
    n = len(seeds_run["articles"]) + len(seeds_run["duplicates"]) + len(seeds_run["dead"])
    assert f"read {n}," in out


def test_french_gets_entities_and_zero_shot_stance_that_says_so(seeds_run):
    """French is a default NER language (measured on its dev set); stance runs there too, zero-shot: the
    article's stance_status says so, and every label it has says `measured: false`."""
    fr = [a for a in seeds_run["articles"] if a["language"]["code"] == "fr"]
    assert fr and fr[0]["ner"]["status"] == "done"
    found = {(e["text"], e["type"]) for e in fr[0]["entities"]}
    assert {("Olivier Véran", "PER"), ("France", "LOC")} <= found
    assert fr[0]["stance_status"]["status"] == "done"
    assert fr[0]["stance_status"]["reason"].startswith("zero-shot: stance quality is not measured for fr")
    assert all(s["measured"] is False for s in fr[0]["stance"] if s["label"] is not None)
    assert all(s.get("measured") is None for s in fr[0]["stance"] if s["label"] is None)


def test_partitioned_by_published_date(seeds_run):
    for f in seeds_run["out"].glob("dt=*/articles-*.jsonl"):
        day = f.parent.name[3:]
        assert all(line.count(f'"published":"{day}"') == 1 for line in f.read_text().splitlines())


def test_rerun_is_byte_identical(seeds_run, tmp_path):
    """A second run into a new folder writes the same bytes: every JSONL and Parquet file (as `make run`)."""
    proc = run_cli(["run", "--input", "seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml", "--output", str(tmp_path),
                    "--targets", "Armenia", "Azerbaijan", "--format", "both"])
    assert proc.returncode == 0, proc.stderr

    def files(root):
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in (".jsonl", ".parquet"))

    first, second = files(seeds_run["out"]), files(tmp_path)
    assert first == second and any(p.suffix == ".parquet" for p in first)
    for rel in first:
        assert filecmp.cmp(seeds_run["out"] / rel, tmp_path / rel, shallow=False), rel


def test_bad_input_never_crashes_the_run(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "good.txt").write_text("date 2020-11-27\nArmenia and Azerbaijan signed a deal in Moscow.\n")
    (inp / "empty.txt").write_bytes(b"")
    (inp / "binary.txt").write_bytes(bytes(range(256)) * 10)
    (inp / "latin1.txt").write_bytes("date 2020-11-27\nCaf\xe9 cr\xe8me in Baku.".encode("latin-1"))
    (inp / "no_date.txt").write_text("Armenia and Azerbaijan signed a deal.\n")
    (inp / "bad_date.txt").write_text("date 2020-02-31\nArmenia and Azerbaijan signed a deal.\n")
    (inp / "huge.txt").write_text("date 2020-11-27\n" + ("Armenia and Azerbaijan signed a deal. " * 140_000))
    (inp / "not_a_feed.xml").write_text("<?xml version='1.0'?><catalog><book id='1'>x</book></catalog>")
    (inp / "lines.jsonl").write_text('{"text": "Baku said so.", "published": "2020-11-27"}\n{"text": 3}\n')
    out = tmp_path / "out"
    proc = run_cli(["run", "--input", str(inp / "*"), "--output", str(out), "--targets", "Armenia"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = read_output(out)
    assert len(res["articles"]) == 2
    reasons = {Path(d["input_ref"].split(":")[0]).name: d["error"] for d in res["dead"]}
    assert set(reasons) == {"empty.txt", "binary.txt", "latin1.txt", "no_date.txt", "bad_date.txt", "huge.txt",
                            "not_a_feed.xml", "lines.jsonl"}
    assert "empty file" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "date" in reasons["no_date.txt"] and "date" in reasons["bad_date.txt"]
    assert "too long" in reasons["huge.txt"]
    assert "feed" in reasons["not_a_feed.xml"]
    assert "read 10, written 2, duplicates 0, dead-lettered 8" in proc.stdout


def test_missing_input_is_a_clear_error(tmp_path):
    proc = run_cli(["run", "--input", str(tmp_path / "nope*.txt"), "--output", str(tmp_path / "o")])
    assert proc.returncode == 2 and "matches no file" in proc.stderr


def test_compiled_models_give_the_same_articles(seeds_run, tmp_path):
    """`--compile-models` (torch.compile in each worker) changes speed, not results: same records, same entities,
    same stance labels; scores may differ in the last bf16 bit. Compared in one precision: compiled runs never
    use int8, so where auto chose int8 for the eager run (a CPU without fast bf16) the eager side is rerun in fp32."""
    import re

    chosen = set(re.findall(r"precision auto chose (\w+)", seeds_run["log"]))
    assert chosen, seeds_run["log"][-2000:]
    seeds = ["--input", "seeds/*.txt", "seeds/*.jsonl", "seeds/*.xml", "--targets", "Armenia", "Azerbaijan"]
    if len(chosen) == 1 and chosen <= {"fp32", "bf16"}:
        precision, eager_run = chosen.pop(), seeds_run
    else:
        precision = "fp32"
        proc = run_cli(["run", *seeds, "--output", str(tmp_path / "eager"), "--precision", precision])
        assert proc.returncode == 0, proc.stdout + proc.stderr
        eager_run = read_output(tmp_path / "eager")
    proc = run_cli(["run", *seeds, "--output", str(tmp_path / "compiled"), "--compile-models",
                    "--precision", precision])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compiled = read_output(tmp_path / "compiled")

    def essentials(run):
        return {a["id"]: ({(m["start"], m["end"], e["type"]) for e in a["entities"] or [] for m in e["mentions"]},
                          {s["target"]: s["label"] for s in a.get("stance") or []}) for a in run["articles"]}

    eager, comp = essentials(eager_run), essentials(compiled)
    assert eager.keys() == comp.keys() and len(eager) == 16
    for aid in eager:
        spans_e, stance_e = eager[aid]
        spans_c, stance_c = comp[aid]
        assert len(spans_e ^ spans_c) <= max(1, len(spans_e) // 50), aid  # at most a 2% edge drift
        assert stance_e == stance_c, aid
    assert len(compiled["duplicates"]) == len(eager_run["duplicates"])
