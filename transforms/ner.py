"""Transformer NER: newsbeam's fine-tuned multilingual-e5-small token classifier (or any HF token-classification
model given by --ner-model), run through Beam's RunInference with a small ModelHandler of our own.

Mentions keep exact character offsets into `text`; they are grouped into entities (modeling.entities: one entity
for "Sergei Shoigu" / "Shoigu", for "Хабиба" / "Хабиб"), each with a base form, a cross-language id and a name.
Articles in a language the model is not measured on are passed through with `ner.status = skipped` and the reason, never given made-up entities.
"""
from __future__ import annotations

import functools
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from .common import (DEAD, InferenceFailure, SharedAcrossProcesses, counter, dead_letter, fixed_batches,
                     infer_with_single_retry, set_torch_threads)
from .inference import LanguageRoute, RoutedInference

# Every language whose dev F1 is at least 0.75 (relaxed document-level F1 for SlavNER, exact spans for the
# rest; docs/quality.md "NER per language"). sk, sv and zh were measured below it and stay skipped, as do languages
# never measured; --ner-languages opts them in, marked zero-shot.
NER_LANGUAGES = ("en", "de", "es", "nl", "fr", "it", "pt", "da", "pl", "ru", "cs", "sl", "uk", "bg", "hr", "sr")


def parse_ner_languages(spec: str | None) -> tuple[str, ...]:
    """--ner-languages: "bg,hr" is the whole set, "+bg,hr" adds to the measured one (NER_LANGUAGES); None gives
    the measured set. Codes are ISO 639 codes as the language detector gives them; ValueError names a bad one."""
    if spec is None:
        return NER_LANGUAGES
    items = [c.strip() for c in spec.split(",") if c.strip()]
    if not items:
        raise ValueError("give at least one language code (e.g. +bg,hr or en,de)")
    adding = [c.startswith("+") for c in items]
    if any(adding) and not all(adding):
        raise ValueError(f"{spec!r}: either every code starts with '+' (added to {','.join(NER_LANGUAGES)}) "
                         "or none does (the whole set)")
    codes = [c.lstrip("+").lower() for c in items]
    for code in codes:
        if not known_language(code):
            raise ValueError(f"{code!r} is not an ISO 639 language code that CLDR knows")
    chosen = (list(NER_LANGUAGES) if all(adding) else []) + codes
    return tuple(dict.fromkeys(chosen))


def unmeasured(languages: Sequence[str]) -> tuple[str, ...]:
    """The languages of a set that NER was not measured on: their output is zero-shot and unchecked."""
    return tuple(c for c in languages if c not in NER_LANGUAGES)


def known_language(code: str) -> bool:
    """Whether `code` is a 2-3 letter ISO 639 code that CLDR (babel) knows."""
    from babel import Locale, UnknownLocaleError

    if not 2 <= len(code) <= 3 or not code.isalpha():
        return False
    try:
        Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def group_entities(text: str, spans: Iterable[Any], language: str | None = None) -> list[dict]:
    """Spans (start, end, type, score) -> the article's entities (modeling.entities.resolve_entities): mentions
    trimmed and grouped into one entity per name, each with base form, id and display name; offsets exact."""
    from modeling.entities import resolve_entities

    return resolve_entities(text, spans, language)


class NerModelHandler(SharedAcrossProcesses, ModelHandler[dict, PredictionResult, Any]):
    """RunInference handler: loads the tagger once per worker, tags a batch of articles' texts."""

    def __init__(self, model: str, window: int | None = None, overlap: int = 32,
                 max_batch_size: int = 32, torch_threads: int = 0, compile_model: bool = False,
                 decoding: str | None = None, precision: str = "auto", copies: int | None = None):
        """window, decoding: --ner-window, --ner-decoding (None: chosen per model by NerTagger.load);
        copies: --model-copies (transforms.common.SharedAcrossProcesses);
        torch_threads: --torch-threads, intra-op threads per worker process (0: torch's default);
        compile_model: --compile-models (modeling.shipping.compile_for_inference);
        precision: --precision (modeling.precision; auto probes once per worker, at load)."""
        super().__init__()
        self.model_name = model
        self.torch_threads, self.compile_model = torch_threads, compile_model
        self.window, self.decoding, self.precision = window, decoding, precision
        self.overlap, self.copies = overlap, copies
        self._batch = fixed_batches(max_batch_size)

    def load_model(self):
        from modeling.ner import NerTagger

        set_torch_threads(self.torch_threads)
        return NerTagger.load(self.model_name, window=self.window, overlap=self.overlap, compile=self.compile_model,
                              decoding=self.decoding, precision=self.precision)

    def run_inference(self, batch: Sequence[dict], model, inference_args: Optional[dict] = None):
        pairs = infer_with_single_retry(list(batch), lambda b: model.predict([a["text"] for a in b]),
                                        counter("ner_retried_singly"))
        return [PredictionResult(example=a, inference=s, model_id=self.model_name) for a, s in pairs]

    def batch_elements_kwargs(self):
        return self._batch

    def get_metrics_namespace(self) -> str:
        return "newsbeam_ner"


def model_label(name: str) -> str:
    from pathlib import Path

    p = Path(str(name))
    return f"newsbeam-ner ({p.name})" if (p / "newsbeam.json").exists() else str(name)


def attach_entities(result: PredictionResult, model_name: str):
    article = result.example
    if isinstance(result.inference, InferenceFailure):
        yield beam.pvalue.TaggedOutput(DEAD, dead_letter(article["input_ref"], "ner", result.inference.error,
                                                         article_id=article["id"]))
        return
    code = (article.get("language") or {}).get("code")
    entities = group_entities(article["text"], result.inference, code)
    counter("ner_done").inc()
    counter("entities").inc(len(entities))
    status = {"status": "done", "model": model_label(model_name)}
    if code not in NER_LANGUAGES:  # added by --ner-languages: say so in every such article
        counter("ner_unmeasured_language").inc()
        status["reason"] = f"zero-shot: NER quality is not measured for {code} (added by --ner-languages)"
    yield dict(article, entities=entities, ner=status)


def skip_ner(article: dict, reason: str) -> dict:
    counter("ner_skipped").inc()
    return dict(article, entities=[], ner={"status": "skipped", "reason": reason})


class RecogniseEntities(beam.PTransform):
    """Articles -> {"articles": with `entities` (or `ner.status` skipped and the reason), "dead_letter": articles
    the model failed on, "failed_batches": dead letters of failed batches}. Routing by language is inside the
    model handler (transforms.inference), the same stage in batch and streaming."""

    def __init__(self, model: str, languages: Sequence[str] = NER_LANGUAGES, window: int | None = None, overlap: int = 32,
                 max_batch_size: int = 32, torch_threads: int = 0, compile_model: bool = False,
                 decoding: str | None = None, precision: str = "auto", copies: int | None = None):
        super().__init__()
        self.model, self.languages = model, tuple(languages)
        self.handler = NerModelHandler(model, window=window, overlap=overlap, max_batch_size=max_batch_size,
                                       torch_threads=torch_threads, compile_model=compile_model, decoding=decoding,
                                       precision=precision, copies=copies)

    def routed(self) -> RoutedInference:
        """The stage itself: the handler behind the language route, attach and skip (also run without Beam by
        newsbeam.enrich through RoutedInference.run_in_process)."""
        return RoutedInference("ner", self.handler, LanguageRoute("NER", self.languages),
                               functools.partial(attach_entities, model_name=self.model), skip_ner)

    def expand(self, articles):
        return articles | "Routed" >> self.routed()
