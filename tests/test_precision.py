"""`--precision`: the choice logic with a fake timer (no wall-clock assertion), and the offered set per model."""
from __future__ import annotations

import pytest

from modeling.precision import (UNMEASURED_OFFER, offered_precisions, pick_fastest, resolve, within_tolerance)


class FakeTimer:
    """measure(precision, small) from fixed per-call costs, counting the calls made."""

    def __init__(self, full: dict[str, float], small: dict[str, float] | None = None, noise: dict | None = None):
        self.full, self.small = full, small or {p: s / 16 for p, s in full.items()}
        self.noise = noise or {}  # precision -> list of extra seconds, consumed one per full-size call
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, precision: str, small: bool) -> float:
        self.calls.append((precision, small))
        if small:
            return self.small[precision]
        extra = self.noise.get(precision, [])
        return self.full[precision] + (extra.pop(0) if extra else 0.0)


def test_native_bf16_cpu_picks_bf16():
    choice = pick_fastest(["fp32", "bf16", "int8"], FakeTimer({"fp32": 0.020, "bf16": 0.006, "int8": 0.009}))
    assert choice.precision == "bf16"
    assert choice.seconds == {"fp32": None, "bf16": 0.006, "int8": 0.009}  # fp32, 3.3x bf16, cannot win


def test_cpu_without_fast_bf16_drops_bf16_after_the_small_trial_and_picks_int8():
    timer = FakeTimer({"fp32": 0.020, "bf16": 2.0, "int8": 0.011})  # bf16 100x fp32, as on an AVX2-only CPU
    choice = pick_fastest(["fp32", "bf16", "int8"], timer)
    assert choice.precision == "int8"
    assert choice.seconds["bf16"] is None  # never timed at full size: one such call would cost the whole budget
    assert ("bf16", False) not in timer.calls
    assert timer.calls.count(("int8", False)) == 3 and timer.calls.count(("fp32", False)) == 3


def test_int8_not_offered_falls_back_to_fp32_on_such_a_cpu():
    assert pick_fastest(["fp32", "bf16"], FakeTimer({"fp32": 0.020, "bf16": 2.0, "int8": 0.011})).precision == "fp32"


def test_a_near_tie_of_bf16_and_int8_does_not_flip_the_choice():
    # on a CPU with native bf16 the two run within noise of each other: whichever edges ahead, bf16 (more exact)
    for bf16, int8 in ((0.0105, 0.0100), (0.0100, 0.0105)):
        choice = pick_fastest(["fp32", "bf16", "int8"], FakeTimer({"fp32": 0.020, "bf16": bf16, "int8": int8}))
        assert choice.precision == "bf16" and "native" in choice.reason


def test_int8_is_taken_only_when_faster_than_fp32():
    assert pick_fastest(["int8", "fp32"], FakeTimer({"fp32": 0.020, "int8": 0.016})).precision == "int8"
    choice = pick_fastest(["int8", "fp32"], FakeTimer({"fp32": 0.020, "int8": 0.021}))
    assert choice.precision == "fp32" and "nothing measured faster" in choice.reason


def test_best_of_rounds_ignores_a_burst_of_load():
    # the first full-size fp32 call is hit by another process; its best of three is still the true cost
    timer = FakeTimer({"fp32": 0.010, "int8": 0.012}, noise={"fp32": [0.050, 0.020, 0.0]})
    choice = pick_fastest(["fp32", "int8"], timer)
    assert choice.precision == "fp32" and choice.seconds["fp32"] == pytest.approx(0.010)


def test_a_candidate_close_in_the_small_trial_is_timed_in_full_and_can_still_lose():
    # bf16 2.5x int8: not dropped by the small trial (3x), timed in full, and it loses
    timer = FakeTimer({"fp32": 0.010, "bf16": 0.0175, "int8": 0.007})
    choice = pick_fastest(["fp32", "bf16", "int8"], timer)
    assert choice.precision == "int8" and choice.seconds["bf16"] == 0.0175
    assert timer.calls.count(("bf16", False)) == 3


def test_a_candidate_far_behind_at_full_size_is_dropped_after_two_calls():
    # close in the small trial (per-call overheads), 5x the leader at full size: timed twice, then out
    timer = FakeTimer({"fp32": 0.010, "bf16": 0.050}, small={"fp32": 0.001, "bf16": 0.0015})
    choice = pick_fastest(["fp32", "bf16"], timer)
    assert choice.precision == "fp32" and choice.seconds["bf16"] == 0.050
    assert timer.calls.count(("bf16", False)) == 2 and timer.calls.count(("fp32", False)) == 3


