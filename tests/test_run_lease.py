"""One run at a time per output root (pipeline.lease): the lease's logic on real local files (acquire, refuse,
release, stale takeover by dead pid, reused pid, expiry, an unreadable lease, --break-lease, a renewal that finds
the lease taken), and the real thing: `newsbeam run --skip-models` refused while the root is held (exit 4, the
holder named), and two real runs started together into one root, whose accounting holds either way."""
from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipeline.commands import EXIT_BUSY
from pipeline.layout import lease_file
from pipeline.lease import TTL, Holder, LocalStore, RootBusy, acquire, process_started, stale_reason
from tests.conftest import ROOT, read_output, run_cli

HOST = socket.gethostname()


def _lease(root: Path) -> dict:
    return json.loads(Path(lease_file(str(root))).read_text())


def _plant(root: Path, **fields) -> None:
    """A lease another run left, written as that run would have."""
    holder = {"kind": "newsbeam run", "host": HOST, "pid": os.getpid(), "started": 1000.0, "expires": 10 ** 10,
              "token": "someone-else", "pid_started": process_started(os.getpid()), "job": None, **fields}
    path = Path(lease_file(str(root)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(holder))


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- the lease on local files -----------------------------------------------------------------------------------

def test_acquire_refuse_release(tmp_path):
    root = tmp_path / "out"
    lease = acquire(str(root), "newsbeam run")
    held = _lease(root)
    assert (held["host"], held["pid"], held["kind"]) == (HOST, os.getpid(), "newsbeam run")
    assert held["expires"] == pytest.approx(held["started"] + TTL)
    with pytest.raises(RootBusy) as busy:
        acquire(str(root), "newsbeam backfill 2020-12-01..2020-12-31", pid=os.getpid() + 1)
    message = str(busy.value)
    for part in (str(root), f"host {HOST}", f"pid {os.getpid()}", "newsbeam run", "UTC", lease_file(str(root)),
                 "--break-lease"):
        assert part in message, (part, message)
    assert busy.value.holder.token == held["token"]
    lease.release()
    assert not Path(lease_file(str(root))).exists()
    acquire(str(root), "newsbeam backfill", pid=os.getpid() + 1).release()  # free again


def test_a_lease_whose_pid_is_gone_is_taken_over_at_once(tmp_path, caplog):
    _plant(tmp_path, pid=_dead_pid(), pid_started=None)
    lease = acquire(str(tmp_path), "newsbeam run")
    assert _lease(tmp_path)["token"] == lease.holder.token
    assert "took over" in caplog.text and "is not running" in caplog.text


def test_a_reused_pid_is_not_the_holder(tmp_path):
    _plant(tmp_path, pid_started="1")  # this process's pid, but a process that started at another time
    acquire(str(tmp_path), "newsbeam run")
    assert _lease(tmp_path)["token"] != "someone-else"


def test_a_live_holder_on_this_host_is_not_stale(tmp_path):
    _plant(tmp_path)  # this very process, started when it did
    with pytest.raises(RootBusy):
        acquire(str(tmp_path), "newsbeam run")


def test_another_hosts_lease_holds_until_it_expires(tmp_path):
    _plant(tmp_path, host="elsewhere", pid=_dead_pid(), expires=5000.0)  # its pid means nothing here
    with pytest.raises(RootBusy, match="lease expires in 1000 s"):
        acquire(str(tmp_path), "newsbeam run", clock=lambda: 4000.0)
    lease = acquire(str(tmp_path), "newsbeam run", clock=lambda: 5000.0)
    assert _lease(tmp_path)["token"] == lease.holder.token


def test_a_job_lease_never_expires_and_names_the_job(tmp_path):
    _plant(tmp_path, host="launcher", expires=None, job="2024-05-01_10_00_00-123")
    with pytest.raises(RootBusy) as busy:
        acquire(str(tmp_path), "newsbeam run", clock=lambda: 10.0 ** 12)
    assert "Dataflow job 2024-05-01_10_00_00-123" in str(busy.value) and "drained" in str(busy.value)
    assert acquire(str(tmp_path), "newsbeam run", break_lease=True).holder.kind == "newsbeam run"


def test_an_unreadable_lease_holds_for_a_ttl(tmp_path):
    path = Path(lease_file(str(tmp_path)))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # a create interrupted before its write
    with pytest.raises(RootBusy, match="unreadable lease"):
        acquire(str(tmp_path), "newsbeam run")
    os.utime(path, (path.stat().st_mtime - TTL - 1,) * 2)
    assert acquire(str(tmp_path), "newsbeam run").holder.token == _lease(tmp_path)["token"]


def test_renew_pushes_the_expiry_and_a_taken_lease_is_lost_not_released(tmp_path):
    lease = acquire(str(tmp_path), "newsbeam run", clock=lambda: 1000.0)
    assert lease.renew(now=2000.0) and _lease(tmp_path)["expires"] == 2000.0 + TTL
    other = acquire(str(tmp_path), "newsbeam run", break_lease=True, pid=os.getpid() + 1)
    assert not lease.renew() and "holds it now" in lease.lost
    lease.release()  # not this run's any more: left to its holder
    assert _lease(tmp_path)["token"] == other.holder.token
    other.release()
    assert not Path(lease_file(str(tmp_path))).exists()


def test_keep_alive_renews_on_its_thread(tmp_path):
    lease = acquire(str(tmp_path), "newsbeam run", clock=lambda: 1000.0)
    renewed = threading.Event()
    original = lease.renew

    def renew(now=None):
        done = original(now)
        renewed.set()
        return done

    lease.renew = renew
    with lease.keep_alive(every=0.01):
        assert renewed.wait(600)
    assert _lease(tmp_path)["expires"] > 1000.0 + TTL


def test_a_takeover_is_a_compare_and_swap(tmp_path):
    """Two runs that both judged one lease stale: the first replace wins, the second sees the change."""
    store = LocalStore(lease_file(str(tmp_path)))
    version = store.create(b"stale")
    assert store.create(b"again") is None
    assert store.replace(b"run A", version) is not None
    assert store.replace(b"run B", version) is None and not store.delete(version)
    assert store.read()[0] == b"run A"


def test_stale_reason_is_pure():
    holder = Holder(kind="newsbeam run", host="h", pid=7, started=0.0, expires=100.0, token="t", pid_started="5")
    assert stale_reason(holder, 50.0, "h", alive=lambda pid: True, started_of=lambda pid: "5") is None
    assert "not running" in stale_reason(holder, 50.0, "h", alive=lambda pid: False)
    assert "another process" in stale_reason(holder, 50.0, "h", alive=lambda pid: True, started_of=lambda pid: "9")
    assert stale_reason(holder, 50.0, "other", alive=lambda pid: False) is None
    assert "expired 1 s ago" in stale_reason(holder, 101.0, "other")


# --- real runs --------------------------------------------------------------------------------------------------

WORDS = sorted({w for f in (ROOT / "seeds").glob("*.txt") if not f.name.startswith(("de_", "es_", "fr_", "nl_",
                                                                                        "pl_", "ru_"))
                for w in re.findall(r"[a-z]+", f.read_text(encoding="utf-8").lower()) if len(w) > 3})


def _article(seed: int, day: int) -> dict:
    rng = random.Random(seed)
    text = " ".join(rng.choice(WORDS) for _ in range(90)).capitalize() + "."
    return {"title": f"Story {seed}", "text": text, "published": f"2020-12-{day:02d}"}


def _inputs(folder: Path) -> tuple[Path, Path]:
    """Run A: 80 different articles. Run B: 72 others, 5 exact copies and 3 near copies of A's (as the runs of
    the concurrent-accounting bug)."""
    folder.mkdir()
    a = [_article(i, 1 + i % 5) for i in range(80)]
    b = [_article(1000 + i, 1 + i % 5) for i in range(72)] + a[:5]
    for k in range(5, 8):
        words = a[k]["text"].split()
        b.append({**a[k], "title": f"{a[k]['title']} (syndicated)", "text": " ".join(words[:-2] + ["indeed."])})
    paths = folder / "a.jsonl", folder / "b.jsonl"
    for path, records in zip(paths, (a, b)):
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return paths


def _run_args(inp: Path, out: Path) -> list[str]:
    return ["run", "--input", str(inp), "--output", str(out), "--skip-models", "--quiet"]


def _read_count(stdout: str) -> int:
    return int(re.search(r"newsbeam summary \([\d.]+s\): read (\d+)", stdout).group(1))


def _on_disk(out: Path) -> int:
    found = read_output(out)
    return len(found["articles"]) + len(found["duplicates"]) + len(found["dead"])


def test_a_run_into_a_held_root_is_refused_then_runs_once_released(tmp_path):
    a, _ = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    held = acquire(str(out), "newsbeam backfill 2020-12-01..2020-12-05", pid=os.getpid())
    proc = run_cli(_run_args(a, out))
    assert proc.returncode == EXIT_BUSY, proc.stdout + proc.stderr
    for part in ("refused", "is busy", f"host {HOST}", f"pid {os.getpid()}", "newsbeam backfill 2020-12-01..2020-12-05",
                 "UTC", str(out / "_state" / "lease"), "--break-lease"):
        assert part in proc.stderr, (part, proc.stderr)
    assert not list(out.glob("dt=*")) and _lease(out)["token"] == held.holder.token  # nothing written, lease kept
    dry = run_cli(["backfill", "--dry-run", "--since", "2020-12-01", "--until", "2020-12-05", "--input", str(a),
                   "--output", str(out)])
    assert dry.returncode == 0 and "80 articles" in dry.stdout, dry.stdout + dry.stderr  # writes nothing: no lease
    held.release()
    proc = run_cli(_run_args(a, out))
    assert proc.returncode == 0 and "every record accounted for" in proc.stdout, proc.stdout + proc.stderr
    assert _on_disk(out) == 80 and not Path(lease_file(str(out))).exists()  # released at the end


def test_break_lease_takes_a_held_root(tmp_path):
    a, _ = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    held = acquire(str(out), "newsbeam run", pid=os.getpid())
    proc = run_cli([*_run_args(a, out), "--break-lease"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "took over the lease" in proc.stderr and "--break-lease" in proc.stderr
    assert not held.renew() and held.lost  # the holder finds out at its next renewal


def test_two_runs_started_together_into_one_root_account_for_every_record(tmp_path):
    """Started at once: either one is refused (exit 4) and the root holds the other's records, or the lease
    made them one after the other and it holds both's. Written + duplicates + dead letters in the root equals
    what the successful runs read, which two overlapping runs break (copies merged, near copies kept twice)."""
    inputs = _inputs(tmp_path / "in")
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "pipeline.cli", *_run_args(inp, out)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for inp in inputs]
    outputs = [p.communicate(timeout=1800) for p in procs]
    results = [(p.returncode, so, se) for p, (so, se) in zip(procs, outputs)]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, EXIT_BUSY]), results
    succeeded = [so for code, so, _ in results if code == 0]
    assert all("every record accounted for" in so for so in succeeded), results
    if codes == [0, EXIT_BUSY]:
        assert all("is busy" in se for code, _, se in results if code == EXIT_BUSY), results
    assert _on_disk(out) == sum(_read_count(so) for so in succeeded)
    assert not Path(lease_file(str(out))).exists()


def test_help_names_the_exit_status_and_the_override():
    for command in ("run", "backfill"):
        proc = run_cli([command, "--help"])
        assert proc.returncode == 0
        assert f"\n  {EXIT_BUSY}    refused: another run holds the output root" in proc.stdout
        assert "--break-lease" in proc.stdout
    proc = run_cli(["backfill", "--dry-run", "--break-lease", "--since", "2020-12-01", "--until", "2020-12-02",
                    "--input", "seeds/*.txt", "--output", "out-never-written"])
    assert proc.returncode == 2 and "--break-lease: not with --dry-run" in proc.stderr
