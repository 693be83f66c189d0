"""`newsbeam.enrich`: the pipeline's stages on a list, in this process, without Beam.

The same code as the graph (pipeline/graph.py `ProcessArticles`) in the same order: parse (transforms.parse),
language (transforms.langid), dedup (transforms.dedup_local, the keep rule of transforms.dedup), NER and stance
(the RunInference handlers' own load_model/run_inference and attach functions), then validation against
schemas.Article. So an article enriched here equals the one a pipeline run writes for the same input.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, Union


from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL
from pipeline.graph import MODELS_SKIPPED
from pipeline.options import DEFAULT_TARGETS_CONFIG
from schemas import Article, DeadLetter, DuplicateRecord
from transforms.common import dead_letter
from transforms.dedup_local import deduplicate_list
from transforms.langid import detect_language, load_detector
from transforms.inference import RoutedInference
from transforms.ner import RecogniseEntities, parse_ner_languages, skip_ner
from transforms.parse import ParseError, ParseLimits, parse_raw
from transforms.stance import (ClassifyStance, load_targets_config, parse_stance_languages, parse_target_specs,
                               skip_stance, with_config_aliases)

Item = Union[str, bytes, dict, "os.PathLike[str]"]

_MODELS: dict[tuple, Any] = {}  # (kind, model, precision, ...) -> loaded model, shared by every Enricher
_MODELS_LOCK = threading.Lock()
_DETECTOR: list = []


class EnrichError(ValueError):
    """Some items could not be enriched (errors="raise"); `dead_letters` says which and why."""

    def __init__(self, dead_letters: list[dict]):
        self.dead_letters = dead_letters
        first = dead_letters[0]
        super().__init__(f"{len(dead_letters)} item(s) could not be enriched; first: {first['input_ref']} "
                         f"({first['stage']}): {first['error']}")


@dataclass
class Enriched:
    """What one `Enricher.process` call gives: kept articles, duplicate records and dead letters (as dicts, the
    shape of duplicates.jsonl and dead_letter.jsonl)."""

    articles: list[Article] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    dead_letters: list[dict] = field(default_factory=list)


def resolve_targets(targets: Sequence[str] | Mapping[str, Sequence[str]] | None,
                    targets_config: str = DEFAULT_TARGETS_CONFIG) -> dict[str, list[str]]:
    """As `newsbeam run --targets`: names or 'Name=alias,...' specs plus the config file's aliases; None: the
    config file's targets."""
    config = load_targets_config(str(targets_config))
    if targets is None:
        return config
    specs = parse_target_specs(list(targets)) if not isinstance(targets, Mapping) else \
        {str(k): [str(a) for a in v] for k, v in targets.items()}
    return with_config_aliases(specs, config)


def _cached(key: tuple, load) -> Any:
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load()
        return _MODELS[key]


def raw_inputs(items: Iterable[Item]) -> list[dict]:
    """Items -> the raw inputs the pipeline's parser reads ({ref, data, fetched_at}).

    A path (os.PathLike) is a file or glob pattern read as `--input` reads it (pipeline.sources); a str or bytes
    is one input's content (seed text with its `date` line, JSONL lines or an RSS/Atom document, told apart as
    for a file without extension); a dict is one JSONL record (text, published, optional title/url/source/
    targets). Non-path items are named `items[N]` in input_ref."""
    from pipeline.sources import match_pattern, read_matched

    raws, seen = [], set()
    for n, item in enumerate(items):
        if isinstance(item, os.PathLike):
            for ref, info in match_pattern(os.fspath(item)):
                if ref not in seen:
                    seen.add(ref)
                    raws.append(read_matched((ref, info)))
            continue
        if isinstance(item, dict):
            data = json.dumps(item, ensure_ascii=False, default=str).encode("utf-8")
        elif isinstance(item, str):
            data = item.encode("utf-8")
        elif isinstance(item, bytes):
            data = item
        else:
            raise TypeError(f"items[{n}]: expected a str, bytes, dict or path, not {type(item).__name__}")
        raws.append({"ref": f"items[{n}]", "data": data, "fetched_at": None})
    return raws


