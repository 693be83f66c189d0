"""newsbeam from Python: enrich articles in-process, run the pipeline, load its output.

    >>> from pathlib import Path
    >>> import newsbeam
    >>> articles = newsbeam.enrich([Path("seeds/sample_article.txt")], targets=["Armenia", "Azerbaijan"])
    >>> df = newsbeam.read_output("out/", kind="stance")

`enrich` runs the pipeline's own parse, language, dedup, NER and stance code on a list, without Beam (models
loaded once per process); `run` is `newsbeam run` with keyword options; `read_output` loads what a run wrote as a
pandas DataFrame with fixed columns and dtypes. This package is the top layer: it imports `pipeline`,
`transforms`, `modeling` and `schemas`, and nothing imports it.
"""
from __future__ import annotations

from pipeline import __version__
from schemas import Article, DeadLetter, DuplicateRecord

from .enricher import EnrichError, Enriched, Enricher, enrich
from .output import KINDS, read_output
from .runner import run

__all__ = ["__version__", "Article", "DeadLetter", "DuplicateRecord", "EnrichError", "Enriched", "Enricher",
           "KINDS", "enrich", "read_output", "run"]
