"""The pipeline graph, one for both modes: parse -> language -> dedup -> NER -> stance -> write, dead letters on
the side. The modes differ only in three named choices:

                 batch (and backfill)                         streaming (--streaming)
    source       files (--input), one pull of --feeds and/or PollFeeds every --poll-interval, then NewEntries
                 article pages (--urls: polite, robots.txt)   (conditional GET, backoff, the seen filter)
    dedup        Deduplicate: grouped, against the cross-run  StreamDedup: keyed state over the last --dedup-ttl
                 index under <output>/_state/minhash/
    write        WriteOutputs: one file per day, side files   WriteStreamOutputs, by StreamConfig.writer (the
                 sharded; merged with earlier runs (run) or   runner's choice, pipeline.stream_sinks): "windowed"
                 replacing each day (backfill)                Beam event-time windows and WriteToFiles (Dataflow),
                                                              or "per_bundle" (local real time): each bundle's
                                                              records per window, one writer per branch

Parse (transforms.parse.ParseArticles, also --fetch-full-text), language, the model stages (routed inside one
RunInference handler: transforms.inference) and validation (pipeline.sinks.validated) are the same code. Why the
streaming branches are never flattened before the writer, and why the local runner writes per bundle: there a
Flatten or GroupByKey after an unbounded source only runs when the source stops (docs/streaming.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam

from transforms.common import DEAD, counter
from transforms.dedup import Deduplicate, KeepWhatWasWritten, index_dir
from transforms.dedup_stream import StreamDedup
from transforms.langid import DetectLanguage
from transforms.ner import NER_LANGUAGES, RecogniseEntities, skip_ner
from transforms.parse import ParseArticles
from transforms.records import FullTextPolicy, ParseLimits
from transforms.stance import ClassifyStance, skip_stance

from .feeds import DEFAULT_CONCURRENT_FETCHES, FetchLimits, full_text_fetcher
from .layout import ARTICLES, DEAD_LETTER, DUPLICATES
from .options import (DEFAULT_BAND_MAX, DEFAULT_DEDUP_TTL, DEFAULT_FETCH_RETRIES, DEFAULT_MAX_BACKOFF,
                      DEFAULT_POLL_INTERVAL, DEFAULT_SEEN_MAX, DEFAULT_SEEN_TTL, DEFAULT_TEXT_MAX,
                      DEFAULT_WINDOW_SECONDS)
from .pages import DEFAULT_URL_DELAY
from .parquet_sink import FORMATS
from .sinks import WRITTEN_IDS, WriteArticles, WriteRecordFiles
from .sources import ReadInputFiles
from .stream_sinks import PER_BUNDLE, WINDOWED, WRITERS, WriteBundleFiles, WriteEventWindows
from .streaming import NewEntries, PollFeeds

MODELS_SKIPPED = "models disabled (--skip-models)"


@dataclass
class StreamConfig:
    """What only streaming has (the --streaming options); the rest of its configuration is GraphConfig's."""
    poll_interval: float = DEFAULT_POLL_INTERVAL
    stop_after: float | None = None  # None: until killed
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    seen_ttl: float = DEFAULT_SEEN_TTL
    seen_max: int = DEFAULT_SEEN_MAX
    dedup_ttl: float = DEFAULT_DEDUP_TTL  # exact and near-duplicate state
    dedup_max: int = DEFAULT_TEXT_MAX
    band_max: int = DEFAULT_BAND_MAX
    max_backoff: float = DEFAULT_MAX_BACKOFF
    fetch_retries: int = DEFAULT_FETCH_RETRIES
    # set by the runner choice (pipeline.streaming.streaming_runner); the defaults are those of Dataflow
    idle_sleep: float = 0.0  # the impulse's pacing
    writer: str = WINDOWED  # WINDOWED: Beam's event-time windows; PER_BUNDLE: the local real-time runner


