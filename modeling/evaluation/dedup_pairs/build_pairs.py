"""Build the labelled dedup pair set (texts.jsonl, pairs.jsonl beside this file) from Reuters-21578.

    PYTHONPATH=. python modeling/evaluation/dedup_pairs/build_pairs.py [--review]

Deterministic (seeded). Texts are real Reuters-21578 stories (free for research use; the collection's terms) or
small programmatic edits of them. Labels never come from the MinHash decision under test: real pairs are labelled by
word-level edit distance, titles and tickers, plus a hand-reviewed list; synthetic pairs by construction.

Categories (label 1 = the same story, 0 = different stories):
  edit_punct_case, edit_words, edit_sentence_removed, edit_sentence_added, edit_wire_wrap, edit_combo (1):
      a real article and a copy with one small programmatic edit (see EDITS).
  real_exact (1): two Reuters stories with byte-identical bodies (often re-titled).
  real_copy (1): two Reuters stories, both >= 30 words, whose bodies differ by at most 10% of their words
      (word-level edit operations), same company ticker if the titles name one.
  real_copy_short (1): the same for bodies under 30 words (reported apart: see docs/dedup.md, short texts).
  real_rewrite (1, reported only): same title (used twice in the corpus), bodies 10-60% different: the same
      story updated or rewritten; shingle MinHash is not meant to catch these.
  topic_random (0): two stories sharing a Reuters TOPICS tag, different titles.
  topic_hard (0): same TOPICS tag, titles naming different company tickers, bodies lexically close (word-shingle
      Jaccard >= 0.3): templated notices (dividends, earnings) of different companies, plus REVIEWED_DIFFERENT.
  same_column (0): two editions of a recurring report (a title used >= 3 times: freight lists, futures snapshots).
"""
from __future__ import annotations

import argparse
import collections
import datetime as dt
import difflib
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from modeling.training.corpora import reuters_articles, shared_data_dir  # noqa: E402
from modeling.minhash import band_keys, jaccard, shingles, signature  # noqa: E402

SEED = 20261125
MIN_WORDS = 30

# Hand-reviewed pairs (NEWIDs). Every pair of lexically close stories published the same day whose figures differ
# was read and judged; pairs judged ambiguous are left out.
REVIEWED_DIFFERENT = [  # different stories with near-identical bodies
    (16468, 16473), (690, 702), (16470, 16472), (690, 700), (700, 702),  # Franklin funds: one notice per fund
    (506, 508), (506, 513), (508, 513), (690, 701), (691, 692), (691, 693), (691, 701), (692, 693), (692, 701),
    (693, 695), (693, 700), (693, 701), (700, 701), (701, 702), (16392, 16468), (16392, 16469), (16392, 16471),
    (16392, 16473), (16394, 16396), (16468, 16469), (16468, 16471), (16469, 16471), (16469, 16473), (16471, 16473),
    (19792, 19793), (19793, 19794), (9271, 9272), (811, 817), (19125, 19129),  # other fund families
    (13893, 13986), (13584, 13587), (13584, 13684), (13587, 13654), (13587, 13655), (13651, 13655), (13654, 13655),
    (13684, 13766), (13732, 13985), (13732, 13986), (14033, 14040), (14160, 14167),  # hogs at different markets
    (14046, 14121), (14046, 14243), (14046, 14347), (14078, 14159), (14121, 14159), (14121, 14269), (14121, 14347),
    (14241, 14243), (14243, 14269), (14243, 14347), (14269, 14347), (14269, 14368), (14368, 14392),  # snapshots
    (14008, 14242), (14015, 14246), (14020, 14248), (14378, 14647), (13799, 14486),  # other timed reports
    (14448, 14467),  # Chicago vs Toledo soybean stocks
    (905, 1056), (12445, 12446), (13473, 13481), (14871, 14884), (15402, 15518),  # bond issues by different issuers
    (6302, 6307), (6302, 6308), (6307, 6308), (7957, 7962),  # contracts / export bonuses to different parties
    (13694, 14476),  # Magma raises vs lowers its copper price
    (16552, 19210),  # AMEX starts trading two different stocks
    (12112, 12687),  # two different banks raise their prime rate
]
REVIEWED_SAME = [  # the same story re-sent: numbers re-formatted or corrected, a sentence added or dropped
    (505, 550), (598, 620), (603, 731), (889, 955), (1320, 1327), (1759, 1768), (2040, 2051), (2614, 2631),
    (2773, 2809), (2786, 2823), (3019, 3065), (3098, 3109), (3322, 3327), (3790, 3910), (4239, 4292), (4361, 4385),
    (4663, 4795), (5116, 5119), (5684, 5692), (5786, 5895), (5890, 5948), (6552, 6679), (6970, 7029), (7267, 7413),
    (8286, 8317), (8335, 8339), (8872, 8874), (9330, 9390), (9364, 9405), (9896, 9970), (10027, 10040),
    (10297, 10376), (10405, 10410), (12369, 12392), (12407, 12466), (12709, 12720), (13541, 13622), (14412, 14739),
    (14516, 14525), (14547, 14551), (14960, 15180), (15470, 15549), (15725, 15737), (16491, 16504), (16589, 16604),
    (17480, 17486), (18268, 18279), (18920, 18930), (18937, 18977), (18947, 18958), (19648, 19803), (19657, 19723),
    (19824, 19834), (20583, 20672), (20590, 20697), (20771, 20838), (20927, 21214), (21338, 21341),
]
# Excluded from every category (ambiguous: corrections that change the figure in the title, same-day rate tables,
# a recurring report that may be a re-send).
REVIEWED_AMBIGUOUS = {(12215, 14476), (15563, 16289), (12215, 15831), (12016, 12040), (15560, 15610), (14688, 15942)}


