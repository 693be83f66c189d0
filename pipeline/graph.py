"""The pipeline graph: read -> parse -> language -> dedup -> NER -> stance -> write, dead letters on the side.

Dedup runs before the models (a duplicate costs no inference) against the cross-run MinHash index under
<output>/_state/minhash/; its new index rows are written after the articles, only for those actually written."""
from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam

from transforms.common import DEAD, counter
from transforms.dedup import Deduplicate, KeepWhatWasWritten, index_dir
from transforms.langid import DetectLanguage
from transforms.ner import RecogniseEntities, skip_ner
from transforms.parse import ParseArticles, ParseLimits
from transforms.stance import ClassifyStance, skip_stance

from .feeds import full_text_fetcher
from .layout import DEAD_LETTER, DUPLICATES
from .sinks import WRITTEN_IDS, WriteArticles, WriteRecordFiles
from .sources import ReadInputFiles


MODELS_SKIPPED = "models disabled (--skip-models)"


@dataclass
class GraphConfig:
    output: str
    targets: dict[str, list[str]]
    ner_model: str
    stance_model: str
    ner_window: int | None = None  # None: per model (modeling.ner.NerTagger.load)
    ner_decoding: str | None = None  # None: per model
    ner_batch_size: int = 32
    stance_batch_size: int = 32
    dedup_threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 3
    limits: ParseLimits = field(default_factory=ParseLimits)
    auto_targets: int = 3
    torch_threads: int = 0  # intra-op threads per worker process for the model stages (0: torch's default)
    compile_models: bool = False  # torch.compile the models in each worker (pays off on long runs)
    precision: str = "auto"  # fp32 | bf16 | int8 | auto (modeling.precision: timed at load, quality-gated)
    date_range: tuple[str, str] | None = None  # backfill: only articles published in [since, until]
    side_files_dir: str | None = None  # where the duplicates/ and dead_letter/ shards go (default: output root)
    skip_models: bool = False  # NER and stance marked skipped, no model loaded (--skip-models)


def in_date_range(article: dict, since: str, until: str) -> bool:
    """Backfill filter, before any model runs; what falls outside is counted, not silently lost."""
    if since <= article["published"] <= until:
        return True
    counter("out_of_range").inc()
    return False


class ProcessArticles(beam.PTransform):
    """Raw inputs -> {"articles": enriched kept articles, "duplicates": ..., "dead_letter": ...,
    "index_rows": (id, cross-run index row) of each kept article, for `WriteOutputs` to write once it is written}."""

    def __init__(self, cfg: GraphConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, raws):
        cfg = self.cfg
        fetcher = full_text_fetcher(cfg.limits) if cfg.limits.fetch_full_text else None
        parsed = raws | "Parse" >> ParseArticles(cfg.limits, fetcher)
        articles = parsed.articles
        if cfg.date_range:
            articles = articles | "InDateRange" >> beam.Filter(in_date_range, *cfg.date_range)
        lang = articles | "Language" >> DetectLanguage()
        # Dedup consults the cross-run index under <output>/_state/minhash (docs/dedup.md) but does not extend
        # it: NER, stance or the writer may still dead-letter a kept article. Dedup before the models: a
        # duplicate costs no inference.
        dedup = lang.articles | "Dedup" >> Deduplicate(cfg.dedup_threshold, cfg.num_perm, cfg.shingle_size,
                                                       index_root=cfg.output, write_index=False,
                                                       rewrite_same_day=cfg.date_range is not None)
        if cfg.skip_models:  # no model loaded: each article says why it has no entities and no stance labels
            enriched = dedup["articles"] | "SkipModels" >> beam.Map(
                lambda a, t, n: skip_stance(skip_ner(a, MODELS_SKIPPED), t, MODELS_SKIPPED, n),
                cfg.targets, cfg.auto_targets)
            model_dead = ()
        else:
            ner = dedup["articles"] | "NER" >> RecogniseEntities(cfg.ner_model, window=cfg.ner_window,
                                                                decoding=cfg.ner_decoding,
                                                                max_batch_size=cfg.ner_batch_size,
                                                                torch_threads=cfg.torch_threads,
                                                                compile_model=cfg.compile_models,
                                                                precision=cfg.precision)
            stance = ner["articles"] | "Stance" >> ClassifyStance(cfg.stance_model, cfg.targets,
                                                                 max_batch_size=cfg.stance_batch_size,
                                                                 auto_top_n=cfg.auto_targets,
                                                                 torch_threads=cfg.torch_threads,
                                                                 compile_model=cfg.compile_models,
                                                                 precision=cfg.precision)
            enriched = stance["articles"]
            model_dead = (ner[DEAD], ner["failed_batches"], stance[DEAD], stance["failed_batches"])
        dead = (parsed[DEAD], lang[DEAD], *model_dead) | "StageDeadLetters" >> beam.Flatten()
        return {"articles": enriched, "duplicates": dedup["duplicates"], DEAD: dead,
                "index_rows": dedup["index_rows"]}


class WriteOutputs(beam.PTransform):
    """Articles, duplicates and dead letters to their files under the output root. With "index_rows" (and
    `index_directory`): the rows of the articles actually written go to the cross-run dedup index, and copies of
    a kept article that was dead-lettered after dedup become dead letters (KeepWhatWasWritten)."""

    def __init__(self, output: str, side_files_dir: str | None = None, index_directory: str | None = None,
                 merge: bool = True):
        super().__init__()
        self.output = output
        self.side = side_files_dir or output
        self.index_directory = index_directory
        self.merge = merge  # add to what earlier runs wrote (run); False: replace each day (backfill)

    def expand(self, outputs):
        written = outputs["articles"] | "WriteArticles" >> WriteArticles(self.output, merge=self.merge)
        duplicates, orphans = outputs["duplicates"], None
        if outputs.get("index_rows") is not None:
            if self.index_directory is None:
                raise ValueError("outputs carry dedup index rows but WriteOutputs was given no index_directory")
            checked = ({"rows": outputs["index_rows"], "written": written[WRITTEN_IDS], "duplicates": duplicates}
                       | "KeepWhatWasWritten" >> KeepWhatWasWritten(self.index_directory))
            duplicates, orphans = checked["duplicates"], checked[DEAD]
        dead = tuple(pc for pc in (outputs[DEAD], written[DEAD], orphans) if pc is not None) \
            | "AllDeadLetters" >> beam.Flatten()
        duplicates | "WriteDuplicates" >> WriteRecordFiles(self.side, DUPLICATES, merge=self.merge)
        dead | "WriteDeadLetters" >> WriteRecordFiles(self.side, DEAD_LETTER, merge=self.merge)
        return written["paths"]


def build(p: beam.Pipeline, inputs: list[str] | None, cfg: GraphConfig, feeds: list[str] | None = None,
          max_entries_per_feed: int = 500):
    sources = []
    if inputs:
        sources.append(p | "ReadFiles" >> ReadInputFiles(inputs))
    if feeds:
        from .sources import ReadFeeds

        sources.append(p | "ReadFeeds" >> ReadFeeds(feeds, max_entries=max_entries_per_feed))
    raws = sources[0] if len(sources) == 1 else tuple(sources) | "AllSources" >> beam.Flatten()
    outputs = raws | "Process" >> ProcessArticles(cfg)
    return outputs | "Write" >> WriteOutputs(cfg.output, cfg.side_files_dir,
                                             index_directory=index_dir(cfg.output, cfg.shingle_size, cfg.num_perm),
                                             merge=cfg.date_range is None)
