"""Target-dependent stance (favor / against / neutral) from a fine-tuned sequence classifier.

What it measures: the sentiment the text expresses toward the target where it mentions it (the training data,
NewsMTSC and RuSentNE, annotate sentiment toward a named entity in a news sentence). It is not a claim about
the outlet's position, and irony or stance expressed without naming the target is out of its reach.

Mention-level input: the pair (target, the mention's sentence with the mention wrapped in << >>).
Article-level decision: modeling.stance_article (a learned head over all the target's mentions, where shipped;
else `aggregate`, the mean of the mention-level probability vectors and its argmax).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

LABELS = ("against", "neutral", "favor")
OPEN, CLOSE = "<< ", " >>"
_SENT_END = re.compile(r"(?<=[.!?…])[\"'»”)]*\s+|\n\s*\n|\n(?=[A-ZА-ЯЁ\-–—•])")


def mark_mention(sentence: str, start: int, end: int) -> str:
    """Wrap the target's mention so the classifier knows which entity the question is about."""
    return sentence[:start] + OPEN + sentence[start:end] + CLOSE + sentence[end:]


def sentence_around(text: str, start: int, end: int, max_chars: int = 600) -> tuple[int, int]:
    """Character range of the sentence holding [start, end), clipped to max_chars around the mention."""
    left = 0
    for m in _SENT_END.finditer(text, 0, start):
        left = m.end()
    m = _SENT_END.search(text, end)
    right = m.start() if m else len(text)
    if right - left > max_chars:
        half = max_chars // 2
        left = max(left, start - half)
        right = min(right, end + half)
    return left, right


def find_mentions(text: str, names: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping occurrences of any name at word boundaries (longest name first), in text order.

    A name matches as a word prefix too, so "Azerbaijan" finds "Azerbaijan's"; but "Armenia" does not match
    inside "Armenian": word boundaries are required at the start, and at the end only after a whole-word
    match or an apostrophe/hyphen suffix; a target's inflected forms (e.g. Russian cases) go in its aliases.
    """
    found: list[tuple[int, int]] = []
    taken = [False] * (len(text) + 1)
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        pattern = re.compile(r"(?<!\w)" + re.escape(name) + r"(?!\w)")
        for m in pattern.finditer(text):
            if any(taken[m.start():m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            found.append((m.start(), m.end()))
    return sorted(found)


def aggregate(probs: Sequence[Sequence[float]]) -> tuple[str, float, list[float]]:
    """Mean of mention-level probability vectors -> (label, score, mean vector)."""
    n = len(probs)
    mean = [sum(p[i] for p in probs) / n for i in range(len(LABELS))]
    best = max(range(len(LABELS)), key=lambda i: mean[i])
    return LABELS[best], round(mean[best], 4), [round(x, 4) for x in mean]


@dataclass(frozen=True)
class MentionInput:
    target: str
    sentence: str
    start: int  # mention offsets inside `sentence`
    end: int


def mention_input(target: str, text: str, start: int, end: int) -> MentionInput:
    """The classifier's input for the mention [start, end) of `target` in `text`, as the pipeline builds it
    (transforms.stance.plan_mentions): the mention's sentence (sentence_around) with offsets inside it."""
    left, right = sentence_around(text, start, end)
    return MentionInput(target, text[left:right], start - left, end - left)


class StanceClassifier:
    """(target, sentence-with-marked-mention) -> probabilities over LABELS, temperature-calibrated."""

    def __init__(self, model, tokenizer, temperature: float = 1.0, max_len: int = 160,
                 precision: str = "fp32"):
        """precision: the one `model` runs in (see NerTagger); `load` chooses it."""
        self.model = model
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.max_len = max_len
        self.precision = precision
        self.choice = None  # modeling.precision.Choice, when `load` chose the precision
        id2label = {int(k): v.lower() for k, v in model.config.id2label.items()}
        alias = {"negative": "against", "positive": "favor", "neg": "against", "pos": "favor", "neu": "neutral"}
        self.order = [LABELS.index(alias.get(id2label[i], id2label[i])) for i in range(len(id2label))]
        self.tokens_processed = 0
        self.segment_lengths: list[int] = []  # real (unpadded) lengths, for FLOP accounting

    @classmethod
    def load(cls, name_or_path, compile: bool = False, precision: str = "auto", **kw) -> "StanceClassifier":
        """precision: fp32, bf16, int8, or auto (timed at load among those measured to keep quality)."""
        import json
        from pathlib import Path

        from transformers import AutoModelForSequenceClassification

        from .shipping import META_FILE, is_newsbeam_dir, load_for_inference

        model, tok, choice = load_for_inference(name_or_path, AutoModelForSequenceClassification, precision, compile)
        if is_newsbeam_dir(name_or_path) and "temperature" not in kw:
            kw["temperature"] = json.loads((Path(name_or_path) / META_FILE).read_text()).get("temperature", 1.0)
        clf = cls(model, tok, precision=choice.precision, **kw)
        clf.choice = choice
        return clf

    def encode(self, items: Sequence[MentionInput]):
        return self.tokenizer([i.target for i in items],
                              [mark_mention(i.sentence, i.start, i.end) for i in items],
                              truncation="only_second", max_length=self.max_len)

    def logits(self, items: Sequence[MentionInput]):
        """Raw logits in LABELS order, each input run alone (modeling.ner.one_at_a_time: scores independent of
        batching)."""
        import torch

        from .ner import one_at_a_time

        if not items:
            return torch.zeros((0, len(LABELS)))
        ids = self.encode(items)["input_ids"]
        self.tokens_processed += sum(map(len, ids))
        self.segment_lengths += [len(x) for x in ids]
        logits = torch.stack(one_at_a_time(self.model, ids, self.precision))
        return logits[:, [self.order.index(pos) for pos in range(len(LABELS))]]

    def predict_proba(self, items: Sequence[MentionInput]) -> list[list[float]]:
        return (self.logits(items) / self.temperature).softmax(-1).tolist()
