"""What `newsbeam report` reads: every article, duplicate and dead letter under an output root, through the shared
reader (pipeline.output_reader, which reads the files pipeline.layout lists), with each article slimmed to what
the page needs: no text and no entity mentions, but its publisher and, per labelled stance target, the sentences
the classifier read (found again from the text, which is dropped after).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .layout import DEAD_LETTER, DUPLICATES, output_files
from .output_reader import article_files, file_records, side_records
from .report_aggregate import STANCE_LABELS, day_of
from .report_rows import publisher

MAX_SENTENCES = 3  # per labelled stance target, in the drill-down tables
STANCE_KEYS = ("target", "label", "score", "probabilities", "mentions", "reason", "measured")


@dataclass
class OutputData:
    """What a newsbeam output holds, slimmed down to what the report needs (no article text, no mentions)."""

    root: str
    articles: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    dead: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_ALIASES: dict[str, list[str]] = {}


def _target_aliases() -> dict[str, list[str]]:
    """The shipped targets file's aliases, by case-folded target name (what `--targets NAME` adds to NAME)."""
    if not _ALIASES:
        from transforms.stance import load_targets_config

        from .options import DEFAULT_TARGETS_CONFIG

        try:
            _ALIASES.update({k.casefold(): v for k, v in load_targets_config(DEFAULT_TARGETS_CONFIG).items()})
        except (OSError, ValueError):
            _ALIASES[""] = []
    return _ALIASES


def labelled_sentences(stance: dict, limit: int = MAX_SENTENCES) -> list[str] | None:
    """Each classified mention's own label, score and sentence, as the record keeps them (`mention_labels`,
    schema 2.3: "against 0.81: <sentence>"), the first `limit` distinct ones; None for a record without them."""
    labelled = stance.get("mention_labels")
    if not labelled:
        return None
    out: list[str] = []
    for m in labelled:
        line = f"{m['label']} {m['score']:.2f}: {' '.join(m['sentence'].split())}"
        if line not in out:
            out.append(line)
        if len(out) == limit:
            break
    return out


def stance_sentences(rec: dict, target: str, limit: int = MAX_SENTENCES) -> list[str]:
    """The sentences the stance classifier read for `target` (the first `limit`, in reading order), for records
    written before they kept their mentions (`labelled_sentences`).

    They are found again from the text with the stage's own mention finder (transforms.stance.target_spans: the
    entities with the target's id, then its name and the targets file's aliases) and sentence splitter
    (modeling.stance.sentence_around). Aliases given only on a run's command line are not known here."""
    from modeling.stance import sentence_around
    from transforms.stance import target_spans

    text = rec.get("text") or ""
    out: list[str] = []
    for start, end in target_spans(rec, target, _target_aliases().get(target.casefold(), [])):
        left, right = sentence_around(text, start, end)
        sentence = " ".join(text[left:right].split())
        if sentence and sentence not in out:
            out.append(sentence)
        if len(out) == limit:
            break
    return out


def slim_article(rec: dict) -> dict:
    """An article record without its text and entity mentions (a report over millions of articles stays small);
    title and url kept for the drill-down tables, its publisher as `source`, and each labelled stance target's
    mentions (each with its own label, or the sentences read) and whether stance is measured in the article's
    language."""
    out = {k: rec.get(k) for k in ("id", "published", "language", "ner", "stance_status", "input_ref", "title",
                                   "url")}
    out["source"] = publisher(rec)
    out["entities"] = [{"text": e.get("text"), "type": e.get("type"), "count": e.get("count", 1), "id": e.get("id"),
                        "name": e.get("name")} for e in rec.get("entities") or []]
    out["stance"] = [{k: s.get(k) for k in STANCE_KEYS} for s in rec.get("stance") or []]
    for s, full in zip(out["stance"], rec.get("stance") or []):
        if s.get("label") not in STANCE_LABELS:
            continue
        try:
            s["sentences"] = labelled_sentences(full)
            if s["sentences"] is None:
                s["sentences"] = stance_sentences(rec, s["target"] or "") if rec.get("text") else []
        except Exception:  # an old or odd record: the table shows the label without sentences
            s["sentences"] = []
    return out


def read_output(root: str) -> OutputData:
    """Read every article, duplicate and dead-letter file under `root` (any Beam filesystem), whichever mode wrote
    them: batch, backfill ranges (`_backfill/`) and streaming windows (pipeline.layout). Side records are kept as
    written (the aggregation counts a duplicate under its publisher); an unreadable line or an article without a
    valid published date is listed in `problems`."""
    data = OutputData(root=root)
    paths, kind = article_files(root)  # a --format parquet run wrote no article JSONL: its Parquet copies
    for path in paths:
        data.files.append(path)
        for rec in file_records(path, kind, data.problems):
            if day_of(rec.get("published")) is None:
                data.problems.append(f"{path}: article {rec.get('id')!r} has no valid published date")
                continue
            data.articles.append(slim_article(rec))
    for side_kind, target in ((DUPLICATES, data.duplicates), (DEAD_LETTER, data.dead)):
        side = output_files(root, side_kind)  # none is normal: a run with no duplicate writes no file
        data.files.extend(side)
        target.extend(side_records(side, data.problems))
    return data
