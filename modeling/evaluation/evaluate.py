"""`newsbeam eval ner|stance`: score a model on a gold file in the shared corpora's formats.

    newsbeam eval ner --gold ../shared/data/ner/conll/en/val.conllu --format conll [--json]
    newsbeam eval ner --gold ../shared/data/ner/nerel/dev --format brat [--json]
    newsbeam eval ner --gold ../shared/data/ner/wikiann/en/val.conllu --format conll --errors 50 [--seed 1]
    newsbeam eval ner --gold ../shared/data/ner/wikiann/de/val.conllu --format conll --model build/ner-stage5 \
        --against modeling/weights/ner
    newsbeam eval stance --gold ../shared/data/stance/newsmtsc/devtest_mt.jsonl --format newsmtsc [--json]
    newsbeam eval stance --gold ../shared/data/stance/rusentne/train.tsv --format rusentne --rusentne-heldout
    newsbeam eval stance --gold ... --format newsmtsc --model build/stance-repro --against modeling/weights/stance
    newsbeam eval ner --gold ../shared/data/ner/conll/en/val.conllu --format conll --precision int8

NER: entity-level precision / recall / F1, exact span and type, overall and per type (MISC is scored only
where the gold annotates it: CoNLL; for WikiANN and NEREL predictions of MISC are ignored).
`--errors N` adds what the errors are: counts of each kind (wrong type, wrong boundary, missed, spurious) over
every text, and N texts drawn at random (fixed seed) where prediction and gold differ, with both sides' spans.
Stance: accuracy, macro-F1 and the confusion matrix (rows gold, columns predicted). `--against OTHER` (both tasks)
also scores a second model on the same examples and gives a paired bootstrap interval of the F1 (NER; texts are
resampled) or macro-F1 (stance) difference, so a retrained model can be told apart from noise (or not).
`--precision auto|fp32|bf16|int8` (default auto, as in the pipeline) sets the models' numeric precision; the output
says which one ran and why (modeling/precision.py).
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

    from modeling.ner import count_kinds, span_errors

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
             errors: int = 0, seed: int = 1, against: str | None = None, precision: str = "auto") -> dict:
    from modeling.training import corpora
    from modeling.ner import NerTagger, span_prf

    if fmt == "conll":
        examples = corpora.conll_examples(gold, "gold", has_misc=True)
    elif fmt == "brat":
        examples = corpora.brat_examples(gold)
    else:
        raise ValueError(f"unknown NER format {fmt!r} (conll or brat)")
    if limit:
        examples = examples[:limit]
    has_misc = any(t == "MISC" for e in examples for *_, t in e.spans) if misc is None else misc
    tagger = NerTagger.load(model, precision=precision)
    t0 = time.time()
    preds = tagger.predict([e.text for e in examples])
    seconds = time.time() - t0
    types = None if has_misc else ("PER", "ORG", "LOC")
    spans = [[(s.start, s.end, s.type) for s in p] for p in preds]
    res = span_prf([e.spans for e in examples], spans, types)
    res.update({"n_texts": len(examples), "tokens_per_second": round(tagger.tokens_processed / seconds),
                "misc_scored": has_misc, "model": model, "gold": str(gold), "model_precision": tagger.precision,
                "model_precision_choice": tagger.choice.describe()})
    if errors:
        res["errors"] = error_report(examples, spans, types, errors, seed)
    if against:
        theirs = [[(s.start, s.end, s.type) for s in p] for p in NerTagger.load(against, precision=precision).predict(
            [e.text for e in examples])]
        res["against"] = compare_ner([e.spans for e in examples], spans, theirs, types, against)
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


def compare_scores(truth: list, ours: list, theirs: list, metric, key: str, against: str,
                   resamples: int = 1000) -> dict:
    """This model (ours) against another on the same examples: the other's score under `key`, ours minus theirs,
    and bootstrap intervals of each and of the difference. Too few examples give no intervals, with the reason."""
    mine, other = metric(truth, ours), metric(truth, theirs)
    out = {"model": against, key: round(other, 4), f"model_minus_against_{key}": round(mine - other, 4),
           "resamples": resamples}
    if len(truth) < MIN_BOOTSTRAP_EXAMPLES:
        out["intervals_skipped"] = (f"{len(truth)} examples: a bootstrap over fewer than {MIN_BOOTSTRAP_EXAMPLES} "
                                    "says nothing about noise")
        return out
    out.update({f"model_{key}_95ci": list(bootstrap_interval(truth, ours, metric, resamples)),
                f"against_{key}_95ci": list(bootstrap_interval(truth, theirs, metric, resamples)),
                f"model_minus_against_{key}_95ci": list(paired_bootstrap(truth, theirs, ours, metric, resamples))})
    return out


def compare_stance(truth: list[str], ours: list[str], theirs: list[str], against: str, resamples: int = 1000) -> dict:
    """compare_scores on macro-F1, plus how often the two models give the same label."""
    from modeling.training.stance import stance_metrics

    out = compare_scores(truth, ours, theirs, lambda g, p: stance_metrics(g, p)["macro_f1"], "macro_f1", against,
                         resamples)
    out["label_agreement"] = round(sum(a == b for a, b in zip(ours, theirs)) / max(1, len(ours)), 4)
    return out


def compare_ner(gold: list, ours: list, theirs: list, types, against: str, resamples: int = 1000) -> dict:
    """compare_scores on entity F1 with texts as the resampled unit (a document's mentions move together), plus
    the share of texts where both models give the same scored spans."""
    from modeling.ner import f1_of_counts, text_counts

    def scored(spans):
        return {tuple(s) for s in spans if types is None or s[2] in types}

    mine = [text_counts(g, p, types) for g, p in zip(gold, ours)]
    other = [text_counts(g, p, types) for g, p in zip(gold, theirs)]
    out = compare_scores(list(range(len(gold))), mine, other, lambda _, counts: f1_of_counts(counts), "f1",
                         against, resamples)
    out["same_spans"] = round(sum(scored(a) == scored(b) for a, b in zip(ours, theirs)) / max(1, len(ours)), 4)
    return out


def eval_stance(model: str, gold: str, fmt: str, rusentne_heldout: bool = False, seed: int = 13,
                against: str | None = None, precision: str = "auto") -> dict:
    from modeling.training import corpora
    from modeling.stance import StanceClassifier
    from modeling.training.stance import evaluate

    if fmt == "newsmtsc":
        examples = corpora.newsmtsc_examples(gold)
    elif fmt == "rusentne":
        examples = corpora.rusentne_examples(gold)
        if rusentne_heldout:
            examples = corpora.rusentne_split(examples, seed=seed)[1]
    else:
        raise ValueError(f"unknown stance format {fmt!r} (newsmtsc or rusentne)")
    clf = StanceClassifier.load(model, precision=precision)
    res = evaluate(clf, examples, keep_predictions=bool(against))
    res.update({"model": model, "gold": str(gold), "rusentne_heldout": rusentne_heldout,
                "model_precision": clf.precision, "model_precision_choice": clf.choice.describe()})
    if against:
        other = StanceClassifier.load(against, precision=precision)
        theirs = evaluate(other, examples, keep_predictions=True)["predictions"]
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


def print_comparison(model: str, other: dict, key: str, label: str) -> None:
    agreement = (f"the same label on {other['label_agreement']:.1%} of the examples" if "label_agreement" in other
                 else f"the same spans in {other['same_spans']:.1%} of the texts")
    print(f"  against {other['model']}: {label} {other[key]:.4f}; {agreement}")
    diff = other[f"model_minus_against_{key}"]
    if "intervals_skipped" in other:
        print(f"  {model} minus {other['model']}: {diff:+.4f} (no intervals: {other['intervals_skipped']})")
        return
    lo, hi = other[f"model_minus_against_{key}_95ci"]
    print(f"  95% bootstrap intervals of {label} ({other['resamples']} resamples): {model} "
          f"{other[f'model_{key}_95ci']}, {other['model']} {other[f'against_{key}_95ci']}")
    print(f"  {model} minus {other['model']}: {diff:+.4f}, paired 95% interval {lo:+.4f} to {hi:+.4f}"
          + (" (contains 0: not told apart on this set)" if lo <= 0 <= hi else ""))


def build_parser() -> argparse.ArgumentParser:
    """`newsbeam eval`'s options (also parsed alone by tools/check_readme.py)."""
    from modeling.precision import CHOICES as PRECISION_CHOICES

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
                    help="also score OTHER on the same examples; paired bootstrap of the F1 (NER) or macro-F1 (stance) "
                         "difference")
    ap.add_argument("--precision", choices=list(PRECISION_CHOICES), default="auto",
                    help="the models' numeric precision (as `newsbeam run --precision`; auto: timed at load among "
                         "those measured to keep quality)")
    ap.add_argument("--rusentne-heldout", action="store_true",
                    help="stance/rusentne: score only the fixed-seed 15%% held back from training")
    return ap


