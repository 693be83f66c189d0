"""Article-level stance: one decision per (article, target) over all the target's mentions.

The sentence-level classifier (modeling.stance) labels each mention in its sentence; an article's stance is
more than their mean: where the target is mentioned (the lead and the headline weigh more), how central it is
(the share of paragraphs and sentences naming it), how many mentions agree. `article_features` turns that
evidence into a fixed vector and `ArticleHead` (multinomial logistic regression, L2, class-weighted, then
temperature-scaled) maps it to calibrated probabilities per label. The head is learned on PerSenT dev
(modeling.evaluation.stance_article, which also measures it) and shipped as a small JSON beside the stance
model (HEAD_FILE); without that file the article label stays the mean of the mention probabilities.

numpy only: the head has a few dozen weights and fits in well under a second.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from .stance import _SENT_END, LABELS, MentionInput

HEAD_FILE = "article_head.json"  # beside the stance model's newsbeam.json


@dataclass(frozen=True)
class ArticleEvidence:
    """What the article tells about one target, independent of the head: the classified mentions' probability
    vectors (LABELS order) with their relative positions in the text (start / len(text), reading order), the
    count of all mentions, the headline mention's probabilities (None: the title does not name the target),
    and the shares of paragraphs and sentences that name it."""
    probs: tuple[tuple[float, ...], ...]
    positions: tuple[float, ...]
    count: int
    title_probs: Optional[tuple[float, ...]] = None
    paragraph_share: float = 0.0
    sentence_share: float = 0.0


def _blocks(text: str, pattern: re.Pattern) -> list[tuple[int, int]]:
    out, left = [], 0
    for m in pattern.finditer(text):
        out.append((left, m.start()))
        left = m.end()
    out.append((left, len(text)))
    return [(s, e) for s, e in out if text[s:e].strip()]


_PARAGRAPH = re.compile(r"\n\s*")


def centrality(text: str, spans: Sequence[tuple[int, int]]) -> tuple[float, float]:
    """(share of paragraphs, share of sentences) holding at least one of `spans`: a target the whole article
    is about is named throughout it. Paragraphs are newline-separated blocks, sentences as modeling.stance cuts
    them."""
    def share(blocks: list[tuple[int, int]]) -> float:
        if not blocks:
            return 0.0
        hit = sum(any(s <= start < e for start, _ in spans) for s, e in blocks)
        return hit / len(blocks)

    return share(_blocks(text, _PARAGRAPH)), share(_blocks(text, _SENT_END))


def title_mention(target: str, title: str, names: Sequence[str]) -> Optional[MentionInput]:
    """The headline's first mention of any of `names` (longest first, case-insensitive: headlines are often in
    capitals), as a classifier input with the headline as its sentence; None when the title names none."""
    best = None
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        m = re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)", title, re.IGNORECASE)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), m.end())
    return MentionInput(target, title, best[0], best[1]) if best else None


def mention_context(text: str, spans: Sequence[tuple[int, int]], classified: int
                    ) -> tuple[tuple[float, ...], float, float]:
    """(relative positions of the first `classified` mentions, paragraph share, sentence share): what the head
    needs from the text besides the probabilities, so the record can be built without the text."""
    n = max(1, len(text))
    para, sent = centrality(text, spans)
    return tuple(s / n for s, _ in spans[:classified]), para, sent


def evidence(text: str, spans: Sequence[tuple[int, int]], probs: Sequence[Sequence[float]],
             title_probs: Optional[Sequence[float]] = None) -> ArticleEvidence:
    """The evidence of one target from all its mentions `spans` (reading order), of which the first len(probs)
    were classified; centrality counts every mention."""
    return from_context(mention_context(text, spans, len(probs)), len(spans), probs, title_probs)


def from_context(context: tuple[tuple[float, ...], float, float], count: int, probs: Sequence[Sequence[float]],
                 title_probs: Optional[Sequence[float]] = None) -> ArticleEvidence:
    positions, para, sent = context
    return ArticleEvidence(tuple(tuple(map(float, p)) for p in probs), tuple(positions), int(count),
                           None if title_probs is None else tuple(map(float, title_probs)), para, sent)


def feature_names() -> list[str]:
    names = []
    for lab in LABELS:
        names += [f"mean_{lab}", f"max_{lab}", f"min_{lab}", f"share_{lab}", f"early_{lab}", f"first_{lab}",
                  f"title_{lab}", f"logodds_{lab}"]
    return names + ["log_count", "first_position", "title_named", "paragraph_share", "sentence_share", "agreement"]


def article_features(ev: ArticleEvidence) -> list[float]:
    """Fixed-length vector (feature_names order). early_*: mean weighted 1/(1+rank) (the lead weighs more);
    first_*: the first mention's; title_*: the headline mention's, else 0 (title_named says which);
    logodds_*: mean log(p / (1-p)); agreement: share of mentions whose argmax is the mean's argmax."""
    k = len(LABELS)
    probs = ev.probs or ((1.0 / k,) * k,)
    n = len(probs)
    mean = [sum(p[i] for p in probs) / n for i in range(k)]
    argmax = [max(range(k), key=p.__getitem__) for p in probs]
    weights = [1.0 / (1 + r) for r in range(n)]
    wsum = sum(weights)
    top = max(range(k), key=mean.__getitem__)
    out = []
    for i in range(k):
        col = [p[i] for p in probs]
        clipped = [min(max(x, 1e-4), 1 - 1e-4) for x in col]
        out += [mean[i], max(col), min(col), sum(a == i for a in argmax) / n,
                sum(w * x for w, x in zip(weights, col)) / wsum, col[0],
                ev.title_probs[i] if ev.title_probs is not None else 0.0,
                sum(math.log(x / (1 - x)) for x in clipped) / n]
    first = ev.positions[0] if ev.positions else 1.0
    out += [math.log1p(ev.count), first, float(ev.title_probs is not None), ev.paragraph_share, ev.sentence_share,
            sum(a == top for a in argmax) / n]
    return out


