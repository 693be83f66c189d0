"""`newsbeam train ner`: fine-tune multilingual-e5-small for PER/ORG/LOC/MISC on the shared corpora.

Data: CoNLL-2002/2003 (en, de, es, nl), WikiANN (en, de, es, nl, pl, ru), NEREL (ru, brat, mapped to PER/ORG/LOC).
WikiANN and NEREL have no MISC class: on their tokens the loss treats "O" as "O or MISC" (log-sum of the three
probabilities), so they do not teach the model that nationalities or events are not entities.
"""
from __future__ import annotations

import random
import time
from pathlib import Path


from modeling.training import corpora
from modeling.ner import IGNORE, LABEL2ID, LABELS, NerTagger, pad_rows, piece_labels, span_prf, windows
from modeling.shipping import save_compact
from modeling.training.common import Progress, ResumePoint, bucketed_batches, make_optimizer, start_run

MISC_IDS = (LABEL2ID["O"], LABEL2ID["B-MISC"], LABEL2ID["I-MISC"])


def encode_examples(tokenizer, examples, max_len: int):
    """Examples -> list of (input_ids, labels, has_misc); texts longer than max_len are cut into windows."""
    enc = tokenizer([e.text for e in examples], add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for ex, ids, offs in zip(examples, enc["input_ids"], enc["offset_mapping"]):
        labels = piece_labels(ex.text, offs, ex.spans, [False] * len(ids))
        for st, en, _, _ in windows(len(ids), max_len - 2, 0, last_at_end=True) if len(ids) > max_len - 2 else [(0, len(ids), 0, 0)]:
            seg_ids = [tokenizer.cls_token_id] + ids[st:en] + [tokenizer.sep_token_id]
            seg_labels = [IGNORE] + labels[st:en] + [IGNORE]
            if any(l != IGNORE for l in seg_labels):
                out.append((seg_ids, seg_labels, ex.has_misc))
    return out


def ner_loss(logits, labels, has_misc):
    """Cross-entropy, with O meaning 'O or MISC' for rows from sources that never annotate MISC."""
    import torch

    logp = logits.float().log_softmax(-1)
    valid = labels != IGNORE
    safe = labels.clamp(min=0)
    tgt = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    merged = torch.logsumexp(logp[..., list(MISC_IDS)], dim=-1)
    use_merged = (~has_misc).unsqueeze(-1) & (labels == LABEL2ID["O"])
    tgt = torch.where(use_merged, merged, tgt)
    return -(tgt * valid).sum() / valid.sum().clamp(min=1)


def evaluate_tagger(tagger: NerTagger, examples, misc: bool) -> dict:
    preds = tagger.predict([e.text for e in examples])
    types = None if misc else ("PER", "ORG", "LOC")
    return span_prf([e.spans for e in examples], [[(s.start, s.end, s.type) for s in p] for p in preds], types)


def source_cap(caps: dict, name: str) -> int | None:
    """A source's per-epoch setting (cap, repeat): its own entry ("wikiann-de") wins over its family's ("wikiann")."""
    return caps.get(name, caps.get(name.split("-")[0]))


def build_model(init_from: str | None = None):
    """The e5 encoder with a fresh tagging head, or (`init_from`) an earlier newsbeam NER model to train further."""
    from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

    from modeling.e5base import base_state_dict, bert_config_dict, build_tokenizer, load_image
    from modeling.shipping import load_model

    if init_from:
        model, tok = load_model(init_from, AutoModelForTokenClassification)
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
        return model, tok
    image = load_image()
    cfg = BertConfig(**bert_config_dict(image), num_labels=len(LABELS),
                     id2label=dict(enumerate(LABELS)), label2id=LABEL2ID)
    model = BertForTokenClassification(cfg)
    state = {f"bert.{k}": v for k, v in base_state_dict(image).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, unexpected
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model, build_tokenizer(image)


def main(argv=None) -> int:
    args, cfg, out_dir, log, rng = start_run("newsbeam train ner", __doc__, "configs/ner.yaml", argv)

    import torch
    model, tok = build_model(cfg.get("init_from"))
    if cfg.get("init_from"):
        log.info(f"continuing from {cfg['init_from']}")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(f"trainable parameters {n_train / 1e6:.1f}M of {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M")

    data_root = Path(cfg["data_root"]) if cfg.get("data_root") else None
    full = {}
    for name in cfg["train_sources"]:
        t0 = time.time()
        full[name] = encode_examples(tok, corpora.load_ner_split(name, "train", data_root), cfg["max_len"])
        log.info(f"{name}: {len(full[name])} training segments ({time.time() - t0:.1f}s)")

    def epoch_sample(epoch: int):
        items = []
        for name, rows in full.items():
            cap = source_cap(cfg.get("per_source_cap", {}), name)
            repeat = source_cap(cfg.get("oversample", {}), name) or 1
            if cap and len(rows) > cap:
                # disjoint slices across epochs: each epoch sees a fresh part of the big corpora
                perm = list(range(len(rows)))
                random.Random(cfg["seed"] + len(name)).shuffle(perm)
                start = (epoch * cap) % len(rows)
                chosen = [perm[(start + k) % len(rows)] for k in range(cap)]
                items += [rows[k] for k in chosen]
            else:
                items += rows * repeat
        return items

    epochs = cfg["epochs"]
    samples = [epoch_sample(e) for e in range(epochs)]
    batches_per_epoch = [bucketed_batches([len(x[0]) for x in s], cfg["batch_size"], rng) for s in samples]
    total = sum(len(b) for b in batches_per_epoch)
    log.info(f"{epochs} epochs, {total} steps, {sum(len(s) for s in samples)} segments")
    opt, sched = make_optimizer(model, cfg["lr"], cfg["weight_decay"], total, cfg["warmup_ratio"])
    resume = ResumePoint(Path(cfg.get("checkpoint_dir", "build/checkpoints")) / f"{out_dir.name}-resume.pt", cfg)
    done = resume.restore(model, opt, sched, log)
    progress = Progress(total, log, every=cfg.get("log_every", 50))
    model.train()
    step = 0
    every = cfg.get("checkpoint_every_steps")
    for epoch in range(epochs):
        for batch_idx in batches_per_epoch[epoch]:
            if step < done:  # the batches are a function of the seed: skip what the checkpoint has seen
                step += 1
                continue
            rows = [samples[epoch][i] for i in batch_idx]
            width = max(len(r[0]) for r in rows)
            ids, mask = pad_rows([r[0] for r in rows], width, tok.pad_token_id)
            labels, _ = pad_rows([r[1] for r in rows], width, IGNORE)
            has_misc = torch.tensor([r[2] for r in rows])
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = ner_loss(logits, labels, has_misc)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            progress.update(step, loss.item(), int(mask.sum()), sched.get_last_lr()[0])
            if every and step % every == 0 and step < total:
                resume.save(model, opt, sched, step)
        if cfg.get("checkpoint_every_epoch") and epoch + 1 < epochs:
            ckpt = Path(cfg.get("checkpoint_dir", "build/checkpoints")) / f"{out_dir.name}-epoch-{epoch + 1}"
            save_compact(model, ckpt, {"task": "ner", "labels": list(LABELS), "train_config": cfg,
                                       "checkpoint": epoch + 1})
            log.info(f"checkpoint after epoch {epoch + 1} saved to {ckpt}")
    model.eval()
    dev = {}
    tagger = NerTagger(model, tok)
    for name in cfg["dev_sources"]:
        examples = corpora.load_ner_split(name, "val", data_root)
        limit = cfg.get("dev_limit")
        if limit and len(examples) > limit:
            examples = examples[:limit]
        res = evaluate_tagger(tagger, examples, misc=name.startswith("conll"))
        dev[name] = {"f1": res["f1"], "precision": res["precision"], "recall": res["recall"], "n": len(examples)}
        log.info(f"dev {name} ({len(examples)}): P {res['precision']:.4f} R {res['recall']:.4f} F1 {res['f1']:.4f}")
    save_compact(model, out_dir, {"task": "ner", "labels": list(LABELS), "train_config": cfg, "dev_quick": dev,
                                  "command": f"newsbeam train ner --config {args.config}"})
    log.info(f"saved to {out_dir}")
    resume.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
