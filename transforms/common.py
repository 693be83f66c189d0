"""Small things every stage shares: output tags, counters, dead-letter records."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

import logging

NAMESPACE = "newsbeam"


class _DropBeamMemoryWarning(logging.Filter):
    """Beam's RunInference imports `resource` only if scipy is present and otherwise warns on every batch that
    it cannot read memory use; newsbeam does not need scipy, so that one message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Resource module is not available" not in record.getMessage()


logging.getLogger().addFilter(_DropBeamMemoryWarning())
DEAD = "dead_letter"


def counter(name: str):
    return Metrics.counter(NAMESPACE, name)


def dead_letter(input_ref: str, stage: str, error: str, article_id: str | None = None,
                excerpt: str | bytes | None = None) -> dict:
    """A dead-letter record (validated against schemas.DeadLetter when written)."""
    if isinstance(excerpt, bytes):
        excerpt = excerpt[:200].decode("utf-8", errors="replace")
    elif isinstance(excerpt, str):
        excerpt = excerpt[:200]
    rec = {"input_ref": input_ref, "stage": stage, "error": error[:2000]}
    if article_id:
        rec["id"] = article_id
    if excerpt:
        rec["excerpt"] = excerpt.replace("\x00", "\\x00")
    return rec


def tagged_dead(input_ref: str, stage: str, error: str, **kw) -> beam.pvalue.TaggedOutput:
    counter(f"dead_letter_{stage}").inc()
    return beam.pvalue.TaggedOutput(DEAD, dead_letter(input_ref, stage, error, **kw))
