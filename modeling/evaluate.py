"""`newsbeam eval ner|stance`: score a model on a gold file in the shared corpora's formats.

    newsbeam eval ner --gold ../shared/data/ner/conll/en/val.conllu --format conll [--json]
    newsbeam eval ner --gold ../shared/data/ner/nerel/dev --format brat [--json]
    newsbeam eval ner --gold ../shared/data/ner/wikiann/en/val.conllu --format conll --errors 50 [--seed 1]
    newsbeam eval stance --gold ../shared/data/stance/newsmtsc/devtest_mt.jsonl --format newsmtsc [--json]
    newsbeam eval stance --gold ../shared/data/stance/rusentne/train.tsv --format rusentne --rusentne-heldout
    newsbeam eval stance --gold ... --format newsmtsc --model build/stance-repro --against modeling/weights/stance

NER: entity-level precision / recall / F1, exact span and type, overall and per type (MISC is scored only
where the gold annotates it: CoNLL; for WikiANN and NEREL predictions of MISC are ignored).
`--errors N` adds what the errors are: counts of each kind (wrong type, wrong boundary, missed, spurious) over
every text, and N texts drawn at random (fixed seed) where prediction and gold differ, with both sides' spans.
Stance: accuracy, macro-F1 and the confusion matrix (rows gold, columns predicted). `--against OTHER` also scores
a second model on the same examples and gives a paired bootstrap interval of the macro-F1 difference, so a
retrained model can be told apart from noise (or not).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


CONTEXT_CHARS = 120  # text shown either side of an error in printed samples


def error_report(examples, preds: list[list[tuple[int, int, str]]], types, n: int, seed: int) -> dict:
    """Counts of each error kind over all texts, and a fixed-seed sample of n texts with errors, spans as text.
    Each sampled text carries its index in the gold file (0-based, in reading order) so it can be found there."""
    import random

    from .ner import count_kinds, span_errors

    per_text = [(i, e, span_errors(e.spans, p, types)) for i, (e, p) in enumerate(zip(examples, preds))]
    wrong = [row for row in per_text if row[2]]
    sample = sorted(random.Random(seed).sample(wrong, min(n, len(wrong))), key=lambda row: row[0])

    def show(text, span):
        return {"text": text[span[0]:span[1]], "start": span[0], "end": span[1], "type": span[2]}

    rows = [{"index": i, "text": e.text,
             "errors": [{"kind": err["kind"], "gold": show(e.text, err["gold"]) if err["gold"] else None,
                         "pred": [show(e.text, p) for p in err["pred"]]} for err in errs]}
            for i, e, errs in sample]
    return {"counts": count_kinds(errs for _, _, errs in per_text), "texts": len(examples),
            "texts_with_errors": len(wrong), "seed": seed, "sample": rows}


def eval_ner(model: str, gold: str, fmt: str, limit: int | None = None, misc: bool | None = None,
             errors: int = 0, seed: int = 1) -> dict:
    from . import corpora
    from .ner import NerTagger, span_prf

    if fmt == "conll":
        examples = corpora.conll_examples(gold, "gold", has_misc=True)
    elif fmt == "brat":
        examples = corpora.brat_examples(gold)
    else:
        raise ValueError(f"unknown NER format {fmt!r} (conll or brat)")
    if limit:
        examples = examples[:limit]
    has_misc = any(t == "MISC" for e in examples for *_, t in e.spans) if misc is None else misc
    tagger = NerTagger.load(model)
    t0 = time.time()
    preds = tagger.predict([e.text for e in examples])
    seconds = time.time() - t0
    types = None if has_misc else ("PER", "ORG", "LOC")
    spans = [[(s.start, s.end, s.type) for s in p] for p in preds]
    res = span_prf([e.spans for e in examples], spans, types)
    res.update({"n_texts": len(examples), "tokens_per_second": round(tagger.tokens_processed / seconds),
                "misc_scored": has_misc, "model": model, "gold": str(gold)})
    if errors:
        res["errors"] = error_report(examples, spans, types, errors, seed)
    return res


MIN_BOOTSTRAP_EXAMPLES = 30


def _resample_indices(n: int, resamples: int, seed: int):
    import random

    rng = random.Random(seed)
    for _ in range(resamples):
        yield [rng.randrange(n) for _ in range(n)]


def _interval(values: list[float], level: float) -> tuple[float, float]:
    values = sorted(values)
    tail = round(len(values) * (1 - level) / 2)
    return round(values[tail], 4), round(values[len(values) - 1 - tail], 4)


def bootstrap_interval(gold: list, pred: list, metric, resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Interval of metric over examples resampled with replacement: how much a dev set this size can move it."""
    return _interval([metric([gold[i] for i in idx], [pred[i] for i in idx])
                      for idx in _resample_indices(len(gold), resamples, seed)], level)


