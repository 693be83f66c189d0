"""`newsbeam train ner-student`: distil the shipped NER model into a shallower student (same width, vocabulary and
head; fewer layers), for transformer quality at a fraction of the FLOPs per article.

1. Teacher outputs, once: the teacher's logits on every piece of the distillation set (gold training texts and
   unlabeled news, modeling/training/distill_data.py), stored in shards under `teacher_dir`; shards on disk are
   skipped.
2. Student: the teacher's embeddings, head and `student_layers` of its encoder layers (DistilBERT's choice for
   6 of 12: [0, 2, 4, 7, 9, 11], the first and last kept), word embeddings frozen as in `newsbeam train ner`.
3. Loss on each batch: `kd_weight` * T^2 * KL(teacher || student) of the softmaxes at temperature T, on every
   real piece (not <s>, </s> or padding), plus `ce_weight` * the gold cross-entropy of `newsbeam train ner`
   (O read as "O or MISC" for sources that never annotate MISC) where a piece has a gold label. bf16 autocast.
4. A resume point every `checkpoint_every_steps` (modeling.training.common.ResumePoint): rerunning the same
   command continues from it. At the end, dev figures per source for the student and the teacher on the same
   sentences, in the log and in the output's newsbeam.json.

    python -m modeling.training.distill --config configs/ner-student.yaml [--log FILE] [--threads 1]
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from modeling.ner import IGNORE, LABELS, NerTagger, pad_rows
from modeling.training.common import Progress, ResumePoint, bucketed_batches, make_optimizer, start_run

DISTILBERT_LAYERS = (0, 2, 4, 7, 9, 11)


def student_from_teacher(model, layers):
    """The teacher cut down in place to the encoder layers `layers` (in that order): embeddings, head, width and
    vocabulary unchanged. Returns the model, its config saying the new depth."""
    import torch

    enc = model.base_model.encoder
    n = len(enc.layer)
    if not layers or any(not 0 <= i < n for i in layers) or list(layers) != sorted(set(layers)):
        raise ValueError(f"student_layers must be increasing layer indexes of the teacher's {n}, not {layers}")
    enc.layer = torch.nn.ModuleList([enc.layer[i] for i in layers])
    for new_index, layer in enumerate(enc.layer):  # the attention's cache slot follows its new position
        if hasattr(layer.attention.self, "layer_idx"):
            layer.attention.self.layer_idx = new_index
    model.config.num_hidden_layers = len(layers)
    return model


def kd_loss(student_logits, teacher_logits, mask, temperature: float):
    """T^2 * mean over masked pieces of KL(softmax(teacher/T) || softmax(student/T)) (Hinton et al. 2015: the T^2
    keeps the gradient's scale independent of T)."""
    t = temperature
    log_s = (student_logits.float() / t).log_softmax(-1)
    log_t = (teacher_logits.float() / t).log_softmax(-1)
    kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    m = mask.float()
    return (kl * m).sum() / m.sum().clamp(min=1) * t * t


def kd_mask(lengths, width: int):
    """True on each row's real pieces between <s> and </s>: the pieces the teacher's soft labels mean something."""
    import torch

    pos = torch.arange(width).unsqueeze(0)
    n = torch.tensor(lengths).unsqueeze(1)
    return (pos >= 1) & (pos < n - 1)


def collate(rows, pad_id: int):
    """(ids, mask, labels, teacher logits, has_misc, kd mask) tensors for a batch of shard rows."""
    import numpy as np
    import torch

    width = max(len(r[0]) for r in rows)
    ids, mask = pad_rows([r[0].tolist() for r in rows], width, pad_id)
    labels, _ = pad_rows([r[1].tolist() for r in rows], width, IGNORE)
    teacher = np.zeros((len(rows), width, len(LABELS)), dtype=np.float32)
    for k, r in enumerate(rows):
        teacher[k, : len(r[2])] = r[2]
    has_misc = torch.tensor([r[3] for r in rows])
    return ids, mask, labels, torch.from_numpy(teacher), has_misc, kd_mask([len(r[0]) for r in rows], width)


def distill_step(model, batch, cfg: dict):
    """One batch's loss (and its KD and CE parts as floats), after backward."""
    import torch

    from modeling.training.ner import ner_loss

    ids, mask, labels, teacher, has_misc, kmask = batch
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(input_ids=ids, attention_mask=mask).logits
    kd = kd_loss(logits, teacher, kmask, cfg["temperature"])
    ce = ner_loss(logits, labels, has_misc)  # 0 on a batch without gold labels
    loss = cfg["kd_weight"] * kd + cfg["ce_weight"] * ce
    loss.backward()
    return loss, float(kd.detach()), float(ce.detach())


def load_teacher(path: str):
    from transformers import AutoModelForTokenClassification

    from modeling.shipping import load_model

    return load_model(path, AutoModelForTokenClassification)


def build_student(cfg: dict):
    model, tok = load_teacher(cfg["teacher"])
    student_from_teacher(model, cfg["student_layers"])
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
    return model, tok


def dev_figures(cfg: dict, models: dict, log, data_root=None) -> dict:
    """{model name: {dev source: P/R/F1/n}} on the first `dev_limit` examples of each dev set, and pieces/s."""
    from modeling.training import corpora
    from modeling.training.ner import evaluate_tagger

    out = {name: {} for name in models}
    for source in cfg["dev_sources"]:
        examples = corpora.load_ner_split(source, "val", data_root)[: cfg.get("dev_limit") or None]
        for name, (model, tok) in models.items():
            tagger = NerTagger(model, tok, precision=cfg.get("dev_precision", "bf16"))
            t0 = time.time()
            res = evaluate_tagger(tagger, examples, misc=source.startswith(("conll", "wikineural")))
            secs = time.time() - t0
            out[name][source] = {"f1": res["f1"], "precision": res["precision"], "recall": res["recall"],
                                 "n": len(examples), "pieces_per_s": round(tagger.tokens_processed / secs)}
        line = "  ".join(f"{name} F1 {out[name][source]['f1']:.4f} ({out[name][source]['pieces_per_s']} pieces/s)"
                         for name in models)
        log.info(f"dev {source} ({len(examples)}): {line}")
    return out


def main(argv=None) -> int:
    args, cfg, out_dir, log, rng = start_run("newsbeam train ner-student", __doc__, "configs/ner-student.yaml", argv)

    import torch

    from modeling.shipping import save_compact, shared_tokenizer
    from modeling.training.distill_data import build_segments, ensure_teacher_shards, read_shard

    segments = build_segments(shared_tokenizer(), cfg, log)
    shards = ensure_teacher_shards(cfg, segments, log, lambda: load_teacher(cfg["teacher"]))
    del segments
    rows = [r for path in shards for r in read_shard(path)]
    log.info(f"{len(rows)} segments, {sum(len(r[0]) for r in rows)} pieces read from {len(shards)} shards")

    model, tok = build_student(cfg)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(f"student: teacher layers {cfg['student_layers']}, trainable {n_train / 1e6:.1f}M of "
             f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")
    epochs = cfg["epochs"]
    lengths = [len(r[0]) for r in rows]
    batches = [bucketed_batches(lengths, cfg["batch_size"], rng) for _ in range(epochs)]
    total = sum(len(b) for b in batches)
    log.info(f"{epochs} epochs, {total} steps of {cfg['batch_size']} segments")
    opt, sched = make_optimizer(model, cfg["lr"], cfg["weight_decay"], total, cfg["warmup_ratio"])
    resume = ResumePoint(Path(cfg.get("checkpoint_dir", "build/checkpoints")) / f"{out_dir.name}-resume.pt", cfg)
    done = resume.restore(model, opt, sched, log)
    progress = Progress(total, log, every=cfg.get("log_every", 50))
    every = cfg.get("checkpoint_every_steps")
    model.train()
    step, kd_sum, ce_sum, seen = 0, 0.0, 0.0, 0
    for epoch in range(epochs):
        for batch_idx in batches[epoch]:
            if step < done:  # the batches are a function of the seed: skip what the checkpoint has seen
                step += 1
                continue
            batch = collate([rows[i] for i in batch_idx], tok.pad_token_id)
            loss, kd, ce = distill_step(model, batch, cfg)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            kd_sum, ce_sum, seen = kd_sum + kd, ce_sum + ce, seen + 1
            progress.update(step, loss.item(), int(batch[1].sum()), sched.get_last_lr()[0])
            if step % cfg.get("log_every", 50) == 0:
                log.info(f"step {step}: mean KD {kd_sum / seen:.4f}, mean CE {ce_sum / seen:.4f} "
                         f"over the last {seen} steps")
                kd_sum, ce_sum, seen = 0.0, 0.0, 0
            if every and step % every == 0 and step < total:
                resume.save(model, opt, sched, step)
                log.info(f"resume point saved at step {step} of {total}")
    if done < total:  # so that a run stopped during the dev figures does not train again
        resume.save(model, opt, sched, total)
    model.eval()
    save_compact(model, out_dir, {"task": "ner", "labels": list(LABELS), "train_config": cfg,
                                  "student_of": cfg["teacher"], "command": f"newsbeam train ner-student --config "
                                                                           f"{args.config}"})
    log.info(f"saved to {out_dir}; dev figures follow")
    models = {"student": (model, tok)}
    if cfg.get("dev_teacher", True):
        models["teacher"] = load_teacher(cfg["teacher"])
    dev = dev_figures(cfg, models, log)
    meta = json.loads((out_dir / "newsbeam.json").read_text())
    meta["dev_quick"], meta["dev_quick_teacher"] = dev["student"], dev.get("teacher")
    (out_dir / "newsbeam.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    resume.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