def load_articles() -> list[dict]:
    topics: dict[int, list[str]] = {}
    for f in (shared_data_dir() / "news" / "reuters21578").glob("*.sgm"):
        raw = f.read_bytes().decode("latin-1")
        for m in re.finditer(r'<REUTERS[^>]*NEWID="(\d+)"[^>]*>(.*?)</REUTERS>', raw, re.S):
            t = re.search(r"<TOPICS>(.*?)</TOPICS>", m.group(2), re.S)
            topics[int(m.group(1))] = re.findall(r"<D>(.*?)</D>", t.group(1)) if t else []
    arts = reuters_articles()
    for a in arts:
        a["topics"] = topics.get(a["id"], [])
        a["words"] = len(a["body"].split())
    return arts


def tickers(title: str) -> set[str]:
    return {t.split(".")[0] for t in re.findall(r"<([A-Z][A-Z0-9.]*)>", title)}


_NUMBER = re.compile(r"\d[\d.,/-]*\d|\d")


def numbers(text: str) -> collections.Counter:
    return collections.Counter(_NUMBER.findall(text))


def day_of(a: dict) -> dt.date:
    return dt.datetime.strptime(a["date"].split()[0], "%d-%b-%Y").date()


def word_edits(a: str, b: str) -> float:
    """Word-level edit operations between two texts, as a fraction of the longer one."""
    wa, wb = a.split(), b.split()
    sm = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
    ops = sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal")
    return ops / max(len(wa), len(wb), 1)


def lsh_candidates(articles: list[dict], bands: int = 32, rows: int = 4) -> set[tuple[int, int]]:
    """Candidate pairs at a low similarity (~0.3+), to find lexically close pairs without all-pairs."""
    buckets = collections.defaultdict(list)
    for a in articles:
        for k in band_keys(signature(a["body"]), bands, rows):
            buckets[k].append(a["id"])
    out = set()
    for ids in buckets.values():
        if 1 < len(ids) <= 300:
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    out.add((min(ids[i], ids[j]), max(ids[i], ids[j])))
    return out


# ---------------------------------------------------------------------------------------------- edits
SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")
CITIES = ["LONDON", "NEW YORK", "TOKYO", "WASHINGTON", "CHICAGO", "FRANKFURT", "PARIS", "SYDNEY", "TORONTO"]
NAMES = ["Jane Doe", "Ken Wills", "Ana Ruiz", "Lee Chan", "Mark Heller", "Nina Petrova", "Tom Baird", "Ruth Okafor"]
MONTHS = ["Jan", "Feb", "March", "April", "May", "June"]


