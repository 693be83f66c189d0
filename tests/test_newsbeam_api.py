"""`import newsbeam`: enrich gives the pipeline's articles, read_output loads every kind with fixed dtypes, run and
--format parquet work from Python, and the README's notebook example holds (run here as a doctest)."""
from __future__ import annotations

import doctest
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.article import SCHEMA_VERSION
from transforms.ner import NER_LANGUAGES
from tests.conftest import ROOT

SEED_PATTERNS = [Path("seeds/*.txt"), Path("seeds/*.jsonl"), Path("seeds/*.xml")]


@pytest.fixture(scope="session")
def enricher():
    """One Enricher for the session: the models load once (and stay cached for every later enrich call)."""
    import newsbeam

    return newsbeam.Enricher(["Armenia", "Azerbaijan"])


def test_enrich_gives_the_pipelines_articles_for_the_seeds(seeds_run, enricher, monkeypatch):
    import newsbeam

    monkeypatch.chdir(ROOT)  # the pipeline run read the same relative patterns from here (same input_ref)
    result = enricher.process(SEED_PATTERNS)
    assert result.dead_letters == [] and seeds_run["dead"] == []
    mine = {a.id: a.model_dump(mode="json") for a in result.articles}
    written = {r["id"]: newsbeam.Article.model_validate(r).model_dump(mode="json") for r in seeds_run["articles"]}
    assert sorted(mine) == sorted(written)
    for article_id, article in written.items():
        assert mine[article_id] == article, article["input_ref"]
    dups = sorted(result.duplicates, key=lambda d: d["id"])  # as duplicates.jsonl has them
    assert dups == sorted(seeds_run["duplicates"], key=lambda d: d["id"]) and len(dups) == 3


def test_enrich_reports_what_it_could_not_read(enricher):
    import newsbeam

    good = {"text": "Armenia and Azerbaijan signed a ceasefire in Moscow on Monday.", "published": "2020-11-10"}
    result = enricher.process([good, "no date line here", dict(good)])
    assert [a.input_ref for a in result.articles] == ["items[0]:1"]
    assert [(d["input_ref"], d["stage"]) for d in result.dead_letters] == [("items[1]", "parse")]
    assert [(d["id"], d["kind"]) for d in result.duplicates] == [(result.articles[0].id, "exact")]
    from newsbeam.enricher import _MODELS

    loaded = dict(_MODELS)
    with pytest.raises(newsbeam.EnrichError, match="items\\[0\\]"):
        newsbeam.enrich(["no date line here"], targets=["Armenia"])
    assert newsbeam.enrich([good], targets=["Armenia"])[0].ner.status == "done"
    assert _MODELS == loaded and len(loaded) == 2  # one NER and one stance model, loaded once per process


def test_enrich_finds_targets_in_a_language_the_user_adds_and_never_calls_them_unmentioned(enricher):
    """Slovak measures below the bar: by default NER skips it (and the targets say why, not "not mentioned");
    ner_languages="+sk" runs it zero-shot, and Arménsko / Azerbajdžan count for Armenia / Azerbaijan by id."""
    import newsbeam

    sk = {"text": "Arménsko a Azerbajdžan podpísali dohodu o prímerí v Náhornom Karabachu. Premiér Arménska Nikol "
                  "Pašinjan označil dohodu za bolestnú.", "published": "2020-11-10"}
    default = enricher.process([sk]).articles[0]
    assert default.language.code == "sk" and default.ner.status == "skipped" and default.entities == []
    assert [(s.target, s.mentions, s.reason) for s in default.stance] == [
        (t, 0, f"unsupported language: sk (stance covers {', '.join(NER_LANGUAGES)})")
        for t in ("Armenia", "Azerbaijan")]
    added = newsbeam.Enricher(["Armenia", "Azerbaijan"], ner_languages="+sk").process([sk]).articles[0]
    assert added.ner.status == "done" and "zero-shot" in added.ner.reason
    # stance follows NER into the added language, labelled and marked as not measured there
    assert added.stance_status.reason.startswith("zero-shot: stance quality is not measured for sk")
    assert [(s.target, s.mentions, s.label is not None, s.measured) for s in added.stance] == [
        ("Armenia", 2, True, False), ("Azerbaijan", 1, True, False)]
    assert {e.text for e in added.entities if e.type == "PER"} == {"Nikol Pašinjan"}


