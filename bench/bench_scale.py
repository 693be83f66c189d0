"""Scale, measured: N synthetic articles over a few published days through the real `newsbeam run --skip-models`
(parse, language, dedup against the cross-run index, the sinks) on the local runner with two SDK processes.

    PYTHONPATH=. nice -n 19 python bench/bench_scale.py --n 100000 [--days 4] [--json FILE]

The input is bench_dedup.py's corpus (real Reuters-21578 sentences; a known share of near-copies made by one small
edit, and of exact copies under another url), 2-4 KB of text per article, written as JSONL files of at most
10,000 articles (a file is read whole). The run is sampled from /proc every 0.2 s (bench/proc_memory.py): the
peak PSS and RSS of each process (the launcher, which on the local runner also holds the shuffled data between
stages, and each SDK worker) and of the tree. Then the accounting is checked twice: the summary's read =
written + duplicates + dead-lettered, and the same counts from the files the run wrote. Near and exact copies
found are scored against the generator's truth (a copy counts as found when it and its original end up as one
kept article, whichever of the two: an exact copy published the same day may be the one kept).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import proc_memory  # noqa: E402  bench/proc_memory.py
from bench_dedup import generate  # noqa: E402  the synthetic corpus

from pipeline.layout import ARTICLES, DEAD_LETTER, DUPLICATES, READ_GLOBS  # noqa: E402

PER_FILE = 10_000
SUMMARY = re.compile(r"newsbeam summary \(([\d.]+)s\): (.*)")
# --stage-log: the same CLI, with the local runner's bundle log (which stage runs when) written to a file
STAGE_LOGGED = """import logging, sys
handler = logging.FileHandler(sys.argv.pop(1))
handler.setFormatter(logging.Formatter("%(created).3f %(message)s"))
log = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle")
log.setLevel(logging.DEBUG)
log.addHandler(handler)
log.propagate = False
from pipeline.cli import main
raise SystemExit(main(sys.argv[1:]))
"""
STAGE = re.compile(r"^([\d.]+) Running bundle for stage (.*)$")
LABEL = re.compile(r"ref_AppliedPTransform_([A-Za-z0-9\-]+?)_\d+")


def days_before_today(count: int) -> list[str]:
    """`count` consecutive published days ending yesterday (the parser refuses dates far in the future)."""
    today = dt.date.today()
    return [(today - dt.timedelta(days=count - i)).isoformat() for i in range(count)]


def cli_command(in_dir: Path, out_dir: Path, workers: int, stage_log: str | None = None) -> list[str]:
    start = ["-m", "pipeline.cli"] if stage_log is None else ["-c", STAGE_LOGGED, stage_log]
    return [sys.executable, *start, "run", "--input", str(in_dir / "*.jsonl"), "--output",
            str(out_dir), "--skip-models", "--quiet", "--verbose", "--direct_running_mode", "multi_processing",
            "--direct_num_workers", str(workers)]


def summary_counts(output: str) -> dict[str, int]:
    """The counters of the `newsbeam summary (...)` line: read, written, duplicates, dead-lettered."""
    for line in output.splitlines():
        m = SUMMARY.search(line)
        if m:
            pairs = (item.rsplit(" ", 1) for item in m.group(2).split(", "))
            return {k.replace("-", "_"): int(v) for k, v in pairs}
    raise SystemExit(f"no summary line in the run's output:\n{output[-3000:]}")


def stage_counters(output: str) -> dict[str, int]:
    """The per-stage counters of the summary's `stages:` line (--verbose): where records went if any are lost."""
    for line in output.splitlines():
        if line.strip().startswith("stages: "):
            pairs = (item.rsplit(" ", 1) for item in line.strip()[len("stages: "):].split(", "))
            return {k: int(v) for k, v in pairs if v.lstrip("-").isdigit()}
    return {}


def files_of(out_dir: Path, kind: str) -> list[Path]:
    return sorted(p for g in READ_GLOBS[kind] for p in out_dir.glob(g))