def sentences(text: str) -> list[str]:
    return [s for p in text.split("\n") for s in SENT.split(p) if s.strip()]


def edit_punct_case(text: str, rng: random.Random, **_) -> tuple[str, str]:
    words = text.replace("\n", " ").split(" ")
    changed = 0
    for i in range(len(words)):
        r = rng.random()
        if r < 0.1:
            words[i], changed = words[i].upper(), changed + 1
        elif r < 0.2:
            words[i], changed = words[i].lower(), changed + 1
        if words[i].endswith(",") and rng.random() < 0.5:
            words[i] = words[i][:-1]
    out = " ".join(words).replace('"', "'")
    return out, f"case of ~{changed} words changed, some commas dropped, quotes and line breaks changed"


def _substitute(words: list[str], k: int, rng: random.Random, vocab: list[str]) -> list[str]:
    notes = []
    for i in sorted(rng.sample(range(len(words)), k)):
        old = words[i]
        digits = re.sub(r"\D", "", old)
        if digits:
            new = re.sub(r"\d", lambda m: str((int(m.group()) + 1) % 10), old, count=1)
        else:
            new = rng.choice(vocab)
        words[i] = new
        notes.append(f"{old!r}->{new!r}")
    return notes


def edit_words(text: str, rng: random.Random, vocab: list[str], **_) -> tuple[str, str]:
    words = text.split(" ")
    k = max(1, round(0.02 * len(text.split())))
    notes = _substitute(words, k, rng, vocab)
    return " ".join(words), f"{k} word(s) substituted (2%): " + "; ".join(notes)


def edit_sentence_removed(text: str, rng: random.Random, **_) -> tuple[str, str] | None:
    sents = sentences(text)
    n = len(text.split())
    options = [i for i, s in enumerate(sents) if i > 0 and len(s.split()) <= 0.1 * n]
    if not options:
        return None
    i = rng.choice(options)
    return " ".join(sents[:i] + sents[i + 1:]), f"sentence {i} removed ({len(sents[i].split())} of {n} words)"


def edit_sentence_added(text: str, rng: random.Random, donors: list[str], **_) -> tuple[str, str] | None:
    sents = sentences(text)
    n = len(text.split())
    pool = [s for d in donors for s in sentences(d) if 5 <= len(s.split()) <= 0.1 * n]
    if not pool:
        return None
    add = rng.choice(pool)
    i = rng.randrange(1, len(sents) + 1)
    return " ".join(sents[:i] + [add] + sents[i:]), f"a same-topic sentence ({len(add.split())} words) inserted at {i}"


def _wire(rng: random.Random) -> tuple[str, str]:
    dateline = f"{rng.choice(CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 28)} (Reuters) - "
    trailer = f" (Reporting by {rng.choice(NAMES)}; Editing by {rng.choice(NAMES)})"
    return dateline, trailer


def edit_wire_wrap(text: str, rng: random.Random, **_) -> tuple[str, str]:
    dateline, trailer = _wire(rng)
    return dateline + text + trailer, "syndication wrapper: dateline and reporting/editing credit added"


def edit_combo(text: str, rng: random.Random, vocab: list[str], **_) -> tuple[str, str]:
    out, _ = edit_punct_case(text, rng)
    words = out.split(" ")
    notes = _substitute(words, 1, rng, vocab)
    dateline, _t = _wire(rng)
    return dateline + " ".join(words), "dateline added, 1 word substituted (" + notes[0] + "), case/punctuation changed"


EDITS = {"edit_punct_case": edit_punct_case, "edit_words": edit_words, "edit_sentence_removed": edit_sentence_removed,
         "edit_sentence_added": edit_sentence_added, "edit_wire_wrap": edit_wire_wrap, "edit_combo": edit_combo}