def paired_bootstrap(gold: list, pred_a: list, pred_b: list, metric, resamples: int = 1000, seed: int = 0,
                     level: float = 0.95) -> tuple[float, float]:
    """Interval of metric(b) - metric(a) over examples resampled with replacement, the same resample for both:
    the spread of the difference two models would show on other draws of a dev set this size."""
    diffs = []
    for idx in _resample_indices(len(gold), resamples, seed):
        g = [gold[i] for i in idx]
        diffs.append(metric(g, [pred_b[i] for i in idx]) - metric(g, [pred_a[i] for i in idx]))
    return _interval(diffs, level)


def compare_stance(truth: list[str], ours: list[str], theirs: list[str], against: str, resamples: int = 1000) -> dict:
    """This model (ours) against another on the same examples: their scores, how often they agree, and bootstrap
    intervals of each macro-F1 and of ours minus theirs. Too few examples give no intervals, with the reason."""
    from .train_stance import stance_metrics

    def macro(g, p):
        return stance_metrics(g, p)["macro_f1"]

    mine, other = macro(truth, ours), macro(truth, theirs)
    out = {"model": against, "macro_f1": other, "model_minus_against_macro_f1": round(mine - other, 4),
           "label_agreement": round(sum(a == b for a, b in zip(ours, theirs)) / max(1, len(ours)), 4),
           "resamples": resamples}
    if len(truth) < MIN_BOOTSTRAP_EXAMPLES:
        out["intervals_skipped"] = (f"{len(truth)} examples: a bootstrap over fewer than {MIN_BOOTSTRAP_EXAMPLES} "
                                    "says nothing about noise")
        return out
    out.update({"model_macro_f1_95ci": list(bootstrap_interval(truth, ours, macro, resamples)),
                "against_macro_f1_95ci": list(bootstrap_interval(truth, theirs, macro, resamples)),
                "model_minus_against_macro_f1_95ci": list(paired_bootstrap(truth, theirs, ours, macro, resamples))})
    return out


def eval_stance(model: str, gold: str, fmt: str, rusentne_heldout: bool = False, seed: int = 13,
                against: str | None = None) -> dict:
    from . import corpora
    from .stance import StanceClassifier
    from .train_stance import evaluate

    if fmt == "newsmtsc":
        examples = corpora.newsmtsc_examples(gold)
    elif fmt == "rusentne":
        examples = corpora.rusentne_examples(gold)
        if rusentne_heldout:
            examples = corpora.rusentne_split(examples, seed=seed)[1]
    else:
        raise ValueError(f"unknown stance format {fmt!r} (newsmtsc or rusentne)")
    clf = StanceClassifier.load(model)
    res = evaluate(clf, examples, keep_predictions=bool(against))
    res.update({"model": model, "gold": str(gold), "rusentne_heldout": rusentne_heldout})
    if against:
        theirs = evaluate(StanceClassifier.load(against), examples, keep_predictions=True)["predictions"]
        res["against"] = compare_stance([e.label for e in examples], res.pop("predictions"), theirs, against)
    return res


def excerpt(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> str:
    """The text around one span, so an error deep in a long document is still shown."""
    lo, hi = max(0, start - context), min(len(text), end + context)
    return ("..." if lo else "") + text[lo:hi].replace("\n", " ") + ("..." if hi < len(text) else "")


def print_errors(rep: dict) -> None:
    print(f"errors in {rep['texts_with_errors']} of {rep['texts']} texts; spans: "
          + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in rep["counts"].items()))
    for row in rep["sample"]:
        text, long = row["text"], len(row["text"]) > 2 * CONTEXT_CHARS + 60
        print(f"[text {row['index']}, {len(text)} characters]" if long else f"[text {row['index']}] {text}")
        for err in row["errors"]:
            gold = f"{err['gold']['text']!r}/{err['gold']['type']}" if err["gold"] else "-"
            pred = ", ".join(f"{p['text']!r}/{p['type']}" for p in err["pred"]) or "-"
            print(f"      {err['kind'].replace('_', ' '):14s} gold {gold}  predicted {pred}")
            if long:
                where = err["gold"] or err["pred"][0]
                print(f"        in: {excerpt(text, where['start'], where['end'])}")