def test_a_single_candidate_is_not_probed():
    timer = FakeTimer({"fp32": 0.01})
    assert pick_fastest(["fp32"], timer).precision == "fp32" and timer.calls == []


def test_resolve_named_precision_is_used_as_given_without_probing():
    timer = FakeTimer({"fp32": 0.02, "bf16": 0.01, "int8": 0.005})
    choice = resolve("fp32", ("fp32", "bf16", "int8"), timer)
    assert (choice.precision, choice.reason, timer.calls) == ("fp32", "requested", [])
    assert resolve("int8", ("fp32",), timer).precision == "int8"  # the user's call, even unmeasured
    with pytest.raises(ValueError, match="--precision must be one of"):
        resolve("fp16", ("fp32",), timer)


def test_resolve_auto_probes_only_offered_precisions():
    timer = FakeTimer({"fp32": 0.02, "bf16": 0.01, "int8": 0.005})
    assert resolve("auto", ("fp32", "bf16"), timer).precision == "bf16"
    assert {p for p, _ in timer.calls} == {"fp32", "bf16"}


def test_offered_precisions_follow_the_models_quality_record():
    assert offered_precisions(None) == UNMEASURED_OFFER
    assert offered_precisions({"precisions": {"within_tolerance": ["int8", "bf16"]}}) == ("fp32", "bf16", "int8")
    assert offered_precisions({"precisions": {"within_tolerance": ["fp32"]}}) == ("fp32",)


def test_within_tolerance_allows_gains_and_small_losses_only():
    ref = {"conll-en": 0.937, "nerel": 0.885}
    assert within_tolerance(ref, {"conll-en": 0.933, "nerel": 0.890}, 0.005)
    assert not within_tolerance(ref, {"conll-en": 0.931, "nerel": 0.890}, 0.005)


def test_quality_record_offers_only_precisions_within_tolerance_and_renders():
    from modeling.evaluation.quality import PRECISION_HEADING, precision_record, precision_section, splice_section

    scores = {"fp32": {"conll-en": 0.9370, "nerel": 0.8854}, "bf16": {"conll-en": 0.9371, "nerel": 0.8850},
              "int8": {"conll-en": 0.9300, "nerel": 0.8860}}
    rec = precision_record(scores, 0.005, {"conll-en": 3250, "nerel": 94}, "cmd", None)
    assert rec["within_tolerance"] == ["fp32", "bf16"]  # int8 lost 0.7 points on conll-en
    assert offered_precisions({"precisions": rec}) == ("fp32", "bf16")
    section = precision_section(rec, None)
    assert "| conll-en | 3250 | 0.9370 | 0.9371 (+0.01) | 0.9300 (-0.70) |" in section
    doc = "# Quality\n\n## Stance\n\ntext\n\n## Language identification\n\nx\n"
    once = splice_section(doc, PRECISION_HEADING, section)
    assert once.index("## Stance") < once.index(PRECISION_HEADING) < once.index("## Language identification")
    assert splice_section(once, PRECISION_HEADING, section) == once  # re-measuring replaces, never duplicates


def test_a_full_eval_keeps_the_sections_other_tools_wrote():
    from modeling.evaluation.quality import keep_other_sections

    old = "# Quality\n\n## NER\n\nold figures\n\n## Stance per language\n\nGerNTSA 0.44\n"
    new = "# Quality\n\n## NER\n\nnew figures\n"
    merged = keep_other_sections(old, new)
    assert "new figures" in merged and "old figures" not in merged and merged.count("## NER\n") == 1
    assert merged.endswith("## Stance per language\n\nGerNTSA 0.44\n")
    assert keep_other_sections(merged, new) == merged


def test_int8_model_runs_quantised_and_finds_the_entities():
    from modeling.ner import NerTagger
    from modeling.quantization import Int8Linear
    from pipeline.options import DEFAULT_NER_MODEL

    tagger = NerTagger.load(DEFAULT_NER_MODEL, precision="int8")
    assert (tagger.precision, tagger.choice.reason) == ("int8", "requested")
    import torch

    assert type(tagger.model.classifier) is torch.nn.Linear  # the head stays fp32
    int8 = {n: m for n, m in tagger.model.named_modules() if isinstance(m, Int8Linear)}
    assert len(int8) == 12 * 5  # q, k, v, attention output, FFN in
    assert "bert.encoder.layer.0.intermediate.dense" in int8 and "bert.encoder.layer.0.output.dense" not in int8
    # the shipped calibration is used: every int8 layer smoothed, with a static input range
    assert all(m.inv_smooth is not None and m.x_scale is not None for m in int8.values())
    text = "Nikol Pashinyan and Ilham Aliyev signed the ceasefire in Moscow."
    found = {(text[s.start:s.end], s.type) for s in tagger.predict([text])[0]}
    assert {("Nikol Pashinyan", "PER"), ("Ilham Aliyev", "PER"), ("Moscow", "LOC")} <= found


