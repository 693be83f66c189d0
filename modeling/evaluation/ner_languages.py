"""NER per language on every dev set of ../shared/data, and which languages NER runs on by default.

Scoring: exact span and type (PER/ORG/LOC; CoNLL and WikiNEuRal also MISC) on sentence sets; on the SlavNER
covid-19 dev documents (every 5th document of a language, `corpora.SLAVNER_DEV_EVERY`) both exact spans and the
document-level relaxed figure of the BSNLP shared task (distinct case-folded surface and type per document). A
language's figure is its news set where it has one (CoNLL, NEREL, SlavNER relaxed, Universal NER), else its
WikiANN or WikiNEuRal set; `DEFAULT_THRESHOLD` decides the default set (transforms.ner.NER_LANGUAGES).

`--zero-shot MODEL` scores a second model that saw none of a language's training data (the stage-4 model saw en,
de, es, nl, pl, ru only) beside the first, so each new language has an in-language and a zero-shot figure: how far
zero-shot falls short is measured, not guessed, before a language without training data is offered.

    python -m modeling.evaluation.ner_languages [--model modeling/weights/ner] [--zero-shot build/ner-stage4]
        [--limit 2000] [--write docs/quality.md] [--json logs/ner_languages.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from modeling.training import corpora

DEFAULT_THRESHOLD = 0.75
SECTION_START, SECTION_END = "<!-- ner-languages:start -->", "<!-- ner-languages:end -->"
SCORED = ("PER", "ORG", "LOC")
# the set that stands for a language, in order of preference: news before Wikipedia, gold before silver
PREFERENCE = ("conll", "nerel", "slavner", "uner", "wikiann", "wikineural")


def relaxed_counts(text: str, gold: Sequence[tuple[int, int, str]], pred: Sequence[tuple[int, int, str]]
                   ) -> tuple[int, int, int]:
    """A document's (tp, fp, fn) over distinct (case-folded surface, type): the BSNLP relaxed mode."""
    def norm(spans):
        return {(" ".join(text[a:b].split()).casefold(), t) for a, b, t in spans if t in SCORED}

    g, p = norm(gold), norm(pred)
    return len(g & p), len(p - g), len(g - p)


