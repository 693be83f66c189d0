"""Shared training utilities: seeding, length-bucketed batches, the optimiser schedule, logging."""
from __future__ import annotations

import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np


def load_config(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A training config (YAML mapping). `extends: other.yaml` (relative to this file) loads that config first and
    this file's keys replace its keys, so a stage that changes three settings says only those three. The merge is
    of top-level keys only: a nested mapping such as `oversample` given here replaces the parent's whole."""
    import yaml

    path = Path(path).resolve()
    if path in _seen:
        raise ValueError(f"config {path} extends itself (through {' -> '.join(p.name for p in _seen)})")
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"config {path} is not a mapping of settings")
    parent = cfg.pop("extends", None)
    if parent is None:
        return cfg
    if not isinstance(parent, str):
        raise ValueError(f"config {path}: extends must be a file name, not {parent!r}")
    return {**load_config(path.parent / parent, _seen + (path,)), **cfg}


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random, chunk: int = 64) -> list[list[int]]:
    """Shuffle, then sort within chunks of `chunk` batches by length, so padding is small but order random."""
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    batches = []
    span = batch_size * chunk
    for i in range(0, len(idx), span):
        part = sorted(idx[i : i + span], key=lambda j: lengths[j])
        batches += [part[k : k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def linear_warmup(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def make_optimizer(model, lr: float, weight_decay: float, total_steps: int, warmup_ratio: float):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = int(math.ceil(total_steps * warmup_ratio))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: linear_warmup(s, total_steps, warmup))
    return opt, sched


def setup_logging(path: str | None) -> logging.Logger:
    handlers = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers, force=True)
    return logging.getLogger("newsbeam.train")


class Progress:
    """A plain progress line (steps, loss, tokens/s, ETA) that reads well in a log file."""

    def __init__(self, total: int, log: logging.Logger, every: int = 50):
        self.total, self.log, self.every = total, log, every
        self.t0 = time.time()
        self.tokens = 0

    def update(self, step: int, loss: float, tokens: int, lr: float) -> None:
        self.tokens += tokens
        if step % self.every == 0 or step == self.total:
            el = time.time() - self.t0
            rate = self.tokens / max(el, 1e-9)
            eta = el / max(step, 1) * (self.total - step)
            self.log.info(f"step {step}/{self.total} ({100 * step / self.total:.1f}%) loss {loss:.4f} "
                          f"lr {lr:.2e} {rate:.0f} tok/s elapsed {el / 60:.1f} min eta {eta / 60:.1f} min")
