"""Dedup at scale: synthetic articles made of real Reuters-21578 sentences, with a known share of near-duplicates
made by small edits, run through `Deduplicate` on the FnApiRunner from JSONL files.

    PYTHONPATH=. nice -n 19 .venv/bin/python bench/bench_dedup.py --n 5000
    PYTHONPATH=. nice -n 19 .venv/bin/python bench/bench_dedup.py --n 200000 --json bench-dedup.json

Reports: wall time and peak memory of the Beam run, found / missed near-duplicates and false merges against the
known truth, and the pure-logic signature rate (docs/s) of the vectorised implementation against a naive
pure-Python MinHash (and the previous per-shingle implementation, and datasketch when it is importable), all
measured in this process. Also the bytes of each shuffled dedup row, for the shuffle-volume extrapolation.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling.training.corpora import reuters_articles  # noqa: E402
from modeling import minhash  # noqa: E402
from transforms import dedup  # noqa: E402

SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"(])")
CITIES = ["LONDON", "NEW YORK", "TOKYO", "WASHINGTON", "CHICAGO", "FRANKFURT", "PARIS", "SYDNEY"]
NAMES = ["Jane Doe", "Ken Wills", "Ana Ruiz", "Lee Chan", "Mark Heller", "Nina Petrova"]


# ---------------------------------------------------------------------------------------------- corpus
def sentence_pool() -> list[str]:
    seen, pool = set(), []
    for a in reuters_articles():
        for p in a["body"].split("\n"):
            for s in SENT.split(p):
                s = s.strip()
                if len(s.split()) >= 6 and s not in seen and "REUTER" not in s:
                    seen.add(s)
                    pool.append(s)
    return pool


def small_edit(text: str, rng: random.Random, pool: list[str], vocab: list[str]) -> tuple[str, str]:
    """One small edit, as in the labelled set (modeling/evaluation/dedup_pairs/build_pairs.py)."""
    kind = rng.choice(["words", "sentence_removed", "sentence_added", "wire_wrap", "punct_case"])
    sents = SENT.split(text)
    n = len(text.split())
    if kind == "words":
        words = text.split(" ")
        for i in rng.sample(range(len(words)), max(1, round(0.02 * n))):
            words[i] = rng.choice(vocab)
        return " ".join(words), kind
    if kind == "sentence_removed" and len(sents) > 3:
        i = min(range(1, len(sents)), key=lambda j: len(sents[j]))
        if len(sents[i].split()) <= 0.12 * n:
            return " ".join(sents[:i] + sents[i + 1:]), kind
    if kind in ("sentence_added", "sentence_removed"):
        add = min(rng.sample(pool, 50), key=lambda s: (len(s.split()) > 0.1 * n, rng.random()))
        i = rng.randrange(1, len(sents) + 1)
        return " ".join(sents[:i] + [add] + sents[i:]), "sentence_added"
    if kind == "wire_wrap":
        return (f"{rng.choice(CITIES)}, March {rng.randint(1, 28)} (Reuters) - {text} "
                f"(Reporting by {rng.choice(NAMES)}; Editing by {rng.choice(NAMES)})"), kind
    words = [w.upper() if rng.random() < 0.1 else w for w in text.split(" ")]
    return " ".join(words).replace(", ", " ").replace('"', "'"), "punct_case"


def generate(n: int, dup_rate: float, seed: int, out_dir: Path, shards: int = 16, *, days: list[str] | None = None,
             sentences: tuple[int, int] = (4, 12), exact_rate: float = 0.0) -> dict:
    """Write n articles to out_dir/articles-*.jsonl; return the truth {copy id: original id} and stats.

    A share `dup_rate` are near-copies of an earlier original (one small edit), a share `exact_rate` exact copies
    (the same title and text under another url, so another article id). Originals are `sentences` (min, max) real
    sentences long, published over the twelve months of 2026, or on `days` when given. Every record carries its
    bench id as `guid` too, which the pipeline keeps on the article."""
    rng = random.Random(seed)
    pool = sentence_pool()
    vocab = sorted({w for s in pool[:20000] for w in re.findall(r"[a-z]{4,}", s)})
    n_dup, n_exact = int(n * dup_rate), int(n * exact_rate)
    n_orig = n - n_dup - n_exact
    files = [open(out_dir / f"articles-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    originals = []  # (id, text, day) kept for making copies: only a sample of texts, to bound memory
    truth, kinds, total_chars = {}, {}, 0

    def write(article):
        nonlocal total_chars
        if days is not None:
            article["guid"] = article["id"]
            article["url"] = f"https://bench.example/{article['id']}"
        line = json.dumps(article)
        total_chars += len(line)
        files[int(article["id"][-3:]) % shards].write(line + "\n")

    def pick_day(i):
        if days is not None:
            return rng.choice(days)
        return f"2026-{1 + (i * 12) // n_orig:02d}-{1 + rng.randrange(28):02d}"

    n_copies = n_dup + n_exact
    dup_every = n_orig / max(n_copies, 1)
    next_dup, exact_made = dup_every, 0
    for i in range(n_orig):
        k = rng.randint(*sentences)
        text = " ".join(rng.choice(pool) for _ in range(k))
        day = pick_day(i)
        aid = f"a{i:08d}"
        write({"id": aid, "text": text, "title": text[:60], "published": day, "source": "bench", "url": None,
               "input_ref": f"bench:{aid}"})
        if len(originals) < 5000 or rng.random() < 0.05:
            originals.append((aid, text, day))
            if len(originals) > 5000:
                originals.pop(rng.randrange(len(originals)))
        while i + 1 >= next_dup and len(truth) < n_copies:
            src_id, src_text, src_day = rng.choice(originals)
            if n_exact and exact_made < n_exact and rng.random() < n_exact / n_copies:
                edited, kind = src_text, "exact_copy"
                exact_made += 1
            else:
                edited, kind = small_edit(src_text, rng, pool, vocab)
            did = f"d{len(truth):08d}"
            day = max(src_day, pick_day(i))
            write({"id": did, "text": edited, "title": edited[:60],
                   "published": day, "source": "bench-copy", "url": None, "input_ref": f"bench:{did}"})
            truth[did] = src_id
            kinds[did] = kind
            next_dup += dup_every
    for f in files:
        f.close()
    return {"truth": truth, "kinds": kinds, "n": n_orig + len(truth), "n_dup": len(truth),
            "mean_chars": total_chars / (n_orig + len(truth)), "pool_sentences": len(pool)}


# ---------------------------------------------------------------------------------------------- pure logic
MERSENNE61 = (1 << 61) - 1


def naive_minhash(text: str, num_perm: int = 128, k: int = 3) -> list[int]:
    """The textbook pure-Python MinHash: one hash per shingle, num_perm (a x + b) mod p per shingle."""
    rng = random.Random(1)
    perms = [(rng.randrange(1, MERSENNE61), rng.randrange(MERSENNE61)) for _ in range(num_perm)]
    words = re.findall(r"\w+", text.lower())
    sh = {" ".join(words[i:i + k]) for i in range(max(len(words) - k + 1, 1))}
    hs = [int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in sh]
    return [min(((a * h + b) % MERSENNE61) & 0xFFFFFFFF for h in hs) for a, b in perms]


def previous_minhash(text: str, num_perm: int = 128, k: int = 3) -> np.ndarray:
    """The per-shingle implementation the vectorised one replaced (a baseline): shingle strings, blake2b each."""
    a, b = minhash._permutations(num_perm, 1)
    sh = sorted(minhash.shingles(text, k))
    h = np.fromiter((int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")
                     for s in sh), dtype=np.uint64)
    with np.errstate(over="ignore"):
        values = (h[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)
    return (values & np.uint64(0xFFFFFFFF)).min(axis=0).astype(np.uint32)


def datasketch_minhash():
    """datasketch's MinHash if importable (its package __init__ needs scipy; minhash.py itself does not)."""
    import importlib.util
    import types

    try:
        from datasketch import MinHash  # noqa: F401
        return MinHash
    except ImportError:
        spec = importlib.util.find_spec("datasketch")
        if spec is None or not spec.submodule_search_locations:
            return None
        pkg = types.ModuleType("datasketch")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["datasketch"] = pkg
        try:
            from datasketch.minhash import MinHash
            return MinHash
        except ImportError:
            return None


