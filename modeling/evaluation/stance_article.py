"""Article-level stance on PerSenT dev: the learned article head (modeling.stance_article) against the mean rule.

PerSenT (news articles, each with one target entity and its article-level sentiment, plus paragraph labels)
dev is split by target entity (corpora.persent_split: ~60% of the entities train, ~40% test, so one entity's
articles never straddle the split). Mentions are found by the pipeline's rule (`pipeline_spans`:
transforms.stance.target_spans restated here because modeling cannot import transforms; a test keeps the two
equal): by default over no entities, with the target's surname as an alias, which finds what the NER stage's
person id finds without a NER pass (~1 h on a busy 2-core machine); `--ner modeling/weights/ner` runs the NER
stage instead. The first 16 mentions and the headline's are classified by the shipped stance model (fp32, in
padded batches: the same probabilities as one at a time up to ~1e-6, printed on every fresh run).

On the train part the head's L2 strength and class-weight power are chosen by 5-fold cross-validation (folds by
target), the temperature is fitted on the out-of-fold logits, and the head is refitted on all of train. Reported on
the test part: macro-F1, per-class F1, top-label ECE (15 bins) for the head, the mean rule (the shipped
aggregate before the head) and the train majority class, with 95% bootstrap intervals (articles resampled).

Model outputs (NER entities, mention probabilities) are cached under build/stance_article/, so reruns take
seconds. `--ship` writes the head beside the stance model (modeling/weights/stance/article_head.json) only
when it beats the mean rule's macro-F1 on the test part.

    python -m modeling.evaluation.stance_article [--model modeling/weights/stance] [--ner modeling/weights/ner]
        [--ship] [--write docs/quality.md] [--json logs/stance_article.json]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from modeling.stance import LABELS, mention_input
from modeling.target_mentions import target_spans
from modeling.stance_article import (HEAD_FILE, ArticleHead, article_features, balanced_weights, evidence,
                                     expected_calibration_error, fit_head, fit_temperature, mean_rule,
                                     title_mention)
from modeling.training import corpora
from modeling.training.stance import stance_metrics

CACHE = Path("build/stance_article")
SECTION_START, SECTION_END = "<!-- stance-article:start -->", "<!-- stance-article:end -->"
FOLDS = 5
L2_GRID = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
POWER_GRID = (0.5, 0.75, 1.0)
MAX_MENTIONS = 16  # transforms.stance.MAX_MENTIONS (a test keeps them equal)


def pipeline_spans(text: str, entities: Sequence[dict], target: str, aliases: Sequence[str] = ()
                   ) -> list[tuple[int, int]]:
    """The stance stage's mentions of the target in an English article (modeling.target_mentions.target_spans)."""
    return target_spans(text, entities, target, aliases, "en")


def _key(*parts) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode("utf-8")).hexdigest()[:16]


def cached_entities(articles: Sequence[corpora.PersentArticle], ner_model: str) -> dict[str, list[dict]]:
    """The NER stage's entities per article (modeling.entities.resolve_entities on the tagger's spans), cached."""
    path = CACHE / "ner_entities.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    if cache.get("model") != f"{ner_model} fp32":
        cache = {"model": f"{ner_model} fp32", "entities": {}}
    got = cache["entities"]
    todo = [a for a in articles if _key(a.doc_id, a.text) not in got]
    if todo:
        from modeling.entities import resolve_entities
        from modeling.ner import NerTagger

        tagger = NerTagger.load(ner_model, precision="fp32")
        for i in range(0, len(todo), 32):
            chunk = todo[i:i + 32]
            for a, spans in zip(chunk, tagger.predict([a.text for a in chunk])):
                got[_key(a.doc_id, a.text)] = resolve_entities(a.text, spans, "en")
            print(f"NER: {i + len(chunk)}/{len(todo)} articles", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache))
    return {a.doc_id: got[_key(a.doc_id, a.text)] for a in articles}


