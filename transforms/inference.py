"""Language routing for the model stages, written once: a RunInference model handler that sends to the model
only the articles `route` accepts and gives every other article a `Skipped` with the reason, in its place.

Why inside the handler, not Partition + Flatten: on the local streaming runner a Flatten stalls everything after
it until the source stops (docs/streaming.md); routing inside the handler is one fused ParDo in both modes, so
batch and streaming run the same stage.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from .common import DEAD, dead_letter

Route = Callable[[dict], Optional[str]]  # article -> None (send to the model) or the reason it is skipped


class Skipped:
    """The 'inference' of an article the handler did not send to the model, with the reason."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"Skipped({self.reason!r})"


def language_code(article: dict) -> str:
    return (article.get("language") or {}).get("code") or "und"


class LanguageRoute:
    """The route of a model measured on `languages` (picklable: it travels with the handler to the workers)."""

    def __init__(self, stage: str, languages: Sequence[str], targets: Optional[dict] = None):
        self.stage, self.languages, self.targets = stage, tuple(languages), targets

    def __call__(self, article: dict) -> Optional[str]:
        if self.targets is not None and not (article.get("targets") or self.targets):
            return "no targets configured"
        code = language_code(article)
        if code in self.languages:
            return None
        return f"unsupported language: {code} ({self.stage} covers {', '.join(self.languages)})"


class RoutedModelHandler(ModelHandler[dict, PredictionResult, Any]):
    """`inner` (a ModelHandler of articles) behind `route`: the model is loaded once per worker by RunInference
    as usual, and runs on the routed articles of each batch only."""

    def __init__(self, inner: ModelHandler, route: Route):
        super().__init__()
        self.inner, self.route = inner, route
        self.model_name = getattr(inner, "model_name", None)

    def load_model(self):
        return self.inner.load_model()

    def run_inference(self, batch: Sequence[dict], model, inference_args: Optional[dict] = None):
        batch = list(batch)
        reasons = [self.route(a) for a in batch]
        todo = [a for a, r in zip(batch, reasons) if r is None]
        done = iter(self.inner.run_inference(todo, model, inference_args) if todo else [])
        return [next(done) if r is None else PredictionResult(example=a, inference=Skipped(r),
                                                                 model_id=self.model_name)
                for a, r in zip(batch, reasons)]

    def batch_elements_kwargs(self):
        return self.inner.batch_elements_kwargs()

    def share_model_across_processes(self) -> bool:
        return self.inner.share_model_across_processes()

    def model_copies(self) -> int:
        return self.inner.model_copies()

    def get_metrics_namespace(self) -> str:
        return self.inner.get_metrics_namespace()


def failed_batch_dead_letters(item, stage: str) -> list[dict]:
    """A batch the model failed on as a whole -> one dead letter per article, with the exception."""
    batch, exc = item
    return [dead_letter(a["input_ref"], stage, f"model failed on this batch: {type(exc).__name__}: {exc}",
                        article_id=a["id"]) for a in batch]


def _attach_or_skip(result: PredictionResult, attach: Callable[[PredictionResult], Iterable],
                    skip: Callable[[dict, str], dict]):
    if isinstance(result.inference, Skipped):
        yield skip(result.example, result.inference.reason)
    else:
        yield from attach(result)


class RoutedInference(beam.PTransform):
    """Articles -> {"articles": each article once, attached or skipped with the reason, DEAD: articles the
    model failed on alone, "failed_batches": dead letters of batches that failed as a whole}.

    No Flatten inside (see the module docstring): the two dead-letter outputs stay apart for the caller."""

    def __init__(self, stage: str, handler: ModelHandler, route: Route, attach: Callable, skip: Callable):
        super().__init__()
        self.stage, self.attach, self.skip = stage, attach, skip
        self.handler = RoutedModelHandler(handler, route)

    def run_in_process(self, model, batch: Sequence[dict]) -> tuple[list[dict], list[dict]]:
        """(articles attached or skipped, dead letters) of one batch, without Beam (newsbeam.enrich): the same
        handler, routing, attach and skip as `expand`, and a batch failing as a whole dead-letters each article
        as RunInference's exception handling does."""
        try:
            results = list(self.handler.run_inference(list(batch), model))
        except Exception as exc:
            return [], failed_batch_dead_letters((batch, exc), self.stage)
        articles, dead = [], []
        for result in results:
            for out in _attach_or_skip(result, self.attach, self.skip):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    dead.append(out.value)
                else:
                    articles.append(out)
        return articles, dead

    def expand(self, articles):
        main, other = articles | "RunInference" >> RunInference(self.handler).with_exception_handling()
        done = main | "Attach" >> beam.ParDo(_attach_or_skip, self.attach, self.skip).with_outputs(
            DEAD, main="articles")
        failed = other.failed_inferences | "FailedBatches" >> beam.FlatMap(failed_batch_dead_letters, self.stage)
        return {"articles": done.articles, DEAD: done[DEAD], "failed_batches": failed}