def rate(fn, docs, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for d in docs:
            fn(d)
        best = min(best, time.perf_counter() - t)
    return len(docs) / best


def signature_rates(docs: list[str], naive_docs: int) -> dict:
    out = {"vectorised (this code)": rate(lambda d: minhash.text_signature(d), docs),
           "vectorised + band keys": rate(lambda d: minhash.band_keys(minhash.text_signature(d)[1], 14, 9), docs),
           "previous implementation": rate(previous_minhash, docs[:5000], repeat=2),
           "naive pure Python": rate(naive_minhash, docs[:naive_docs], repeat=1)}
    MinHash = datasketch_minhash()
    if MinHash is not None:
        def ds(d):
            m = MinHash(num_perm=128)
            m.update_batch([s.encode("utf-8") for s in minhash.shingles(d, 3)])
            return m
        out["datasketch update_batch"] = rate(ds, docs[:5000], repeat=2)
    return out


def band_row_bytes() -> dict:
    """Encoded size of the shuffled dedup rows with Beam's default coder: per band of every article an id row,
    per article one band member, per bucket it shares with another article a bucket row (transforms.dedup
    BandBuckets), and the exact-stage row."""
    from apache_beam.coders import FastPrimitivesCoder

    sig = minhash.signature("some words for a signature of an article " * 10)
    member = (dedup.NEW, "2026-11-25", hashlib.sha256(b"x").hexdigest()[:24], sig.tobytes())
    band_member = member[:3] + (minhash.band_signature(sig),)
    key = minhash.band_keys(sig, 14, 9)[0]
    c = FastPrimitivesCoder()
    return {"band_id_row": len(c.encode((key, member[2]))), "band_member_row": len(c.encode((member[2], band_member))),
            "bucket_row": len(c.encode((key, band_member))), "exact_row": len(c.encode(("0" * 32, member))),
            "index_row_json": len(json.dumps(dedup.index_row(member + ("0" * 24,), "0" * 32))),
            "parent_row": len(c.encode((member[2], (member[2], "near", 0.9141, True))))}


# ---------------------------------------------------------------------------------------------- beam
def run_beam(in_dir: Path, out_dir: Path, runner: str, index_root: str | None = None) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    opts = PipelineOptions([f"--runner={runner}"])
    t = time.perf_counter()
    with beam.Pipeline(options=opts) as p:
        articles = (p | "Read" >> beam.io.ReadFromText(str(in_dir / "articles-*.jsonl")) | "Parse" >> beam.Map(json.loads))
        out = articles | dedup.Deduplicate(0.8, 128, 3, index_root=index_root)
        (out["articles"] | "KeptIds" >> beam.Map(lambda a: a["id"])
         | "WriteKept" >> beam.io.WriteToText(str(out_dir / "kept"), shard_name_template=""))
        (out["duplicates"] | "DupJson" >> beam.Map(json.dumps)
         | "WriteDups" >> beam.io.WriteToText(str(out_dir / "dups"), shard_name_template=""))
    wall = time.perf_counter() - t
    kept = (out_dir / "kept").read_text().split()
    dups = [json.loads(x) for x in (out_dir / "dups").read_text().splitlines() if x]
    return {"wall_s": wall, "kept": kept, "dups": dups}


def score(truth: dict, n: int, kept: list[str], dups: list[dict]) -> dict:
    """Against the truth {copy id: original id}. A copy whose parent is another copy of the same original (that
    copy having missed the original) is a correct merge, counted apart; a false merge joins different stories."""
    dup_of = {d["id"]: d["duplicate_of"] for d in dups}
    found = sum(1 for d, o in truth.items() if dup_of.get(d) == o)
    via_copy = sum(1 for d, o in truth.items() if d in dup_of and dup_of[d] != o and truth.get(dup_of[d]) == o)
    wrong_parent = sum(1 for d, o in truth.items() if d in dup_of and dup_of[d] != o and truth.get(dup_of[d]) != o)
    missed = sum(1 for d in truth if d not in dup_of)
    originals_merged = sum(1 for d in dup_of if d not in truth)
    return {"accounted": len(kept) + len(dups), "inputs": n, "found": found, "found_via_other_copy": via_copy,
            "missed": missed, "false_merges": originals_merged + wrong_parent, "originals_merged": originals_merged,
            "wrong_parent": wrong_parent, "kinds": {k: sum(1 for d in dups if d["kind"] == k) for k in ("exact", "near")}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dup-rate", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--runner", default="FnApiRunner")
    ap.add_argument("--naive-docs", type=int, default=500, help="docs for the (slow) naive baseline")
    ap.add_argument("--index", action="store_true", help="also run with a signature index, then rerun (idempotence)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_dedup_"))
    in_dir, out_dir = work / "in", work / "out"
    in_dir.mkdir()
    out_dir.mkdir()
    t = time.perf_counter()
    gen = generate(args.n, args.dup_rate, args.seed, in_dir)
    gen_s = time.perf_counter() - t
    print(f"generated {gen['n']} articles ({gen['n_dup']} near-copies, mean {gen['mean_chars']:.0f} chars of JSON) "
          f"in {gen_s:.1f} s under {in_dir}", flush=True)

    docs = []
    with open(in_dir / "articles-000.jsonl", encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line)["text"])
            if len(docs) >= 20_000:
                break
    rates = signature_rates(docs, args.naive_docs)
    for k, v in rates.items():
        print(f"signature rate, {k}: {v:,.0f} docs/s", flush=True)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    beam_res = run_beam(in_dir, out_dir, args.runner)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    s = score(gen["truth"], gen["n"], beam_res["kept"], beam_res["dups"])
    print(f"beam {args.runner}: {beam_res['wall_s']:.1f} s wall ({gen['n'] / beam_res['wall_s']:,.0f} articles/s), "
          f"peak RSS {peak_kb / 1024:.0f} MB (before the run {rss_before / 1024:.0f} MB)", flush=True)
    print(f"every input accounted for: {s['accounted']} of {s['inputs']}; near-copies found {s['found']} of "
          f"{len(gen['truth'])} (+{s['found_via_other_copy']} via another copy of the same original), missed "
          f"{s['missed']}, false merges {s['false_merges']} "
          f"(originals merged {s['originals_merged']}, wrong parent {s['wrong_parent']}); kinds {s['kinds']}")
    missed_kinds = {}
    dup_ids = {d["id"] for d in beam_res["dups"]}
    for d, kind in gen["kinds"].items():
        if d not in dup_ids:
            missed_kinds[kind] = missed_kinds.get(kind, 0) + 1
    print(f"missed by edit kind: {missed_kinds}")

    result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores, "
              f"Python {platform.python_version()}", "command": " ".join(sys.argv), "n": gen["n"],
              "near_copies": gen["n_dup"], "generate_s": gen_s, "wall_s": beam_res["wall_s"],
              "articles_per_s": gen["n"] / beam_res["wall_s"], "peak_rss_mb": peak_kb / 1024,
              "children_peak_rss_mb": children_kb / 1024, "score": s, "missed_by_kind": missed_kinds,
              "signature_docs_per_s": rates, "row_bytes": band_row_bytes(), "mean_article_json_chars": gen["mean_chars"]}

    if args.index:
        index_root = str(work / "root")
        for run in ("first", "rerun"):
            out2 = work / f"out-{run}"
            out2.mkdir()
            r = run_beam(in_dir, out2, args.runner, index_root)
            shards = sorted(Path(dedup.index_dir(index_root)).glob("part-*.jsonl"))
            rows = sum(1 for f in shards for _ in open(f))
            sc = score(gen["truth"], gen["n"], r["kept"], r["dups"])
            print(f"with index, {run}: {r['wall_s']:.1f} s, kept {len(r['kept'])}, duplicates {len(r['dups'])}, "
                  f"index {len(shards)} shards / {rows} rows; found {sc['found']}, false merges {sc['false_merges']}")
            result[f"index_{run}"] = {"wall_s": r["wall_s"], "kept": len(r["kept"]), "dups": len(r["dups"]),
                                      "shards": len(shards), "rows": rows, "score": sc}
    print(json.dumps({k: v for k, v in result.items() if k not in ("score",)}, indent=1, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
