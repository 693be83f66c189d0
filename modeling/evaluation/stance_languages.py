"""Stance on German (GerNTSA): zero-shot with a model trained without German, or the shipped one, trained on it.

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

`--targets-found` measures instead, with no model, how the stage finds a target's words in the text
(modeling.target_mentions against whole-word matching, modeling.stance.find_mentions): see `targets_found`.

    python -m modeling.evaluation.stance_languages --targets-found [--show 20] [--json logs/targets_found.json]
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from modeling.stance import LABELS, MentionInput, find_mentions, mention_input
from modeling.target_mentions import target_mentions
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


MATCHERS = {"whole words": lambda text, target, lang: find_mentions(text, [target]),
            "inflected": lambda text, target, lang: target_mentions(text, [target], lang)}


def gold_sets(root: Path | None = None) -> list[tuple[str, str, list[corpora.StanceExample]]]:
    """(name, language, items) of the stance sets whose items give the target's span in the text."""
    root = root or corpora.shared_data_dir()
    return [("GerNTSA dev", "de", corpora.gerntsa_examples(gerntsa_path(root))),
            ("NewsMTSC devtest_mt", "en", corpora.newsmtsc_examples(root / "stance" / "newsmtsc" / "devtest_mt.jsonl")),
            ("RuSentNE train", "ru", corpora.rusentne_examples(root / "stance" / "rusentne" / "train.tsv"))]


def _lemmas(words: Sequence[str], lang: str) -> tuple[str, ...]:
    import simplemma

    return tuple(simplemma.lemmatize(w, lang=lang).casefold() for w in words)


def same_lemma(text: str, span: tuple[int, int], target: str, lang: str) -> bool:
    """Whether the words of a match have the target's lemmas (simplemma; the target's leading articles left
    out): a check of a match that the matcher itself does not use."""
    from modeling.target_mentions import ARTICLES, word_spans

    words = [target[s:e] for s, e in word_spans(target)]
    while len(words) > 1 and words[0].casefold() in ARTICLES.get(lang, ()):
        words = words[1:]
    matched = text[span[0]:span[1]]
    found = [matched[s:e] for s, e in word_spans(matched)]
    return _lemmas(found, lang) == _lemmas(words, lang)


def match_row(name: str, lang: str, items: Sequence[tuple[str, str, int, int]]) -> dict:
    """Per matcher: items whose gold span a match overlaps (recall) and matches elsewhere in the item (an upper
    bound on false matches: a text may name its target twice); for matches the inflected matcher adds, how many
    lie outside the gold span and how many of those have a lemma other than the target's."""
    out = {"set": name, "language": lang, "n": len(items), "gold": any(start >= 0 for _, _, start, _ in items)}
    found = {}
    for matcher, fn in MATCHERS.items():
        found[matcher] = [fn(text, target, lang) for text, target, _, _ in items]
        hit = sum(any(s < e and start < t for s, t in spans) for spans, (_, _, start, e) in zip(found[matcher], items))
        elsewhere = sum(sum(not (s < e and start < t) for s, t in spans)
                        for spans, (_, _, start, e) in zip(found[matcher], items))
        out[matcher] = {"found": hit, "recall": round(hit / max(1, len(items)), 4), "matches_elsewhere": elsewhere}
    added, other_lemma = 0, []
    for old, new, (text, target, start, end) in zip(found["whole words"], found["inflected"], items):
        for s, t in set(new) - set(old):
            if s < end and start < t:
                continue
            added += 1
            if not same_lemma(text, (s, t), target, lang):
                other_lemma.append(f"{target} -> {text[s:t]}")
    out["added_elsewhere"] = added
    out["added_other_lemma"] = len(other_lemma)
    out["other_lemma_examples"] = other_lemma
    return out


