"""BSNLP-2017 dev scoring (modeling.evaluation.bsnlp): pure functions on hand-made documents, and the reader on
the real data when it is beside the clone."""
from __future__ import annotations

import pytest

from modeling.evaluation.bsnlp import BsnlpDoc, GoldMention, error_analysis, read_bsnlp, score
from modeling.training.corpora import shared_data_dir


def gold(surface: str, etype: str, base: str | None = None, xid: str = "x") -> GoldMention:
    return GoldMention(surface.casefold(), (base or surface).casefold(), etype, xid)


def entity(text: str, etype: str, start: int, base: str | None = None, eid: str | None = None) -> dict:
    return {"text": text, "type": etype, "id": eid or f"{etype}:{text}",
            "mentions": [{"text": text, "start": start, "end": start + len(text), "base": base or text}]}


def doc(lang: str, text: str, *golds: GoldMention, topic: str = "ec", doc_id: str = "1") -> BsnlpDoc:
    return BsnlpDoc(topic, lang, doc_id, text, tuple(golds))


def test_score_counts_distinct_surfaces_by_type_and_ignores_predicted_misc():
    text = "Komisja Europejska i UE. Komisji Europejskiej. Polacy."
    d = doc("pl", text, gold("Komisja Europejska", "ORG"), gold("Komisji Europejskiej", "ORG", "Komisja Europejska"),
            gold("UE", "LOC"), gold("Polacy", "PER"))
    out = [entity("Komisja Europejska", "ORG", 0), entity("UE", "ORG", 21), entity("Polacy", "MISC", 47),
           entity("Komisji Europejskiej", "ORG", 25, base="Komisja Europejska")]
    pl = score([d], [out])["languages"]["pl"]
    # found: both Commission forms; missed: UE (typed ORG) and Polacy (MISC); UE as ORG is a false positive
    assert (pl["ner"]["tp"], pl["ner"]["fn"], pl["ner"]["fp"]) == (2, 2, 1)
    assert pl["base_accuracy"] == 1.0 and pl["base_n"] == 2


def test_error_analysis_names_conventions_and_unlisted_names_and_the_f1_without_them():
    d1 = doc("pl", "UE i Polacy. Niemcy.", gold("UE", "LOC"), gold("Polacy", "PER"), doc_id="1")
    d2 = doc("pl", "Niemcy, Francja.", gold("Niemcy", "LOC"), gold("Francja", "LOC"), doc_id="2")
    out1 = [entity("UE", "ORG", 0), entity("Polacy", "MISC", 5), entity("Niemcy", "LOC", 13)]
    out2 = [entity("Niemcy", "LOC", 0), entity("Francja", "LOC", 8)]
    err = error_analysis([d1, d2], [out1, out2])["languages"]["pl"]
    assert (err["fn_loc_as_org"], err["fn_per_as_misc"], err["fp_listed_elsewhere"]) == (1, 1, 1)
    # tp 2 (doc 2), fn 2, fp 2 (UE as ORG, Niemcy unlisted in doc 1): F1 0.5
    assert err["f1"] == 0.5
    # conventions forgiven: tp 4, fn 0, fp 1 -> P 0.8, R 1; then the unlisted name too: all correct
    assert err["f1_conventions_forgiven"] == pytest.approx(0.8889, abs=1e-4)
    assert err["f1_and_unlisted_forgiven"] == 1.0
    assert err["gold_per_1000_chars"] == round(1000 * 4 / (len(d1.text) + len(d2.text)), 2)


def test_error_analysis_shows_a_gold_list_that_stops_early():
    text = "Kyiv " + "x" * 80 + " Lviv " + "y" * 80 + " Odesa"
    d = doc("uk", text, gold("Kyiv", "LOC"))
    out = [entity("Kyiv", "LOC", 0), entity("Lviv", "LOC", text.index("Lviv")),
           entity("Odesa", "LOC", text.index("Odesa"))]
    err = error_analysis([d], [out])["languages"]["uk"]
    assert (err["listed_first_quarter"], err["listed_last_quarter"]) == (1.0, 0.0)


def test_reads_every_annotated_document_of_the_shared_data():
    root = shared_data_dir() / "ner" / "bsnlp2017"
    if not root.is_dir():
        pytest.skip(f"BSNLP-2017 data not at {root} (../shared/data beside the clone)")
    docs = read_bsnlp(root)
    assert {d.lang for d in docs} == {"cs", "pl", "ru", "sl", "uk"} and len(docs) > 200
    assert all(d.gold and d.text for d in docs)
    assert {g.type for d in docs for g in d.gold} <= {"PER", "ORG", "LOC", "MISC"}
