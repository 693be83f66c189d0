"""Distillation of the NER model into a shallower student: the teacher shards' resume logic (pure functions and
real files) and one real distillation step on a 2-layer student cut from the shipped weights."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from modeling.ner import IGNORE, LABELS
from modeling.training.distill_data import (Segment, batches_by_tokens, ensure_teacher_shards, fingerprint,
                                            pending_shards, read_shard, shard_path, shard_ranges, write_shard)

TEACHER = Path(__file__).resolve().parent.parent / "modeling" / "weights" / "ner"
LOG = logging.getLogger("test")


def seg(ids, labels=None, source="reuters", misc=False):
    return Segment(source, "en", tuple(ids), None if labels is None else tuple(labels), misc)


def test_shards_cover_the_segments_once_in_order():
    assert shard_ranges(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert shard_ranges(4, 2) == [(0, 2), (2, 4)]
    assert shard_ranges(0, 3) == []
    with pytest.raises(ValueError):
        shard_ranges(3, 0)


def test_a_fingerprint_changes_with_any_piece_label_source_or_teacher():
    base = [seg([0, 5, 2]), seg([0, 7, 2], [IGNORE, 1, IGNORE], "conll-en", True)]
    fp = fingerprint(base, "t")
    assert fp == fingerprint(list(base), "t")
    assert fp != fingerprint([seg([0, 6, 2]), base[1]], "t")
    assert fp != fingerprint([base[0], seg([0, 7, 2], [IGNORE, 3, IGNORE], "conll-en", True)], "t")
    assert fp != fingerprint([seg([0, 5, 2], source="feeds"), base[1]], "t")
    assert fp != fingerprint([base[0], seg([0, 7, 2], [IGNORE, 1, IGNORE], "conll-en", False)], "t")
    assert fp != fingerprint(base, "other teacher")


def _logits(segments):
    return [np.full((len(s.ids), len(LABELS)), k, dtype=np.float16) for k, s in enumerate(segments)]


def test_only_missing_damaged_or_stale_shards_are_pending(tmp_path):
    parts = [[seg([0, 5, 2])], [seg([0, 6, 6, 2], [IGNORE, 1, 2, IGNORE], "conll-en", True)], [seg([0, 7, 2])]]
    expected = [fingerprint(p, "t") for p in parts]
    assert pending_shards(tmp_path, expected) == [0, 1, 2]
    for i, p in enumerate(parts):
        write_shard(shard_path(tmp_path, i), p, _logits(p), expected[i])
    assert pending_shards(tmp_path, expected) == []
    shard_path(tmp_path, 1).write_bytes(shard_path(tmp_path, 1).read_bytes()[:40])  # a half-written file
    write_shard(shard_path(tmp_path, 2), parts[0], _logits(parts[0]), expected[0])  # other segments
    assert pending_shards(tmp_path, expected) == [1, 2]
    assert not list(tmp_path.glob("*.tmp.npz"))


def test_a_shard_reads_back_what_was_written(tmp_path):
    part = [seg([0, 5, 2]), seg([0, 6, 6, 2], [IGNORE, 1, 2, IGNORE], "conll-en", True)]
    write_shard(tmp_path / "s.npz", part, _logits(part), "fp")
    rows = read_shard(tmp_path / "s.npz")
    assert [r[0].tolist() for r in rows] == [[0, 5, 2], [0, 6, 6, 2]]
    assert [r[1].tolist() for r in rows] == [[IGNORE] * 3, [IGNORE, 1, 2, IGNORE]]
    assert [r[2].shape for r in rows] == [(3, len(LABELS)), (4, len(LABELS))] and rows[1][2][0, 0] == 1
    assert [(r[3], r[4]) for r in rows] == [(False, "reuters"), (True, "conll-en")]


def test_teacher_batches_stay_within_the_token_budget_and_cover_every_row():
    lengths = [5, 120, 7, 64, 3, 128, 30]
    batches = batches_by_tokens(lengths, 256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 256 or len(b) == 1 for b in batches)


def test_kd_loss_is_zero_on_the_teacher_itself_and_ignores_specials_and_padding():
    import torch

    from modeling.training.distill import kd_loss, kd_mask

    mask = kd_mask([4, 3], 4)
    assert mask.tolist() == [[False, True, True, False], [False, True, False, False]]
    teacher = torch.randn(2, 4, len(LABELS))
    assert kd_loss(teacher, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    other = teacher.clone()
    other[:, 0, 0] += 5.0  # only <s>: masked out
    other[1, 2:, 3] -= 3.0  # </s> and padding of the shorter row: masked out
    assert kd_loss(other, teacher, mask, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    other[0, 1, 0] += 3.0
    assert kd_loss(other, teacher, mask, 2.0).item() > 0.01


@pytest.mark.skipif(not (TEACHER / "model.safetensors").exists(), reason="the shipped NER weights are absent")
def test_a_two_layer_student_learns_the_teacher_on_a_handful_of_sentences(tmp_path):
    import torch

    from modeling.ner import piece_labels
    from modeling.shipping import load_model, save_compact
    from modeling.training.common import make_optimizer
    from modeling.training.distill import build_student, collate, distill_step, load_teacher

    torch.manual_seed(0)
    model, tok = build_student({"teacher": str(TEACHER), "student_layers": [0, 11]})
    assert len(model.bert.encoder.layer) == 2 and model.config.num_hidden_layers == 2
    assert not model.bert.embeddings.word_embeddings.weight.requires_grad
    texts = ["Angela Merkel met Emmanuel Macron in Berlin on Tuesday.", "Shares of Apple fell 3 percent.",
             "Владимир Путин прилетел в Казань.", "Reuters reported that OPEC will cut output."]
    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    gold = piece_labels(texts[0], enc["offset_mapping"][0],
                        [(0, 13, "PER"), (18, 33, "PER"), (37, 43, "LOC")], [False] * len(enc["input_ids"][0]))
    segments = [Segment("conll-en" if k == 0 else "reuters", "en", (tok.cls_token_id, *ids, tok.sep_token_id),
                        (IGNORE, *gold, IGNORE) if k == 0 else None, k == 0) for k, ids in enumerate(enc["input_ids"])]
    cfg = {"teacher_dir": str(tmp_path / "distill"), "shard_size": 3, "teacher": str(TEACHER)}
    calls = []

    def teacher():
        calls.append(1)
        return load_teacher(str(TEACHER))

    shards = ensure_teacher_shards(cfg, segments, LOG, teacher)
    assert len(shards) == 2 and all(p.exists() for p in shards) and calls == [1]
    assert ensure_teacher_shards(cfg, segments, LOG, teacher) == shards and calls == [1]  # nothing recomputed
    rows = [r for p in shards for r in read_shard(p)]
    assert rows[0][1].tolist() == [IGNORE, *gold, IGNORE] and rows[1][1].tolist() == [IGNORE] * len(rows[1][0])

    step_cfg = {"temperature": 2.0, "kd_weight": 1.0, "ce_weight": 0.5}
    opt, sched = make_optimizer(model, 1e-3, 0.0, total_steps=12, warmup_ratio=0.0)
    batch = collate(rows, tok.pad_token_id)
    model.train()
    first_kd = None
    for _ in range(12):
        loss, kd, ce = distill_step(model, batch, step_cfg)
        assert np.isfinite(loss.item()) and kd >= 0 and ce >= 0
        first_kd = kd if first_kd is None else first_kd
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    assert kd < first_kd / 2  # the student moves towards the teacher's soft labels

    model.eval()
    save_compact(model, tmp_path / "student", {"task": "ner", "labels": list(LABELS)})
    again, _ = load_model(tmp_path / "student", __import__("transformers").AutoModelForTokenClassification)
    assert again.config.num_hidden_layers == 2
    ids = torch.tensor([rows[0][0].tolist()])
    with torch.inference_mode():
        a = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        b = again(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert torch.allclose(a, b, atol=0.05)  # fp16 on disk


def test_the_student_config_reads_every_stage_five_source_and_ships_nothing():
    from modeling.training.common import load_config

    configs = Path(__file__).resolve().parent.parent / "configs"
    student, stage5 = load_config(configs / "ner-student.yaml"), load_config(configs / "ner-stage5.yaml")
    assert student["gold_sources"] == stage5["train_sources"] and student["dev_sources"] == stage5["dev_sources"]
    assert student["teacher"] == stage5["output"] and not student["output"].startswith("modeling/")
    assert len(student["student_layers"]) == 6 and student["student_layers"][-1] == 11