def batched_proba(clf, items: Sequence, batch: int = 32) -> list[list[float]]:
    """clf.predict_proba in length-sorted padded batches: the same probabilities up to float rounding (the product
    runs each input alone so its scores never depend on batch-mates; here speed matters more, ~4,500 inputs)."""
    import torch

    from modeling.ner import pad_rows

    ids = clf.encode(items)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    cols = [clf.order.index(pos) for pos in range(len(LABELS))]
    out: list = [None] * len(ids)
    with torch.inference_mode():
        for j in range(0, len(order), batch):
            rows = order[j:j + batch]
            x, mask = pad_rows([ids[i] for i in rows], max(len(ids[i]) for i in rows), clf.tokenizer.pad_token_id)
            logits = clf.model(input_ids=x, attention_mask=mask).logits.float()[:, cols]
            for i, p in zip(rows, (logits / clf.temperature).softmax(-1).tolist()):
                out[i] = p
    return out


def cached_probs(items: Sequence, model: str, precision: str) -> list[list[float]]:
    """The stance model's probabilities for each MentionInput, cached by (model, precision, input)."""
    path = CACHE / "mention_probs.json"
    cache = json.loads(path.read_text()) if path.exists() else {}
    tag = f"{model} {precision}"
    keys = [_key(tag, i.target, i.sentence, i.start, i.end) for i in items]
    todo = sorted({k: i for k, i in zip(keys, items) if k not in cache}.items())
    if todo:
        from modeling.stance import StanceClassifier

        clf = StanceClassifier.load(model, precision=precision)
        probe = [i for _, i in todo[:4]]
        drift = max(abs(a - b) for p, q in zip(clf.predict_proba(probe), batched_proba(clf, probe))
                    for a, b in zip(p, q))
        print(f"stance: {len(todo)} mentions to classify; batched vs alone, max |dp| {drift:.1e}", flush=True)
        for j in range(0, len(todo), 512):
            chunk = todo[j:j + 512]
            for (k, _), p in zip(chunk, batched_proba(clf, [i for _, i in chunk])):
                cache[k] = p
            print(f"stance: {j + len(chunk)}/{len(todo)} mentions", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cache))
    return [cache[k] for k in keys]


def surname_alias(target: str) -> list[str]:
    """The last word of a multi-word name: the string the NER stage's person id of the name also finds
    (modeling.entity_ids keys a person on the surname: "Koellmann" is "Benjamin Koellmann")."""
    words = target.split()
    return [words[-1]] if len(words) > 1 and len(words[-1]) > 2 else []


def build_evidence(articles: Sequence[corpora.PersentArticle], model: str, ner_model: str | None, precision: str):
    """Per article: its ArticleEvidence (None where the target is not found). With `ner_model`, mentions are the
    pipeline's (NER entities with the target's id, plus the name); without, the name and its surname as strings
    (the same mentions wherever NER finds the person; no NER pass)."""
    entities = cached_entities(articles, ner_model) if ner_model else {}
    plans = []
    for a in articles:
        if ner_model:
            spans = pipeline_spans(a.text, entities[a.doc_id], a.target)
        else:
            spans = pipeline_spans(a.text, [], a.target, surname_alias(a.target))
        kept = spans[:MAX_MENTIONS]
        items = [mention_input(a.target, a.text, s, e) for s, e in kept]
        names = {a.target, *(a.text[s:e] for s, e in spans)}
        plans.append((spans, kept, items, title_mention(a.target, a.title, sorted(names)) if spans else None))
    flat = [i for _, _, items, t in plans for i in [*items, *([t] if t else [])]]
    probs = iter(cached_probs(flat, model, precision))
    out = []
    for a, (spans, kept, items, title) in zip(articles, plans):
        p = [next(probs) for _ in items]
        tp = next(probs) if title else None
        out.append(evidence(a.text, spans, p, tp) if items else None)
    return out


def group_folds(targets: Sequence[str], k: int = FOLDS) -> list[int]:
    return [int(_key("fold", t.casefold()), 16) % k for t in targets]