def lines_of(paths: list[Path]):
    for p in paths:
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def check_output(in_dir: Path, out_dir: Path, gen: dict) -> dict:
    """Counts from the written files, and the copies found against the truth {copy id: original id}: an input
    line is named by its input_ref (`<file>:<line>`) in duplicate records, a written article by its guid."""
    bench_id_of_line = {}
    for f in sorted(in_dir.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                bench_id_of_line[f"{f}:{n}"] = json.loads(line)["guid"]
    bench_of_article, per_day = {}, {}
    for a in lines_of(files_of(out_dir, ARTICLES)):
        bench_of_article[a["id"]] = a["guid"]
        per_day[a["published"]] = per_day.get(a["published"], 0) + 1
    dup_of, kinds = {}, {}
    for d in lines_of(files_of(out_dir, DUPLICATES)):
        dup_of[bench_id_of_line.get(d["input_ref"], d["input_ref"])] = bench_of_article.get(d["duplicate_of"])
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    dead = sum(1 for _ in lines_of(files_of(out_dir, DEAD_LETTER)))
    truth, planted = gen["truth"], gen["kinds"]
    story = lambda bench_id: truth.get(bench_id, bench_id)  # noqa: E731  the original a copy was made from
    kept = lambda bench_id: dup_of.get(bench_id, bench_id)  # noqa: E731  the article kept in its place
    found = {k: 0 for k in set(planted.values())}
    for copy, original in truth.items():  # merged with its original, whichever of the two was kept
        if kept(copy) is not None and kept(copy) == kept(original):
            found[planted[copy]] += 1
    planted_n = {k: sum(1 for v in planted.values() if v == k) for k in found}
    return {"written": len(bench_of_article), "duplicates": len(dup_of), "dead_lettered": dead,
            "articles_per_day": dict(sorted(per_day.items())), "duplicate_kinds": kinds,
            "copies_found": {k: f"{found[k]} of {planted_n[k]}" for k in sorted(found)},
            "false_merges": sum(1 for c, k in dup_of.items() if story(c) != story(k))}


def stage_peaks(stage_log: str, timeline: list, roles: dict[int, str]) -> list[dict]:
    """Per stage of the run (in the order they ran), the peak PSS of the launcher and of the largest SDK worker
    while it ran: the local runner runs one stage at a time, its bundles on the workers side by side."""
    starts = []
    for line in Path(stage_log).read_text().splitlines():
        m = STAGE.match(line)
        if m:
            labels = list(dict.fromkeys(LABEL.findall(m.group(2))))
            starts.append((float(m.group(1)), "+".join(labels)[:160] or m.group(2)[:160]))
    stages = [{"stage": name, "start": t, "launcher_kb": 0, "worker_kb": 0} for t, name in starts]
    i = 0
    for t, pid, pss in sorted(timeline):
        while i + 1 < len(stages) and stages[i + 1]["start"] <= t:
            i += 1
        if stages and t >= stages[0]["start"]:
            key = "launcher_kb" if roles.get(pid) == "launcher" else "worker_kb"
            stages[i][key] = max(stages[i][key], pss)
    return stages


def gib(kb: int) -> float:
    return kb / 1024 ** 2


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="articles in the input")
    ap.add_argument("--days", type=int, default=4, help="published days the articles spread over")
    ap.add_argument("--dup-rate", type=float, default=0.08, help="share of near-copies (one small edit)")
    ap.add_argument("--exact-rate", type=float, default=0.04, help="share of exact copies (another url)")
    ap.add_argument("--sentences", type=int, nargs=2, default=(16, 30), metavar=("MIN", "MAX"),
                    help="real sentences per original (16-30: 2-4 KB of text)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2, help="SDK worker processes (--direct_num_workers)")
    ap.add_argument("--work", default=None, help="work folder (default: a temporary one, removed at the end)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    ap.add_argument("--stage-log", default=None, metavar="FILE",
                    help="write the runner's stage log here and report the peak memory per stage")
    args = ap.parse_args()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_scale_"))
    in_dir, out_dir = work / "in", work / "out"
    shutil.rmtree(in_dir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    in_dir.mkdir(parents=True)
    try:
        t = time.perf_counter()
        gen = generate(args.n, args.dup_rate, args.seed, in_dir, shards=max(8, -(-args.n // PER_FILE)),
                       days=days_before_today(args.days), sentences=tuple(args.sentences),
                       exact_rate=args.exact_rate)
        gen_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in in_dir.glob("*.jsonl"))
        print(f"generated {gen['n']:,} articles ({gen['n_dup']:,} copies; mean {gen['mean_chars']:,.0f} chars of "
              f"JSON, {size / 1024 ** 2:,.0f} MiB in {len(list(in_dir.glob('*.jsonl')))} files) in {gen_s:.0f} s",
              flush=True)
        cmd = cli_command(in_dir, out_dir, args.workers, args.stage_log)
        r = proc_memory.run_sampled(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if r["returncode"] not in (0, 1):  # 1: the run finished but its accounting is off, reported below
            print(r["output"][-5000:])
            raise SystemExit(f"the run failed ({r['returncode']}): {' '.join(cmd)}")
        counts = summary_counts(r["output"])
        files = check_output(in_dir, out_dir, gen)
        print(f"stage counters: {stage_counters(r['output'])}")
        procs = sorted(r["per_process"].values(), key=lambda e: -e["pss_kb"])
        workers = [e for e in procs if e["role"] == "sdk worker"]
        accounted = counts["read"] == counts["written"] + counts["duplicates"] + counts["dead_lettered"]
        same = all(files[k] == counts[k] for k in ("written", "duplicates", "dead_lettered"))
        print(f"run: {r['seconds']:.0f} s wall, {gen['n'] / r['seconds']:,.0f} articles/s; peak of the tree PSS "
              f"{gib(r['pss_kb']):.2f} GiB, RSS {gib(r['rss_kb']):.2f} GiB, {r['processes']} processes")
        cpu_s = sum(e["cpu_s"] for e in procs)
        print(f"CPU time of the tree {cpu_s:,.0f} s: {1000 * cpu_s / gen['n']:.2f} ms per article")
        for e in procs:
            if e["pss_kb"] > 50 * 1024:
                print(f"  {e['role']}: peak PSS {gib(e['pss_kb']):.2f} GiB, RSS {gib(e['rss_kb']):.2f} GiB, "
                      f"CPU {e['cpu_s']:,.0f} s")
        print(f"exit status {r['returncode']}; summary: {counts}; read = written + duplicates + dead-lettered: {accounted}; "
              f"files agree: {same} ({files['written']} / {files['duplicates']} / {files['dead_lettered']})")
        print(f"per day {files['articles_per_day']}; duplicate kinds {files['duplicate_kinds']}; copies found "
              f"{files['copies_found']}; false merges (different stories) {files['false_merges']}")
        stages = []
        if args.stage_log:
            roles = {pid: e["role"] for pid, e in r["per_process"].items()}
            stages = stage_peaks(args.stage_log, r["timeline"], roles)
            print("peak PSS per stage, launcher / largest worker (GiB), stages over 0.5 GiB in either:")
            for st in stages:
                if max(st["launcher_kb"], st["worker_kb"]) > 512 * 1024:
                    print(f"  {st['start'] - stages[0]['start']:7.1f} s  {gib(st['launcher_kb']):5.2f} / "
                          f"{gib(st['worker_kb']):5.2f}  {st['stage']}")
        result = {"date": time.strftime("%Y-%m-%d"), "machine": f"{lscpu_model()}, Python "
                  f"{platform.python_version()}", "command": " ".join(sys.argv), "run": " ".join(cmd[1:]),
                  "n": gen["n"], "copies": gen["n_dup"], "mean_article_json_chars": gen["mean_chars"],
                  "input_mib": size / 1024 ** 2, "generate_s": gen_s, "wall_s": r["seconds"],
                  "articles_per_s": gen["n"] / r["seconds"], "tree_peak_pss_gib": gib(r["pss_kb"]),
                  "tree_peak_rss_gib": gib(r["rss_kb"]), "processes": r["processes"], "cpu_s": cpu_s,
                  "cpu_ms_per_article": 1000 * cpu_s / gen["n"],
                  "per_process": sorted(r["per_process"].values(), key=lambda e: e["role"]),
                  "launcher_peak_pss_gib": max((gib(e["pss_kb"]) for e in procs if e["role"] == "launcher"),
                                               default=0.0),
                  "worker_peak_pss_gib": [round(gib(e["pss_kb"]), 3) for e in workers],
                  "worker_peak_rss_gib": [round(gib(e["rss_kb"]), 3) for e in workers],
                  "exit_status": r["returncode"], "summary": counts,
                  "stage_counters": stage_counters(r["output"]), "accounted": accounted, "files_agree": same, "files": files,
                  "stages": stages}
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
        return 0 if accounted and same and counts["read"] == gen["n"] else 1
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