# ---------------------------------------------------------------- the head (numpy)
def _softmax(z):
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logreg(X, y, l2: float = 1.0, class_weight: Optional[Sequence[float]] = None, steps: int = 3000,
               lr: float = 0.5):
    """Multinomial logistic regression on standardised X (n x f), labels y (ints), L2 on the weights (not the
    bias), sample weights from `class_weight`: full-batch gradient descent on a convex loss, deterministic.
    Returns (W f x k, b k)."""
    import numpy as np

    X, y = np.asarray(X, float), np.asarray(y, int)
    n, f = X.shape
    k = len(LABELS)
    sw = np.ones(n) if class_weight is None else np.asarray(class_weight, float)[y]
    sw = sw / sw.sum()
    Y = np.eye(k)[y]
    W, b = np.zeros((f, k)), np.zeros(k)
    for _ in range(steps):
        P = _softmax(X @ W + b)
        G = (P - Y) * sw[:, None]
        W -= lr * (X.T @ G + l2 * W / n)
        b -= lr * G.sum(axis=0)
    return W, b


def balanced_weights(y, power: float = 1.0) -> list[float]:
    """Per-class weights (n / (k * count)) ** power, so the rare label (against, in news) is not ignored."""
    counts = [max(1, sum(1 for v in y if v == i)) for i in range(len(LABELS))]
    n = sum(counts)
    return [(n / (len(LABELS) * c)) ** power for c in counts]


def fit_temperature(logits, y) -> float:
    """The temperature minimising the negative log-likelihood of held-out logits (log-spaced grid)."""
    import numpy as np

    logits, y = np.asarray(logits, float), np.asarray(y, int)

    def nll(t: float) -> float:
        P = _softmax(logits / t)
        return float(-np.log(np.clip(P[np.arange(len(y)), y], 1e-12, None)).mean())

    grid = [math.exp(math.log(0.2) + i * (math.log(10) - math.log(0.2)) / 200) for i in range(201)]
    return round(min(grid, key=nll), 4)


