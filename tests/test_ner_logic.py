"""NER pure logic: piece labels, span decoding, windows, entity grouping (no model)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling.ner import (IGNORE, LABEL2ID, LABELS, Span, constrained_labels, decode_pieces, follow_word_start,
                          piece_labels, span_prf, viterbi_bio, windows)
from transforms.ner import NER_LANGUAGES, group_entities, parse_ner_languages, unmeasured


def test_piece_labels_skip_empty_pieces_and_mark_b_then_i():
    text = "Sergei Shoigu met"
    offsets = [(0, 0), (0, 6), (6, 7), (7, 13), (14, 17)]  # a special, "Sergei", " ", "Shoigu", "met"
    labels = piece_labels(text, offsets, [(0, 13, "PER")], [True, False, False, False, False])
    assert labels == [IGNORE, LABEL2ID["B-PER"], IGNORE, LABEL2ID["I-PER"], LABEL2ID["O"]]


def test_decode_pieces_rebuilds_spans_with_exact_offsets():
    text = "In Moscow, Sergei Shoigu said"
    offsets = [(0, 2), (3, 9), (9, 10), (11, 17), (18, 24), (25, 29)]
    ids = [0, LABEL2ID["B-LOC"], 0, LABEL2ID["B-PER"], LABEL2ID["I-PER"], 0]
    spans = decode_pieces(text, offsets, ids, [1.0, 0.9, 1.0, 0.8, 0.6, 1.0])
    assert [(text[s.start:s.end], s.type) for s in spans] == [("Moscow", "LOC"), ("Sergei Shoigu", "PER")]
    assert spans[1].score == 0.7


def test_i_after_o_opens_an_entity():
    spans = decode_pieces("a Baku b", [(0, 1), (2, 6), (7, 8)], [0, LABEL2ID["I-LOC"], 0], [1, 1, 1])
    assert [(s.start, s.end, s.type) for s in spans] == [(2, 6, "LOC")]


def test_pieces_inside_a_word_follow_its_first_piece():
    # "Aserbaidschan" split in three pieces; the model tagged the middle one O and the last one B-ORG
    text = "Aserbaidschan's Armee"
    offsets = [(0, 4), (4, 9), (9, 13), (13, 14), (14, 15), (16, 21)]
    ids = [LABEL2ID["B-LOC"], 0, LABEL2ID["B-ORG"], 0, 0, LABEL2ID["B-ORG"]]
    fixed = follow_word_start(text, offsets, ids)
    assert fixed == [LABEL2ID["B-LOC"], LABEL2ID["I-LOC"], LABEL2ID["I-LOC"], 0, 0, LABEL2ID["B-ORG"]]
    spans = decode_pieces(text, offsets, fixed, [1.0] * 6)
    assert [(text[s.start:s.end], s.type) for s in spans] == [("Aserbaidschan", "LOC"), ("Armee", "ORG")]


def test_a_word_that_starts_outside_an_entity_stays_outside():
    # mid-word B- after O is not an entity start: "Newsweek" is not "sweek"
    text = "Newsweek said"
    offsets = [(0, 4), (4, 8), (9, 13)]
    fixed = follow_word_start(text, offsets, [0, LABEL2ID["B-ORG"], 0])
    assert fixed == [0, 0, 0]


def test_seams_at_punctuation_or_space_are_word_boundaries():
    text = "pro-Russian Baku"
    offsets = [(0, 3), (3, 4), (4, 11), (11, 16)]  # " Baku" piece starts with the space
    ids = [0, 0, LABEL2ID["B-MISC"], LABEL2ID["B-LOC"]]
    assert follow_word_start(text, offsets, ids) == ids


def _probs(rows):
    """(n, 9) probabilities from {label: p} dicts, the rest of each row's mass spread over the other labels."""
    import numpy as np

    out = np.zeros((len(rows), len(LABELS)), dtype=np.float32)
    for i, row in enumerate(rows):
        rest = (1.0 - sum(row.values())) / (len(LABELS) - len(row))
        out[i] = [row.get(l, rest) for l in LABELS]
    return out


def _valid_bio(labels):
    prev = "O"
    for lid in labels:
        cur = LABELS[lid]
        if cur.startswith("I-") and (prev == "O" or prev[2:] != cur[2:]):
            return False
        prev = cur
    return True


def test_viterbi_turns_i_after_o_into_the_best_valid_reading():
    import numpy as np

    # "said Baku": argmax gives O, I-LOC; the best valid sequence starts the entity with B-LOC
    probs = _probs([{"O": 0.9}, {"I-LOC": 0.6, "B-LOC": 0.3}])
    assert viterbi_bio(np.log(probs)) == [LABEL2ID["O"], LABEL2ID["B-LOC"]]


def test_viterbi_keeps_a_two_word_name_in_one_type():
    import numpy as np

    # "Nikol Pashinyan": B-PER then I-ORG by argmax; I-PER is nearly as likely and makes the sequence valid
    probs = _probs([{"B-PER": 0.9}, {"I-ORG": 0.45, "I-PER": 0.40}])
    assert viterbi_bio(np.log(probs)) == [LABEL2ID["B-PER"], LABEL2ID["I-PER"]]


