"""The rebuilt multilingual-e5-small: image reading, tokenizer normalisation and offsets."""
from __future__ import annotations

import numpy as np
import pytest

from modeling.e5base import dequantize_q4, load_image
from modeling.shipping import shared_tokenizer


def test_dequantize_q4_block_layout():
    scale = np.array([0.5], dtype=np.float16).tobytes()
    nibbles = bytes((j & 0x0F) | ((15 - (j & 0x0F)) << 4) for j in range(16))
    values = dequantize_q4(np.frombuffer(scale + nibbles, dtype=np.uint8), 32)
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_image_shapes():
    image = load_image(words_only=True)
    assert (image.hidden, image.layers, image.vocab) == (384, 12, 250037)
    assert image.tensors["emb.word"].size == image.vocab * image.hidden


@pytest.mark.parametrize("text", ["ﬁnance № 5 costs ½", "Москва и Ереван", "Jürgen Klinsmann", "東京"])
def test_tokenizer_normaliser_has_no_unknowns(text):
    tok = shared_tokenizer()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids


def test_offsets_point_into_the_original_text():
    tok = shared_tokenizer()
    text = "Sergei  Shoigu met\tVagharshak Harutiunian in Moscow."
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    pieces = [text[s:e] for s, e in enc["offset_mapping"] if e > s]
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())