def f1(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


def score_set(name: str, examples, predicted) -> dict:
    """Exact (and for SlavNER relaxed) figures of one dev set from its predicted spans."""
    from modeling.ner import span_prf

    misc = name.startswith(("conll", "wikineural"))
    gold = [e.spans for e in examples]
    exact = span_prf(gold, predicted, None if misc else SCORED)
    row = {"set": name, "language": corpora.source_language(name), "n": len(examples),
           "exact": {k: exact[k] for k in ("precision", "recall", "f1")}, "misc_scored": misc}
    if name.startswith("slavner"):
        c = Counter()
        for e, p in zip(examples, predicted):
            c.update(dict(zip(("tp", "fp", "fn"), relaxed_counts(e.text, e.spans, p))))
        row["relaxed"] = f1(c["tp"], c["fp"], c["fn"])
    row["f1"] = row.get("relaxed", row["exact"])["f1"]
    return row


def evaluate_model(model: str, names: Sequence[str], limit: int | None) -> list[dict]:
    from modeling.ner import NerTagger

    tagger = NerTagger.load(model)
    rows = []
    for name in names:
        examples = corpora.load_ner_split(name, "val")[: limit or None]
        t0 = time.time()
        pred = [[(s.start, s.end, s.type) for s in spans] for spans in tagger.predict([e.text for e in examples])]
        row = score_set(name, examples, pred)
        row["seconds"] = round(time.time() - t0, 1)
        print(f"{model} {name}: F1 {row['f1']:.4f} ({row['n']} {'documents' if name.startswith('slavner') else 'sentences'})",
              flush=True)
        rows.append(row)
    return rows


def language_figures(rows: Sequence[dict]) -> dict[str, dict]:
    """language -> the row that stands for it (PREFERENCE), the others listed beside it."""
    by_lang: dict[str, list[dict]] = {}
    for row in rows:
        by_lang.setdefault(row["language"], []).append(row)
    out = {}
    for lang, group in sorted(by_lang.items()):
        group = sorted(group, key=lambda r: PREFERENCE.index(r["set"].split("-")[0]))
        out[lang] = {"f1": group[0]["f1"], "set": group[0]["set"], "sets": {r["set"]: r["f1"] for r in group}}
    return out


def default_languages(figures: dict[str, dict], threshold: float = DEFAULT_THRESHOLD) -> tuple[str, ...]:
    return tuple(sorted(lang for lang, fig in figures.items() if fig["f1"] >= threshold))


def render(result: dict) -> str:
    meta, langs, zero = result["meta"], result["languages"], result.get("zero_shot_languages", {})
    lines = [SECTION_START, "## NER per language (every dev set)", "",
             f"Measured {meta['date']} with `{meta['command']}` (commit {meta['commit']}, {meta['machine']}). Dev "
             "figures, not held-out ones. Exact span F1 on sentence sets; on SlavNER covid-19 dev documents the "
             "document-level relaxed F1 (BSNLP's mode). A language's figure is its news set where it has one. "
             f"NER runs by default where this figure is at least {result['threshold']}."]
    if zero:
        lines += ["", f"The zero-shot column is `{meta['zero_shot_model']}`, trained without any of that language's "
                  "data (it saw en, de, es, nl, pl, ru): the gap to the in-language column is what zero-shot costs, "
                  "measured on the languages that now have training data."]
    lines += ["", "| language | set | F1 | zero-shot F1 | other sets | default |", "|---|---|---|---|---|---|"]
    for lang, fig in langs.items():
        zs = zero.get(lang, {}).get("f1")
        others = ", ".join(f"{s} {v:.3f}" for s, v in fig["sets"].items() if s != fig["set"])
        lines.append(f"| {lang} | {fig['set']} | {fig['f1']:.3f} | {'' if zs is None else f'{zs:.3f}'} | {others} | "
                     f"{'yes' if lang in result['default'] else 'no'} |")
    if zero:
        gaps = [langs[l]["f1"] - zero[l]["f1"] for l in result.get("new_languages", []) if l in zero and l in langs]
        if gaps:
            lines += ["", f"Zero-shot against in-language on the {len(gaps)} new languages: mean gap "
                      f"{sum(gaps) / len(gaps):.3f} F1 (min {min(gaps):.3f}, max {max(gaps):.3f})."]
    lines += ["", f"Default NER languages: {', '.join(result['default'])}.", SECTION_END]
    return "\n".join(lines)


def write_section(path: str, section: str) -> None:
    p = Path(path)
    text = p.read_text() if p.exists() else ""
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    p.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m modeling.evaluation.ner_languages", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="modeling/weights/ner")
    ap.add_argument("--zero-shot", default=None, help="a model trained without the new languages, scored beside "
                    "(or the --json file of an earlier run on it)")
    ap.add_argument("--limit", type=int, default=2000, help="sentences (documents) per dev set at most")
    ap.add_argument("--sets", default=None, help="comma-separated dev sets (default: every one)")
    ap.add_argument("--write", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    names = args.sets.split(",") if args.sets else list(corpora.ner_sources())
    rows = evaluate_model(args.model, names, args.limit)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cmd = "python -m modeling.evaluation.ner_languages" + (f" --zero-shot {args.zero_shot}" if args.zero_shot else "")
    result = {"meta": {"date": time.strftime("%Y-%m-%d"), "commit": commit, "command": cmd,
                       "machine": f"{platform.machine()}, 2 cores", "model": args.model,
                       "zero_shot_model": args.zero_shot, "limit": args.limit},
              "threshold": DEFAULT_THRESHOLD, "rows": rows, "languages": language_figures(rows)}
    result["default"] = default_languages(result["languages"])
    if args.zero_shot:
        if args.zero_shot.endswith(".json"):  # the rows of an earlier run of this command on that model
            stored = json.loads(Path(args.zero_shot).read_text())
            zrows, result["meta"]["zero_shot_model"] = stored["rows"], stored["meta"]["model"]
        else:
            zrows = evaluate_model(args.zero_shot, names, args.limit)
        result["zero_shot_rows"] = zrows
        result["zero_shot_languages"] = language_figures(zrows)
        old = {"en", "de", "es", "nl", "pl", "ru"}
        result["new_languages"] = sorted(set(result["languages"]) - old)
    print(render(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    if args.write:
        write_section(args.write, render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