@dataclass(frozen=True)
class GraphConfig:
    output: str
    targets: dict[str, list[str]]
    ner_model: str
    stance_model: str
    ner_window: int | None = None  # None: per model (modeling.ner.NerTagger.load)
    ner_decoding: str | None = None  # None: per model
    ner_languages: tuple[str, ...] = NER_LANGUAGES  # --ner-languages (transforms.ner.parse_ner_languages)
    stance_languages: tuple[str, ...] = NER_LANGUAGES  # --stance-languages (transforms.stance.parse_stance_languages)
    ner_batch_size: int = 32
    stance_batch_size: int = 32
    dedup_threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 3
    limits: ParseLimits = field(default_factory=ParseLimits)
    full_text: FullTextPolicy = field(default_factory=FullTextPolicy)  # --fetch-full-text (fetch policy)
    auto_targets: int = 3
    torch_threads: int = 0  # intra-op threads per worker process for the model stages (0: torch's default)
    model_copies: int | None = None  # --model-copies: None, one per SDK process; N, at most N per machine
    compile_models: bool = False  # torch.compile the models in each worker (pays off on long runs)
    precision: str = "auto"  # fp32 | bf16 | int8 | auto (modeling.precision: timed at load, quality-gated)
    date_range: tuple[str, str] | None = None  # backfill: only articles published in [since, until]
    side_files_dir: str | None = None  # where the duplicates/ and dead_letter/ shards go (default: output root)
    skip_models: bool = False  # NER and stance marked skipped, no model loaded (--skip-models)
    max_entries_per_feed: int = 500
    fetch_concurrency: int = DEFAULT_CONCURRENT_FETCHES  # batch feed pulls: feeds fetched at once
    max_retry_after: float = FetchLimits.max_retry_after  # longest Retry-After a feed or page fetch waits for
    urls_delay: float = DEFAULT_URL_DELAY  # --urls: seconds between two requests to one host
    urls_allow_private_hosts: bool = False  # --urls: also fetch pages of loopback/private hosts
    article_format: str = "jsonl"  # jsonl | parquet | both (--format; pipeline.parquet_sink)
    stream: StreamConfig | None = None  # set: the streaming graph


def in_date_range(article: dict, since: str, until: str) -> bool:
    """Backfill filter, before any model runs; what falls outside is counted, not silently lost."""
    if since <= article["published"] <= until:
        return True
    counter("out_of_range").inc()
    return False


def _models_skipped(article: dict, targets: dict, auto_targets: int) -> dict:
    return skip_stance(skip_ner(article, MODELS_SKIPPED), targets, MODELS_SKIPPED, auto_targets)


