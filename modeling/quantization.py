"""int8 Linear layers that keep the models' quality: SmoothQuant scaling, weights per output channel, a calibrated
static activation range per layer.

Why each part (measured on decision data kept apart from the reported dev figures: WikiANN val sentences
3,000-4,500 in en/de/ru for NER, 1,600 training mentions for stance; docs/quality.md has the dev table):
- Which layers: those that do not narrow (attention q, k, v, output; the FFN's first layer). The FFN's second
  layer reads the GELU output, whose outlier channels (|x| up to ~32 against a median channel maximum ~1.8) cost
  1.9-3.6 F1 points in int8 and up to 0.8 even smoothed; it stays fp32, as do the heads, embeddings and layer norms.
- SmoothQuant (Xiao et al., 2023): per input channel j, activations are divided by
  s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) and the weight's column j multiplied by it, which leaves the
  product unchanged in exact arithmetic but moves the activation outliers into the weights, where int8 is per
  output channel and takes them well. alpha = 0.5, the paper's default, not tuned. max|X_j| comes from a
  calibration pass over training text (modeling.training.calibrate), stored with the weights. Against plain
  per-channel int8 on the decision data: NER F1 change -0.54/-0.27/-0.40 -> -0.25/-0.09/+0.41 points,
  stance labels agreeing with fp32 97.0% -> 98.6% (with per-sequence dynamic activations).
- A static activation range per layer, calibrated with the scales: fbgemm's dynamic Linear quantises its whole
  input with one scale per call, so an article's scores depend on the other segments in its batch, i.e. on how a
  runner bundles elements (a loud batch-mate moved one stance score by 0.05). With the range fixed, an article's
  output is its own, as in fp32 and bf16, once each segment runs alone (modeling.ner.one_at_a_time: fbgemm also
  rounds by a row's place in the batch). Decision data:
  NER F1 -0.39/-0.06/-0.11 points, stance labels 98.9% equal to fp32; 1.55x fp32's speed on this CPU.
- 7-bit activations (ACTIVATION_LEVELS): fbgemm's u8 x s8 kernels saturate 16-bit pair sums on AVX2 with 8 bits.
  One Linear at the FFN shape: relative error 10.7% at 8 bits under an AVX2 cap against 1.1% with VNNI; at 7 bits
  2.1% on both, the same to every digit, so int8 gives the same answers on either kind of CPU. torch's dynamic path
  reduces the range the same way.
In a post-LayerNorm encoder (BERT) the scaling cannot be folded into the LayerNorm, whose output also feeds the
residual path, so it is one elementwise multiply per layer (~0.3% of the layer's FLOPs).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

SMOOTHING_FILE = "int8_smoothing.safetensors"
SMOOTHING_ALPHA = 0.5


def is_int8_layer(name: str, module: nn.Module) -> bool:
    """Whether int8 quantises this layer: a Linear that does not narrow (in_features <= out_features), not a head."""
    return (isinstance(module, nn.Linear) and module.in_features <= module.out_features
            and name.split(".")[0] != "classifier")


def int8_layer_names(model: nn.Module) -> list[str]:
    return [name for name, mod in model.named_modules() if is_int8_layer(name, mod)]


def smoothing_scales(act_max: torch.Tensor, weight: torch.Tensor, alpha: float = SMOOTHING_ALPHA) -> torch.Tensor:
    """SmoothQuant's per-input-channel s = max|X_j|^alpha / max|W_j|^(1-alpha) (weight is [out, in])."""
    w_max = weight.detach().abs().amax(0).float().clamp(min=1e-5)
    return (act_max.float().clamp(min=1e-5) ** alpha / w_max ** (1 - alpha)).clamp(min=1e-5)


ACTIVATION_LEVELS = 127  # 7-bit activations: fbgemm's u8 x s8 kernels can saturate on AVX2 with the full 255