def test_read_output_kinds_and_dtypes(seeds_run):
    import newsbeam
    from newsbeam.output import COLUMNS

    articles = seeds_run["articles"]
    expected = {"articles": len(articles), "duplicates": len(seeds_run["duplicates"]), "dead_letters": 0,
                "entities": sum(len(a["entities"]) for a in articles),
                "stance": sum(len(a["stance"]) for a in articles)}
    for kind, rows in expected.items():
        df = newsbeam.read_output(str(seeds_run["out"]), kind=kind)
        assert len(df) == rows, kind
        assert list(df.columns) == list(COLUMNS[kind]), kind
        assert {c: str(t) for c, t in df.dtypes.items()} == COLUMNS[kind], kind
    df = newsbeam.read_output(str(seeds_run["out"]))
    assert set(df["schema_version"]) == {SCHEMA_VERSION} and df["title"].notna().all()
    stance = newsbeam.read_output(str(seeds_run["out"]), kind="stance")
    unlabelled = stance[stance["label"].isna()]
    assert len(unlabelled) > 0 and unlabelled["reason"].notna().all()


def test_run_from_python_writes_parquet_that_read_output_loads(tmp_path, monkeypatch):
    """newsbeam.run with keyword options (no models: this checks the API and the Parquet-only layout)."""
    import newsbeam
    import pyarrow.parquet as pq

    from pipeline import report
    from pipeline.layout import article_shard, parse_article_shard
    from pipeline.parquet_sink import article_schema, read_parquet_records, write_parquet_file

    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    counts = newsbeam.run(input=["seeds/*.txt"], output=str(out), targets=["Armenia"], format="parquet",
                          skip_models=True, quiet=True)
    assert counts["read"] == counts["written"] + counts.get("duplicates", 0) and counts["written"] > 0
    assert not list(out.glob("dt=*/*.jsonl")), "--format parquet writes no article JSONL"
    files = sorted(out.glob("dt=*/articles-*.parquet"))
    assert len({f.parent for f in files}) > 1
    for f in files:  # each a shard of its day holding the ids of that shard (pipeline.layout)
        shard, _, ext = parse_article_shard(f.name)
        assert ext == "parquet" and {article_shard(r["id"]) for r in read_parquet_records(str(f))} == {shard}
    assert pq.read_schema(files[0]).remove_metadata() == article_schema()
    df = newsbeam.read_output(str(out))
    assert len(df) == counts["written"] and (df["ner_status"] == "skipped").all()
    assert len(report.read_output(str(out)).articles) == counts["written"]  # the report reads the Parquet too
    # a rewrite of a shard with the same rows (as a rerun does) leaves the bytes as they were
    before = files[0].read_bytes()
    write_parquet_file(str(files[0]), list(reversed(read_parquet_records(str(files[0])))))
    assert files[0].read_bytes() == before
    with pytest.raises(ValueError, match="unrecognized|invalid"):
        newsbeam.run(input=["seeds/*.txt"], output=str(out), target=["Armenia"])


def _readme_examples(text: str) -> str:
    return "\n".join(m.group(1) for m in re.finditer(r"```pycon\n(.*?)```", text, flags=re.S))


def test_readme_notebook_example(seeds_run, enricher, monkeypatch):
    """The README's ```pycon blocks, run as a doctest against this test session's `make run` equivalent (seeds_run
    writes what `make run` writes: --format both)."""
    monkeypatch.chdir(ROOT)
    source = _readme_examples((ROOT / "README.md").read_text(encoding="utf-8"))
    assert 'out = "out"' in source
    source = source.replace('out = "out"', f'out = {str(seeds_run["out"])!r}')
    test = doctest.DocTestParser().get_doctest(source, {}, "README.md", "README.md", 0)
    assert len(test.examples) >= 12
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} README example(s) failed (doctest output above)"