# ---------------------------------------------------------------------------------------------- build
def build(per_edit: int = 30, review: bool = False) -> tuple[list[dict], list[dict]]:
    rng = random.Random(SEED)
    arts = load_articles()
    first_by_body: dict[str, dict] = {}
    groups = collections.defaultdict(list)
    for a in arts:
        groups[a["body"]].append(a)
        first_by_body.setdefault(a["body"], a)
    uniq = list(first_by_body.values())
    by_id = {a["id"]: a for a in uniq}
    title_count = collections.Counter(a["title"] for a in uniq)
    texts: dict[str, dict] = {}

    def key_of(a: dict) -> str:
        k = f"r{a['id']}"
        texts.setdefault(k, {"key": k, "newid": a["id"], "date": a["date"], "title": a["title"], "text": a["body"],
                             "topics": a["topics"]})
        return k

    pairs: list[dict] = []

    def add(category: str, label: int, a: str, b: str, note: str = ""):
        pairs.append({"pair": f"{category}-{sum(p['category'] == category for p in pairs):03d}",
                      "category": category, "label": label, "a": a, "b": b, "note": note})

    used: set[int] = set()
    # real exact copies
    exact_groups = [g for g in groups.values() if len(g) > 1 and g[0]["words"] >= MIN_WORDS]
    for g in rng.sample(exact_groups, min(30, len(exact_groups))):
        add("real_exact", 1, key_of(g[0]), key_of(g[1]), "identical bodies")
        used.update((g[0]["id"], g[1]["id"]))

    # real near copies, rewrites, columns, hard negatives: from lexically close pairs and same-title pairs
    cands = lsh_candidates(uniq)
    by_title = collections.defaultdict(list)
    for a in uniq:
        by_title[a["title"]].append(a["id"])
    for ids in by_title.values():
        if 2 <= len(ids) <= 40:
            cands.update((min(x, y), max(x, y)) for i, x in enumerate(ids) for y in ids[i + 1:])
    copy, copy_short, rewrite, same_day, update, recurring, hard, unreviewed = [], [], [], [], [], [], [], []
    reviewed_diff = {tuple(sorted(p)) for p in REVIEWED_DIFFERENT}
    reviewed_same = {tuple(sorted(p)) for p in REVIEWED_SAME}
    for x, y in sorted(cands):
        if (x, y) in REVIEWED_AMBIGUOUS or (x, y) in reviewed_diff:
            continue
        a, b = by_id[x], by_id[y]
        if max(a["words"], b["words"]) > 400:  # keeps the committed set small
            continue
        ta, tb = tickers(a["title"]), tickers(b["title"])
        same_topic = bool(set(a["topics"]) & set(b["topics"]))
        if ta and tb and not ta & tb:  # different companies
            if same_topic and jaccard(shingles(a["body"]), shingles(b["body"])) >= 0.3:
                hard.append((x, y))
            continue
        d = word_edits(a["body"], b["body"])
        days = abs((day_of(a) - day_of(b)).days)
        same_numbers = numbers(a["body"]) == numbers(b["body"])
        corrected = "CORRECTED" in a["title"] + b["title"]
        short = min(a["words"], b["words"]) < MIN_WORDS
        if d <= 0.10 and same_numbers and days <= 2:
            (copy_short if short else copy).append((x, y, f"bodies differ by {d:.0%} of their words"))
        elif not same_numbers and not corrected and d <= 0.30 and days >= 1 and a["title"][:12] == b["title"][:12]:
            recurring.append((x, y, f"editions {days} days apart, figures differ, bodies differ by {d:.0%}"))
        elif not same_numbers and d <= 0.30 and days == 0:
            if (x, y) in reviewed_same:
                (same_day if d <= 0.10 else update).append(
                    (x, y, f"hand-reviewed: the same story, figures re-formatted or corrected, bodies differ by {d:.0%}"))
            else:
                unreviewed.append((x, y))
        elif a["title"] == b["title"] and title_count[a["title"]] >= 3 and d > 0.30:
            recurring.append((x, y, f"editions {days} days apart of a recurring report, bodies differ by {d:.0%}"))
        elif a["title"] == b["title"] and title_count[a["title"]] == 2 and 0.10 < d <= 0.60 and not short \
                and days <= 1:
            rewrite.append((x, y, f"same title, bodies differ by {d:.0%} of their words"))
    for name, label, rows, cap in (("real_copy", 1, copy, 60), ("real_copy_short", 1, copy_short, 20),
                                   ("real_same_day", 1, same_day, 1000), ("real_update", 1, update, 1000),
                                   ("real_rewrite", 1, rewrite, 20), ("recurring_report", 0, recurring, 40)):
        rows = rng.sample(rows, min(cap, len(rows)))
        for x, y, note in sorted(rows):
            add(name, label, key_of(by_id[x]), key_of(by_id[y]), note)
            used.update((x, y))
    hard = rng.sample(hard, min(60, len(hard)))
    for x, y in sorted(hard):
        add("topic_hard", 0, key_of(by_id[x]), key_of(by_id[y]), "same topic, titles name different tickers")
        used.update((x, y))
    for x, y in sorted(reviewed_diff):
        add("reviewed_different", 0, key_of(by_id[x]), key_of(by_id[y]), "hand-reviewed: different stories")
        used.update((x, y))
    if unreviewed:
        print(f"note: {len(unreviewed)} same-day pairs with differing figures are not reviewed and left out:",
              unreviewed[:20], file=sys.stderr)

    # synthetic edits of real articles, on bases used nowhere else
    vocab = sorted({w for a in uniq[:3000] for w in re.findall(r"[a-z]{4,}", a["body"])})
    by_topic = collections.defaultdict(list)
    for a in uniq:
        for t in a["topics"]:
            by_topic[t].append(a)
    bases = [a for a in uniq if 80 <= a["words"] <= 250 and a["topics"] and a["id"] not in used
             and len(groups[a["body"]]) == 1]
    rng.shuffle(bases)
    it = iter(bases)
    base_pool = []
    for name, fn in EDITS.items():
        made = 0
        while made < per_edit:
            base = next(it)
            donors = [d["body"] for d in rng.sample(by_topic[base["topics"][0]], min(5, len(by_topic[base["topics"][0]])))
                      if d["id"] != base["id"]]
            res = fn(base["body"], random.Random(f"{SEED}-{name}-{base['id']}"), vocab=vocab, donors=donors)
            if res is None:
                continue
            edited, note = res
            ka = key_of(base)
            kb = f"e{base['id']}"
            texts[kb] = {"key": kb, "newid": None, "base": base["id"], "date": base["date"], "title": base["title"],
                         "text": edited, "topics": base["topics"]}
            add(name, 1, ka, kb, note)
            base_pool.append(base)
            made += 1

    # different stories on one topic, from the synthetic bases (texts already stored)
    topic_of = collections.defaultdict(list)
    for a in base_pool:
        topic_of[a["topics"][0]].append(a)
    random_pairs = set()
    topics = sorted(t for t, v in topic_of.items() if len(v) >= 2)
    while len(random_pairs) < 60:
        t = rng.choice(topics)
        a, b = rng.sample(topic_of[t], 2)
        if a["title"] != b["title"]:
            random_pairs.add((min(a["id"], b["id"]), max(a["id"], b["id"])))
    for x, y in sorted(random_pairs):
        add("topic_random", 0, key_of(by_id[x]), key_of(by_id[y]), f"same topic: {by_id[x]['topics'][0]}")

    if review:
        for p in pairs:
            if p["category"].startswith(("real_", "topic_hard", "recurring")):
                ta, tb = texts[p["a"]], texts[p["b"]]
                wa, wb = ta["text"].split(), tb["text"].split()
                sm = difflib.SequenceMatcher(None, wa, wb, autojunk=False)
                diffs = [f"{' '.join(wa[i1:i2])[:30]!r}->{' '.join(wb[j1:j2])[:30]!r}"
                         for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal"]
                print(f"{p['pair']:20s} {ta['date'][:6]}/{tb['date'][:6]} [{ta['title'][:32]}] [{tb['title'][:32]}] "
                      f"n={len(wa)} | {'; '.join(diffs)[:110]}")
    return list(texts.values()), pairs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--review", action="store_true", help="print the real pairs for a human to check")
    args = ap.parse_args()
    texts, pairs = build(review=args.review)
    with open(HERE / "texts.jsonl", "w", encoding="utf-8") as f:
        for t in sorted(texts, key=lambda t: t["key"]):
            f.write(json.dumps(t, ensure_ascii=False, sort_keys=True) + "\n")
    with open(HERE / "pairs.jsonl", "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(texts)} texts, {len(pairs)} pairs:", dict(collections.Counter(p["category"] for p in pairs)))


if __name__ == "__main__":
    main()