class ProcessArticles(beam.PTransform):
    """Raw inputs -> {"articles": enriched kept articles, "duplicates*": duplicate records, "dead_letter*": the
    dead letters of each stage, and in batch "index_rows": (id, cross-run index row) of each kept article, for
    WriteOutputs to index once it is written}. Several duplicate and dead-letter outputs, never flattened here:
    the batch writer flattens them, the streaming writer must not (see the module docstring)."""

    def __init__(self, cfg: GraphConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, raws):
        cfg = self.cfg
        fetcher = full_text_fetcher(cfg.limits, cfg.full_text) if cfg.full_text.enabled else None
        parsed = raws | "Parse" >> ParseArticles(cfg.limits, fetcher, cfg.full_text)
        articles = parsed.articles
        if cfg.date_range:
            articles = articles | "InDateRange" >> beam.Filter(in_date_range, *cfg.date_range)
        lang = articles | "Language" >> DetectLanguage()
        out = {f"{DEAD}_parse": parsed[DEAD], f"{DEAD}_language": lang[DEAD]}
        if cfg.stream is None:
            # Against the cross-run index under <output>/_state/minhash (docs/dedup.md), not extending it: NER,
            # stance or the writer may still dead-letter a kept article. Before the models: a duplicate costs
            # no inference.
            dedup = lang.articles | "Dedup" >> Deduplicate(cfg.dedup_threshold, cfg.num_perm, cfg.shingle_size,
                                                           index_root=cfg.output, write_index=False,
                                                           rewrite_same_day=cfg.date_range is not None,
                                                           reopen=cfg.date_range)
            out.update(duplicates=dedup["duplicates"], index_rows=dedup["index_rows"])
        else:
            s = cfg.stream
            dedup = lang.articles | "Dedup" >> StreamDedup(cfg.dedup_threshold, cfg.num_perm, cfg.shingle_size,
                                                           s.dedup_ttl, s.dedup_max, s.band_max)
            out.update(duplicates=dedup["exact_duplicates"], duplicates_near=dedup["near_duplicates"])
        if cfg.skip_models:  # no model loaded: each article says why it has no entities and no stance labels
            out["articles"] = dedup["articles"] | "SkipModels" >> beam.Map(_models_skipped, cfg.targets,
                                                                           cfg.auto_targets)
            return out
        ner = dedup["articles"] | "NER" >> RecogniseEntities(cfg.ner_model, languages=cfg.ner_languages,
                                                            window=cfg.ner_window,
                                                            decoding=cfg.ner_decoding,
                                                            max_batch_size=cfg.ner_batch_size,
                                                            torch_threads=cfg.torch_threads,
                                                            compile_model=cfg.compile_models,
                                                            precision=cfg.precision,
                                                            copies=cfg.model_copies)
        stance = ner["articles"] | "Stance" >> ClassifyStance(cfg.stance_model, cfg.targets,
                                                             languages=cfg.stance_languages,
                                                             max_batch_size=cfg.stance_batch_size,
                                                             auto_top_n=cfg.auto_targets,
                                                             torch_threads=cfg.torch_threads,
                                                             compile_model=cfg.compile_models,
                                                             precision=cfg.precision,
                                                             copies=cfg.model_copies)
        out.update({f"{DEAD}_ner": ner[DEAD], f"{DEAD}_ner_batches": ner["failed_batches"],
                    f"{DEAD}_stance": stance[DEAD], f"{DEAD}_stance_batches": stance["failed_batches"],
                    "articles": stance["articles"]})
        return out


def _kind(key: str) -> str:
    return ARTICLES if key == "articles" else DUPLICATES if key.startswith(DUPLICATES) else DEAD_LETTER


class WriteOutputs(beam.PTransform):
    """Batch: articles to their day's file, duplicates and dead letters to their shards. With "index_rows" (and
    `index_directory`): the rows of the articles actually written go to the cross-run dedup index, and copies of
    a kept article that was dead-lettered after dedup become dead letters (KeepWhatWasWritten)."""

    def __init__(self, output: str, side_files_dir: str | None = None, index_directory: str | None = None,
                 merge: bool = True, article_format: str = "jsonl", date_range: tuple[str, str] | None = None):
        super().__init__()
        self.date_range = date_range
        self.output = output
        self.article_format = article_format
        self.side = side_files_dir or output
        self.index_directory = index_directory
        self.merge = merge  # add to what earlier runs wrote (run); False: replace each day (backfill)

    def expand(self, outputs):
        written = outputs["articles"] | "WriteArticles" >> WriteArticles(self.output, self.merge,
                                                                         FORMATS[self.article_format],
                                                                         self.date_range)
        dead = [pc for key, pc in sorted(outputs.items()) if key.startswith(DEAD)] + [written[DEAD]]
        duplicates = [pc for key, pc in sorted(outputs.items()) if key.startswith(DUPLICATES)]
        duplicates = duplicates[0] if len(duplicates) == 1 else tuple(duplicates) | "AllDuplicates" >> beam.Flatten()
        if outputs.get("index_rows") is not None:
            if self.index_directory is None:
                raise ValueError("outputs carry dedup index rows but WriteOutputs was given no index_directory")
            checked = ({"rows": outputs["index_rows"], "written": written[WRITTEN_IDS], "duplicates": duplicates}
                       | "KeepWhatWasWritten" >> KeepWhatWasWritten(self.index_directory))
            duplicates = checked["duplicates"]
            dead.append(checked[DEAD])
        duplicates | "WriteDuplicates" >> WriteRecordFiles(self.side, DUPLICATES, merge=self.merge)
        tuple(dead) | "AllDeadLetters" >> beam.Flatten() | "WriteDeadLetters" >> WriteRecordFiles(
            self.side, DEAD_LETTER, merge=self.merge)
        return written["paths"]


