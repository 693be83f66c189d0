"""`make calibrate-int8`: the int8 calibration of the shipped models, from a pass over training text.

The pass runs each model in fp32 over a fixed, seeded sample of its own training corpora (never the dev sets the
precision table reports), records every int8 layer's input range per channel (modeling.quantization), turns them
into SmoothQuant scales (fp16) and the static range of each smoothed input, and stores both beside the weights
(~59 kB per model), with how they were made in newsbeam.json under "int8_smoothing". Deterministic: same weights
and corpora, same bytes.

    python -m modeling.training.calibrate [--ner modeling/weights/ner] [--stance modeling/weights/stance]
"""
from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from modeling.training import corpora

SEED = 20261204


def ner_training_sets(model_dir: str) -> list[str]:
    """The corpora the model at model_dir was trained on (train_sources in its newsbeam.json)."""
    import json

    meta = json.loads((Path(model_dir) / "newsbeam.json").read_text(encoding="utf-8"))
    return list(meta["train_config"]["train_sources"])


def ner_texts(per_set: int, sets: list[str], seed: int = SEED) -> list[str]:
    """`per_set` training texts from each NER corpus in `sets`, sampled with `seed`."""
    rng = random.Random(seed)
    out = []
    for name in sets:
        examples = corpora.load_ner_split(name, "train")
        out += [e.text for e in rng.sample(examples, min(per_set, len(examples)))]
    return out


def stance_inputs(per_set: int, seed: int = SEED):
    """`per_set` training mentions from each stance corpus (NewsMTSC train, RuSentNE's and GerNTSA's training parts)."""
    from modeling.training.stance import load_stance_data, to_inputs

    train_sets, _ = load_stance_data(None, 13)
    rng = random.Random(seed)
    return to_inputs([e for lang in ("en", "ru", "de")
                      for e in rng.sample(train_sets[lang], min(per_set, len(train_sets[lang])))])


def record(model_dir: str, n_inputs: int, source: str, alpha: float) -> None:
    from modeling.quantization import SMOOTHING_FILE
    from modeling.shipping import update_meta

    update_meta(model_dir, "int8_smoothing", {"file": SMOOTHING_FILE, "alpha": alpha, "calibration": source,
                                              "inputs": n_inputs, "seed": SEED,
                                              "command": "python -m modeling.training.calibrate",
                                              "made": time.strftime("%Y-%m-%d")})


def calibrate(model_dir: str, model, run, n_inputs: int, source: str) -> Path:
    from modeling.quantization import SMOOTHING_ALPHA, activation_ranges, calibration_for, save_smoothing

    calibration = calibration_for(model, activation_ranges(model, run))
    path = save_smoothing(calibration, model_dir)
    record(model_dir, n_inputs, source, SMOOTHING_ALPHA)
    print(f"{model_dir}: {len(calibration) // 2} layers' smoothing scales and input ranges from {n_inputs} inputs "
          f"-> {path}", flush=True)
    return path


def main(argv=None) -> int:
    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier

    ap = argparse.ArgumentParser(prog="python -m modeling.training.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ner", default="modeling/weights/ner", help="NER model folder ('' to skip)")
    ap.add_argument("--stance", default="modeling/weights/stance", help="stance model folder ('' to skip)")
    ap.add_argument("--per-set", type=int, default=64, help="calibration inputs per training corpus")
    args = ap.parse_args(argv)
    if args.ner:
        sets = ner_training_sets(args.ner)
        texts = ner_texts(args.per_set, sets)
        tagger = NerTagger.load(args.ner, precision="fp32")
        calibrate(args.ner, tagger.model, lambda: tagger.predict(texts), len(texts),
                  f"{args.per_set} training sentences from each of {', '.join(sets)}")
    if args.stance:
        items = stance_inputs(args.per_set)
        clf = StanceClassifier.load(args.stance, precision="fp32")
        calibrate(args.stance, clf.model, lambda: clf.predict_proba(items), len(items),
                  f"{args.per_set} training mentions from each of NewsMTSC train, RuSentNE's training part")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
