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

import importlib.util as _util
from pathlib import Path as _Path


def _check_not_shadowed() -> None:
    """The design's packages are installed under generic names (pipeline, transforms, schemas, modeling): a
    notebook folder's own `pipeline.py` would be imported in their place and fail far from the cause. Say so."""
    home = _Path(__file__).resolve().parent.parent
    for name in ("pipeline", "transforms", "schemas", "modeling"):
        spec = _util.find_spec(name)
        origin = _Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is None or home not in origin.parents:
            raise ImportError(f"newsbeam needs its own `{name}` package (in {home}), but `import {name}` finds "
                              f"{origin or 'a namespace package'}: rename that module or folder, or start Python "
                              f"from another folder")


_check_not_shadowed()

from pipeline._version import __version__  # noqa: E402 (the one place it is written)

# name -> the module that defines it, imported on first use: `import newsbeam` (and `newsbeam.__version__`) stays
# instant, and only what a notebook uses loads torch (enrich), pandas (read_output) or Beam (run).
_LAZY = {"Article": "schemas", "DeadLetter": "schemas", "DuplicateRecord": "schemas",
         "EnrichError": "newsbeam.enricher", "Enriched": "newsbeam.enricher", "Enricher": "newsbeam.enricher",
         "enrich": "newsbeam.enricher", "KINDS": "newsbeam.output", "read_output": "newsbeam.output",
         "run": "newsbeam.runner"}
_SUBMODULES = ("enricher", "output", "runner")

__all__ = ["__version__", "Article", "DeadLetter", "DuplicateRecord", "EnrichError", "Enriched", "Enricher",
           "KINDS", "enrich", "read_output", "run"]


def __getattr__(name: str):
    """The public names (and the submodules) on first access; each is then cached as a module attribute."""
    import importlib

    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBMODULES})
