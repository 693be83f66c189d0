"""Numeric precision of the model stages: fp32, bf16 (autocast) or int8 (modeling.quantization), chosen by timing.

Why by timing: bf16 is ~3x faster than fp32 on a CPU with native bf16 (AVX512_BF16, AMX) and ~100x slower on one
without (AVX2 only: oneDNN emulates it), and int8 speed depends on VNNI; no table of CPU flags is right on every
CPU (Dataflow workers included), a probe of the model's own layer shapes is. Why only among "offered" precisions:
a faster precision is worth nothing if it changes the answers, so `auto` considers only those whose dev-set
quality was measured to stay within tolerance of fp32 (`python -m modeling.evaluation.quality --precisions`, recorded in the
model's newsbeam.json under "precisions"; docs/quality.md).

The choice logic (pick_fastest, resolve) is pure and tested with a fake timer; the torch parts (probe_seconds,
apply_precision, autocast) are thin.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

AUTO = "auto"
PRECISIONS = ("fp32", "bf16", "int8")  # most exact first: ties go to the earlier one
CHOICES = (AUTO, *PRECISIONS)
# A model without a measured record (a Hugging Face model given by --ner-model): fp32, and bf16 autocast, which
# newsbeam used for every model before int8 existed (autocast keeps softmax, layer norm and the logits in fp32).
# int8 changes weights, so it is offered only where its quality was measured.
UNMEASURED_OFFER = ("fp32", "bf16")
# Tolerances against fp32 on the dev sets: a precision is offered only within these.
NER_F1_TOLERANCE = 0.005
STANCE_MACRO_F1_TOLERANCE = 0.010

log = logging.getLogger("newsbeam.precision")


@dataclass(frozen=True)
class Choice:
    """The precision a model runs in, and why: `seconds` holds the probe's best time per candidate (None for a
    candidate dropped after the small trial), empty when the precision was requested rather than probed."""
    precision: str
    reason: str
    seconds: Mapping[str, float | None] = field(default_factory=dict)

    def describe(self) -> str:
        timed = ", ".join(f"{p} {'dropped' if s is None else f'{s * 1e3:.1f} ms'}" for p, s in self.seconds.items())
        return f"{self.precision} ({self.reason}{'; probe: ' + timed if timed else ''})"


def pick_fastest(candidates: Sequence[str], measure: Callable[[str, bool], float], rounds: int = 3,
                 drop_factor: float = 3.0) -> Choice:
    """The precision for this CPU from `measure(precision, small)` seconds, decided only where the gap is wide.

    Timing is noisy on a shared machine, and a choice that flips between runs changes the scores written (a
    rerun of a day would not be byte-identical). So the probe answers two questions whose answers are far apart,
    each against fp32: is bf16 native (2x faster than fp32 with AVX512_BF16/AMX, 3-100x slower emulated on AVX2),
    and is int8 faster than fp32 (1.4-2x idle on both CPU kinds measured, never below 1.14x under load). Then:
    bf16 where native (the more exact of the two fast ones; bf16 and int8 tie within noise on such a CPU), else
    int8 where faster, else fp32. Pass a precision to pin it.

    Budget: a small trial first (best of `rounds` calls): a candidate more than `drop_factor` times slower than the
    best there cannot win and is not timed at full size (bf16 without native support costs 5-100x fp32). The rest
    are timed `rounds` times, interleaved so a burst of load hits all alike, keeping their best; one `drop_factor`
    times the leader is timed no more after two (emulated bf16, ~5x fp32 at full size, took 12.8 s of probing on
    a loaded machine when it was timed every round).
    """
    if not candidates:
        raise ValueError("no precision to choose from")
    ordered = sorted(dict.fromkeys(candidates), key=PRECISIONS.index)
    if len(ordered) == 1:
        return Choice(ordered[0], "the only precision offered")
    small = {p: min(measure(p, True) for _ in range(rounds)) for p in ordered}
    floor = min(small.values())
    alive = [p for p in ordered if small[p] <= drop_factor * floor]
    best = {p: math.inf for p in alive}
    for r in range(rounds):
        for p in alive:
            best[p] = min(best[p], measure(p, False))
        if r >= 1:  # best of two full calls 3x the leader's: out of the race (one call may have met a burst)
            lead = min(best[p] for p in alive)
            alive = [p for p in alive if best[p] <= drop_factor * lead]
    seconds = {p: (best[p] if p in best else None) for p in ordered}
    fp32 = best["fp32"] if "fp32" in alive else math.inf
    if "bf16" in alive and best["bf16"] < fp32:
        return Choice("bf16", "auto: bf16 is native here (faster than fp32)", seconds)
    if "int8" in alive and best["int8"] < fp32:
        return Choice("int8", "auto: int8 faster than fp32, bf16 not native", seconds)
    return Choice("fp32" if "fp32" in ordered else ordered[0], "auto: nothing measured faster than fp32", seconds)


def resolve(requested: str, offered: Sequence[str], measure: Callable[[str, bool], float]) -> Choice:
    """`--precision` -> the Choice: a named precision is used as given (the user's call, quality record or not);
    `auto` probes the offered ones."""
    if requested not in CHOICES:
        raise ValueError(f"--precision must be one of {', '.join(CHOICES)}, not {requested!r}")
    if requested != AUTO:
        return Choice(requested, "requested")
    return pick_fastest([p for p in PRECISIONS if p in offered] or ["fp32"], measure)


def offered_precisions(meta: Mapping | None) -> tuple[str, ...]:
    """The precisions `auto` may use for a model: those its newsbeam.json records as measured within tolerance
    (always including fp32, the reference), or UNMEASURED_OFFER without a record."""
    record = (meta or {}).get("precisions") or {}
    within = record.get("within_tolerance")
    if not within:
        return UNMEASURED_OFFER
    return tuple(p for p in PRECISIONS if p == "fp32" or p in within)


def model_meta(name_or_path) -> dict | None:
    try:
        return json.loads((Path(name_or_path) / "newsbeam.json").read_text())
    except (OSError, ValueError, TypeError):
        return None


def within_tolerance(reference: Mapping[str, float], measured: Mapping[str, float], tolerance: float) -> bool:
    """True when no dev set's score falls more than `tolerance` below the fp32 reference (gains are fine)."""
    return all(measured[k] >= reference[k] - tolerance for k in reference)


# --- torch side -------------------------------------------------------------------------------------------------

def autocast(precision: str):
    """The context a forward pass runs in: bf16 autocast for bf16, nothing for fp32 and int8 (int8's Linear layers
    quantise their own inputs; the rest of the model stays fp32)."""
    import torch

    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def apply_precision(model, precision: str, model_dir=None):
    """The model as it runs in `precision`: int8 replaces the layers modeling.quantization picks in place, smoothed
    with the scales stored in `model_dir` if it has them; fp32 and bf16 leave the weights alone."""
    if precision != "int8":
        return model
    from .quantization import load_smoothing, quantize_int8

    return quantize_int8(model, load_smoothing(model_dir))


def probe_linears(model, limit: int = 6):
    """The model's first `limit` Linear layers (one encoder block's q, k, v, output, FFN in and out for BERT):
    the shapes that take ~90% of its FLOPs at 128-piece windows."""
    import torch

    return [mod for _, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)][:limit]


