"""Measure what one shared encoder pass would cost stance accuracy.

A shared pass (one encoder pass serving both NER and stance) means the stance
classifier reads the NER encoder's token states (computed anyway over the article) instead of running its own
fine-tuned encoder on (target, marked sentence). This probe builds that design's best cheap form and measures it
on the same dev sets as the shipped stance model:

- features: the frozen NER encoder's states of the unmarked sentence, mean-pooled over the mention's pieces and over
  the whole sentence, from the last layer and from layer 8 (NER fine-tuning specialises the top layers);
- heads: multinomial logistic regression and a one-hidden-layer MLP, trained on the stance training data
  (NewsMTSC train + the RuSentNE 85% split), with class weights for macro-F1; the head and its epoch count are
  chosen on a 10% slice of the training sentences, never on the dev sets.

    python -m research.shared_encoder_probe [--json logs/shared_probe.json]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time

from modeling.training.corpora import StanceExample
from modeling.ner import pad_rows
from modeling.stance import LABELS
from modeling.training.stance import load_stance_data, stance_metrics

LAYERS = (8, 12)


def sentence_features(model, tokenizer, examples: list[StanceExample], batch_size: int = 32):
    """One row per example: [mention mean, sentence mean] for each layer in LAYERS, from one pass per sentence."""
    import torch

    sentences = sorted({e.text for e in examples})
    index = {s: i for i, s in enumerate(sentences)}
    enc = tokenizer(sentences, truncation=True, max_length=256, return_offsets_mapping=True)
    states: list = [None] * len(sentences)
    order = sorted(range(len(sentences)), key=lambda i: len(enc["input_ids"][i]))
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            batch = order[b: b + batch_size]
            rows = [enc["input_ids"][i] for i in batch]
            ids, mask = pad_rows(rows, max(map(len, rows)), tokenizer.pad_token_id)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden = [out.hidden_states[layer].float() for layer in LAYERS]
            for r, i in enumerate(batch):
                n = len(enc["input_ids"][i])
                states[i] = [h[r, :n].clone() for h in hidden]
    rows = []
    for e in examples:
        i = index[e.text]
        offsets = enc["offset_mapping"][i]
        pieces = [k for k, (a, b) in enumerate(offsets) if b > a and a < e.end and b > e.start]
        if not pieces:  # mention cut off by truncation: fall back to the sentence
            pieces = list(range(1, len(offsets) - 1)) or [0]
        feats = []
        for h in states[i]:
            feats += [h[pieces].mean(0), h[1:-1].mean(0) if h.shape[0] > 2 else h[0]]
        rows.append(torch.cat(feats))
    return torch.stack(rows)


def make_head(dim: int, hidden: int):
    """Logistic regression (hidden 0) or a one-hidden-layer MLP over the pooled features."""
    import torch

    if hidden == 0:
        return torch.nn.Linear(dim, len(LABELS))
    return torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(dim, hidden), torch.nn.GELU(),
                               torch.nn.Dropout(0.2), torch.nn.Linear(hidden, len(LABELS)))


def train_head(x, y, hidden: int, epochs: int, seed: int, weight_decay: float = 1e-3):
    """Full-batch AdamW on standardised features; class-weighted cross-entropy (the targets are macro-F1)."""
    import torch

    torch.manual_seed(seed)
    head = make_head(x.shape[1], hidden)
    counts = torch.bincount(y, minlength=len(LABELS)).float()
    loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / (len(LABELS) * counts.clamp(min=1)))
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=weight_decay)
    snapshots = {}
    for epoch in range(1, epochs + 1):
        head.train()
        perm = torch.randperm(len(y))
        for b in range(0, len(y), 256):
            idx = perm[b: b + 256]
            opt.zero_grad()
            loss_fn(head(x[idx]), y[idx]).backward()
            opt.step()
        if epoch % 5 == 0:
            snapshots[epoch] = {k: v.clone() for k, v in head.state_dict().items()}
    return head, snapshots


def predict(head, x) -> list[str]:
    import torch

    head.eval()
    with torch.no_grad():
        return [LABELS[i] for i in head(x).argmax(-1).tolist()]


def main(argv=None) -> int:
    import torch
    from transformers import AutoModelForTokenClassification

    from modeling.shipping import DEFAULT_NER_MODEL, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ner-model", default=str(DEFAULT_NER_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    model, tok = load_model(args.ner_model, AutoModelForTokenClassification)
    train_sets, dev_sets = load_stance_data(None, seed=13)  # the RuSentNE split of train_stance
    mtsc_dev, ru_dev = dev_sets["newsmtsc-devtest_mt"], dev_sets["rusentne-heldout15"]
    train = train_sets["en"] + train_sets["ru"]
    sentences = sorted({e.text for e in train})
    random.Random(args.seed).shuffle(sentences)
    held = set(sentences[: len(sentences) // 10])
    fit = [e for e in train if e.text not in held]
    val = [e for e in train if e.text in held]
    feats = {name: sentence_features(model, tok, rows) for name, rows in
             (("fit", fit), ("val", val), ("newsmtsc", mtsc_dev), ("rusentne", ru_dev))}
    print(f"features {feats['fit'].shape[1]}-d for {sum(len(v) for v in feats.values())} examples "
          f"in {time.time() - t0:.0f}s", file=sys.stderr)
    mean, std = feats["fit"].mean(0), feats["fit"].std(0) + 1e-6
    feats = {k: (v - mean) / std for k, v in feats.items()}
    y_fit = torch.tensor([LABELS.index(e.label) for e in fit])
    choices = []
    for hidden in (0, 256):
        head, snaps = train_head(feats["fit"], y_fit, hidden, epochs=60, seed=args.seed)
        for epoch, state in snaps.items():
            head.load_state_dict(state)
            score = stance_metrics([e.label for e in val], predict(head, feats["val"]))["macro_f1"]
            choices.append((score, hidden, epoch, state))
    score, hidden, epoch, state = max(choices, key=lambda c: c[0])
    head = make_head(feats["fit"].shape[1], hidden)
    head.load_state_dict(state)
    result = {"ner_model": args.ner_model, "features": f"mention+sentence mean, layers {list(LAYERS)}",
              "head": "logistic regression" if hidden == 0 else f"MLP {hidden}", "epochs": epoch,
              "train_slice_macro_f1": score, "fit_examples": len(fit), "val_examples": len(val)}
    for name, rows in (("newsmtsc", mtsc_dev), ("rusentne", ru_dev)):
        result[name] = stance_metrics([e.label for e in rows], predict(head, feats[name]))
    result["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