def _with_kind(record: dict, kind: str) -> tuple[str, dict]:
    return kind, record


class WriteStreamOutputs(beam.PTransform):
    """Streaming: the output branches (articles by published day, duplicates, dead letters) into files, by the
    runner's `writer`. WINDOWED: the branches flattened into one writer of Beam's event-time windows
    (pipeline.stream_sinks.WriteEventWindows; `shards` and `late_delay` are its). PER_BUNDLE: every branch into
    its own writer, each bundle's records written when the bundle ends (never flattened: see the module
    docstring)."""

    def __init__(self, output: str, window_seconds: int, writer: str = WINDOWED, **windowed):
        super().__init__()
        if writer not in WRITERS:
            raise ValueError(f"unknown streaming writer {writer!r} (one of {', '.join(WRITERS)})")
        self.output, self.window_seconds, self.writer, self.windowed = output, window_seconds, writer, windowed

    def expand(self, outputs):
        if self.writer == PER_BUNDLE:
            for key, pcoll in sorted(outputs.items()):
                pcoll | f"Write_{key}" >> WriteBundleFiles(self.output, _kind(key), self.window_seconds)
            return beam.pvalue.PDone(next(iter(outputs.values())).pipeline)
        kinds = [pcoll | f"Kind_{key}" >> beam.Map(_with_kind, _kind(key)) for key, pcoll in sorted(outputs.items())]
        return (tuple(kinds) | "AllOutputs" >> beam.Flatten()
                | "WriteWindows" >> WriteEventWindows(self.output, self.window_seconds, **self.windowed))


def build(p: beam.Pipeline, cfg: GraphConfig, inputs: list[str] | None = None, feeds: list[str] | None = None,
          urls: list[str] | None = None):
    """Both graphs, side by side: the source and the writer are the mode's; ProcessArticles is shared. `urls`
    (article pages, --urls) are batch only."""
    if cfg.stream is None:  # batch: read once, process, write (merging with earlier runs unless backfill)
        sources = []
        if inputs:
            sources.append(p | "ReadFiles" >> ReadInputFiles(inputs))
        if feeds:
            from .sources import ReadFeeds

            sources.append(p | "ReadFeeds" >> ReadFeeds(feeds, max_entries=cfg.max_entries_per_feed,
                                                        concurrency=cfg.fetch_concurrency,
                                                        max_retry_after=cfg.max_retry_after))
        if urls:
            from .sources import ReadPages

            sources.append(p | "ReadPages" >> ReadPages(urls, delay=cfg.urls_delay,
                                                        allow_private_hosts=cfg.urls_allow_private_hosts,
                                                        concurrency=cfg.fetch_concurrency,
                                                        max_retry_after=cfg.max_retry_after))
        raws = sources[0] if len(sources) == 1 else tuple(sources) | "AllSources" >> beam.Flatten()
        outputs = raws | "Process" >> ProcessArticles(cfg)
        return outputs | "Write" >> WriteOutputs(cfg.output, cfg.side_files_dir,
                                                 index_dir(cfg.output, cfg.shingle_size, cfg.num_perm),
                                                 merge=cfg.date_range is None, article_format=cfg.article_format,
                                                 date_range=cfg.date_range)
    s = cfg.stream  # streaming: poll, keep the new entries, process, write each branch per window
    polled = p | "PollFeeds" >> PollFeeds(feeds or [], s.poll_interval, s.stop_after,
                                          max_entries=cfg.max_entries_per_feed, max_backoff=s.max_backoff,
                                          idle_sleep=s.idle_sleep, retries=s.fetch_retries)
    new = polled | "NewEntries" >> NewEntries(s.seen_ttl, s.seen_max, cfg.max_entries_per_feed)
    outputs = new["raws"] | "Process" >> ProcessArticles(cfg)
    return {**outputs, f"{DEAD}_seen": new[DEAD]} | "Write" >> WriteStreamOutputs(cfg.output, s.window_seconds,
                                                                                 s.writer)