class Int8Linear(nn.Module):
    """A Linear in int8: the input divided by the smoothing scale, quantised with the calibrated range of this
    layer's (smoothed) input, times int8 weights per output channel, in one fbgemm call with an fp32 output.

    The activation range is fixed at calibration (static), not measured per call as in torch's dynamic
    quantisation: one scale per call would make an article's scores depend on the other segments in its batch,
    i.e. on how a runner bundles elements, where fp32 and bf16 depend on the article alone. Without a calibrated
    range (a model that has no int8_smoothing file), per-sequence dynamic quantisation keeps the same property."""

    def __init__(self, linear: nn.Linear, smooth: torch.Tensor | None = None,
                 input_range: tuple[float, float] | None = None):
        super().__init__()
        weight = linear.weight.detach().float()
        if smooth is not None:
            weight = weight * smooth.float()[None, :]
        w_scale = (weight.abs().amax(1) / 127).clamp(min=1e-8).double()
        with warnings.catch_warnings():  # torch 2.13 (pinned) marks quantised tensors deprecated; fbgemm needs one
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch.quantize_per_channel(weight, w_scale, torch.zeros_like(w_scale, dtype=torch.long), 0,
                                                 torch.qint8)
        bias = None if linear.bias is None else linear.bias.detach().float()
        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.register_buffer("inv_smooth", None if smooth is None else 1.0 / smooth.float())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        if input_range is None:
            self.x_scale = self.x_zero = None
        else:
            lo, hi = min(float(input_range[0]), 0.0), max(float(input_range[1]), 0.0)
            self.x_scale = max((hi - lo) / ACTIVATION_LEVELS, 1e-8)
            self.x_zero = int(min(max(round(-lo / self.x_scale), 0), ACTIVATION_LEVELS))

    @classmethod
    def for_timing(cls, linear: nn.Linear) -> "Int8Linear":
        """The same work as a calibrated layer (the smoothing multiply, a static range) without a calibration: what
        the precision probe and the bench time."""
        return cls(linear, torch.ones(linear.in_features), (-4.0, 4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inv_smooth is not None:
            x = x * self.inv_smooth
        flat = x.reshape(-1, self.in_features)
        if self.x_scale is not None:
            out = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(flat, self.x_scale, self.x_zero,
                                                                                    self._packed)
        else:  # per sequence: each row of the batch gets its own dynamic scale
            rows = x.reshape(-1, x.shape[-2], self.in_features) if x.dim() > 2 else flat[None]
            out = torch.cat([torch.ops.quantized.linear_dynamic(r, self._packed, True) for r in rows])
        return out.reshape(*x.shape[:-1], self.out_features)


def quantize_int8(model: nn.Module, calibration: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Replace int8_layer_names' Linear layers by Int8Linear in place (a copy would hold the 384 MB embedding
    matrix twice), smoothed and statically ranged where `calibration` (load_smoothing) has the layer."""
    for name in int8_layer_names(model):
        parent, _, leaf = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, leaf, Int8Linear(getattr(owner, leaf), *layer_calibration(calibration, name)))
    return model


def activation_ranges(model: nn.Module, run: Callable[[], object]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer name: (min, max) of its input per channel} of int8_layer_names over whatever `run()` feeds the model."""
    stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name in int8_layer_names(model):
        def record(_mod, inputs, _out, name=name):
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            lo, hi = x.amin(0), x.amax(0)
            if name in stats:
                lo, hi = torch.minimum(stats[name][0], lo), torch.maximum(stats[name][1], hi)
            stats[name] = (lo, hi)
        hooks.append(model.get_submodule(name).register_forward_hook(record))
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return stats


def calibration_for(model: nn.Module, ranges: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                    alpha: float = SMOOTHING_ALPHA) -> dict[str, torch.Tensor]:
    """What the smoothing file stores per int8 layer: `name` -> its smoothing scales (fp16), `name@range` -> the
    (min, max) of its smoothed input, both from the calibration ranges and the layer's own weights. The range is
    taken after rounding the scales to fp16, as they are used."""
    out = {}
    for name in int8_layer_names(model):
        if name not in ranges:
            continue
        lo, hi = ranges[name]
        stored = smoothing_scales(torch.maximum(lo.abs(), hi.abs()), model.get_submodule(name).weight,
                                  alpha).to(torch.float16)
        scale = stored.float()
        out[name] = stored
        out[f"{name}@range"] = torch.stack([(lo / scale).min(), (hi / scale).max()])
    return out


def save_smoothing(calibration: Mapping[str, torch.Tensor], model_dir: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(model_dir) / SMOOTHING_FILE
    save_file({k: v.contiguous() for k, v in sorted(calibration.items())}, str(path))
    return path


def load_smoothing(model_dir: str | Path | None) -> dict[str, torch.Tensor] | None:
    """The model's stored int8 calibration (calibration_for's entries, as float32), or None for a model without one
    (its int8 layers then quantise each sequence dynamically)."""
    if model_dir is None or not (Path(model_dir) / SMOOTHING_FILE).is_file():
        return None
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(Path(model_dir) / SMOOTHING_FILE)).items()}


def layer_calibration(calibration: Mapping[str, torch.Tensor] | None, name: str):
    """(smoothing scales, input range) of one layer from a loaded calibration, Nones where it has none."""
    calibration = calibration or {}
    rng = calibration.get(f"{name}@range")
    return calibration.get(name), (None if rng is None else (float(rng[0]), float(rng[1])))
