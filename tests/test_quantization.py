"""int8 layers (modeling.quantization): SmoothQuant scales, static ranges, the shipped calibration files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from modeling.quantization import (SMOOTHING_FILE, Int8Linear, activation_ranges, calibration_for,
                                   int8_layer_names, layer_calibration, load_smoothing, quantize_int8,
                                   smoothing_scales)

WEIGHTS = Path(__file__).resolve().parents[1] / "modeling" / "weights"


def test_smoothing_scale_balances_activation_and_weight_maxima():
    act = torch.tensor([4.0, 1.0, 100.0])
    weight = torch.tensor([[1.0, -0.25, 0.01], [0.5, 0.1, -0.04]])  # column maxima 1.0, 0.25, 0.04
    s = smoothing_scales(act, weight, alpha=0.5)
    assert torch.allclose(s, torch.tensor([2.0, 2.0, 50.0]))
    # after smoothing each channel's activation maximum equals its weight maximum: sqrt(act * w)
    assert torch.allclose(act / s, weight.abs().amax(0) * s)


def outlier_layer_and_inputs():
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(64, 128)
    x = torch.randn(4, 32, 64, generator=gen)
    x[..., 7] *= 60  # one outlier channel, as the encoder's activations have
    return lin, x


def test_smoothing_and_a_calibrated_range_cut_the_int8_error_of_an_outlier_channel():
    lin, x = outlier_layer_and_inputs()
    ref = lin(x)
    ranges = activation_ranges(torch.nn.ModuleList([lin]), lambda: lin(x))
    cal = calibration_for(torch.nn.ModuleList([lin]), ranges)
    smoothed = Int8Linear(lin, *layer_calibration(cal, "0"))
    unsmoothed = Int8Linear(lin, None, (float(x.min()), float(x.max())))
    err = lambda m: float((m(x) - ref).abs().mean() / ref.abs().mean())  # noqa: E731
    assert err(smoothed) < 0.02
    assert err(smoothed) < err(unsmoothed) / 2


def test_an_int8_row_is_the_same_whatever_else_is_in_its_batch():
    lin, x = outlier_layer_and_inputs()
    ranges = activation_ranges(torch.nn.ModuleList([lin]), lambda: lin(x))
    cal = calibration_for(torch.nn.ModuleList([lin]), ranges)
    layer = Int8Linear(lin, *layer_calibration(cal, "0"))
    loud = x * 3  # beyond the calibrated range: clipped, and still no influence on the other rows
    with torch.inference_mode():
        assert torch.equal(layer(x[:1]), layer(torch.cat([x[:1], loud]))[:1])
        # without a calibration: per-sequence dynamic scales, also batch-independent
        dynamic = Int8Linear(lin)
        assert torch.equal(dynamic(x[:1]), dynamic(torch.cat([x[:1], loud]))[:1])


def test_only_the_layers_that_do_not_narrow_are_quantised():
    block = torch.nn.ModuleDict({"up": torch.nn.Linear(8, 32), "down": torch.nn.Linear(32, 8),
                                 "square": torch.nn.Linear(8, 8)})
    assert int8_layer_names(block) == ["up", "square"]
    quantize_int8(block)
    assert isinstance(block["up"], Int8Linear) and type(block["down"]) is torch.nn.Linear


@pytest.mark.parametrize("model", ["ner", "stance"])
def test_shipped_calibration_covers_every_int8_layer_and_is_recorded(model):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification

    folder = WEIGHTS / model
    auto = AutoModelForTokenClassification if model == "ner" else AutoModelForSequenceClassification
    skeleton = auto.from_config(AutoConfig.from_pretrained(folder))
    cal = load_smoothing(folder)
    names = int8_layer_names(skeleton)
    assert names and set(cal) == set(names) | {f"{n}@range" for n in names}
    for n in names:
        assert torch.isfinite(cal[n]).all() and (cal[n] > 0).all()
        lo, hi = cal[f"{n}@range"].tolist()
        assert lo < 0 < hi
    meta = json.loads((folder / "newsbeam.json").read_text())["int8_smoothing"]
    assert meta["file"] == SMOOTHING_FILE and meta["alpha"] == 0.5 and meta["inputs"] > 0


def test_calibration_is_deterministic(tmp_path):
    """Same weights, same inputs: the same bytes (the file is committed; a rerun must not churn it)."""
    from modeling.quantization import save_smoothing
    from modeling.stance import MentionInput, StanceClassifier
    from pipeline.options import DEFAULT_STANCE_MODEL

    clf = StanceClassifier.load(DEFAULT_STANCE_MODEL, precision="fp32")
    items = [MentionInput("Armenia", "Armenia and Azerbaijan signed a ceasefire brokered by Russia.", 0, 7),
             MentionInput("Россия", "Россия направила миротворцев в Карабах.", 0, 6)]
    files = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        cal = calibration_for(clf.model, activation_ranges(clf.model, lambda: clf.predict_proba(items)))
        files.append(save_smoothing(cal, tmp_path / run).read_bytes())
    assert files[0] == files[1]