def choose_and_fit(X, y, targets: Sequence[str]):
    """Cross-validated (l2, power) by out-of-fold macro-F1, temperature on the out-of-fold logits, then the head
    refitted on all of train with both. Returns (head, cv table)."""
    import numpy as np

    X, y = np.asarray(X, float), np.asarray(y, int)
    folds = np.asarray(group_folds(targets))
    table, best = [], None
    for power in POWER_GRID:
        for l2 in L2_GRID:
            oof = np.zeros((len(y), len(LABELS)))
            for f in range(FOLDS):
                tr, va = folds != f, folds == f
                head = fit_head(X[tr], y[tr], l2, balanced_weights(y[tr].tolist(), power))
                oof[va] = head.logits(X[va])
            f1 = stance_metrics([LABELS[g] for g in y], [LABELS[i] for i in oof.argmax(1)])["macro_f1"]
            table.append({"l2": l2, "class_weight_power": power, "cv_macro_f1": f1})
            if best is None or f1 > best[0]:
                best = (f1, l2, power, oof)
    f1, l2, power, oof = best
    temperature = fit_temperature(oof, y)
    head = fit_head(X, y, l2, balanced_weights(y.tolist(), power), temperature,
                    meta={"l2": l2, "class_weight_power": power, "cv_macro_f1": f1, "folds": FOLDS})
    return head, table


def scores(gold: Sequence[int], probs: Sequence[Sequence[float]]) -> dict:
    pred = [max(range(len(LABELS)), key=p.__getitem__) for p in probs]
    m = stance_metrics([LABELS[g] for g in gold], [LABELS[p] for p in pred])
    return {"macro_f1": m["macro_f1"], "per_class_f1": m["per_class_f1"], "accuracy": m["accuracy"],
            "ece": expected_calibration_error(probs, gold), "confusion": m["confusion"], "n": m["n"]}


def bootstrap(gold: Sequence[int], systems: dict[str, Sequence[Sequence[float]]], rounds: int = 1000,
              seed: int = 7) -> dict:
    """95% percentile intervals of each system's macro-F1 and of head minus mean, articles resampled."""
    rng = random.Random(seed)
    n = len(gold)
    preds = {k: [LABELS[max(range(len(LABELS)), key=p.__getitem__)] for p in v] for k, v in systems.items()}
    g = [LABELS[x] for x in gold]
    draws = {k: [] for k in systems} | {"head_minus_mean": []}
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        f = {k: stance_metrics([g[i] for i in idx], [p[i] for i in idx])["macro_f1"] for k, p in preds.items()}
        for k in systems:
            draws[k].append(f[k])
        draws["head_minus_mean"].append(f["head"] - f["mean"])
    out = {}
    for k, v in draws.items():
        v.sort()
        out[k] = [round(v[int(0.025 * rounds)], 4), round(v[int(0.975 * rounds) - 1], 4)]
    return out


def evaluate(model: str, ner_model: str | None, precision: str = "fp32") -> tuple[dict, ArticleHead]:
    skipped: Counter = Counter()
    articles = corpora.persent_articles(corpora.persent_path(), skipped)
    ev = build_evidence(articles, model, ner_model, precision)
    train, test = corpora.persent_split(articles)
    in_test = {id(a) for a in test}
    parts = {"train": [], "test": []}
    for a, e in zip(articles, ev):
        parts["test" if id(a) in in_test else "train"].append((a, e))
    counts = {name: {"articles": len(rows), "entities": len({a.target.casefold() for a, _ in rows}),
                     "labels": {l: sum(a.label == l for a, _ in rows) for l in LABELS},
                     "target not found": sum(e is None for _, e in rows)} for name, rows in parts.items()}
    found = {name: [(a, e) for a, e in rows if e is not None] for name, rows in parts.items()}
    X = [article_features(e) for _, e in found["train"]]
    y = [LABELS.index(a.label) for a, _ in found["train"]]
    head, table = choose_and_fit(X, y, [a.target for a, _ in found["train"]])
    gold = [LABELS.index(a.label) for a, _ in found["test"]]
    head_p = head.predict_proba_rows([article_features(e) for _, e in found["test"]])
    mean_p = [mean_rule(e) for _, e in found["test"]]
    majority = Counter(y).most_common(1)[0][0]
    share = [sum(v == i for v in y) / len(y) for i in range(len(LABELS))]
    major_p = [[1.0 if i == majority else 0.0 for i in range(len(LABELS))] for _ in gold]
    systems = {"head": head_p, "mean": mean_p, "majority": major_p}
    result = {"split": counts, "skipped": dict(skipped), "cv": table, "chosen": head.meta,
              "temperature": head.temperature, "majority_label": LABELS[majority],
              "train_label_share": [round(s, 4) for s in share],
              "test": {k: scores(gold, v) for k, v in systems.items()},
              "bootstrap_macro_f1": bootstrap(gold, systems),
              "head_uncalibrated_test_ece": expected_calibration_error(
                  _uncalibrated(head, [article_features(e) for _, e in found["test"]]), gold)}
    return result, head


