"""The model stages as PTransforms on a TestPipeline, with the real shipped models."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
from tests.conftest import beam_pipeline
from transforms.ner import RecogniseEntities
from transforms.stance import ClassifyStance

EN = {"id": "a1", "input_ref": "a.txt", "title": "t", "language": {"code": "en", "confidence": 0.9, "detector": "x"},
      "text": "Russian Defence Minister Sergei Shoigu met Armenian officials in Moscow. "
              "Azerbaijan's forces took Hadrut."}
SV = {"id": "s1", "input_ref": "s.txt", "title": "t", "language": {"code": "sv", "confidence": 0.9, "detector": "x"},
      "text": "Ministern hyllade en historisk dag i Stockholm."}


EXPECTED = {("Sergei Shoigu", "PER"), ("Moscow", "LOC"), ("Hadrut", "LOC"), ("Azerbaijan", "LOC")}


def _entity_summary(a):
    found = {(e["text"], e["type"]) for e in a["entities"]}
    return [a["id"], a["ner"]["status"], sorted(EXPECTED & found), len(found)]


def test_ner_transform_tags_supported_and_skips_others():
    with beam_pipeline() as p:
        out = p | beam.Create([EN, SV]) | RecogniseEntities(DEFAULT_NER_MODEL)
        summary = out["articles"] | beam.Map(_entity_summary)
        assert_that(summary | beam.Map(lambda s: list(s[:3])), equal_to([
            ["a1", "done", sorted(EXPECTED)], ["s1", "skipped", []]]), label="articles")
        assert_that(out["dead_letter"], equal_to([]), label="dead")


SK = {"id": "k1", "input_ref": "k.txt", "title": "t", "language": {"code": "sk", "confidence": 0.9, "detector": "x"},
      "text": "Arménsko a Azerbajdžan podpísali dohodu o prímerí. Ruský prezident Vladimir Putin oznámil, že v "
              "regióne budú rozmiestnení ruskí mierotvorcovia."}


def test_ner_languages_added_by_the_user_run_zero_shot_and_say_so():
    from transforms.ner import NER_LANGUAGES

    def summary(a):
        ids = sorted(e["id"] for e in a["entities"] if e["id"].startswith("cldr:"))
        return [a["id"], a["ner"]["status"], a["ner"].get("reason") or "", ids]

    with beam_pipeline() as p:
        out = p | beam.Create([SK, SV]) | RecogniseEntities(DEFAULT_NER_MODEL, languages=NER_LANGUAGES + ("sk",))
        assert_that(out["articles"] | beam.Map(summary), equal_to([
            ["k1", "done", "zero-shot: NER quality is not measured for sk (added by --ner-languages)",
             ["cldr:AM", "cldr:AZ"]],
            ["s1", "skipped", f"unsupported language: sv (NER covers {', '.join(NER_LANGUAGES)}, sk)", []]]))


def test_ner_languages_option_reaches_the_graph_config_and_bad_codes_are_usage_errors():
    import pytest
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.launch import UsageError, graph_config
    from pipeline.options import NewsbeamOptions
    from transforms.ner import NER_LANGUAGES

    def cfg(*extra):
        return graph_config(PipelineOptions(["--output", "out", "--targets", "Armenia", *extra])
                            .view_as(NewsbeamOptions))

    assert cfg().ner_languages == NER_LANGUAGES
    assert cfg("--ner-languages", "+sk").ner_languages == NER_LANGUAGES + ("sk",)
    assert cfg("--ner-languages", "en,ru").ner_languages == ("en", "ru")
    with pytest.raises(UsageError, match="--ner-languages: 'xx1' is not an ISO 639"):
        cfg("--ner-languages", "+xx1")


def test_stance_transform_labels_every_target():
    with beam_pipeline() as p:
        out = p | beam.Create([EN]) | ClassifyStance(DEFAULT_STANCE_MODEL, {"Azerbaijan": [], "Armenia": []})

        def summary(a):
            # a mentioned target gets a label; an unmentioned one none (label null), with the reason
            return [(s["target"], s["mentions"], s["reason"], s["label"] in ("favor", "against", "neutral"),
                     # the article head's calibrated probabilities, and the one classified mention kept
                     s["label"] is None or (abs(sum(s["probabilities"].values()) - 1) < 1e-3
                                            and s["score"] == max(s["probabilities"].values())
                                            and [a["text"][m["start"]:m["end"]] for m in s["mention_labels"]]
                                            == ["Azerbaijan"]))
                    for s in a["stance"]]

        assert_that(out["articles"] | beam.Map(summary),
                    equal_to([[("Azerbaijan", 1, None, True, True), ("Armenia", 0, "not mentioned", False, True)]]))


class _PoisonedTagger:
    """The real tagger, with a fault injected: any batch holding a text with POISON raises."""

    def __init__(self, real):
        self.real = real

    def predict(self, texts):
        if any("POISON" in t for t in texts):
            raise RuntimeError("injected fault")
        return self.real.predict(texts)


def test_a_failing_batch_is_retried_singly_then_dead_lettered():
    from transforms.ner import NerModelHandler

    class Handler(NerModelHandler):
        def load_model(self):
            return _PoisonedTagger(super().load_model())

    poisoned = dict(EN, id="p1", input_ref="p.txt", text="POISON in Moscow.")
    transform = RecogniseEntities(DEFAULT_NER_MODEL)
    transform.handler = Handler(DEFAULT_NER_MODEL, max_batch_size=8)
    with beam_pipeline() as p:
        out = p | beam.Create([EN, poisoned]) | transform
        assert_that(out["articles"] | beam.Map(lambda a: a["id"]), equal_to(["a1"]), label="kept")
        assert_that(out["dead_letter"] | beam.Map(lambda d: (d["id"], d["stage"], "injected fault" in d["error"])),
                    equal_to([("p1", "ner", True)]), label="dead")


def test_torch_threads_cap_reaches_the_worker_model_load():
    """--torch-threads travels with the pickled handler and is applied where the model loads (DoFn.setup on the
    worker), so N SDK processes per machine do not each start one thread per core."""
    import torch
    from apache_beam.internal import pickler

    before = torch.get_num_threads()
    try:
        stage = RecogniseEntities(DEFAULT_NER_MODEL, torch_threads=1)
        handler = pickler.loads(pickler.dumps(stage.handler))
        torch.set_num_threads(2)
        handler.load_model()
        assert torch.get_num_threads() == 1
        stance = ClassifyStance(DEFAULT_STANCE_MODEL, {"Armenia": []}, torch_threads=1)
        assert pickler.loads(pickler.dumps(stance.handler)).torch_threads == 1
        assert RecogniseEntities(DEFAULT_NER_MODEL).handler.torch_threads == 0  # default: torch decides
    finally:
        torch.set_num_threads(before)


def test_negative_torch_threads_is_a_usage_error():
    import pytest
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import NewsbeamOptions
    from pipeline.launch import UsageError, graph_config

    opts = PipelineOptions(["--output", "out", "--targets", "Armenia", "--torch-threads", "-1"]).view_as(NewsbeamOptions)
    with pytest.raises(UsageError, match="--torch-threads"):
        graph_config(opts)


def test_zero_batch_size_is_a_usage_error():
    import pytest
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import NewsbeamOptions
    from pipeline.launch import UsageError, graph_config

    opts = PipelineOptions(["--output", "out", "--targets", "Armenia", "--ner-batch-size", "0"]).view_as(NewsbeamOptions)
    with pytest.raises(UsageError, match="--ner-batch-size"):
        graph_config(opts)


def _article(i: int) -> dict:
    return dict(EN, id=f"a{i}", input_ref=f"a{i}.txt")


def test_model_stages_run_full_batches():
    """RunInference's own batch-size distribution: 20 articles at 8 per batch are 3 batches (8, 8, 4), where Beam's
    adaptive default gave batches of 1-4 articles (transforms.common.fixed_batches)."""
    from apache_beam.metrics.metric import MetricsFilter

    p = beam_pipeline()
    tagged = p | beam.Create([_article(i) for i in range(20)]) | RecogniseEntities(DEFAULT_NER_MODEL, max_batch_size=8)
    stance = tagged["articles"] | ClassifyStance(DEFAULT_STANCE_MODEL, {"Azerbaijan": []}, max_batch_size=8)
    assert_that(stance["articles"] | beam.combiners.Count.Globally(), equal_to([20]))
    result = p.run()
    result.wait_until_finish()
    for namespace in ("newsbeam_ner", "newsbeam_stance"):
        [dist] = result.metrics().query(MetricsFilter().with_namespace(namespace)
                                        .with_name("inference_request_batch_size"))["distributions"]
        sizes = dist.committed
        assert (sizes.count, sizes.sum, sizes.max) == (3, 20, 8), (namespace, sizes)