def print_comparison(model: str, other: dict) -> None:
    print(f"  against {other['model']}: macro-F1 {other['macro_f1']:.4f}; the same label on "
          f"{other['label_agreement']:.1%} of the examples")
    diff = other["model_minus_against_macro_f1"]
    if "intervals_skipped" in other:
        print(f"  {model} minus {other['model']}: {diff:+.4f} (no intervals: {other['intervals_skipped']})")
        return
    lo, hi = other["model_minus_against_macro_f1_95ci"]
    print(f"  95% bootstrap intervals of macro-F1 ({other['resamples']} resamples): {model} "
          f"{other['model_macro_f1_95ci']}, {other['model']} {other['against_macro_f1_95ci']}")
    print(f"  {model} minus {other['model']}: {diff:+.4f}, paired 95% interval {lo:+.4f} to {hi:+.4f}"
          + (" (contains 0: not told apart on this set)" if lo <= 0 <= hi else ""))


def main(argv=None) -> int:
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="newsbeam eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["ner", "stance"])
    ap.add_argument("--gold", required=True, help="a file (a folder for brat) in the shared corpora's format")
    ap.add_argument("--format", required=True, choices=["conll", "brat", "newsmtsc", "rusentne"])
    ap.add_argument("--model", default=None, help="model id or directory (default: the shipped model)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--limit", type=int, default=None, help="NER: only the first N texts")
    ap.add_argument("--errors", type=int, default=0, metavar="N",
                    help="NER: also count each kind of error and show N texts with errors (random, fixed seed)")
    ap.add_argument("--seed", type=int, default=None, help="NER: the seed that draws the --errors sample (default 1)")
    ap.add_argument("--against", default=None, metavar="OTHER",
                    help="stance: also score OTHER on the same examples; paired bootstrap of the macro-F1 difference")
    ap.add_argument("--rusentne-heldout", action="store_true",
                    help="stance/rusentne: score only the fixed-seed 15%% held back from training")
    args = ap.parse_args(argv)
    if not Path(args.gold).exists():
        print(f"newsbeam eval: error: --gold {args.gold} does not exist", file=sys.stderr)
        return 2
    if args.task == "ner":
        if args.format not in ("conll", "brat"):
            ap.error("ner takes --format conll or brat")
        if args.errors < 0:
            ap.error("--errors takes a count >= 0")
        if args.against or args.rusentne_heldout:
            ap.error("--against and --rusentne-heldout are for eval stance")
        res = eval_ner(args.model or DEFAULT_NER_MODEL, args.gold, args.format, args.limit, errors=args.errors,
                       seed=1 if args.seed is None else args.seed)
    else:
        if args.format not in ("newsmtsc", "rusentne"):
            ap.error("stance takes --format newsmtsc or rusentne")
        if args.errors or args.seed is not None or args.limit:
            ap.error("--errors, --seed and --limit are for eval ner")
        res = eval_stance(args.model or DEFAULT_STANCE_MODEL, args.gold, args.format, args.rusentne_heldout,
                          against=args.against)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, sort_keys=True))
    elif args.task == "ner":
        print(f"{args.gold}: P {res['precision']:.4f} R {res['recall']:.4f} F1 {res['f1']:.4f} "
              f"({res['n_texts']} texts, {res['tokens_per_second']} tokens/s)")
        for t, r in res["per_type"].items():
            print(f"  {t:5s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} support {r['support']}")
        if "errors" in res:
            print_errors(res["errors"])
    else:
        print(f"{args.gold}: accuracy {res['accuracy']:.4f} macro-F1 {res['macro_f1']:.4f} ECE {res['ece']} "
              f"({res['n']} examples)")
        print("  confusion (rows gold, columns predicted):", json.dumps(res["confusion"]))
        if "against" in res:
            print_comparison(res["model"], res["against"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
