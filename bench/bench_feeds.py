"""Feed parsing speed: newsbeam's feed path against feedparser alone, on the same bytes in the same process.

newsbeam: `refuse_entity_declarations` (XML-safety check) + `transforms.parse.parse_raw` (feedparser, HTML-to-text,
normalisation, date checks, content ids) over every .xml fixture in ../shared/data/feeds/feed-rs.
Baseline: `feedparser.parse(data)` on the same bytes. Rounds alternate between the two so background load hits
both alike; entries/s is total entries over total time. Prints figures, target ratio >= 0.8.

    python bench/bench_feeds.py [--seconds 2] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def load_fixtures() -> list[tuple[str, bytes]]:
    from modeling.training.corpora import shared_data_dir

    root = shared_data_dir() / "feeds" / "feed-rs"
    files = sorted(root.glob("*/*.xml"))
    if not files:
        sys.exit(f"no feed fixtures under {root} (set $NEWSBEAM_SHARED_DATA)")
    return [(f"https://bench.invalid/{f.parent.name}/{f.name}", f.read_bytes()) for f in files]


def newsbeam_pass(docs: list[tuple[str, bytes]]) -> int:
    """Entries produced (articles and per-entry dead letters) by the newsbeam path over all docs."""
    from pipeline.feeds import refuse_entity_declarations
    from transforms.parse import parse_raw

    n = 0
    for ref, data in docs:
        raw = {"ref": ref, "data": refuse_entity_declarations(data), "fetched_at": None, "source": None}
        n += sum(1 for rec_ref, _ in parse_raw(raw) if rec_ref != ref)
    return n


def feedparser_pass(docs: list[tuple[str, bytes]]) -> int:
    import feedparser

    return sum(len(feedparser.parse(data).entries) for _, data in docs)


def timed(fn, docs) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn(docs)
    return n, time.perf_counter() - start


def run(seconds: float) -> dict:
    docs = load_fixtures()
    newsbeam_pass(docs), feedparser_pass(docs)  # warm-up: imports, regex compilation
    totals = {"newsbeam": [0, 0.0], "feedparser": [0, 0.0]}
    while totals["newsbeam"][1] < seconds or totals["feedparser"][1] < seconds:
        for name, fn in (("newsbeam", newsbeam_pass), ("feedparser", feedparser_pass)):
            n, t = timed(fn, docs)
            totals[name][0] += n
            totals[name][1] += t
    rate = {k: n / t for k, (n, t) in totals.items()}
    return {"docs": len(docs), "bytes": sum(len(d) for _, d in docs), "totals": totals, "rate": rate,
            "ratio": rate["newsbeam"] / rate["feedparser"]}


def profile(docs) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        newsbeam_pass(docs)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="minimum timed work per side")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of the newsbeam path")
    args = ap.parse_args()
    r = run(args.seconds)
    print(f"fixtures: {r['docs']} feeds, {r['bytes'] / 1024:.0f} KiB")
    for name, (n, t) in r["totals"].items():
        print(f"{name:>10}: {n} entries in {t:.2f} s = {r['rate'][name]:.0f} entries/s")
    verdict = "meets" if r["ratio"] >= 0.8 else "BELOW"
    print(f"ratio newsbeam/feedparser: {r['ratio']:.2f} ({verdict} the 0.8 target)")
    if args.profile or r["ratio"] < 0.8:
        print(profile(load_fixtures()))


if __name__ == "__main__":
    main()
