"""`newsbeam train stance`: fine-tune multilingual-e5-small for target-dependent favor/against/neutral.

Data: NewsMTSC train (English news), RuSentNE train (Russian news) less a fixed-seed 15% held back as the
Russian dev set, and GerNTSA (German online news) less the by-target dev split (`corpora.split_by_target`: no
target on both sides, so the German figure is on unseen topics). GerNTSA's common-noun targets (Maskenpflicht,
Prozent) are kept: users name policies and things as targets too. The config's `languages` chooses which of the
three train (a language left out is still measured: that is the zero-shot estimate). A further 5% of the training
rows (fixed seed) is kept aside to fit the softmax temperature that makes the scores calibrated; the dev sets are
only measured, never fitted.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path


from modeling.training import corpora
from modeling.ner import pad_rows
from modeling.stance import LABELS, MentionInput, StanceClassifier
from modeling.training.common import Progress, ResumePoint, bucketed_batches, make_optimizer, start_run

# dev set name -> language; the names are the keys of `dev_quick` in the shipped newsbeam.json
DEV_LANGUAGE = {"newsmtsc-devtest_mt": "en", "rusentne-heldout15": "ru", "gerntsa-dev-by-target": "de"}


def load_stance_data(root: Path | None, seed: int, gerntsa_dev_percent: int = corpora.GERNTSA_DEV_PERCENT
                     ) -> tuple[dict[str, list], dict[str, list]]:
    """({language: train examples}, {dev set name: dev examples}) for en (NewsMTSC), ru (RuSentNE), de (GerNTSA)."""
    root = root or corpora.shared_data_dir()
    mtsc_train = corpora.newsmtsc_examples(root / "stance" / "newsmtsc" / "train.jsonl")
    mtsc_dev = corpora.newsmtsc_examples(root / "stance" / "newsmtsc" / "devtest_mt.jsonl")
    ru_train, ru_dev = corpora.rusentne_split(corpora.rusentne_examples(root / "stance" / "rusentne" / "train.tsv"),
                                              seed=seed)
    de_train, de_dev = corpora.split_by_target(
        corpora.gerntsa_examples(root / "stance" / "gerntsa" / "gerntsa_dev.json"), gerntsa_dev_percent)
    return ({"en": mtsc_train, "ru": ru_train, "de": de_train},
            {"newsmtsc-devtest_mt": mtsc_dev, "rusentne-heldout15": ru_dev, "gerntsa-dev-by-target": de_dev})


def to_inputs(examples) -> list[MentionInput]:
    return [MentionInput(e.target, e.text, e.start, e.end) for e in examples]


def stance_metrics(gold: list[str], pred: list[str]) -> dict:
    """Accuracy, macro-F1 and confusion matrix (rows gold, columns predicted, in LABELS order)."""
    conf = {g: {p: 0 for p in LABELS} for g in LABELS}
    for g, p in zip(gold, pred):
        conf[g][p] += 1
    f1s = {}
    for lab in LABELS:
        tp = conf[lab][lab]
        fp = sum(conf[g][lab] for g in LABELS if g != lab)
        fn = sum(conf[lab][p] for p in LABELS if p != lab)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s[lab] = round(2 * prec * rec / (prec + rec), 4) if prec + rec else 0.0
    acc = sum(conf[l][l] for l in LABELS) / max(1, len(gold))
    return {"accuracy": round(acc, 4), "macro_f1": round(sum(f1s.values()) / len(LABELS), 4), "per_class_f1": f1s,
            "confusion": conf, "n": len(gold)}


def fit_temperature(logits, labels) -> float:
    """Temperature minimising the negative log-likelihood on held-aside rows (grid, then refined)."""
    import torch

    y = torch.tensor(labels)

    def nll(t):
        return torch.nn.functional.cross_entropy(logits / t, y).item()

    grid = [0.5 + 0.05 * i for i in range(71)]
    best = min(grid, key=nll)
    fine = [best - 0.05 + 0.005 * i for i in range(21)]
    return round(min(fine, key=nll), 3)


def expected_calibration_error(probs, labels, bins: int = 10) -> float:
    conf = [max(p) for p in probs]
    correct = [int(max(range(len(p)), key=p.__getitem__) == y) for p, y in zip(probs, labels)]
    ece = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if lo < c <= hi]
        if idx:
            ece += len(idx) / len(conf) * abs(sum(correct[i] for i in idx) / len(idx) - sum(conf[i] for i in idx) / len(idx))
    return round(ece, 4)


def build_model():
    from transformers import BertConfig, BertForSequenceClassification

    from modeling.e5base import base_state_dict, bert_config_dict, build_tokenizer, load_image

    image = load_image()
    cfg = BertConfig(**bert_config_dict(image), num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                     label2id={l: i for i, l in enumerate(LABELS)})
    model = BertForSequenceClassification(cfg)
    state = {f"bert.{k}": v for k, v in base_state_dict(image).items()}
    _, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model, build_tokenizer(image)


def evaluate(clf: StanceClassifier, examples, keep_predictions: bool = False) -> dict:
    """stance_metrics and ECE; keep_predictions adds the predicted labels (key "predictions"), in input order."""
    probs = clf.predict_proba(to_inputs(examples))
    pred = [LABELS[max(range(len(LABELS)), key=p.__getitem__)] for p in probs]
    res = stance_metrics([e.label for e in examples], pred)
    res["ece"] = expected_calibration_error(probs, [LABELS.index(e.label) for e in examples])
    if keep_predictions:
        res["predictions"] = pred
    return res


def main(argv=None) -> int:
    args, cfg, out_dir, log, rng = start_run("newsbeam train stance", __doc__, "configs/stance.yaml", argv)

    import torch
    root = Path(cfg["data_root"]) if cfg.get("data_root") else None
    by_language, dev_sets = load_stance_data(root, cfg["rusentne_split_seed"],
                                             cfg.get("gerntsa_dev_percent", corpora.GERNTSA_DEV_PERCENT))
    languages = cfg.get("languages", ["en", "ru"])
    unknown = sorted(set(languages) - set(by_language))
    if unknown:
        raise SystemExit(f"config languages: no stance training data for {unknown} (have {sorted(by_language)})")
    train = [e for lang in languages for e in by_language[lang]]
    if cfg.get("limit"):
        rng.shuffle(train)
        train = train[: cfg["limit"]]
    rng.shuffle(train)
    n_cal = int(len(train) * cfg["calibration_fraction"])
    calib, train = train[:n_cal], train[n_cal:]
    log.info(f"train {len(train)} ({', '.join(languages)}), calibration {len(calib)}, dev "
             f"{ {name: len(rows) for name, rows in dev_sets.items()} }; labels {Counter(e.label for e in train)}")

    model, tok = build_model()
    clf = StanceClassifier(model, tok, max_len=cfg["max_len"])
    enc = clf.encode(to_inputs(train))
    ids = enc["input_ids"]
    y = [LABELS.index(e.label) for e in train]
    counts = Counter(y)
    weights = torch.tensor([(len(y) / (len(LABELS) * counts[i])) ** cfg.get("class_weight_power", 0.5)
                            for i in range(len(LABELS))], dtype=torch.float)
    log.info(f"class weights {weights.tolist()}")
    epochs = cfg["epochs"]
    plan = [bucketed_batches([len(x) for x in ids], cfg["batch_size"], rng) for _ in range(epochs)]
    total = sum(len(p) for p in plan)
    opt, sched = make_optimizer(model, cfg["lr"], cfg["weight_decay"], total, cfg["warmup_ratio"])
    resume = ResumePoint(Path(cfg.get("checkpoint_dir", "build/checkpoints")) / f"{out_dir.name}-resume.pt", cfg)
    done = resume.restore(model, opt, sched, log)
    every = cfg.get("checkpoint_every_steps")
    progress = Progress(total, log, every=cfg.get("log_every", 50))
    model.train()
    step = 0
    for epoch in range(epochs):
        for batch in plan[epoch]:
            if step < done:  # the batches are a function of the seed: skip what the resume point has seen
                step += 1
                continue
            x, mask = pad_rows([ids[b] for b in batch], max(len(ids[b]) for b in batch), tok.pad_token_id)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(input_ids=x, attention_mask=mask).logits.float()
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([y[b] for b in batch]), weight=weights)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            progress.update(step, loss.item(), int(mask.sum()), sched.get_last_lr()[0])
            if every and step % every == 0 and step < total:
                resume.save(model, opt, sched, step)
    model.eval()
    cal_logits = clf.logits(to_inputs(calib))
    clf.temperature = fit_temperature(cal_logits, [LABELS.index(e.label) for e in calib])
    log.info(f"temperature {clf.temperature}")
    dev = {name: dict(evaluate(clf, rows), language=DEV_LANGUAGE[name], trained=DEV_LANGUAGE[name] in languages)
           for name, rows in dev_sets.items()}
    for name, res in dev.items():
        log.info(f"dev {name} ({'trained' if res['trained'] else 'zero-shot'}): accuracy {res['accuracy']} macro-F1 {res['macro_f1']} ECE {res['ece']} "
                 f"per class {res['per_class_f1']}")
    from modeling.shipping import save_compact

    save_compact(model, out_dir, {"task": "stance", "labels": list(LABELS), "temperature": clf.temperature,
                                  "max_len": cfg["max_len"], "train_config": cfg, "dev_quick": dev,
                                  "command": f"newsbeam train stance --config {args.config}"})
    log.info(f"saved to {out_dir}")
    resume.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