PROBE_SEQUENCE = 128  # pieces per probe sequence: the NER window


def make_probe(model, precisions: Sequence[str] = PRECISIONS, tokens: int = 1024,
               small_tokens: int = 64) -> Callable[[str, bool], float]:
    """measure(precision, small) for pick_fastest: seconds for one pass of `tokens` rows through copies of the
    model's own first block of Linear layers, as they would run in that precision (int8 quantised, bf16 under
    autocast). 1,024 rows, eight 128-piece windows, each run alone as the models run them (one_at_a_time); at 512
    rows the timings were dominated by per-call overheads and other processes on a loaded 2-core machine.
    choose_for runs it on one thread. The copies are a few MB and dropped after the probe."""
    import copy

    import torch

    layers = [copy.deepcopy(lin) for lin in probe_linears(model)]
    if not layers:
        raise ValueError("no Linear layer to probe")
    variants = {"fp32": layers, "bf16": layers}
    if "int8" in precisions:  # as the model runs it: the int8 layers smoothed with a static range, the rest fp32
        from .quantization import Int8Linear, is_int8_layer

        variants["int8"] = [Int8Linear.for_timing(lin) if is_int8_layer("", lin) else lin for lin in layers]
    gen = torch.Generator().manual_seed(0)
    inputs = {n: [torch.randn(max(1, n // PROBE_SEQUENCE), min(n, PROBE_SEQUENCE), lin.in_features, generator=gen)
                  for lin in layers] for n in (tokens, small_tokens)}

    def measure(precision: str, small: bool) -> float:
        xs = inputs[small_tokens if small else tokens]
        with torch.inference_mode(), autocast(precision):
            t0 = time.perf_counter()
            for lin, x in zip(variants[precision], xs):
                for window in x:
                    lin(window[None])
            return time.perf_counter() - t0

    for p in variants:  # first-call costs (oneDNN primitive creation, fbgemm packing) are not the precision's speed
        measure(p, True)
    return measure


_CHOSEN: dict[tuple, Choice] = {}


def choose_for(model, requested: str, offered: Sequence[str]) -> Choice:
    """resolve() for a loaded model, probing once per process and layer-shape set: a worker's NER and stance
    models, and a second load of either, get the same answer (so results do not depend on which load probed)."""
    if requested != AUTO:
        return resolve(requested, offered, lambda p, s: 0.0)
    shapes = tuple((lin.in_features, lin.out_features) for lin in probe_linears(model))
    key = (shapes, tuple(offered))
    if key not in _CHOSEN:
        import torch

        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a per-core ratio; on a loaded machine threads stalled at barriers decided it
        try:
            choice = resolve(AUTO, offered, make_probe(model, offered))
        finally:
            torch.set_num_threads(threads)
        _CHOSEN[key] = choice
        log.info("precision auto chose %s in %.2f s", choice.describe(), time.perf_counter() - t0)
    return _CHOSEN[key]
