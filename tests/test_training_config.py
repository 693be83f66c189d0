"""Training configs: `extends:` inheritance, and the shipped NER stages resolving to their full recipes (no model)."""
from __future__ import annotations

from pathlib import Path

import pytest

from modeling.training.common import load_config

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def test_a_stage_inherits_what_it_does_not_set(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\nlr: 5.0e-5\noversample: {nerel: 2}\n")
    (tmp_path / "next.yaml").write_text("extends: base.yaml\nseed: 2\n")
    assert load_config(tmp_path / "next.yaml") == {"seed": 2, "lr": 5.0e-5, "oversample": {"nerel": 2}}


def test_a_config_that_extends_itself_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nseed: 1\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nseed: 2\n")
    with pytest.raises(ValueError, match="extends itself"):
        load_config(tmp_path / "a.yaml")


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    (tmp_path / "list.yaml").write_text("- seed\n- lr\n")
    with pytest.raises(ValueError, match="not a mapping"):
        load_config(tmp_path / "list.yaml")


def test_stage_four_resolves_to_the_stage_three_mix_at_half_the_rate():
    stage3, stage4 = load_config(CONFIGS / "ner-stage3.yaml"), load_config(CONFIGS / "ner-stage4.yaml")
    assert "extends" not in stage4
    assert (stage4["seed"], stage4["lr"], stage4["init_from"], stage4["output"]) == (
        20201113, 1.0e-5, "build/ner-stage3", "build/ner-stage4")
    same = {k: v for k, v in stage4.items() if k not in ("seed", "lr", "init_from", "output")}
    assert same == {k: v for k, v in stage3.items() if k not in ("seed", "lr", "init_from", "output")}
    assert stage4["per_source_cap"] == {"wikiann": 12000} and stage4["oversample"]["conll-es"] == 2
    assert len(stage4["train_sources"]) == 11


def test_stage_five_continues_from_stage_four_into_the_shipped_weights_with_every_news_language():
    stage5 = load_config(CONFIGS / "ner-stage5.yaml")
    assert (stage5["init_from"], stage5["output"]) == ("build/ner-stage4", "modeling/weights/ner")
    languages = {s.split("-", 1)[1] for s in stage5["train_sources"] if s.startswith(("slavner-", "uner-", "wikineural-"))}
    assert languages == {"bg", "cs", "pl", "ru", "sl", "uk", "da", "hr", "pt", "sk", "sr", "sv", "zh", "fr", "it"}
    assert stage5["train_sources"] == stage5["dev_sources"]


def test_a_source_cap_of_its_own_wins_over_its_family_cap():
    from modeling.training.ner import source_cap

    caps = {"wikiann": 6000, "wikiann-de": 20000}
    assert source_cap(caps, "wikiann-de") == 20000
    assert source_cap(caps, "wikiann-pl") == 6000
    assert source_cap(caps, "conll-en") is None



def test_the_schedule_warms_up_to_the_peak_rate_then_decays_to_zero():
    import torch

    from modeling.training.common import make_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    opt, sched = make_optimizer(model, 1e-3, 0.01, total_steps=20, warmup_ratio=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]  # no decay on biases and norms
    rates = []
    for _ in range(20):
        opt.step()
        sched.step()
        rates.append(sched.get_last_lr()[0])
    assert rates[1] == pytest.approx(1e-3) and rates[-1] == 0.0  # peak after the 2 warm-up steps, 0 at the end
    assert rates[:2] == sorted(rates[:2]) and rates[2:] == sorted(rates[2:], reverse=True)
