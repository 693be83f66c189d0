"""Memory of the model stages with two SDK worker processes: a copy of each model per process (`--model-copies 0`,
Beam's default) against one copy per machine shared by both (`--model-copies 1`, Beam's
share_model_across_processes), in one run of this script, on the same input.

    python bench/bench_model_sharing.py [--reuters 200] [--workers 2]

Each variant is a real `newsbeam run` on the local runner in multi_processing mode. The process tree (the
launcher, the SDK workers and the model server Beam starts) is sampled every 0.2 s: the peak of the summed PSS
(proportional set size: a page shared by two processes counts half in each, so the sum is the real footprint)
and of the summed RSS. The two runs' articles are compared: sharing must not change a byte of the output.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import proc_memory  # bench/proc_memory.py: the process-tree sampler

ROOT = Path(__file__).resolve().parents[1]


def run_sampled(cmd: list[str]) -> dict:
    r = proc_memory.run_sampled(cmd)
    if r["returncode"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r['returncode']}):\n{r['output'][-3000:]}")
    return {"pss_kb": r["pss_kb"], "rss_kb": r["rss_kb"], "processes": r["processes"], "seconds": r["seconds"],
            "summary": r["output"].strip().splitlines()[-2:]}


def articles(out: Path) -> list[str]:
    return sorted(line for f in sorted(out.glob("dt=*/articles-*.jsonl")) for line in f.read_text().splitlines())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reuters", type=int, default=200, help="Reuters-21578 bodies as input (0: the seeds)")
    ap.add_argument("--workers", type=int, default=2, help="SDK worker processes (--direct_num_workers)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sharing-") as tmp:
        tmp = Path(tmp)
        if args.reuters:
            from modeling.training.corpora import reuters_articles

            rows = [{"guid": f"reuters-{r['id']}", "title": r["title"], "text": r["body"], "published": "1987-03-01"}
                    for r in reuters_articles(limit=args.reuters)]
            inputs = [str(tmp / "reuters.jsonl")]
            Path(inputs[0]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        else:
            inputs = [str(ROOT / "seeds" / "*")]
        results = {}
        for copies in (0, 1):
            out = tmp / f"out-{copies}"
            cmd = [sys.executable, "-m", "pipeline.cli", "run", "--input", *inputs, "--output", str(out),
                   "--targets", "Armenia", "Azerbaijan", "--quiet", "--model-copies", str(copies),
                   "--direct_running_mode", "multi_processing", "--direct_num_workers", str(args.workers)]
            results[copies] = run_sampled(cmd)
            results[copies]["articles"] = articles(out)
            r = results[copies]
            print(f"--model-copies {copies}: peak PSS {r['pss_kb'] / 1024 ** 2:.2f} GiB, peak RSS "
                  f"{r['rss_kb'] / 1024 ** 2:.2f} GiB, {r['processes']} processes, {r['seconds']} s; "
                  f"{r['summary'][0]}", flush=True)
        same = results[0]["articles"] == results[1]["articles"]
        print(f"outputs identical: {same} ({len(results[0]['articles'])} articles); peak PSS shared / per process "
              f"= {results[1]['pss_kb'] / results[0]['pss_kb']:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps({str(k): {x: v for x, v in r.items() if x != "articles"}
                                                   for k, r in results.items()} | {"identical": same}, indent=1))
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
