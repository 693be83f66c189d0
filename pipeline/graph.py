"""The pipeline graph: read -> parse -> language -> dedup -> NER -> stance -> write, dead letters on the side.

Dedup runs before the models (a duplicate costs no inference) against the cross-run MinHash index under
<output>/_state/minhash/; its new index rows are written after the articles, only for those actually written."""
from __future__ import annotations

from dataclasses import dataclass, field

import apache_beam as beam

from transforms.common import DEAD, counter, dead_letter
from transforms.dedup import Deduplicate, WriteIndexOfWritten, index_dir
from transforms.langid import DetectLanguage
from transforms.ner import RecogniseEntities
from transforms.parse import ParseArticles, ParseLimits
from transforms.stance import ClassifyStance

from .sinks import WRITTEN_IDS, WriteArticles, WriteRecordFile, join_path
from .sources import ReadInputFiles


@dataclass
class GraphConfig:
    output: str
    targets: dict[str, list[str]]
    ner_model: str
    stance_model: str
    ner_window: int = 256
    ner_batch_size: int = 32
    stance_batch_size: int = 32
    dedup_threshold: float = 0.8
    num_perm: int = 128
    shingle_size: int = 3
    limits: ParseLimits = field(default_factory=ParseLimits)
    auto_targets: int = 3
    torch_threads: int = 0  # intra-op threads per worker process for the model stages (0: torch's default)
    date_range: tuple[str, str] | None = None  # backfill: only articles published in [since, until]
    side_files_dir: str | None = None  # where duplicates.jsonl and dead_letter.jsonl go (default: output root)


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
        parsed = raws | "Parse" >> ParseArticles(cfg.limits)
        articles = parsed.articles
        if cfg.date_range:
            articles = articles | "InDateRange" >> beam.Filter(in_date_range, *cfg.date_range)
        lang = articles | "Language" >> DetectLanguage()
        # Dedup consults the cross-run index under <output>/_state/minhash (docs/dedup.md) but does not extend
        # it: NER, stance or the writer may still dead-letter a kept article. Dedup before the models: a
        # duplicate costs no inference.
        dedup = lang.articles | "Dedup" >> Deduplicate(cfg.dedup_threshold, cfg.num_perm, cfg.shingle_size,
                                                       index_root=cfg.output, write_index=False)
        ner = dedup["articles"] | "NER" >> RecogniseEntities(cfg.ner_model, window=cfg.ner_window,
                                                            max_batch_size=cfg.ner_batch_size,
                                                            torch_threads=cfg.torch_threads)
        stance = ner["articles"] | "Stance" >> ClassifyStance(cfg.stance_model, cfg.targets,
                                                             max_batch_size=cfg.stance_batch_size,
                                                             auto_top_n=cfg.auto_targets,
                                                             torch_threads=cfg.torch_threads)
        dead = (parsed[DEAD], lang[DEAD], ner[DEAD], stance[DEAD]) | "StageDeadLetters" >> beam.Flatten()
        return {"articles": stance["articles"], "duplicates": dedup["duplicates"], DEAD: dead,
                "index_rows": dedup["index_rows"]}


def _split_by_kept_copy(item):
    """One kept id: its duplicates of this run, whether dedup kept it as new this run, whether it was written."""
    kept_id, g = item
    lost = bool(list(g["kept"])) and not list(g["written"])
    for dup in g["duplicates"]:
        if not lost:
            yield dup
            continue
        counter("duplicates_of_dead_lettered").inc()
        yield beam.pvalue.TaggedOutput(DEAD, dead_letter(
            dup["input_ref"], "dedup",
            f"duplicate ({dup['kind']}, similarity {dup['similarity']}) of article {kept_id}, which was "
            f"dead-lettered after dedup; rerun once the cause is fixed and this copy is reconsidered",
            article_id=dup["id"]))


class DuplicatesOfWrittenOnly(beam.PTransform):
    """{"duplicates", "kept": (id, _) of the articles dedup kept as new this run, "written": ids written} ->
    {"duplicates": those whose kept copy exists, "dead_letter": those whose kept copy of this run was lost later
    (NER, stance or the writer dead-lettered it)}. A duplicate must never point at an article that is nowhere;
    copies of articles written by earlier runs (not "kept" here) pass. A keyed join, runner-portable."""

    def expand(self, pcolls):
        return ({"duplicates": pcolls["duplicates"] | "ByKeptId" >> beam.Map(lambda d: (d["duplicate_of"], d)),
                 "kept": pcolls["kept"] | "KeptIds" >> beam.Map(lambda kv: (kv[0], True)),
                 "written": pcolls["written"] | "WrittenIds" >> beam.Map(lambda i: (i, True))}
                | "JoinKept" >> beam.CoGroupByKey()
                | "Split" >> beam.FlatMap(_split_by_kept_copy).with_outputs(DEAD, main="duplicates"))


class WriteOutputs(beam.PTransform):
    """Articles, duplicates and dead letters to their files under the output root; with `index_directory`, the
    "index_rows" of the articles that were actually written to the cross-run dedup index (joined by id)."""

    def __init__(self, output: str, side_files_dir: str | None = None, index_directory: str | None = None,
                 merge: bool = True):
        super().__init__()
        self.output = output
        self.side = side_files_dir or output
        self.index_directory = index_directory
        self.merge = merge  # add to what earlier runs wrote (run); False: replace each day (backfill)

    def expand(self, outputs):
        written = outputs["articles"] | "WriteArticles" >> WriteArticles(self.output, merge=self.merge)
        self._index_written(outputs.get("index_rows"), written[WRITTEN_IDS])
        duplicates, orphans = outputs["duplicates"], None
        if outputs.get("index_rows") is not None:
            checked = {"duplicates": duplicates, "kept": outputs["index_rows"], "written": written[WRITTEN_IDS]} \
                | "KeptCopyWritten" >> DuplicatesOfWrittenOnly()
            duplicates, orphans = checked["duplicates"], checked[DEAD]
        dead = tuple(pc for pc in (outputs[DEAD], written[DEAD], orphans) if pc is not None) \
            | "AllDeadLetters" >> beam.Flatten()
        duplicates | "WriteDuplicates" >> WriteRecordFile(
            join_path(self.side, "duplicates.jsonl"), "DuplicateRecord", "duplicates", merge=self.merge)
        dead | "WriteDeadLetters" >> WriteRecordFile(
            join_path(self.side, "dead_letter.jsonl"), "DeadLetter", "dead_lettered", merge=self.merge)
        return written["paths"]

    def _index_written(self, rows, written_ids) -> None:
        """Extend the cross-run index with the rows of written articles only (a keyed join after the writer)."""
        if rows is None:
            return
        if self.index_directory is None:
            raise ValueError("outputs carry dedup index rows but WriteOutputs was given no index_directory")
        {"rows": rows, "written": written_ids} | "WriteIndex" >> WriteIndexOfWritten(self.index_directory)


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
