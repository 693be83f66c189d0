"""Model stages' speed on 200 real articles (Reuters-21578 bodies), against a naive baseline in the same run.

newsbeam: NER (the shipped defaults: 128-piece windows, Viterbi decoding; length-sorted token-budget batches)
then stance toward each article's two most-mentioned PER/ORG/LOC entities (all mentions of a batch in one call),
timed in each precision named by --precisions (fp32, bf16 autocast, int8 (modeling/quantization.py), and auto: what
`--precision auto` picks on this CPU, shown with its probe times).
Naive baseline: the same models through plain `transformers.pipeline`, one article (one mention) per call,
fp32, as a first implementation would do it.
The same articles also go through the Beam model stages (RunInference, FnApiRunner, --precision auto) to show
the pipeline keeps the speed (its wall time less one model load).
Also: torch's CPU capability, the fp32 / bf16 / int8 rates of one Linear layer at the FFN shape measured in this
run, achieved FLOP/s of the model stages as a fraction of the rate of the precision each row actually ran in,
and each phase's peak RSS. Prints figures; docs/benchmarks.md records them.

    python bench/bench_models.py [--n 200] [--precisions fp32,bf16,int8,auto] [--skip-baseline]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 \
        python bench/bench_models.py    # a CPU without AVX-512 (so without native bf16), emulated
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

H, FF, LAYERS = 384, 1536, 12


def forward_flops(n: int) -> float:
    """FLOPs of one encoder forward over n tokens: the linear layers plus attention scores and mixing."""
    linear = 2 * n * (4 * H * H + 2 * H * FF)
    attention = 4 * n * n * H
    return LAYERS * (linear + attention)


MATMUL_TOKENS = 1024  # rows of the rate probe: one batch of 8 windows of 128 pieces


def matmul_rate(precision: str, seconds: float = 1.0) -> float:
    """GFLOP/s of one Linear layer at the BERT FFN shape (1024 tokens x 384 -> 1536) in `precision`, run as the
    model runs it: fp32, bf16 autocast, or int8 (modeling.quantization.Int8Linear). Time-bounded, so an emulated
    bf16 (~2 GFLOP/s on a CPU without native bf16) costs a second or two, not minutes."""
    import torch

    from modeling.precision import autocast

    lin = torch.nn.Linear(H, FF)
    if precision == "int8":  # as the model runs it (modeling.quantization): smoothed, static input range
        from modeling.quantization import Int8Linear

        lin = Int8Linear.for_timing(lin)
    x = torch.randn(MATMUL_TOKENS, H)
    with torch.inference_mode(), autocast(precision):
        lin(x)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            lin(x)
            n += 1
        return 2 * MATMUL_TOKENS * H * FF * n / (time.perf_counter() - t0) / 1e9


def matmul_rates() -> dict[str, float]:
    from modeling.precision import PRECISIONS

    return {p: round(matmul_rate(p), 1) for p in PRECISIONS}


def reset_peak_rss() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM), so each phase's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> int:
    """Peak RSS since the last reset_peak_rss (VmHWM), or the process's lifetime peak where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def stance_plan(article: dict, entities: list[dict], k: int = 2) -> dict:
    """The stance mentions the Beam stage classifies for this article: `--stance-targets auto` with the top `k`
    entities, planned on the article with its entities and language attached, as transforms.stance does (planned
    without them, a target matched its name's string only: 521 mentions in 200 bodies instead of the stage's
    ~780, which flattered the direct and naive rows)."""
    from transforms.stance import auto_targets, plan_mentions

    enriched = dict(article, entities=entities, language={"code": "en"})
    return plan_mentions(enriched, auto_targets(enriched, k))


def run_newsbeam(tagger, clf, articles) -> tuple[float, list, int, dict[str, float]]:
    """(seconds, entities per article, stance mentions, {"ner": s, "stance": s}): the model calls' own shares,
    the rest being entity grouping and mention planning."""
    from transforms.ner import group_entities

    t0 = time.perf_counter()
    spans = tagger.predict([a["text"] for a in articles])
    t_ner = time.perf_counter()
    entities = [group_entities(a["text"], s, "en") for a, s in zip(articles, spans)]
    plans = [stance_plan(a, e) for a, e in zip(articles, entities)]
    items = [i for plan in plans for p in plan.values() for i in p.items]
    t_plan = time.perf_counter()
    clf.predict_proba(items)
    end = time.perf_counter()
    return end - t0, entities, len(items), {"ner": t_ner - t0, "stance": end - t_plan}