def test_setup_ships_the_facade_the_template_and_the_weights(monkeypatch):
    """What `pip install .` installs (tools/check_install.sh installs it for real into a fresh venv; slow, so
    `make check-install`, not this suite): the newsbeam package and the package data the code opens."""
    import setuptools  # noqa: F401 (first: distutils is setuptools' copy)
    from distutils.core import run_setup

    monkeypatch.chdir(ROOT)  # find_packages looks in the current folder
    dist = run_setup(str(ROOT / "setup.py"), stop_after="init")
    assert {"newsbeam", "pipeline", "transforms", "modeling", "schemas"} <= set(dist.packages)
    data = dist.package_data
    for package, path in (("pipeline", "templates/report.html.j2"), ("pipeline", "templates/report.js"),
                          ("modeling", "weights/ner/model.safetensors"), ("pipeline", "targets.yaml")):
        assert any(Path(path).match(pattern) for pattern in data[package]), (package, path)
        assert (ROOT / package / path).is_file(), (package, path)


def test_read_output_reads_every_layout_through_beam_filesystems(tmp_path):
    """Batch, backfill and streaming files together, on an object store registered with Beam (memtest://, the
    report tests' stand-in for gs://): every record once, in the same columns."""
    import newsbeam
    from tests.test_report import ARTICLES, DEAD, DUPLICATES, _MemFS

    def jsonl(records):
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")

    fs = _MemFS.get()
    root = "memtest://bucket/layouts"
    fs.files.update({
        f"{root}/dt=2020-11-10/articles-00005-of-00064.jsonl": jsonl(ARTICLES[:2]),  # batch, a shard of a day
        f"{root}/dt=2020-11-09/articles-00000-of-00001.jsonl": jsonl(ARTICLES[2:3]),  # the older unsharded day
        f"{root}/dt=2020-11-25/stream-20201125T000000-abc.jsonl": jsonl(ARTICLES[3:]),  # streaming
        f"{root}/duplicates.jsonl": jsonl(DUPLICATES[:1]),
        f"{root}/duplicates/stream-20201125T000000-def.jsonl": jsonl(DUPLICATES[1:2]),
        f"{root}/_backfill/2020-11-01_2020-11-30/duplicates.jsonl": jsonl(DUPLICATES[2:]),  # backfill
        f"{root}/_backfill/2020-11-01_2020-11-30/dead_letter.jsonl": jsonl(DEAD[:2]),
        f"{root}/dead_letter/stream-20201125T000000-0aa.jsonl": jsonl(DEAD[2:]),
    })
    articles = newsbeam.read_output(root)
    assert sorted(articles["id"]) == sorted(a["id"] for a in ARTICLES)
    assert sorted(newsbeam.read_output(root, kind="duplicates")["id"]) == sorted(d["id"] for d in DUPLICATES)
    dead = newsbeam.read_output(root, kind="dead_letters")
    assert sorted(dead["input_ref"]) == sorted(d["input_ref"] for d in DEAD)
    stance = newsbeam.read_output(root, kind="stance")
    assert len(stance) == sum(len(a["stance"]) for a in ARTICLES)
    with pytest.raises(ValueError, match="kind must be one of"):
        newsbeam.read_output(root, kind="article")


def test_a_notebook_folders_own_pipeline_module_is_named_not_imported(tmp_path):
    """A notebook folder with its own pipeline.py: `import newsbeam` says which file hides newsbeam's package
    instead of failing later inside it."""
    (tmp_path / "pipeline.py").write_text("x = 1\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", "import newsbeam"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0
    assert f"`import pipeline` finds {tmp_path.resolve() / 'pipeline.py'}" in proc.stderr, proc.stderr
