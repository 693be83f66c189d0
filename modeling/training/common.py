"""Shared training utilities: configs, length-bucketed batches, the optimiser and its schedule, logging, progress.

Seeding (transformers.set_seed), the warm-up schedule (transformers.get_linear_schedule_with_warmup) and the
progress bar (tqdm) are the libraries', not written here."""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
from pathlib import Path


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


def make_optimizer(model, lr: float, weight_decay: float, total_steps: int, warmup_ratio: float):
    """AdamW (no weight decay on biases and norms) and a linear warm-up over `warmup_ratio` of the steps, then a
    linear decay to 0 (transformers' schedule: the rate is 0 at step 0, peak after the warm-up)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = int(math.ceil(total_steps * warmup_ratio))
    sched = get_linear_schedule_with_warmup(opt, num_warmup_steps=warmup, num_training_steps=total_steps)
    return opt, sched


def setup_logging(path: str | None) -> logging.Logger:
    handlers = [logging.StreamHandler(sys.stderr)]
    if path:
        handlers.append(logging.FileHandler(path))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", handlers=handlers, force=True)
    return logging.getLogger("newsbeam.train")


class Progress:
    """A tqdm bar over the training steps (rate and ETA are tqdm's) with loss, learning rate and tokens/s, and
    every `every` steps the same line in the log (a log file keeps it; a terminal shows the bar itself)."""

    def __init__(self, total: int, log: logging.Logger, every: int = 50):
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self.bar = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True, mininterval=1.0)
        self.log, self.every, self.tokens = log, every, 0
        self.console = logging_redirect_tqdm([logging.getLogger()])  # log lines printed above the bar, not into it
        self.console.__enter__()

    def update(self, step: int, loss: float, tokens: int, lr: float) -> None:
        self.tokens += tokens
        rate = self.tokens / max(self.bar.format_dict["elapsed"], 1e-9)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{rate:.0f}", refresh=False)
        self.bar.update(step - self.bar.n)
        if step % self.every == 0 or step == self.bar.total:
            self.log.info(str(self.bar))
        if step == self.bar.total:
            self.bar.close()
            self.console.__exit__(None, None, None)


def train_parser(prog: str, description: str | None, default_config: str) -> argparse.ArgumentParser:
    """The options both `newsbeam train` commands take (also parsed alone by tools/check_readme.py)."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--config", default=default_config)
    ap.add_argument("--output", default=None, help="model directory (default: from the config)")
    ap.add_argument("--log", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: from the config)")
    return ap


def start_run(prog: str, description: str | None, default_config: str, argv=None
              ) -> tuple[argparse.Namespace, dict, Path, logging.Logger, random.Random]:
    """What both `newsbeam train` commands start with: their options, the config, the log, torch's threads and
    every seed. Returns (options, config, output directory, log, the run's own random.Random)."""
    args = train_parser(prog, description, default_config).parse_args(argv)
    cfg = load_config(args.config)
    log = setup_logging(args.log)
    log.info(f"config {json.dumps(cfg)}")

    import torch
    from transformers import set_seed

    torch.set_num_threads(args.threads or cfg.get("threads", 2))
    set_seed(cfg["seed"])  # Python, NumPy and torch generators
    return args, cfg, Path(args.output or cfg["output"]), log, random.Random(cfg["seed"])


class ResumePoint:
    """A training run's resume file: the trained parameters (the frozen word embeddings are rebuilt, not saved),
    optimiser, schedule, torch's random state and the step, for a run that must span several sittings. It is
    used only by a run of the same config (its JSON is stored and compared), and removed when the run ends."""

    def __init__(self, path: Path, cfg: dict):
        self.path, self.config = Path(path), json.dumps(cfg, sort_keys=True)

    def save(self, model, opt, sched, step: int) -> None:
        import torch

        trained = {k: v for k, v in model.named_parameters() if v.requires_grad}
        state = {"config": self.config, "step": step, "params": {k: v.detach().clone() for k, v in trained.items()},
                 "opt": opt.state_dict(), "sched": sched.state_dict(), "rng": torch.get_rng_state()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.path)  # a kill mid-save leaves the previous resume point whole

    def restore(self, model, opt, sched, log: logging.Logger) -> int:
        """The step to continue after (0: start afresh)."""
        import torch

        if not self.path.exists():
            return 0
        state = torch.load(self.path, weights_only=False)
        if state["config"] != self.config:
            log.info(f"{self.path}: made by another config; starting afresh")
            return 0
        params = dict(model.named_parameters())
        with torch.no_grad():
            for k, v in state["params"].items():
                params[k].copy_(v)
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        torch.set_rng_state(state["rng"])
        log.info(f"resuming after step {state['step']} from {self.path}")
        return int(state["step"])

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