def run_beam_stages(articles, batch_size: int = 32, precision: str = "auto") -> float:
    """The same 200 articles through newsbeam's Beam model stages (RecogniseEntities -> ClassifyStance with the
    two most-mentioned entities as targets, as in run_newsbeam) on the local runner, read from a JSONL file.
    Returns the wall time including each stage's model load in DoFn.setup."""
    import json as _json
    import tempfile

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
    from transforms.ner import RecogniseEntities
    from transforms.stance import AUTO, ClassifyStance

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "articles.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for a in articles:
                f.write(_json.dumps(dict(a, language={"code": "en"}, input_ref=a["id"])) + "\n")
        t0 = time.perf_counter()
        with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
            arts = p | beam.io.ReadFromText(str(path)) | beam.Map(_json.loads)
            ner = arts | RecogniseEntities(DEFAULT_NER_MODEL, max_batch_size=batch_size, precision=precision)
            stance = ner["articles"] | ClassifyStance(DEFAULT_STANCE_MODEL, {AUTO: []}, max_batch_size=batch_size,
                                                      auto_top_n=2, precision=precision)
            _ = stance["articles"] | beam.combiners.Count.Globally()
        return time.perf_counter() - t0


def run_naive(tagger, clf, articles, entities) -> float:
    import torch
    from transformers import pipeline

    from modeling.stance import mark_mention

    ner = pipeline("token-classification", model=tagger.model, tokenizer=tagger.tokenizer,
                   aggregation_strategy="simple", stride=32, device="cpu")
    cls = pipeline("text-classification", model=clf.model, tokenizer=clf.tokenizer, device="cpu")
    t0 = time.perf_counter()
    with torch.inference_mode():
        for a, ents in zip(articles, entities):
            ner(a["text"])
            for p in stance_plan(a, ents).values():
                for i in p.items:
                    cls({"text": i.target, "text_pair": mark_mention(i.sentence, i.start, i.end)}, truncation=True)
    return time.perf_counter() - t0