def _uncalibrated(head: ArticleHead, rows) -> list[list[float]]:
    import numpy as np

    z = head.logits(rows)
    e = np.exp(z - z.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).tolist()


def render(res: dict, meta: dict) -> str:
    """The docs/quality.md section."""
    t, b, sp = res["test"], res["bootstrap_macro_f1"], res["split"]

    def counts(part: dict) -> str:
        return "/".join(str(part["labels"][l]) for l in LABELS)

    rows = [("learned article head" + (" (shipped)" if meta.get("shipped") else " (not shipped)"), "head"),
            ("mean of mention probabilities, argmax" + (" (fallback)" if meta.get("shipped") else " (shipped)"),
             "mean"), (f"majority class of train ({res['majority_label']})", "majority")]
    lines = [SECTION_START, "## Article-level stance (PerSenT split)", "",
             f"Measured {meta['date']} with `{meta['command']}` (commit {meta['commit']}); dev-split figures: "
             "PerSenT dev (`../shared/data/stance/persent/dev.csv`, news articles each with one target entity and "
             "its article-level sentiment; Negative / Neutral / Positive read as against / neutral / favor), "
             "split by a salted sha1 of the target entity (`corpora.persent_split`: one entity's articles never "
             "straddle it). The head is fitted on the train part only; every figure below is on the test part.",
             "", "| part | articles | entities | against/neutral/favor | target not found |", "|---|---|---|---|---|"]
    for name in ("train", "test"):
        p = sp[name]
        lines.append(f"| {name} | {p['articles']} | {p['entities']} | {counts(p)} | {p['target not found']} |")
    n = t["head"]["n"]
    found = ("the NER stage's entities with the target's id plus the name (`transforms.stance.target_spans`)"
             if res.get("mentions", "").startswith("NER") else "the name and its surname as strings, which is what "
             "the NER stage's person id finds (ids key a person on the surname) without a NER pass")
    lines += ["", f"Test part, the {n} articles where the target is found ({found}; the first 16 mentions and the "
              "headline's classified by the shipped stance model, fp32); the others would get no label in the "
              "product (`not mentioned`). Intervals: 95% bootstrap over articles (1,000 draws).", "",
              "| article rule | macro-F1 (95% CI) | F1 against/neutral/favor | accuracy | ECE (15 bins, top label) |",
              "|---|---|---|---|---|"]
    for title, key in rows:
        r, ci = t[key], b[key]
        f = r["per_class_f1"]
        lines.append(f"| {title} | **{r['macro_f1']:.4f}** ({ci[0]:.3f}-{ci[1]:.3f}) | "
                     f"{'/'.join(f'{f[l]:.3f}' for l in LABELS)} | {r['accuracy']:.4f} | {r['ece']:.4f} |")
    d = b["head_minus_mean"]
    c = res["chosen"]
    lines += ["", f"Head minus mean rule, macro-F1: {t['head']['macro_f1'] - t['mean']['macro_f1']:+.4f} "
              f"(95% CI {d[0]:+.3f} to {d[1]:+.3f}). The head: multinomial logistic regression over "
              f"{len(res['features'])} features of the mention probabilities (per label: mean, max, min, share of "
              "mentions, lead-weighted mean, first mention, headline mention, mean log-odds; mention count, first "
              "position, headline named, share of paragraphs and of sentences naming the target, agreement), "
              f"L2 {c['l2']}, class weights (balanced)^{c['class_weight_power']} (both chosen by 5-fold "
              f"cross-validation on train, folds by target: CV macro-F1 {c['cv_macro_f1']:.4f}), then temperature "
              f"{res['temperature']} fitted on the out-of-fold logits (test ECE without it: "
              f"{res['head_uncalibrated_test_ece']:.4f}). Code: `modeling/stance_article.py`; "
              f"{'shipped as' if meta.get('shipped') else 'would ship as'} `modeling/weights/stance/{HEAD_FILE}`.",
              "", "Limits: PerSenT is English news about people, with favor the largest class (55% of train); the "
              "class weights at power 0.5 keep part of that prior, so on other news the head may lean to favor "
              "more than the mean rule did. PerSenT's own test set is out of this repository's reach: these are "
              "dev-split figures on 161 unseen entities, and the head's gain over the mean rule is within the "
              "bootstrap noise at its lower end.",
              "", "Confusion of the head on test (rows gold, columns predicted: against / neutral / favor):", ""]
    for g in LABELS:
        lines.append(f"- {g}: {' / '.join(str(t['head']['confusion'][g][p]) for p in LABELS)}")
    lines += ["", "```", "python -m modeling.evaluation.stance_article --ship --write docs/quality.md", "```", "",
              SECTION_END]
    return "\n".join(lines)


