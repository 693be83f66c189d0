"""Stance zero-shot on German: the shipped model (trained on English NewsMTSC and Russian RuSentNE) on GerNTSA.

Inputs are built as the pipeline builds them (modeling.stance.mention_input, which transforms.stance uses): the
target's sentence cut out of the snippet by sentence_around, the anchor marked. `--whole-snippet` feeds the
whole snippet instead (as training fed its one-sentence NewsMTSC/RuSentNE rows), for comparison.

Subsets: all items; whether the NER model (modeling/weights/ner, run on the snippet) finds a PER/ORG/LOC entity
overlapping the anchor ("entity"), only a MISC one ("misc"), or none ("no entity") -- German capitalises every
noun, so capitals say nothing; and the by-target dev split (corpora.split_by_target), the figure any later
German-trained model is to be compared on. Each row: n, class counts, macro-F1, per-class F1 and the macro-F1 of
always answering the majority class of all items.

    python -m modeling.evaluation.stance_languages [--model modeling/weights/stance] [--ner modeling/weights/ner]
        [--precision fp32] [--whole-snippet] [--limit N] [--json logs/stance_languages.json]
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from modeling.stance import LABELS, MentionInput, mention_input
from modeling.training import corpora
from modeling.training.stance import stance_metrics

ENTITY_TYPES = ("PER", "ORG", "LOC")


def gerntsa_path(root: Path | None = None) -> Path:
    return (root or corpora.shared_data_dir()) / "stance" / "gerntsa" / "gerntsa_dev.json"


def production_inputs(examples: Sequence[corpora.StanceExample], whole_snippet: bool = False) -> list[MentionInput]:
    """The classifier inputs the pipeline would build for each anchored mention (or the whole snippet)."""
    if whole_snippet:
        return [MentionInput(e.target, e.text, e.start, e.end) for e in examples]
    return [mention_input(e.target, e.text, e.start, e.end) for e in examples]


def entity_kind(spans: Sequence[tuple[int, int, str]], start: int, end: int) -> str:
    """"entity" if a PER/ORG/LOC span overlaps [start, end), else "misc" if a MISC one does, else "no entity"."""
    types = {t for s, e, t in spans if s < end and start < e}
    if types & set(ENTITY_TYPES):
        return "entity"
    return "misc" if "MISC" in types else "no entity"


def row(name: str, gold: Sequence[str], pred: Sequence[str], majority: str) -> dict:
    m = stance_metrics(list(gold), list(pred))
    return {"subset": name, "n": m["n"], "classes": {l: sum(g == l for g in gold) for l in LABELS},
            "macro_f1": m["macro_f1"], "per_class_f1": m["per_class_f1"], "accuracy": m["accuracy"],
            "majority_macro_f1": stance_metrics(list(gold), [majority] * len(gold))["macro_f1"],
            "confusion": m["confusion"]}


def print_rows(rows: Sequence[dict]) -> None:
    print(f"{'subset':<22}{'n':>6}  {'against/neutral/favor':<22}{'macro-F1':>9}  "
          f"{'F1 against/neutral/favor':<26}{'majority':>9}")
    for r in rows:
        c, f = r["classes"], r["per_class_f1"]
        print(f"{r['subset']:<22}{r['n']:>6}  {'/'.join(str(c[l]) for l in LABELS):<22}{r['macro_f1']:>9.4f}  "
              f"{'/'.join(f'{f[l]:.4f}' for l in LABELS):<26}{r['majority_macro_f1']:>9.4f}")


def evaluate(model: str, ner_model: str | None, precision: str, whole_snippet: bool, limit: int | None) -> dict:
    """Rows of the report plus what was read, skipped and how long each model took."""
    from modeling.stance import StanceClassifier

    skipped: Counter = Counter()
    examples = corpora.gerntsa_examples(gerntsa_path(), skipped)[: limit or None]
    gold = [e.label for e in examples]
    majority = Counter(gold).most_common(1)[0][0]
    inputs = production_inputs(examples, whole_snippet)
    clipped = sum(len(i.sentence) < len(e.text) for i, e in zip(inputs, examples))
    print(f"GerNTSA: {len(examples)} items read, skipped {dict(skipped) or 0}; {clipped} snippets cut to the "
          f"target's sentence; majority class {majority}", flush=True)
    t0 = time.time()
    clf = StanceClassifier.load(model, precision=precision)
    probs = clf.predict_proba(inputs)
    pred = [LABELS[max(range(len(LABELS)), key=p.__getitem__)] for p in probs]
    stance_s = time.time() - t0
    rows = [row("all", gold, pred, majority)]
    ner_s = None
    if ner_model:
        from modeling.ner import NerTagger

        t0 = time.time()
        tagger = NerTagger.load(ner_model, precision=precision)
        spans = tagger.predict([e.text for e in examples])
        ner_s = time.time() - t0
        kinds = [entity_kind([(s.start, s.end, s.type) for s in sp], e.start, e.end) for sp, e in zip(spans, examples)]
        for kind in ("entity", "misc", "no entity"):
            idx = [i for i, k in enumerate(kinds) if k == kind]
            rows.append(row(f"NER: {kind}", [gold[i] for i in idx], [pred[i] for i in idx], majority))
    _, dev = corpora.split_by_target(examples)
    dev_ids = {id(e) for e in dev}
    idx = [i for i, e in enumerate(examples) if id(e) in dev_ids]
    rows.append(row(f"dev split ({len({examples[i].target.casefold() for i in idx})} targets)",
                    [gold[i] for i in idx], [pred[i] for i in idx], majority))
    return {"rows": rows, "read": len(examples), "skipped": dict(skipped), "clipped": clipped,
            "inputs": "whole snippet" if whole_snippet else "pipeline (mention_input)", "precision": clf.precision,
            "seconds": {"stance": round(stance_s, 1), "ner": None if ner_s is None else round(ner_s, 1)}}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="modeling/weights/stance")
    ap.add_argument("--ner", default="modeling/weights/ner", help="NER model for the entity subsets; '' for none")
    ap.add_argument("--precision", default="fp32", help="fp32 (the reference), bf16, int8 or auto")
    ap.add_argument("--whole-snippet", action="store_true", help="feed the whole snippet, not its target sentence")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None, help="write the result here too")
    args = ap.parse_args(argv)
    result = evaluate(args.model, args.ner or None, args.precision, args.whole_snippet, args.limit)
    print_rows(result["rows"])
    print(f"inputs: {result['inputs']}; precision {result['precision']}; seconds {result['seconds']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
