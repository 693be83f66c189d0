"""The shipped NER model on real text: offsets are exact for random and very long texts, windows merge at edges."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeling.ner import NerTagger
from pipeline.options import DEFAULT_NER_MODEL
from transforms.ner import group_entities

WORDS = ["Moscow", "Armenia", "Sergei", "Shoigu", "said", "the", "Azerbaijan's", "ceasefire", "in", "Baku", "«",
         "Ереван", "Пашинян", "заявил", "München", "Ñandú", "ﬁnance", "№5", "\t", "\n\n", "  ", "—", "'s", "U.S.",
         "東京", "😀", "O'Neill", "Jean-Pierre", "1987", ",", "."]


@pytest.fixture(scope="module")
def tagger():
    return NerTagger.load(DEFAULT_NER_MODEL, window=64, overlap=16)  # a small window exercises the merging


@given(words=st.lists(st.sampled_from(WORDS), min_size=0, max_size=120),
       seps=st.lists(st.sampled_from([" ", "", "  ", "\n"]), min_size=120, max_size=120))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_offsets_are_exact_for_random_texts(tagger, words, seps):
    text = "".join(w + s for w, s in zip(words, seps))
    spans = tagger.predict([text])[0]
    for span in spans:
        surface = text[span.start:span.end]
        assert surface and surface == surface.strip()
    for ent in group_entities(text, spans):
        for m in ent["mentions"]:
            assert text[m["start"]:m["end"]] == m["text"]


def test_long_text_prints_no_sequence_length_warning(tagger):
    """Texts are windowed, nothing is truncated: transformers' "longer than the maximum" warning is not logged."""
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    log = logging.getLogger("transformers")  # transformers' library root logger does not propagate
    handler = Keep(level=logging.WARNING)
    log.addHandler(handler)
    try:
        tagger.tokenizer.deprecation_warnings.pop("sequence-length-is-longer-than-the-specified-maximum", None)
        tagger.predict(["Moscow said so. " * 400])  # ~1,600 pieces, over the tokenizer's 512
    finally:
        log.removeHandler(handler)
    assert not [r for r in records if "longer than the specified maximum" in r.getMessage()]


def test_long_article_is_covered_to_the_end(tagger):
    sentence = "Russian Defence Minister Sergei Shoigu met Armenian officials in Moscow on Friday. "
    text = sentence * 60 + "At the very end, Vladimir Putin spoke in Baku."  # ~1,300 pieces: 28 windows of 64
    spans = tagger.predict([text])[0]
    surfaces = [(text[s.start:s.end], s.type) for s in spans]
    assert surfaces.count(("Moscow", "LOC")) == 60
    assert ("Baku", "LOC") in surfaces and ("Vladimir Putin", "PER") in surfaces


def test_the_shipped_model_reads_its_training_length_with_viterbi():
    # defaults chosen per model by NerTagger.load: newsbeam.json's max_len and BIO-constrained decoding
    shipped = NerTagger.load(DEFAULT_NER_MODEL)
    assert (shipped.window, shipped.decoding) == (128, "viterbi")
    text = "Nikol Pashinyan and Ilham Aliyev signed the ceasefire in Moscow."
    viterbi = [(text[s.start:s.end], s.type) for s in shipped.predict([text])[0]]
    assert ("Nikol Pashinyan", "PER") in viterbi and ("Moscow", "LOC") in viterbi
    explicit = NerTagger.load(DEFAULT_NER_MODEL, window=256, decoding="argmax")
    assert (explicit.window, explicit.decoding) == (256, "argmax")
