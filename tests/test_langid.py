"""Language identification on the seed articles (several languages) and on text with no letters."""
from __future__ import annotations

import pytest

from transforms.langid import detect_language, load_detector
from transforms.parse import parse_seed


@pytest.fixture(scope="module")
def detector():
    return load_detector()


@pytest.mark.parametrize("name, code", [
    ("armenia_azerbaijan_ceasefire.txt", "en"), ("ru_mirotvortsy.txt", "ru"), ("de_lockdown.txt", "de"),
    ("es_filomena.txt", "es"), ("nl_kabinet.txt", "nl"), ("pl_protesty.txt", "pl"), ("fr_vaccin.txt", "fr"),
])
def test_seed_languages(detector, root, name, code):
    a = parse_seed((root / "seeds" / name).read_text(encoding="utf-8"), name, name)
    lang = detect_language(detector, a["title"], a["text"])
    assert lang["code"] == code and lang["confidence"] > 0.5


def test_no_letters_is_undetermined(detector):
    assert detect_language(detector, "", "12 34 -- !!")["code"] == "und"