def write_section(path: str, section: str) -> None:
    """Replace this section of a markdown file (between its markers), or append it."""
    p = Path(path)
    text = p.read_text(encoding="utf-8") if p.exists() else ""
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    p.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="modeling/weights/stance")
    ap.add_argument("--ner", default="", help="find mentions with this NER model's entities (slow: a NER pass over "
                    "578 articles); default: the name and its surname as strings")
    ap.add_argument("--precision", default="fp32", help="the stance model's (fp32: the reference)")
    ap.add_argument("--ship", action="store_true", help=f"write {HEAD_FILE} beside the model if the head wins")
    ap.add_argument("--write", default=None, help="markdown file whose section is replaced (or appended)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    t0 = time.time()
    res, head = evaluate(args.model, args.ner or None, args.precision)
    res["mentions"] = f"NER entities ({args.ner}) + name" if args.ner else "name + surname (strings)"
    res["features"] = head.features
    t = res["test"]
    wins = t["head"]["macro_f1"] > t["mean"]["macro_f1"]
    for name in ("train", "test"):
        p = res["split"][name]
        print(f"{name}: {p['articles']} articles, {p['entities']} entities, against/neutral/favor "
              f"{'/'.join(str(p['labels'][l]) for l in LABELS)}, target not found {p['target not found']}")
    print(f"chosen {res['chosen']}, temperature {res['temperature']}")
    for key in ("head", "mean", "majority"):
        r, ci = t[key], res["bootstrap_macro_f1"][key]
        f1 = "/".join(f"{r['per_class_f1'][l]:.3f}" for l in LABELS)
        print(f"test {key:<9} macro-F1 {r['macro_f1']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]  F1 against/neutral/favor "
              f"{f1}  ECE {r['ece']:.4f}  (dev-split figure)")
    print(f"head - mean: {t['head']['macro_f1'] - t['mean']['macro_f1']:+.4f} {res['bootstrap_macro_f1']['head_minus_mean']}"
          f"; {time.time() - t0:.0f} s")
    shipped = False
    if args.ship:
        path = Path(args.model) / HEAD_FILE
        if wins:
            head.meta.update({"command": "python -m modeling.evaluation.stance_article --ship",
                              "fitted_on": "PerSenT dev, train part of corpora.persent_split",
                              "test_macro_f1": t["head"]["macro_f1"], "test_ece": t["head"]["ece"],
                              "mean_rule_test_macro_f1": t["mean"]["macro_f1"]})
            path.write_text(head.to_json(), encoding="utf-8")
            shipped = True
            print(f"wrote {path}")
        else:
            if path.exists():
                path.unlink()
            print(f"the head does not beat the mean rule on the test part: {path} not shipped")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    meta = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "shipped": shipped or (
        not args.ship and (Path(args.model) / HEAD_FILE).exists()),
        "command": "python -m modeling.evaluation.stance_article"}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"result": res, "meta": meta}, indent=1) + "\n", encoding="utf-8")
    if args.write:
        write_section(args.write, render(res, meta))
        print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
