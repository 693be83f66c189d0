"""Small things every stage shares: output tags, counters, dead-letter records."""
from __future__ import annotations

import threading
from collections import Counter

import apache_beam as beam
from apache_beam.metrics import Metrics

NAMESPACE = "newsbeam"


DEAD = "dead_letter"


def set_torch_threads(n: int) -> None:
    """Cap torch's intra-op threads in this worker process (0: leave torch's default). A Dataflow worker runs one
    SDK process per vCPU, each loading its own model copy: without a cap each starts one thread per vCPU."""
    if n and n > 0:
        import torch

        torch.set_num_threads(n)


class SharedAcrossProcesses:
    """The part of a model handler that says how many copies of its model a machine holds (`--model-copies`).

    copies None: Beam's default, one copy per SDK process (shared by its threads). copies N >= 1: at most N
    copies per machine, served to every SDK process of it over Beam's multi_process_shared (the first process
    that loads the model hosts it; the others call it), so a Dataflow worker with one SDK process per vCPU holds
    one model, not one per vCPU."""

    copies: int | None = None

    def share_model_across_processes(self) -> bool:
        return self.copies is not None

    def model_copies(self) -> int:
        return self.copies or 1


def fixed_batches(max_batch_size: int) -> dict:
    """BatchElements arguments for the model stages: batches of exactly max_batch_size articles, fewer only at the
    end of a bundle.

    Beam's default sizes batches adaptively. It fits batch time as fixed cost plus cost per element, and only aims
    to keep the fixed cost under 5% of a batch; each new size is at most twice the last. A single article costs far
    more than that fixed cost, so small batches already meet the aim. But our cost per article still falls with
    batch size: stance runs one short forward pass per one or two mentions otherwise. On the local runner the
    default kept batches at 1-4 articles (bench/bench_beam_batches.py; docs/benchmarks.md).

    No article is held past the end of its bundle: BatchElements flushes a partial batch there. Within a large
    bundle, an article may wait for up to max_batch_size - 1 others. Do not add `max_batch_duration_secs`: that
    timer-based path has no bundle-end flush, and with fixed sizes it could hold a partial batch in global windows
    until more articles arrive."""
    if max_batch_size < 1:
        raise ValueError(f"a batch size must be at least 1, not {max_batch_size}")
    return {"min_batch_size": max_batch_size, "max_batch_size": max_batch_size}


_LOCAL_COUNTS: Counter = Counter()  # process-local tallies of the counters, for live progress on a local runner
_LOCAL_LOCK = threading.Lock()


def _tally(name: str, n: int = 1) -> None:
    with _LOCAL_LOCK:
        _LOCAL_COUNTS[name] += n


def local_counts() -> dict[str, int]:
    """What this process's stages have counted so far. Only for the launcher's progress display: Beam's Metrics
    (read after the run) are the record; a runner with worker processes leaves these at zero here."""
    with _LOCAL_LOCK:
        return dict(_LOCAL_COUNTS)


class StageCounter:
    """A Beam Metrics counter in the newsbeam namespace that also keeps the process-local tally above."""

    def __init__(self, name: str):
        self.name = name
        self.metric = Metrics.counter(NAMESPACE, name)

    def inc(self, n: int = 1) -> None:
        self.metric.inc(n)
        _tally(self.name, n)


def counter(name: str) -> StageCounter:
    return StageCounter(name)


REASONS_NAMESPACE = "newsbeam_dead_letter_reasons"
MAX_REASONS = 200  # distinct reason counters per worker process; the rest are counted as OTHER_REASONS
OTHER_REASONS = "(other reasons)"
_REASONS_SEEN: set[str] = set()


def count_reason(error: str) -> None:
    """One counter per dead-letter reason (its first 120 characters), for the summary's top reasons; bounded, so
    a run with a different reason per record cannot flood the runner's metrics."""
    key = error[:120]
    with _LOCAL_LOCK:
        if key not in _REASONS_SEEN:
            if len(_REASONS_SEEN) >= MAX_REASONS:
                key = OTHER_REASONS
            else:
                _REASONS_SEEN.add(key)
    Metrics.counter(REASONS_NAMESPACE, key).inc()


def dead_letter(input_ref: str, stage: str, error: str, article_id: str | None = None,
                excerpt: str | bytes | None = None) -> dict:
    """A dead-letter record (validated against schemas.DeadLetter when written)."""
    if isinstance(excerpt, bytes):
        excerpt = excerpt[:200].decode("utf-8", errors="replace")
    elif isinstance(excerpt, str):
        excerpt = excerpt[:200]
    _tally("dead_letter_records")  # progress display only; the dead_lettered counter is counted on write
    count_reason(error)
    rec = {"input_ref": input_ref, "stage": stage, "error": error[:2000]}
    if article_id:
        rec["id"] = article_id
    if excerpt:
        rec["excerpt"] = excerpt.replace("\x00", "\\x00")
    return rec


def tagged_dead(input_ref: str, stage: str, error: str, **kw) -> beam.pvalue.TaggedOutput:
    counter(f"dead_letter_{stage}").inc()
    return beam.pvalue.TaggedOutput(DEAD, dead_letter(input_ref, stage, error, **kw))


class InferenceFailure:
    """Placed in a PredictionResult when one article failed even on its own: it goes to the dead letters."""

    def __init__(self, error: str):
        self.error = error

    def __repr__(self) -> str:
        return f"InferenceFailure({self.error!r})"


def infer_with_single_retry(batch, infer_batch, retried_counter):
    """Run a batch; if it raises, retry each element alone so one bad article cannot sink its neighbours.

    Returns a list of (element, result or InferenceFailure).
    """
    try:
        return list(zip(batch, infer_batch(batch)))
    except Exception:
        retried_counter.inc(len(batch))
    out = []
    for element in batch:
        try:
            out.append((element, infer_batch([element])[0]))
        except Exception as exc:  # the element fails alone: a dead letter with the reason
            out.append((element, InferenceFailure(f"{type(exc).__name__}: {exc}")))
    return out
