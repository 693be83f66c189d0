"""Sources: files matched by patterns on any Beam filesystem, read whole (MatchFiles + ReadMatches), and RSS/Atom
feeds over HTTP (`ReadFeeds`, which lives in pipeline/feeds.py with its HTTP client and is re-exported here).

A file or feed that cannot be read becomes a raw input carrying the error, so it is dead-lettered, not lost.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

import apache_beam as beam
from apache_beam.io import fileio


def _to_raw(readable) -> dict:
    meta = readable.metadata
    mtime = None
    if getattr(meta, "last_updated_in_seconds", None):
        mtime = dt.datetime.fromtimestamp(meta.last_updated_in_seconds, dt.timezone.utc).replace(microsecond=0)
    raw = {"ref": meta.path, "mtime": mtime.isoformat() if mtime else None}
    try:
        raw["data"] = readable.read()
    except Exception as exc:  # unreadable file: keep it as a record with the reason
        raw["data"] = b""
        raw["error"] = f"cannot read file: {type(exc).__name__}: {exc}"
    raw["fetched_at"] = raw["mtime"]
    return raw


class ReadInputFiles(beam.PTransform):
    """Patterns -> raw inputs {ref, data, fetched_at}; a pattern that matches nothing is an error up front."""

    def __init__(self, patterns: Sequence[str]):
        super().__init__()
        self.patterns = list(patterns)

    def expand(self, pbegin):
        return (pbegin
                | "Patterns" >> beam.Create(self.patterns)
                | "Match" >> fileio.MatchAll(empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
                | "Open" >> fileio.ReadMatches(compression=None)
                | "Read" >> beam.Map(_to_raw))


def check_patterns(patterns: Sequence[str]) -> list[str]:
    """Patterns that match no file (checked before the run, so a typo is a clear error, not an empty output)."""
    from apache_beam.io.filesystems import FileSystems

    missing = []
    for pattern in patterns:
        try:
            result = FileSystems.match([pattern])[0]
            if not result.metadata_list:
                missing.append(pattern)
        except Exception as exc:  # e.g. gs:// without apache-beam[gcp] installed: say why
            missing.append(f"{pattern} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
    return missing


def __getattr__(name: str):
    """`from pipeline.sources import ReadFeeds`: imported on first use (the HTTP client is not needed for files)."""
    if name == "ReadFeeds":
        from .feeds import ReadFeeds

        return ReadFeeds
    raise AttributeError(name)
