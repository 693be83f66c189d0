"""`newsbeam backfill`: process only the articles published in [--since, --until], one partition per day.

    newsbeam backfill --since 2020-12-01 --until 2020-12-31 --input 'archive/*.jsonl' --output out/ [--dry-run]

Idempotent by construction: each day's partition is written whole to a temporary name and renamed over the old
one, lines sorted by content-derived id, so the same range twice gives byte-identical partitions, and an
overlapping range rewrites only its own days. A backfill replaces only what backfills wrote on its days and what
its input brings (transforms.backfill_owned); a plain run's articles stay. The date filter runs right after
parsing, before any model. Duplicates and dead letters of a range go to `<output>/_backfill/<since>_<until>/`, so
ranges do not overwrite each other's (a record two ranges list is read once: pipeline.layout.once_each).
`--dry-run` reads and parses the inputs (no models) and lists the days and their article counts.
"""
from __future__ import annotations

import datetime as dt
import sys
from collections import Counter

from .options import BackfillOptions, NewsbeamOptions  # noqa: F401 (registered with Beam; re-exported)
from .arguments import EXIT_USAGE, UsageError, parse_pipeline_args
from .layout import backfill_side_dir


def parse_day(flag: str, value: str) -> dt.date:
    """An ISO day for `flag`, or a UsageError naming the flag: `--since 2020-13-01: month must be in 1..12`."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        why = str(exc)
        if why.startswith("Invalid isoformat string"):
            why = "expected YYYY-MM-DD"
        raise UsageError(f"{flag} {value}: {why}") from None


def date_range(since: str | None, until: str | None) -> tuple[str, str]:
    """Validated ISO days; an inverted range or a bad date is a clear error."""
    if not since or not until:
        raise UsageError("backfill needs --since and --until (YYYY-MM-DD)")
    a, b = parse_day("--since", since), parse_day("--until", until)
    if a > b:
        raise UsageError(f"--since {since} is after --until {until}")
    return a.isoformat(), b.isoformat()


def dry_run(patterns: list[str], since: str, until: str) -> tuple[Counter, Counter]:
    """(articles per published day in the range, plus '(out of range)'; dead letters by reason), from parsing
    alone. Files are matched and read as the real run reads them (pipeline.sources: match_pattern, then
    read_matched), so a FIFO, a link out of the input tree or an oversized file is counted with its reason,
    as the run would dead-letter it, never opened or read past the limit; each file once."""
    from transforms.parse import parse_raw

    from .sources import match_pattern, read_matched

    counts: Counter = Counter()
    unreadable: Counter = Counter()
    seen: set[str] = set()
    for pattern in patterns:
        for key, info in match_pattern(pattern):
            if key in seen:
                continue
            seen.add(key)
            raw = read_matched((key, info))
            try:
                results = list(parse_raw(raw))
            except Exception as exc:  # a parser bug must not end the dry run either
                results = [(raw["ref"], f"parse failed: {type(exc).__name__}: {exc}")]
            for _ref, res in results:
                if not isinstance(res, dict):
                    unreadable[str(res)[:120]] += 1
                elif since <= res["published"] <= until:
                    counts[res["published"]] += 1
                else:
                    counts["(out of range)"] += 1
    return counts, unreadable


def main(argv: list[str] | None = None) -> int:
    """`newsbeam backfill`: the arguments checked (pipeline.arguments: unknown options, options outside backfill),
    then a dry run's listing or the run itself (pipeline.run, with the range and its own side-file folder)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:  # newsbeam's own parser, not Beam's: Beam's --dry_run (build the graph, submit nothing) is not --dry-run
        args = parse_pipeline_args("backfill", argv)
        since, until = date_range(args.since, args.until)
        if not args.input:
            raise UsageError("backfill reads files: give --input")
        if args.dry_run:  # a real run checks this itself (pipeline.launch.validate); a dry run must too
            from .launch import expand_directories
            from .sources import check_patterns

            args.input = expand_directories(args.input)
            missing = check_patterns(args.input)
            if missing:
                raise UsageError(f"--input matches no file: {', '.join(missing)}")
    except UsageError as exc:
        print(f"newsbeam backfill: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        counts, unreadable = dry_run(args.input, since, until)
        days = sorted(k for k in counts if not k.startswith("("))
        print(f"backfill {since} .. {until}: {len(days)} days with articles, {sum(counts[d] for d in days)} articles")
        for day in days:
            print(f"  {day}  {counts[day]}")
        if counts["(out of range)"]:
            print(f"  (out of range)  {counts['(out of range)']}")
        if unreadable:
            print(f"  (unreadable: would be dead letters)  {sum(unreadable.values())}, by reason:")
            for reason, n in sorted(unreadable.items(), key=lambda kv: (-kv[1], kv[0])):
                print(f"    {n} \u00d7 {reason}")
        return 0
    from .run import main as run_main  # the models and the graph: imported only for a real run

    side = backfill_side_dir(args.output or "", since, until)
    return run_main(argv, date_range=(since, until), side_files_dir=side)


if __name__ == "__main__":  # `python -m pipeline.backfill ...` is `newsbeam backfill ...`
    from .arguments import check_pipeline_args

    check_pipeline_args("backfill", sys.argv[1:])
    raise SystemExit(main(sys.argv[1:]))