def main(argv=None) -> int:
    from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    argv = list(sys.argv[1:] if argv is None else argv)
    ap = build_parser()
    args = ap.parse_args(argv)
    if not Path(args.gold).exists():
        print(f"newsbeam eval: error: --gold {args.gold} does not exist", file=sys.stderr)
        return 2
    if args.task == "ner":
        if args.format not in ("conll", "brat"):
            ap.error("ner takes --format conll or brat")
        if args.errors < 0:
            ap.error("--errors takes a count >= 0")
        if args.rusentne_heldout:
            ap.error("--rusentne-heldout is for eval stance")
        res = eval_ner(args.model or DEFAULT_NER_MODEL, args.gold, args.format, args.limit, errors=args.errors,
                       seed=1 if args.seed is None else args.seed, against=args.against, precision=args.precision)
    else:
        if args.format not in ("newsmtsc", "rusentne"):
            ap.error("stance takes --format newsmtsc or rusentne")
        if args.errors or args.seed is not None or args.limit:
            ap.error("--errors, --seed and --limit are for eval ner")
        res = eval_stance(args.model or DEFAULT_STANCE_MODEL, args.gold, args.format, args.rusentne_heldout,
                          against=args.against, precision=args.precision)
    if args.json:
        print(json.dumps(res, ensure_ascii=False, sort_keys=True))
    elif args.task == "ner":
        print(f"{args.gold}: P {res['precision']:.4f} R {res['recall']:.4f} F1 {res['f1']:.4f} "
              f"({res['n_texts']} texts, {res['tokens_per_second']} tokens/s, "
              f"precision {res['model_precision_choice']})")
        for t, r in res["per_type"].items():
            print(f"  {t:5s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} support {r['support']}")
        if "errors" in res:
            print_errors(res["errors"])
        if "against" in res:
            print_comparison(res["model"], res["against"], "f1", "F1")
    else:
        print(f"{args.gold}: accuracy {res['accuracy']:.4f} macro-F1 {res['macro_f1']:.4f} ECE {res['ece']} "
              f"({res['n']} examples, precision {res['model_precision_choice']})")
        print("  confusion (rows gold, columns predicted):", json.dumps(res["confusion"]))
        if "against" in res:
            print_comparison(res["model"], res["against"], "macro_f1", "macro-F1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
