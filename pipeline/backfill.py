"""`newsbeam backfill`: process only the articles published in [--since, --until], one partition per day.

    newsbeam backfill --since 2020-12-01 --until 2020-12-31 --input 'archive/*.jsonl' --output out/ [--dry-run]

Idempotent by construction: each day's partition is written whole to a temporary name and renamed over the old
one, lines sorted by content-derived id, so the same range twice gives byte-identical partitions, and an
overlapping range rewrites only its own days. The date filter runs right after parsing, before any model.
Duplicates and dead letters of a range go to `<output>/_backfill/<since>_<until>/`, so ranges do not overwrite
each other's. `--dry-run` reads and parses the inputs (no models) and lists the days and their article counts.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections import Counter

from apache_beam.options.pipeline_options import PipelineOptions

from .options import NewsbeamOptions
from .run import UsageError, main as run_main
from .sinks import join_path


class BackfillOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--since", default=None, help="first published day (YYYY-MM-DD), inclusive")
        parser.add_argument("--until", default=None, help="last published day (YYYY-MM-DD), inclusive")
        parser.add_argument("--dry-run", action="store_true", help="list the days and input counts, run nothing")


def date_range(since: str | None, until: str | None) -> tuple[str, str]:
    """Validated ISO days; an inverted range or a bad date is a clear error."""
    if not since or not until:
        raise UsageError("backfill needs --since and --until (YYYY-MM-DD)")
    try:
        a, b = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    except ValueError as exc:
        raise UsageError(f"bad date: {exc}") from None
    if a > b:
        raise UsageError(f"--since {since} is after --until {until}")
    return a.isoformat(), b.isoformat()


def _strip_backfill_args(argv: list[str]) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in ("--since", "--until"):
            skip = "=" not in arg
            continue
        if name == "--dry-run":
            continue
        out.append(arg)
    return out


def dry_run(patterns: list[str], since: str, until: str) -> Counter:
    """Articles per published day in the range, plus 'out of range' and 'unreadable', from parsing alone."""
    from apache_beam.io.filesystems import FileSystems

    from transforms.parse import parse_raw

    counts: Counter = Counter()
    for pattern in patterns:
        for meta in FileSystems.match([pattern])[0].metadata_list:
            with FileSystems.open(meta.path) as fh:
                data = fh.read()
            for _ref, res in parse_raw({"ref": meta.path, "data": data}):
                if not isinstance(res, dict):
                    counts["(unreadable: dead letters)"] += 1
                elif since <= res["published"] <= until:
                    counts[res["published"]] += 1
                else:
                    counts["(out of range)"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    options = PipelineOptions(argv)
    bopts = options.view_as(BackfillOptions)
    nopts = options.view_as(NewsbeamOptions)
    try:
        since, until = date_range(bopts.since, bopts.until)
        if not nopts.input:
            raise UsageError("backfill reads files: give --input")
        if bopts.dry_run:  # a real run checks this itself (pipeline.run.validate); a dry run must too
            from .sources import check_patterns

            missing = check_patterns(nopts.input)
            if missing:
                raise UsageError(f"--input matches no file: {', '.join(missing)}")
    except UsageError as exc:
        print(f"newsbeam backfill: error: {exc}", file=sys.stderr)
        return 2
    if bopts.dry_run:
        counts = dry_run(nopts.input, since, until)
        days = sorted(k for k in counts if not k.startswith("("))
        print(f"backfill {since} .. {until}: {len(days)} days with articles, {sum(counts[d] for d in days)} articles")
        for day in days:
            print(f"  {day}  {counts[day]}")
        for key in sorted(k for k in counts if k.startswith("(")):
            print(f"  {key}  {counts[key]}")
        return 0
    side = join_path(nopts.output or "", "_backfill", f"{since}_{until}")
    return run_main(_strip_backfill_args(argv), date_range=(since, until), side_files_dir=side)


if __name__ == "__main__":
    raise SystemExit(main())