def time_precision(precision: str, articles, compile: bool = False) -> dict:
    """Load both models in `precision` and time them on the articles (after an 8-article warm-up)."""
    import gc

    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    reset_peak_rss()
    t_load = time.perf_counter()
    tagger = NerTagger.load(DEFAULT_NER_MODEL, precision=precision, compile=compile)
    clf = StanceClassifier.load(DEFAULT_STANCE_MODEL, precision=precision, compile=compile)
    load_s = time.perf_counter() - t_load
    run_newsbeam(tagger, clf, articles[:8])  # warm-up (first-call allocations; with compile, a late recompile)
    tagger.segment_lengths.clear()
    clf.segment_lengths.clear()
    seconds, entities, n_mentions, stages = run_newsbeam(tagger, clf, articles)
    row = {"precision": tagger.precision, "ner_choice": tagger.choice.describe(),
           "stance_choice": clf.choice.describe(), "load_s": round(load_s, 1), "s": round(seconds, 2),
           "ner_s": round(stages["ner"], 2), "stance_s": round(stages["stance"], 2),
           "articles_per_s": round(len(articles) / seconds, 1), "ner_tokens": sum(tagger.segment_lengths),
           "stance_mentions": n_mentions,
           "flops": sum(forward_flops(n) for n in tagger.segment_lengths + clf.segment_lengths),
           "peak_rss_mb": peak_rss_mb(), "entities": entities}
    del tagger, clf
    gc.collect()
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--precisions", default="fp32,bf16,int8,auto",
                    help="the precisions to time directly, comma-separated (auto: what --precision auto picks)")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--skip-beam", action="store_true", help="skip the run through the Beam stages")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    ap.add_argument("--compile", action="store_true",
                    help="also time newsbeam with --compile-models in the precision auto picks (compile time "
                         "reported apart)")
    args = ap.parse_args()

    import logging

    import torch

    from modeling.training.corpora import reuters_articles
    from modeling.ner import NerTagger
    from modeling.stance import StanceClassifier
    from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].addFilter(lambda r: r.name.startswith("newsbeam"))
    torch.set_num_threads(os.cpu_count() or 2)
    articles = [{"id": r["id"], "text": r["body"], "title": r["title"]} for r in reuters_articles(limit=args.n)]
    env = {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS",
                                      "FBGEMM_ENABLE_INSTRUCTIONS") if k in os.environ}
    res = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} {os.cpu_count()} cores, torch "
                                                     f"{torch.__version__}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "isa_env": env or None,
        "articles": len(articles), "characters": sum(len(a["text"]) for a in articles),
    }
    print(f"cpu capability {res['cpu_capability']}, ISA environment {env or 'none'}", flush=True)
    rates_before = matmul_rates()
    print(f"matmul GFLOP/s at the FFN shape: {rates_before}", flush=True)
    rows = {}
    for prec in [p.strip() for p in args.precisions.split(",") if p.strip()]:
        rows[prec] = time_precision(prec, articles)
        print(f"{prec:5s} -> {rows[prec]['precision']}: {rows[prec]['s']} s (NER {rows[prec]['ner_s']} + stance "
              f"{rows[prec]['stance_s']}), peak RSS {rows[prec]['peak_rss_mb']} MB", flush=True)
    rates_after = matmul_rates()
    rates = {p: max(rates_before[p], rates_after[p]) for p in rates_before}
    res.update({"matmul_gflops": rates, "matmul_gflops_before_after": [rates_before, rates_after]})
    entities = next(iter(rows.values()))["entities"] if rows else None
    for prec, row in rows.items():
        row.pop("entities")
        flops = row.pop("flops")
        row["achieved_gflops"] = round(flops / row["s"] / 1e9, 1)
        row["fraction_of_limit"] = round(flops / row["s"] / 1e9 / rates[row["precision"]], 3)
        row["limit_gflops"] = rates[row["precision"]]
    res["direct"] = rows
    if "auto" in rows:
        res["auto_chose"] = rows["auto"]["precision"]
    if args.compile:
        auto = rows["auto"]["precision"] if "auto" in rows else time_precision("auto", articles[:8])["precision"]
        t_c = time.perf_counter()
        row = time_precision(auto, articles, compile=True)
        row.pop("entities")
        flops = row.pop("flops")
        row["compile_and_run_s"] = round(time.perf_counter() - t_c, 1)
        row["fraction_of_limit"] = round(flops / row["s"] / 1e9 / rates[auto], 3)
        res["compiled"] = row
    if not args.skip_beam:
        reset_peak_rss()
        t_load2 = time.perf_counter()
        tagger = NerTagger.load(DEFAULT_NER_MODEL, precision="auto")
        clf = StanceClassifier.load(DEFAULT_STANCE_MODEL, precision="auto")
        load2 = time.perf_counter() - t_load2
        chosen = (tagger.precision, clf.precision)
        del tagger, clf
        reset_peak_rss()
        beam_s = run_beam_stages(articles, precision="auto")
        res["beam"] = {"precision": "auto", "chose": {"ner": chosen[0], "stance": chosen[1]},
                       "s_incl_load": round(beam_s, 2), "model_load_s": round(load2, 1),
                       "articles_per_s_excl_load": round(len(articles) / max(beam_s - load2, 1e-9), 1),
                       "peak_rss_mb": peak_rss_mb()}
    if not args.skip_baseline:
        tagger = NerTagger.load(DEFAULT_NER_MODEL, precision="fp32")
        clf = StanceClassifier.load(DEFAULT_STANCE_MODEL, precision="fp32")
        if entities is None:  # the stance targets come from NER: what fp32 finds when no precision was timed
            entities = run_newsbeam(tagger, clf, articles)[1]
        naive_s = run_naive(tagger, clf, articles, entities)
        res["naive"] = {"precision": "fp32", "s": round(naive_s, 2),
                        "articles_per_s": round(len(articles) / naive_s, 2)}
        for row in rows.values():
            row["speedup_vs_naive"] = round(naive_s / row["s"], 2)
        if "compiled" in res:
            res["compiled"]["speedup_vs_naive"] = round(naive_s / res["compiled"]["s"], 2)
        if "beam" in res:
            beam_net = res["beam"]["s_incl_load"] - res["beam"]["model_load_s"]
            res["beam"]["speedup_vs_naive"] = round(naive_s / max(beam_net, 1e-9), 2)
    res["process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print()
    for k, v in res.items():
        if k != "direct":
            print(f"{k:28s} {v}")
    print("\n| precision | runs as | NER s | stance s | total s | vs naive | achieved GFLOP/s | limit GFLOP/s | "
          "fraction | peak RSS MB |")
    for prec, row in rows.items():
        print(f"| {prec} | {row['precision']} | {row['ner_s']} | {row['stance_s']} | {row['s']} | "
              f"{row.get('speedup_vs_naive', '-')} | {row['achieved_gflops']} | {row['limit_gflops']} | "
              f"{row['fraction_of_limit']} | {row['peak_rss_mb']} |")
    if "auto" in rows:
        print(f"\nauto chose: NER {rows['auto']['ner_choice']}; stance {rows['auto']['stance_choice']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