class Enricher:
    """The stages with their settings; models are loaded on first use and kept for the process (shared by every
    Enricher with the same model settings), so repeated calls pay no load."""

    def __init__(self, targets: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *,
                 precision: str = "auto", ner_model: str = DEFAULT_NER_MODEL,
                 stance_model: str = DEFAULT_STANCE_MODEL, ner_window: int | None = None,
                 ner_decoding: str | None = None, ner_languages: str | Sequence[str] | None = None,
                 stance_languages: str | Sequence[str] | None = None,
                 batch_size: int = 32, auto_targets: int = 3,
                 dedup_threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3,
                 max_chars: int = 200_000, targets_config: str = DEFAULT_TARGETS_CONFIG,
                 skip_models: bool = False):
        """Each setting is the `newsbeam run` option of the same name (`newsbeam run --help`)."""
        self.targets = resolve_targets(targets, targets_config)
        self.limits = ParseLimits(max_chars=max_chars)
        self.dedup = dict(threshold=dedup_threshold, num_perm=num_perm, shingle_size=shingle_size)
        self.auto_targets, self.batch_size, self.skip_models = auto_targets, batch_size, skip_models
        # the pipeline's own stages (handler, language route, attach, skip), run without Beam
        languages = parse_ner_languages(ner_languages if ner_languages is None or isinstance(ner_languages, str)
                                        else ",".join(ner_languages))
        self.ner = RecogniseEntities(str(ner_model), languages=languages, window=ner_window, decoding=ner_decoding,
                                     precision=precision, max_batch_size=batch_size).routed()
        stance_languages = parse_stance_languages(
            stance_languages if stance_languages is None or isinstance(stance_languages, str)
            else ",".join(stance_languages), languages)
        self.stance = ClassifyStance(str(stance_model), self.targets, languages=stance_languages,
                                     max_batch_size=batch_size,
                                     auto_top_n=auto_targets, precision=precision).routed()
        self.ner_key = ("ner", str(ner_model), ner_window, ner_decoding, precision)
        self.stance_key = ("stance", str(stance_model), precision)

    def process(self, items: Iterable[Item]) -> Enriched:
        """Every item through parse, language, dedup, NER, stance and validation."""
        dead: list[dict] = []
        articles = []
        for raw in raw_inputs(items):
            for ref, result in parse_raw(raw, self.limits):
                if isinstance(result, ParseError):
                    dead.append(dead_letter(ref, "parse", str(result),
                                            excerpt=raw.get("data") if ref == raw["ref"] else None))
                else:
                    articles.append(result)
        articles = self._languages(articles, dead)
        kept, duplicates = deduplicate_list(articles, **self.dedup)
        if self.skip_models:
            enriched = [skip_stance(skip_ner(a, MODELS_SKIPPED), self.targets, MODELS_SKIPPED, self.auto_targets)
                        for a in kept]
        else:
            enriched = self._stance(self._entities(kept, dead), dead)
        out = Enriched(duplicates=[DuplicateRecord.model_validate(d).model_dump(mode="json") for d in duplicates])
        for article in enriched:
            try:
                out.articles.append(Article.model_validate(article))
            except Exception as exc:  # as pipeline.sinks: an invalid article is a dead letter
                dead.append(dead_letter(article.get("input_ref", "?"), "validate",
                                        f"schema validation failed: {exc}", article_id=article.get("id")))
        out.dead_letters = [DeadLetter.model_validate(d).model_dump(mode="json") for d in dead]
        return out

    def _languages(self, articles: list[dict], dead: list[dict]) -> list[dict]:
        with _MODELS_LOCK:
            if not _DETECTOR:
                _DETECTOR.append(load_detector())
        out = []
        for a in articles:
            try:
                out.append(dict(a, language=detect_language(_DETECTOR[0], a["title"], a["text"])))
            except Exception as exc:
                dead.append(dead_letter(a["input_ref"], "langid", f"{type(exc).__name__}: {exc}", article_id=a["id"]))
        return out

    def _model_stage(self, stage: RoutedInference, key: tuple, articles: list[dict], dead: list[dict]
                     ) -> list[dict]:
        """One model stage over fixed batches, in order: each article attached, skipped with the reason, or
        dead-lettered, exactly as the graph's stage does (RoutedInference.run_in_process)."""
        if not articles:
            return []
        model = _cached(key, stage.handler.load_model)
        out: list[dict] = []
        for start in range(0, len(articles), self.batch_size):
            done, failed = stage.run_in_process(model, articles[start:start + self.batch_size])
            out += done
            dead += failed
        return out

    def _entities(self, articles: list[dict], dead: list[dict]) -> list[dict]:
        return self._model_stage(self.ner, self.ner_key, articles, dead)

    def _stance(self, articles: list[dict], dead: list[dict]) -> list[dict]:
        return self._model_stage(self.stance, self.stance_key, articles, dead)


def enrich(items: Iterable[Item], targets: Sequence[str] | Mapping[str, Sequence[str]] | None = None, *,
           errors: str = "raise", **settings: Any) -> list[Article]:
    """Enrich texts, records or files as `newsbeam run` would; the kept articles (duplicates dropped), in order.

    items: paths or glob patterns (pathlib.Path), seed-format texts (first line `date YYYY-MM-DD`), JSONL or
    RSS/Atom documents as str, or dicts with `text` and `published` (see `raw_inputs`). targets: stance targets
    as for `--targets` (None: pipeline/targets.yaml). errors: "raise" raises EnrichError if any item was
    dead-lettered, "skip" leaves it out (`Enricher.process` returns the dead letters and duplicates too).
    settings: `Enricher` keywords, e.g. precision="fp32"."""
    if errors not in ("raise", "skip"):
        raise ValueError(f'errors must be "raise" or "skip", not {errors!r}')
    result = Enricher(targets, **settings).process(items)
    if errors == "raise" and result.dead_letters:
        raise EnrichError(result.dead_letters)
    return result.articles
