"""Token-classification NER over subword pieces with exact character offsets.

Pure functions (labelling, windowing, decoding) are separate from the torch model so they are testable alone.
Labels sit on pieces, not words: an entity starts at the first piece that carries characters (the XLM-R
vocabulary often splits a bare "▁" piece off a word; such empty pieces get no label and are skipped).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
LABEL2ID = {l: i for i, l in enumerate(LABELS)}
IGNORE = -100


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    score: float


def content_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The piece's character range without surrounding whitespace; None for a piece with no characters."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def piece_labels(text: str, offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]],
                 special: Sequence[bool]) -> list[int]:
    """BIO label id per piece from character spans: B on the first content piece of a span, I after it."""
    labels = []
    ordered = sorted(spans)
    j = 0
    open_span = None
    for (s, e), is_special in zip(offsets, special):
        cs = None if is_special else content_span(text, s, e)
        if cs is None:
            labels.append(IGNORE)
            continue
        s, e = cs
        while j < len(ordered) and ordered[j][1] <= s:
            j += 1
        if j < len(ordered) and ordered[j][0] < e:
            span = ordered[j]
            tag = ("I-" if open_span == span else "B-") + span[2]
            open_span = span
            labels.append(LABEL2ID.get(tag, 0))
        else:
            open_span = None
            labels.append(0)
    return labels


def decode_pieces(text: str, offsets: Sequence[tuple[int, int]], label_ids: Sequence[int],
                  scores: Sequence[float]) -> list[Span]:
    """Merge per-piece BIO predictions into character spans (an I- after O or another type opens an entity).

    Pieces with no characters (offsets empty or whitespace only) are skipped without closing an entity.
    The span's score is the mean of its pieces' probabilities.
    """
    spans: list[Span] = []
    cur = None  # [start, end, type, [scores]]
    for (s, e), lid, sc in zip(offsets, label_ids, scores):
        cs = content_span(text, s, e) if e > s else None
        if cs is None:
            continue
        label = LABELS[lid]
        kind, _, etype = label.partition("-")
        if kind == "B" or (kind == "I" and (cur is None or cur[2] != etype)):
            if cur:
                spans.append(_close(cur))
            cur = [cs[0], cs[1], etype, [sc]]
        elif kind == "I":
            cur[1] = cs[1]
            cur[3].append(sc)
        else:
            if cur:
                spans.append(_close(cur))
            cur = None
    if cur:
        spans.append(_close(cur))
    return spans


def word_starts(text: str, offsets: Sequence[tuple[int, int]]) -> list[bool]:
    """True for each piece that begins a word (empty pieces: False). A piece continues the word when it touches
    the previous non-empty piece with a letter or digit on both sides of the seam (see follow_word_start)."""
    starts = [False] * len(offsets)
    prev = None
    for k, (s, e) in enumerate(offsets):
        if e <= s:
            continue
        starts[k] = not (prev is not None and s == offsets[prev][1] and text[s - 1].isalnum() and text[s].isalnum())
        prev = k
    return starts


def follow_word_start(text: str, offsets: Sequence[tuple[int, int]], label_ids: Sequence[int],
                      starts: Sequence[bool] | None = None) -> list[int]:
    """Make the pieces inside a word follow the word's first piece: O after O, I-X after B-X or I-X.

    A word here is a run of pieces that touch with a letter or digit on both sides of every seam, so "Baku"'s
    pieces are one word while "Azerbaijan's" ends the word at the apostrophe and "pro-Russian" at the hyphen.
    Without it a piece in mid-word could open, close or retype an entity and cut a word in two (the first-piece
    rule of transformers' `aggregation_strategy="first"`, applied to our character offsets). `starts`: the
    text's word_starts, if the caller has them already.
    """
    out = list(label_ids)
    prev = None
    for k, starts_word in enumerate(word_starts(text, offsets) if starts is None else starts):
        if offsets[k][1] <= offsets[k][0]:
            continue
        if not starts_word:
            label = LABELS[out[prev]]
            out[k] = 0 if label == "O" else LABEL2ID["I-" + label.partition("-")[2]]
        prev = k
    return out


def bio_transitions() -> "np.ndarray":
    """(9, 9) additive scores, previous label by next label: 0 where BIO allows it, -inf where it does not.

    I-X may only follow B-X or I-X; O and B-* may follow anything.
    """
    import numpy as np

    t = np.zeros((len(LABELS), len(LABELS)), dtype=np.float64)
    for j, cur in enumerate(LABELS):
        if cur.startswith("I-"):
            for i, prev in enumerate(LABELS):
                if prev == "O" or prev[2:] != cur[2:]:
                    t[i, j] = -np.inf
    return t


def viterbi_bio(log_probs: "np.ndarray") -> list[int]:
    """The label sequence with the highest summed log-probability among the valid BIO sequences.

    Argmax per position can give "O I-PER" or "B-PER I-ORG"; rather than patch such a sequence afterwards
    (guessing which of the two positions is wrong), this picks the best sequence in which it cannot happen.
    No weights are learned or tuned: the transition scores are 0 or -inf.
    """
    import numpy as np

    n = len(log_probs)
    if n == 0:
        return []
    trans, start_ok = _bio_tables()
    score = log_probs[0] + start_ok
    back = np.zeros((n, len(LABELS)), dtype=np.int64)
    for i in range(1, n):
        cand = score[:, None] + trans
        back[i] = cand.argmax(0)
        score = cand[back[i], np.arange(len(LABELS))] + log_probs[i]
    path = [int(score.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(back[i][path[-1]]))
    return path[::-1]


@lru_cache(maxsize=1)
def _bio_tables():
    """(transitions, start scores), built once per process."""
    import numpy as np

    return bio_transitions(), np.array([-np.inf if l.startswith("I-") else 0.0 for l in LABELS])


def constrained_labels(text: str, offsets: Sequence[tuple[int, int]], probs: "np.ndarray") -> list[int]:
    """Per-piece label ids: BIO-valid Viterbi over each word's first piece, the rest of the word following it.

    probs: (n_pieces, 9) probabilities in LABELS order. The word rule is follow_word_start's; pieces with no
    characters get O (decode_pieces skips them).
    """
    import numpy as np

    starts = word_starts(text, offsets)
    heads = [k for k, st in enumerate(starts) if st and content_span(text, *offsets[k]) is not None]
    path = viterbi_bio(np.log(np.clip(probs[heads], 1e-12, 1.0))) if heads else []
    labels = [0] * len(offsets)
    for k, lid in zip(heads, path):
        labels[k] = lid
    return follow_word_start(text, offsets, labels, starts)


def _close(cur) -> Span:
    return Span(cur[0], cur[1], cur[2], round(sum(cur[3]) / len(cur[3]), 4))


def windows(n_tokens: int, size: int, overlap: int, last_at_end: bool = False) -> list[tuple[int, int, int, int]]:
    """Overlapping windows over n content tokens: (start, end, keep_from, keep_to).

    Each token's prediction is taken from exactly one window, the one where it is farthest from an edge, so a
    text longer than the model's window is covered completely, never truncated. Windows advance by
    size - overlap and the last one ends at the text's end, shorter than the others: shifting it back to full
    size (`last_at_end`, the layout the training segments were cut with) re-reads up to a whole window, which
    cost 13% more pieces on Reuters bodies (measured with 256-piece windows).
    """
    if n_tokens <= size:
        return [(0, n_tokens, 0, n_tokens)]
    if overlap * 2 >= size:
        raise ValueError("overlap must be less than half the window")
    step = size - overlap
    if last_at_end:
        starts = list(range(0, max(n_tokens - size, 0) + 1, step))
        if starts[-1] + size < n_tokens:
            starts.append(n_tokens - size)
    else:
        starts = [0]
        while starts[-1] + size < n_tokens:
            starts.append(starts[-1] + step)
    out = []
    for i, st in enumerate(starts):
        en = min(st + size, n_tokens)
        keep_from = 0 if i == 0 else (starts[i - 1] + size + st) // 2
        keep_to = n_tokens if i == len(starts) - 1 else (en + starts[i + 1]) // 2
        out.append((st, en, max(keep_from, st), min(keep_to, en)))
    return out


# newsbeam models read windows as long as their training segments (max_len in newsbeam.json; 128 = 126 pieces + 2
# specials for the shipped model), other models FOREIGN_WINDOW. The shipped model was fine-tuned only on contexts up
# to 128 pieces; on NEREL's long documents (stage-4 weights, Viterbi) windows of 256
# scored F1 0.875 and 512 scored 0.811 against 0.885 at 128. On 200 Reuters bodies 128 reads 14% more pieces
# (overlap) and took about 5% longer, since attention over shorter windows is cheaper per piece.
DEFAULT_WINDOW = 128
FOREIGN_WINDOW = 256  # a Hugging Face model given by --ner-model: most were trained on 256-512 pieces


def pad_rows(rows: Sequence[Sequence[int]], width: int, pad_id: int):
    """(input_ids, attention_mask) as long tensors of shape (len(rows), width), each row left-aligned and padded."""
    import torch

    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    return ids, mask


def one_at_a_time(model, rows: Sequence[Sequence[int]], precision: str):
    """The model's float logits for each row (a list of piece ids) run alone, at its own length, unpadded.

    Why not batches: a CPU GEMM's rounding depends on its shape and on where a row sits in it (measured under an
    AVX2 cap: fp32 logits of one segment moved by 1e-7 with its batch-mates, int8 ones by 2e-4 with its position
    in a fixed-shape batch), so batched scores depend on which articles a runner bundled, and reruns on another
    runner were not byte-identical. Alone, a row's scores are a function of the row. The cost, measured on the
    seed articles: NER 25-35% slower than width-bucketed batches (docs/benchmarks.md)."""
    import torch

    from .precision import autocast

    out = []
    with torch.inference_mode(), autocast(precision):  # one autocast: bf16 weight casts are cached across rows
        for row in rows:
            ids = torch.tensor([list(row)], dtype=torch.long)
            out.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float()[0])
    return out


class NerTagger:
    """A token-classification model applied to whole texts: windows, length-sorted batches, in the precision
    `load` chose (modeling.precision).

    `predict` returns character spans into each input text, never truncating: a text longer than
    `window` pieces is covered by overlapping windows and each piece is labelled by its most central window.
    """

    def __init__(self, model, tokenizer, window: int = DEFAULT_WINDOW, overlap: int = 32,
                 precision: str = "fp32", decoding: str = "viterbi"):
        """decoding: "viterbi" (BIO-valid sequences, constrained_labels; for newsbeam's BIO-trained models) or
        "argmax" (per word, an I- that follows O opens an entity: right for IOB1 models, which start entities with
        I-). `load` picks it per model. precision: the one `model` runs in ("int8": already quantised, as `load`
        does it; "bf16": run under autocast)."""
        if decoding not in ("viterbi", "argmax"):
            raise ValueError(f"decoding must be 'viterbi' or 'argmax', not {decoding!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.window = window
        self.overlap = overlap
        self.precision = precision
        self.choice = None  # modeling.precision.Choice, when `load` chose the precision
        self.decoding = decoding
        id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.label_map = [LABEL2ID.get(_to_bio(id2label[i]), 0) for i in range(len(id2label))]
        # The model's label columns for each of ours (another model's unknown types, e.g. DATE, map to O).
        self.columns = [[i for i, j in enumerate(self.label_map) if j == ours] for ours in range(len(LABELS))]
        self.identity = self.label_map == list(range(len(LABELS)))
        self.tokens_processed = 0
        self.segment_lengths: list[int] = []  # real (unpadded) lengths, for FLOP accounting

    def fold(self, probs: "np.ndarray") -> "np.ndarray":
        """(n, model labels) -> (n, 9) in LABELS order, for this tagger's decoding. Viterbi sums a label's columns
        (its probability); argmax keeps their maximum, so the winner is the model's own best column mapped to ours."""
        import numpy as np

        if self.identity:
            return probs
        reduce = np.sum if self.decoding == "viterbi" else np.max
        out = np.zeros((len(probs), len(LABELS)), dtype=probs.dtype)
        for ours, cols in enumerate(self.columns):
            if cols:
                out[:, ours] = reduce(probs[:, cols], axis=1)
        return out

    @classmethod
    def load(cls, name_or_path, compile: bool = False, window: int | None = None, decoding: str | None = None,
             precision: str = "auto", **kw) -> "NerTagger":
        """window None: a newsbeam model's training length (max_len in newsbeam.json), FOREIGN_WINDOW otherwise.
        decoding None: "viterbi" for a newsbeam model (trained on BIO), "argmax" for any other (it may be IOB1).
        precision: fp32, bf16, int8, or auto (timed at load among those measured to keep quality)."""
        from transformers import AutoModelForTokenClassification

        from .shipping import is_newsbeam_dir, load_for_inference, trained_max_len

        model, tok, choice = load_for_inference(name_or_path, AutoModelForTokenClassification, precision, compile)
        ours = is_newsbeam_dir(name_or_path)
        if window is None:
            window = (trained_max_len(name_or_path) or DEFAULT_WINDOW) if ours else FOREIGN_WINDOW
        decoding = decoding or ("viterbi" if ours else "argmax")
        tagger = cls(model, tok, window=window, decoding=decoding, precision=choice.precision, **kw)
        tagger.choice = choice
        return tagger

    def predict(self, texts: Sequence[str]) -> list[list[Span]]:
        offsets, probs = self.piece_probs(texts)
        return [self.decode(text, offs, p) for text, offs, p in zip(texts, offsets, probs)]

    def decode(self, text: str, offsets: Sequence[tuple[int, int]], model_probs) -> list[Span]:
        """Character spans from one text's piece probabilities (piece_probs); a span's score is the mean
        probability of the labels its pieces were given."""
        import numpy as np

        probs = self.fold(model_probs)
        if self.decoding == "viterbi":
            labels = constrained_labels(text, offsets, probs)
        else:
            labels = follow_word_start(text, offsets, probs.argmax(1).tolist() if len(probs) else [])
        scores = probs[np.arange(len(labels)), labels].tolist() if labels else []
        return decode_pieces(text, offsets, labels, scores)

    def piece_probs(self, texts: Sequence[str]):
        """(offsets, probs) per text: the tokenizer's character offsets and a (n_pieces, model labels) float32
        array of the model's label probabilities, each piece taken from its most central window (decode maps
        them to LABELS, so one pass serves either decoding)."""
        import numpy as np
        import torch

        from .precision import autocast

        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True,
                             verbose=False)  # texts are windowed below: nothing is truncated, no warning
        size = self.window - 2
        segments = []  # (text_index, start, end, keep_from, keep_to)
        for ti, ids in enumerate(enc["input_ids"]):
            for st, en, kf, kt in windows(len(ids), size, min(self.overlap, size // 2 - 1)):
                segments.append((ti, st, en, kf, kt))
        per_text = [np.zeros((len(ids), len(self.label_map)), dtype=np.float32) for ids in enc["input_ids"]]
        cls_id, sep_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        rows = [[cls_id] + enc["input_ids"][ti][st:en] + [sep_id] for ti, st, en, _, _ in segments]
        self.tokens_processed += sum(map(len, rows))
        self.segment_lengths += [len(r) for r in rows]
        for (ti, st, en, kf, kt), logits in zip(segments, one_at_a_time(self.model, rows, self.precision)):
            per_text[ti][kf:kt] = logits.softmax(-1).numpy()[kf - st + 1: kt - st + 1]
        return list(enc["offset_mapping"]), per_text


def _to_bio(label: str) -> str:
    """Map another model's label names to ours (e.g. 'B-PERSON' -> 'B-PER'); unknown types become O."""
    if label == "O" or "-" not in label:
        return "O"
    kind, etype = label.split("-", 1)
    etype = {"PERSON": "PER", "ORGANIZATION": "ORG", "LOCATION": "LOC", "GPE": "LOC"}.get(etype.upper(), etype.upper())
    return f"{kind}-{etype}" if etype in ("PER", "ORG", "LOC", "MISC") else "O"


def span_prf(gold: Sequence[Sequence[tuple[int, int, str]]], pred: Sequence[Sequence[tuple[int, int, str]]],
             types: Sequence[str] | None = None) -> dict:
    """Entity-level precision/recall/F1, exact span and type, overall and per type."""
    from collections import Counter

    tp, fp, fn = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        gs, ps = set(map(tuple, g)), set(map(tuple, p))
        if types is not None:
            gs = {x for x in gs if x[2] in types}
            ps = {x for x in ps if x[2] in types}
        for x in gs & ps:
            tp[x[2]] += 1
        for x in ps - gs:
            fp[x[2]] += 1
        for x in gs - ps:
            fn[x[2]] += 1

    def prf(t, f_p, f_n):
        p = t / (t + f_p) if t + f_p else 0.0
        r = t / (t + f_n) if t + f_n else 0.0
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                "support": t + f_n}

    all_types = sorted(set(tp) | set(fp) | set(fn))
    res = prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    res["per_type"] = {t: prf(tp[t], fp[t], fn[t]) for t in all_types}
    return res


def text_counts(gold: Sequence[tuple[int, int, str]], pred: Sequence[tuple[int, int, str]],
                types: Sequence[str] | None = None) -> tuple[int, int, int]:
    """One text's (true positives, false positives, false negatives), exact span and type, as span_prf counts
    them: summed over any set of texts they give its F1, so a bootstrap resamples texts without rescoring them."""
    gs, ps = set(map(tuple, gold)), set(map(tuple, pred))
    if types is not None:
        gs = {x for x in gs if x[2] in types}
        ps = {x for x in ps if x[2] in types}
    return len(gs & ps), len(ps - gs), len(gs - ps)


def f1_of_counts(counts: Iterable[tuple[int, int, int]]) -> float:
    """Micro F1 of summed text_counts (0.0 when there is nothing to score), equal to span_prf's unrounded F1."""
    tp = fp = fn = 0
    for t, f_p, f_n in counts:
        tp, fp, fn = tp + t, fp + f_p, fn + f_n
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


ERROR_KINDS = ("wrong_type", "wrong_boundary", "missed", "spurious")


def span_errors(gold: Sequence[tuple[int, int, str]], pred: Sequence[tuple[int, int, str]],
                types: Sequence[str] | None = None) -> list[dict]:
    """Why one text's prediction differs from its gold, one record per unmatched span, so a low F1 can be read.

    Gold-side records, one per gold span that span_prf counts as a false negative: "wrong_type" (a prediction has
    its exact span with another type, including a type `types` leaves out, such as MISC on WikiANN), "wrong_boundary"
    (predictions overlap it but none has its span), "missed" (no prediction overlaps it). Prediction-side records:
    "spurious", a prediction of a scored type that overlaps no gold span. The units differ: a prediction that joins
    two gold spans gives two wrong_boundary records and no spurious one, so the kinds do not add up to FP + FN."""
    keep = (lambda s: True) if types is None else (lambda s: s[2] in types)
    gs = {tuple(s) for s in gold if keep(s)}
    everything = {tuple(s) for s in pred}
    ps = {s for s in everything if keep(s)}
    out = []
    for g in sorted(gs - ps):
        over = sorted(p for p in everything if _overlap(p, g))
        if not over:
            kind = "missed"
        elif any(p[:2] == g[:2] for p in over):
            kind = "wrong_type"
        else:
            kind = "wrong_boundary"
        out.append({"kind": kind, "gold": g, "pred": over})
    for p in sorted(ps - gs):
        if not any(_overlap(p, g) for g in gs):
            out.append({"kind": "spurious", "gold": None, "pred": [p]})
    return out


def _overlap(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def count_kinds(errors_per_text: Iterable[Sequence[dict]]) -> dict[str, int]:
    """span_errors' records counted by kind, in ERROR_KINDS order (gold-side kinds count gold spans, spurious
    counts predictions)."""
    from collections import Counter

    counts = Counter(err["kind"] for errs in errors_per_text for err in errs)
    return {k: counts[k] for k in ERROR_KINDS}


def error_counts(gold: Sequence[Sequence[tuple[int, int, str]]], pred: Sequence[Sequence[tuple[int, int, str]]],
                 types: Sequence[str] | None = None) -> dict[str, int]:
    """span_errors' kinds counted over many texts."""
    return count_kinds(span_errors(g, p, types) for g, p in zip(gold, pred))