def test_int8_scores_of_an_article_do_not_depend_on_its_batch():
    """A runner bundles articles as it likes; in int8 as in fp32 and bf16 an article's scores must be its own
    (per-call dynamic activation scales broke this: a loud segment changed its batch-mates' scores)."""
    from modeling.ner import NerTagger
    from modeling.stance import MentionInput, StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    tagger = NerTagger.load(DEFAULT_NER_MODEL, precision="int8")
    text = "Nikol Pashinyan met Vladimir Putin in Moscow on Tuesday to discuss the ceasefire in Nagorno-Karabakh."
    others = [text.upper(), "ZZZZ " * 30 + "!!!", "Reuters reported from Baku that Ilham Aliyev spoke on television."]
    alone = tagger.piece_probs([text])[1][0]
    batched = tagger.piece_probs([*others, text])[1][-1]
    assert (alone == batched).all()
    clf = StanceClassifier.load(DEFAULT_STANCE_MODEL, precision="int8")
    item = MentionInput("Armenia", "Armenia praised the deal that ended the war.", 0, 7)
    noise = [MentionInput("Azerbaijan", "AZERBAIJAN!!! " * 8 + "Azerbaijan won.", 0, 10),
             MentionInput("Russia", "Russia sent peacekeepers to the region after the deal.", 0, 6)]
    # each input runs alone (modeling.ner.one_at_a_time): equal to the last bit, on AVX2 as with VNNI
    assert clf.predict_proba([item])[0] == clf.predict_proba([*noise, item])[-1]


def test_auto_picks_an_offered_precision_once_per_process_and_says_why(caplog):
    import logging

    from modeling import precision
    from modeling.stance import MentionInput, StanceClassifier
    from pipeline.options import DEFAULT_STANCE_MODEL

    precision._CHOSEN.clear()
    with caplog.at_level(logging.INFO, logger="newsbeam.precision"):
        first = StanceClassifier.load(DEFAULT_STANCE_MODEL)
        second = StanceClassifier.load(DEFAULT_STANCE_MODEL)
    offered = precision.offered_precisions(precision.model_meta(DEFAULT_STANCE_MODEL))
    assert first.precision in offered and first.choice.reason.startswith("auto")
    assert set(first.choice.seconds) == set(offered)  # every offered precision was probed (or dropped)
    assert second.choice is first.choice  # probed once per process: both loads run alike
    assert [r.message for r in caplog.records].count(next(r.message for r in caplog.records)) == 1
    assert "precision auto chose" in caplog.text
    probs = first.predict_proba([MentionInput("Armenia", "Armenia praised the deal.", 0, 7)])
    assert len(probs) == 1 and abs(sum(probs[0]) - 1) < 1e-5


def test_compile_with_int8_is_a_clear_error_before_any_load():
    from modeling.ner import NerTagger
    from pipeline.options import DEFAULT_NER_MODEL

    with pytest.raises(ValueError, match="--compile-models does not work with --precision int8"):
        NerTagger.load(DEFAULT_NER_MODEL, precision="int8", compile=True)


def test_precision_option_reaches_both_model_handlers():
    """--precision -> GraphConfig -> the pickled RunInference handlers, which load the models in it on the worker."""
    from apache_beam.internal import pickler
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL, NewsbeamOptions
    from pipeline.launch import graph_config
    from transforms.ner import RecogniseEntities
    from transforms.stance import ClassifyStance

    def cfg(*extra):
        return graph_config(PipelineOptions(["--output", "out", "--targets", "Armenia", *extra])
                            .view_as(NewsbeamOptions))

    assert cfg().precision == "auto"
    assert cfg("--precision", "fp32").precision == "fp32"
    ner = pickler.loads(pickler.dumps(RecogniseEntities(DEFAULT_NER_MODEL, precision="fp32").handler))
    stance = pickler.loads(pickler.dumps(ClassifyStance(DEFAULT_STANCE_MODEL, {"A": []}, precision="fp32").handler))
    assert (ner.precision, stance.precision) == ("fp32", "fp32")
    assert (ner.load_model().precision, stance.load_model().precision) == ("fp32", "fp32")
    assert RecogniseEntities(DEFAULT_NER_MODEL).handler.precision == "auto"