@dataclass
class ArticleHead:
    """Standardise, linear, softmax at `temperature`: calibrated article-level probabilities in LABELS order."""
    features: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[list[float]]  # features x labels
    bias: list[float]
    temperature: float = 1.0
    meta: dict = field(default_factory=dict)

    def logits(self, rows: Sequence[Sequence[float]]):
        import numpy as np

        X = (np.asarray(rows, float) - np.asarray(self.mean)) / np.asarray(self.scale)
        return X @ np.asarray(self.weights) + np.asarray(self.bias)

    def predict_proba_rows(self, rows: Sequence[Sequence[float]]) -> list[list[float]]:
        return _softmax(self.logits(rows) / self.temperature).tolist()

    def predict(self, ev: ArticleEvidence) -> list[float]:
        return self.predict_proba_rows([article_features(ev)])[0]

    def to_json(self) -> str:
        return json.dumps({"labels": list(LABELS), "features": self.features, "mean": self.mean,
                           "scale": self.scale, "weights": self.weights, "bias": self.bias,
                           "temperature": self.temperature, "meta": self.meta}, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "ArticleHead":
        d = json.loads(text)
        if list(d["labels"]) != list(LABELS) or d["features"] != feature_names():
            raise ValueError("article head was fitted on other labels or features than this code computes")
        return cls(d["features"], d["mean"], d["scale"], d["weights"], d["bias"], d["temperature"], d.get("meta", {}))


def standardiser(X) -> tuple[list[float], list[float]]:
    import numpy as np

    X = np.asarray(X, float)
    sd = X.std(axis=0)
    return X.mean(axis=0).tolist(), np.where(sd > 1e-9, sd, 1.0).tolist()


def fit_head(X, y, l2: float, class_weight: Optional[Sequence[float]], temperature: float = 1.0,
             meta: Optional[dict] = None) -> ArticleHead:
    import numpy as np

    mean, scale = standardiser(X)
    Z = (np.asarray(X, float) - np.asarray(mean)) / np.asarray(scale)
    W, b = fit_logreg(Z, y, l2, class_weight)
    return ArticleHead(feature_names(), mean, scale, W.tolist(), b.tolist(), temperature, dict(meta or {}))


def load_head(model_dir: str | os.PathLike | None) -> Optional[ArticleHead]:
    """The article head shipped beside a stance model (HEAD_FILE), or None (then the mean rule applies)."""
    if model_dir is None:
        return None
    path = Path(model_dir) / HEAD_FILE
    return ArticleHead.from_json(path.read_text(encoding="utf-8")) if path.is_file() else None


def mean_rule(ev: ArticleEvidence) -> list[float]:
    """The fallback: the mean of the mention probability vectors."""
    n = len(ev.probs)
    return [sum(p[i] for p in ev.probs) / n for i in range(len(LABELS))]


def decide(ev: ArticleEvidence, head: Optional[ArticleHead]) -> tuple[str, float, list[float]]:
    """(label, score = probability of the label, probabilities in LABELS order, rounded to 4 places)."""
    probs = head.predict(ev) if head is not None else mean_rule(ev)
    best = max(range(len(LABELS)), key=probs.__getitem__)
    return LABELS[best], round(probs[best], 4), [round(p, 4) for p in probs]


# ---------------------------------------------------------------- measuring
def expected_calibration_error(probs: Sequence[Sequence[float]], gold: Sequence[int], bins: int = 15) -> float:
    """Top-label ECE: |accuracy - confidence| per equal-width confidence bin, weighted by the bin's share."""
    n = len(gold)
    if not n:
        return 0.0
    tally = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence sum, correct
    for p, g in zip(probs, gold):
        top = max(range(len(p)), key=p.__getitem__)
        b = min(bins - 1, int(p[top] * bins))
        tally[b][0] += 1
        tally[b][1] += p[top]
        tally[b][2] += int(top == g)
    return round(sum(abs(c - s) for cnt, s, c in tally if cnt) / n, 4)
