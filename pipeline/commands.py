"""The `newsbeam` commands and exit statuses: all that `newsbeam --version` and the top-level `--help` need, kept
apart from the option table (pipeline.arguments), whose defaults import the model packages."""
from __future__ import annotations

COMMANDS = {
    "run": "the pipeline over files and/or feeds (batch; --streaming polls feeds)",
    "backfill": "only articles published in --since .. --until, one partition per day, idempotent",
    "report": "an HTML report (charts and tables) over a written output",
    "eval": "score a model on a gold file: newsbeam eval ner|stance --gold PATH --format ...",
    "train": "fine-tune a model: newsbeam train ner|stance --config configs/....yaml",
}
PIPELINE_COMMANDS = ("run", "backfill")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOTHING_WRITTEN, EXIT_BUSY, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_CODES = f"""exit status:
  {EXIT_OK}    every record accounted for, and at least one written or found a duplicate
  {EXIT_FAILED}    the run failed, or read != written + duplicates + dead-lettered + out-of-range
  {EXIT_USAGE}    usage error (unknown option, bad value, option outside its command or mode): nothing ran
  {EXIT_NOTHING_WRITTEN}    nothing written and no duplicate: no record was read, or every one was dead-lettered
       (or, in a backfill, out of range)
  {EXIT_BUSY}    refused: another run holds the output root (its lease <output>/_state/lease names it); nothing
       ran. Rerun when it ends, or with --break-lease if it is gone
  {EXIT_INTERRUPTED}  interrupted (every file already written is complete)"""