def seed_items(root: Path = Path("seeds")) -> list[tuple[str, str, list[tuple[str, str, int, int]]]]:
    """The seed articles with no gold spans: as targets, the title's words of 5+ letters (common nouns and names
    alike, none chosen by hand) and the default targets (pipeline/targets.yaml); language from the file name's
    prefix (de_, es_, ...), else English. Gold span (-1, -1): every match counts as elsewhere."""
    import re

    import yaml

    defaults = list(yaml.safe_load(Path("pipeline/targets.yaml").read_text(encoding="utf-8"))["targets"])
    texts: list[tuple[str, str, str]] = []  # (language, title, text)
    for path in sorted(root.glob("*.txt")):
        raw = path.read_text(encoding="utf-8")
        lines = [l for l in raw.splitlines() if l.strip() and not re.match(r"(date|source|url) ", l.strip())]
        title = lines[0].removeprefix("title ") if lines else ""
        lang = path.name[:3][:2] if re.match(r"[a-z]{2}_", path.name) else "en"
        texts.append((lang, title, raw))
    for line in (root / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            texts.append(("en", rec.get("title") or "", rec["text"]))
    by_lang: dict[str, list] = {}
    for lang, title, text in texts:
        targets = dict.fromkeys([w for w in re.findall(r"\w+", title) if len(w) >= 5] + defaults)
        by_lang.setdefault(lang, []).extend((text, t, -1, -1) for t in targets)
    return [(f"seeds ({lang})", lang, items) for lang, items in sorted(by_lang.items())]


def compound_heads(items: Sequence[corpora.StanceExample]) -> dict:
    """What matching a German target as the head of a closed compound would add ("Bratwurst" for "Wurst": the
    target, 4+ letters, lower-cased at the end of a word whose first part has 3+ letters, with a German ending):
    matches at the annotated target and elsewhere. The measurement behind leaving that rule out."""
    import re

    from modeling.target_mentions import ENDINGS, is_place

    endings = "|".join(sorted(ENDINGS["de"], key=len, reverse=True))
    at_gold, elsewhere = 0, []
    for e in items:
        if len(e.target) < 4 or is_place(e.target):
            continue
        head = re.escape(e.target[0].lower() + e.target[1:])
        for m in re.finditer(rf"(?<!\w)\w{{3,}}{head}(?:{endings})?(?!\w)", e.text):
            if m.start() < e.end and e.start < m.end():
                at_gold += 1
            else:
                elsewhere.append(f"{e.target} -> {m.group()}")
    return {"at_target": at_gold, "elsewhere": len(elsewhere), "examples": elsewhere}


def targets_found(root: Path | None = None) -> list[dict]:
    """The rows of docs/quality.md "Targets found in the text"."""
    rows = [match_row(name, lang, [(e.text, e.target, e.start, e.end) for e in items])
            for name, lang, items in gold_sets(root)]
    return rows + [match_row(name, lang, items) for name, lang, items in seed_items()]


def print_target_rows(rows: Sequence[dict], show: int = 0) -> None:
    print(f"{'set':<22}{'n':>6}{'found before':>14}{'found after':>13}{'elsewhere before':>18}"
          f"{'elsewhere after':>17}{'added: other lemma':>20}")
    for r in rows:
        a, b = r["whole words"], r["inflected"]
        before, after = (f"{a['recall']:.4f}", f"{b['recall']:.4f}") if r["gold"] else ("-", "-")
        print(f"{r['set']:<22}{r['n']:>6}{before:>14}{after:>13}{a['matches_elsewhere']:>18}"
              f"{b['matches_elsewhere']:>17}{r['added_other_lemma']:>11} of {r['added_elsewhere']:<5}")
        for example in r["other_lemma_examples"][:show]:
            print(f"    {example}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="modeling/weights/stance")
    ap.add_argument("--ner", default="modeling/weights/ner", help="NER model for the entity subsets; '' for none")
    ap.add_argument("--precision", default="fp32", help="fp32 (the reference), bf16, int8 or auto")
    ap.add_argument("--whole-snippet", action="store_true", help="feed the whole snippet, not its target sentence")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--json", default=None, help="write the result here too")
    ap.add_argument("--targets-found", action="store_true", help="measure target matching only (no model)")
    ap.add_argument("--show", type=int, default=0, help="with --targets-found: added matches of another lemma shown")
    args = ap.parse_args(argv)
    if args.targets_found:
        rows = targets_found()
        print_target_rows(rows, args.show)
        heads = compound_heads(gold_sets()[0][2])
        print(f"GerNTSA, German closed-compound heads: {heads['at_target']} at the annotated target, "
              f"{heads['elsewhere']} elsewhere: {', '.join(heads['examples'][:args.show])}")
        rows.append({"set": "GerNTSA closed-compound heads", **heads})
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return 0
    result = evaluate(args.model, args.ner or None, args.precision, args.whole_snippet, args.limit)
    print_rows(result["rows"])
    print(f"inputs: {result['inputs']}; precision {result['precision']}; seconds {result['seconds']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