@given(st.lists(st.lists(st.floats(0.01, 1.0), min_size=9, max_size=9), min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_viterbi_finds_the_best_valid_sequence(rows):
    import itertools

    import numpy as np

    logp = np.log(np.array(rows) / np.array(rows).sum(1, keepdims=True))
    path = viterbi_bio(logp)
    assert _valid_bio(path)
    best = max(sum(logp[i, l] for i, l in enumerate(seq))
               for seq in itertools.product(range(len(LABELS)), repeat=len(rows)) if _valid_bio(seq))
    assert abs(sum(logp[i, l] for i, l in enumerate(path)) - best) < 1e-9
    if _valid_bio(list(logp.argmax(1))):
        assert path == list(logp.argmax(1))


def test_constrained_labels_decide_per_word_and_the_word_follows():
    # "Aserbaidschan Armee": the word's later pieces do not vote; the empty piece gets O
    text = "Aserbaidschan Armee"
    offsets = [(0, 4), (4, 9), (9, 13), (13, 13), (14, 19)]
    probs = _probs([{"B-LOC": 0.8}, {"B-ORG": 0.9}, {"O": 0.9}, {"O": 0.9}, {"I-ORG": 0.5, "B-ORG": 0.4}])
    labels = constrained_labels(text, offsets, probs)
    assert labels == [LABEL2ID["B-LOC"], LABEL2ID["I-LOC"], LABEL2ID["I-LOC"], 0, LABEL2ID["B-ORG"]]
    spans = decode_pieces(text, offsets, labels, [1.0] * 5)
    assert [(text[s.start:s.end], s.type) for s in spans] == [("Aserbaidschan", "LOC"), ("Armee", "ORG")]


@given(n=st.integers(1, 3000), size=st.integers(8, 512), overlap=st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_windows_cover_every_token_exactly_once(n, size, overlap):
    overlap = min(overlap * size // 8, size // 2 - 1) if size > 2 else 0
    ws = windows(n, size, overlap)
    kept = [k for _, _, kf, kt in ws for k in range(kf, kt)]
    assert kept == list(range(n))
    assert all(en - st <= size and st <= kf <= kt <= en for st, en, kf, kt in ws)
    # no piece is read more than twice, and windows overlap by exactly `overlap` (the last one is not pulled back)
    assert sum(en - st for st, en, _, _ in ws) == n + (len(ws) - 1) * overlap


def test_the_last_window_ends_at_the_text_and_training_layout_stays_available():
    assert windows(300, 254, 32) == [(0, 254, 0, 238), (222, 300, 238, 300)]
    assert windows(300, 254, 32, last_at_end=True) == [(0, 254, 0, 150), (46, 300, 150, 300)]


def test_entity_grouping_counts_mentions():
    text = "Azerbaijan said. Azerbaijan's army. AZERBAIJAN? Moscow."
    spans = [Span(0, 10, "LOC", 0.9), Span(17, 29, "LOC", 0.7), Span(36, 46, "LOC", 0.8), Span(48, 54, "LOC", 1.0)]
    ents = group_entities(text, spans)
    assert ents[0]["text"] == "Azerbaijan" and ents[0]["count"] == 3
    assert [m["text"] for m in ents[0]["mentions"]] == ["Azerbaijan", "Azerbaijan", "AZERBAIJAN"]  # possessive cut
    assert all(text[m["start"]:m["end"]] == m["text"] for e in ents for m in e["mentions"])
    assert ents[0]["id"] == "cldr:AZ" and ents[1]["name"] == "Moscow"


def test_span_prf():
    gold = [[(0, 5, "PER"), (10, 15, "LOC")]]
    pred = [[(0, 5, "PER"), (10, 14, "LOC")]]
    res = span_prf(gold, pred)
    assert res["precision"] == 0.5 and res["recall"] == 0.5 and res["per_type"]["PER"]["f1"] == 1.0


class _PieceIdModel:
    """A stand-in token classifier whose logits for a piece depend only on that piece's id, with a foreign label
    set (IOB-style names, an unknown DATE type): windows stitched back must equal one pass over the whole text."""

    def __init__(self):
        from types import SimpleNamespace

        self.config = SimpleNamespace(id2label={0: "O", 1: "B-PERSON", 2: "I-PERSON", 3: "B-DATE", 4: "I-GPE"})

    def __call__(self, input_ids, attention_mask):
        import torch
        from types import SimpleNamespace

        g = (input_ids.unsqueeze(-1) * torch.tensor([7, 11, 13, 17, 19]) % 23).float() / 4.0
        return SimpleNamespace(logits=g)


def _fake_tagger(window, decoding):
    from modeling.ner import NerTagger
    from modeling.shipping import shared_tokenizer

    return NerTagger(_PieceIdModel(), shared_tokenizer(), window=window, overlap=8, precision="fp32", decoding=decoding)


def test_windowed_piece_probabilities_match_one_pass_over_the_text():
    import numpy as np

    text = " ".join(["Nikol Pashinyan met Ilham Aliyev in Moscow on 9 November 2020."] * 12)
    _, (short,) = _fake_tagger(24, "viterbi").piece_probs([text])
    _, (whole,) = _fake_tagger(1024, "viterbi").piece_probs([text])
    assert short.shape == whole.shape and short.shape[0] > 100
    assert np.allclose(short, whole, atol=1e-6)
    assert np.allclose(_fake_tagger(1024, "viterbi").fold(whole).sum(1), 1.0, atol=1e-5)  # summed: still probabilities


def test_argmax_fold_keeps_the_models_own_best_label():
    import numpy as np
    import torch

    tagger = _fake_tagger(128, "argmax")
    text = "Nikol Pashinyan met Ilham Aliyev in Moscow on 9 November 2020."
    _, (model_probs,) = tagger.piece_probs([text])
    probs = tagger.fold(model_probs)
    ids = tagger.tokenizer([text], add_special_tokens=False)["input_ids"][0]
    raw = tagger.model(torch.tensor([ids]), None).logits[0].softmax(-1)
    best_p, best_i = raw.max(-1)
    # the old decoder's label (argmax over the model's columns, then mapped) and its probability, piece by piece
    assert [int(probs[k].argmax()) for k in range(len(ids))] == [tagger.label_map[int(i)] for i in best_i]
    assert np.allclose(probs.max(1), best_p.numpy(), atol=1e-6)


def test_span_errors_names_each_kind_once():
    from modeling.ner import span_errors

    text = "Bach met Carl in Leipzig and Anaheim , California ."
    gold = [(0, 4, "PER"), (9, 13, "PER"), (17, 24, "LOC"), (29, 36, "LOC")]
    pred = [(0, 4, "PER"),            # right
            (9, 13, "ORG"),           # wrong type
            (29, 49, "LOC")]          # "Anaheim , California": wrong boundary
    errs = span_errors(gold, pred, types=("PER", "ORG", "LOC"))
    kinds = {e["kind"]: e for e in errs}
    assert [e["kind"] for e in errs] == ["wrong_type", "missed", "wrong_boundary"]
    assert kinds["wrong_type"]["pred"] == [(9, 13, "ORG")]
    assert text[slice(*kinds["missed"]["gold"][:2])] == "Leipzig"
    assert kinds["wrong_boundary"]["pred"] == [(29, 49, "LOC")]
    assert text[29:49] == "Anaheim , California"
    # a prediction touching no gold span is spurious; an exact match yields nothing
    assert span_errors([(0, 4, "PER")], [(0, 4, "PER"), (9, 13, "PER")]) == [
        {"kind": "spurious", "gold": None, "pred": [(9, 13, "PER")]}]
    assert span_errors(gold, gold) == []


def test_span_errors_unscored_type_and_joined_spans():
    from modeling.ner import error_counts, span_errors

    scored = ("PER", "ORG", "LOC")
    # WikiANN-style: MISC is not scored, but a MISC prediction on a gold LOC's exact span is a type error, not a miss
    assert span_errors([(0, 6, "LOC")], [(0, 6, "MISC")], scored) == [
        {"kind": "wrong_type", "gold": (0, 6, "LOC"), "pred": [(0, 6, "MISC")]}]
    # ...and an unscored prediction over nothing is not spurious
    assert span_errors([], [(0, 6, "MISC")], scored) == []
    # "Tampa Bay Buccaneers Dallas Cowboys" predicted as one ORG: two gold spans with a wrong boundary, not spurious
    gold = [(0, 20, "ORG"), (21, 35, "ORG")]
    errs = span_errors(gold, [(0, 35, "ORG")], scored)
    assert [e["kind"] for e in errs] == ["wrong_boundary", "wrong_boundary"]
    assert all(e["pred"] == [(0, 35, "ORG")] for e in errs)
    assert error_counts([gold, [(0, 4, "PER")]], [[(0, 35, "ORG")], []], scored) == {
        "wrong_type": 0, "wrong_boundary": 2, "missed": 1, "spurious": 0}


def test_ner_languages_add_to_or_replace_the_measured_set():
    assert parse_ner_languages(None) == NER_LANGUAGES and unmeasured(NER_LANGUAGES) == ()
    assert parse_ner_languages("+sk, +sv,+sk") == NER_LANGUAGES + ("sk", "sv")
    assert parse_ner_languages("en,SK") == ("en", "sk") and unmeasured(("en", "sk")) == ("sk",)
    assert parse_ner_languages("+en") == NER_LANGUAGES  # already measured: nothing added


@pytest.mark.parametrize("spec, message", [
    ("", "at least one"), ("+bg,hr", "either every code"), ("english", "not an ISO 639"), ("zz", "not an ISO 639"),
    ("+b1", "not an ISO 639"),
])
def test_bad_ner_languages_name_the_problem(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_ner_languages(spec)
