"""Memory of a command's process tree, sampled from /proc while it runs: shared by the benches that run the real
CLI (bench_model_sharing.py, bench_scale.py).

Why PSS as well as RSS: a page shared by two processes (the interpreter, Beam, torch after a fork) counts whole in
each one's RSS but half in each one's PSS, so summed PSS is the tree's real footprint and per-process PSS is what
one process costs. Linux only (smaps_rollup).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def tree(pid: int) -> list[int]:
    """pid and all its descendants alive now."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += _children(p)
    return seen


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB, (0, 0) if it is gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:] if line.endswith("kB")}
    return values.get("Pss", 0), values.get("Rss", 0)


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far (None if it is gone): with the machine shared, CPU time
    per article is the figure that does not depend on what else ran."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def role(pid: int, root: int | None = None) -> str:
    """What a process of a Beam run is: the launcher (`root`: on the local runner also the runner, which holds
    the data between stages), an SDK worker, or the module or program its command line names."""
    if pid == root:
        return "launcher"
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
    except OSError:
        return "gone"
    if any("sdk_worker_main" in a or "worker_pool_main" in a for a in argv):
        return "sdk worker"
    if "-m" in argv[:-1]:
        return argv[argv.index("-m") + 1]
    return Path(argv[0]).name if argv and argv[0] else "?"


class TreeSampler:
    """Samples a process tree every `interval` s in a thread: the peak of the summed PSS and RSS, each
    process's own peak PSS and RSS and CPU time (as of its last sample) with its role, and a timeline of (epoch seconds, pid, PSS kB) for the
    processes above 50 MiB (to line memory up with what the run was doing then)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval = pid, interval
        self.peak = {"pss_kb": 0, "rss_kb": 0, "processes": 0}
        self.per_process: dict[int, dict] = {}
        self.timeline: list[tuple[float, int, int]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            pids, now = tree(self.pid), time.time()
            total_pss = total_rss = 0
            for p in pids:
                pss, rss = memory_kb(p)
                total_pss, total_rss = total_pss + pss, total_rss + rss
                entry = self.per_process.get(p)
                if entry is None:
                    entry = self.per_process[p] = {"role": role(p, self.pid), "pss_kb": 0, "rss_kb": 0, "cpu_s": 0.0}
                cpu = cpu_seconds(p)
                if cpu is not None:
                    entry["cpu_s"] = max(entry["cpu_s"], cpu)
                if pss > 50 * 1024:
                    self.timeline.append((now, p, pss))
                entry["pss_kb"], entry["rss_kb"] = max(entry["pss_kb"], pss), max(entry["rss_kb"], rss)
            self.peak.update(pss_kb=max(self.peak["pss_kb"], total_pss), rss_kb=max(self.peak["rss_kb"], total_rss),
                             processes=max(self.peak["processes"], len(pids)))
            self._done.wait(self.interval)

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def run_sampled(cmd: list[str], interval: float = 0.2, **popen) -> dict:
    """Run `cmd` to its end with its tree sampled: {pss_kb, rss_kb, processes (peaks), seconds, output,
    returncode, per_process: {pid: {role, pss_kb, rss_kb, cpu_s}}, timeline}. The output is stdout and stderr together."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    start = time.monotonic()
    with TreeSampler(proc.pid, interval) as sampler:
        output = proc.communicate()[0]
    return {**sampler.peak, "seconds": round(time.monotonic() - start, 1), "output": output,
            "returncode": proc.returncode, "per_process": sampler.per_process, "timeline": sampler.timeline}
