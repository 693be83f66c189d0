"""Entry point for the Dataflow flex template launcher (it runs a file, not a module).

The launcher calls this file with every template parameter as `--name=value`, next to the pipeline options it
sets itself (`--runner=DataflowRunner --project=... --region=... --temp_location=... --template_location=...`).
`launcher_argv` (pure, tested in tests/test_dataflow.py) turns that into a `newsbeam` command line, and
`pipeline.cli.main` runs it:

- `--command=run|backfill` (default run) picks the subcommand;
- `--since` / `--until` take YYYY-MM-DD or a keyword resolved here at launch time in UTC: `yesterday`, `today`
  or `today-N` (N days ago). Cloud Scheduler sends a fixed body, so this is how a nightly job means "yesterday";
- a list option (nargs + or *: `input`, `feeds`, `targets`, ...) arrives as one string: it is split on whitespace;
- a switch (store_true: `fetch-full-text`, ...) arrives as `true` / `false`;
- `dedup_threshold` is accepted for `dedup-threshold` (and likewise for every newsbeam option; Beam's
  `--dry_run=True` stays Beam's);
- everything else (Beam and Dataflow options) passes through unchanged.
"""
from __future__ import annotations

import datetime as dt
import functools
import re
import sys

COMMANDS = ("run", "backfill")
DATE_PARAMS = ("since", "until")
LOCAL_ONLY = ("dry-run",)  # backfill's --dry-run lists days on the launcher's stdout: nothing to see on Dataflow
DAY_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}|yesterday|today|today-\d{1,4})$")


class LaunchError(ValueError):
    """A template parameter that cannot become a newsbeam command line."""


def utc_today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def resolve_day(value: str, today: dt.date | None = None) -> str:
    """YYYY-MM-DD as given (checked), or `yesterday` / `today` / `today-N` as a UTC date at launch time."""
    value = value.strip()
    if not DAY_RE.match(value):
        raise LaunchError(f"bad date {value!r}: use YYYY-MM-DD, yesterday, today or today-N")
    today = today or utc_today()
    if value == "today":
        return today.isoformat()
    if value == "yesterday":
        return (today - dt.timedelta(days=1)).isoformat()
    if value.startswith("today-"):
        return (today - dt.timedelta(days=int(value[len("today-"):]))).isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise LaunchError(f"bad date {value!r}: {exc}") from None


@functools.lru_cache(maxsize=1)
def option_kinds() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(every option name newsbeam's own parsers define, the switches among them (store_true), the lists among
    them (nargs + / *)), without the leading dashes: read off the parsers, so a new option needs no edit here."""
    import argparse

    from apache_beam.options.pipeline_options import _BeamArgumentParser

    from pipeline.options import BackfillOptions, NewsbeamOptions

    parser = _BeamArgumentParser()
    NewsbeamOptions._add_argparse_args(parser)
    BackfillOptions._add_argparse_args(parser)
    flags, switches, lists = set(), set(), set()
    for action in parser._actions:
        names = {s[2:] for s in action.option_strings if s.startswith("--")} - {"help"}
        flags |= names
        if isinstance(action, argparse._StoreTrueAction):
            switches |= names
        elif action.nargs in ("+", "*"):
            lists |= names
    return frozenset(flags), frozenset(switches), frozenset(lists)


def newsbeam_flags() -> set[str]:
    """Every option name newsbeam's own parsers define (without the leading dashes): the names template
    parameters may use, hyphenated."""
    return set(option_kinds()[0])


def launcher_argv(argv: list[str], today: dt.date | None = None, flags: set[str] | None = None) -> list[str]:
    """The launcher's `--name=value ...` -> `[command, --flag, value, ...]` for pipeline.cli.main."""
    flags = newsbeam_flags() if flags is None else flags
    _, switches, lists = option_kinds()
    command, out = "run", []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if not arg.startswith("--"):
            out.append(arg)
            continue
        name, has_value, value = arg[2:].partition("=")
        hyphen = name.replace("_", "-")
        # `dedup_threshold` means `--dedup-threshold`; but `dry_run` is Beam's (build the graph, submit nothing),
        # not backfill's `--dry-run`
        key = hyphen if (hyphen in flags and hyphen not in LOCAL_ONLY) or hyphen == "command" else name
        if not has_value and key in ("command", *DATE_PARAMS) and i < len(argv) and not argv[i].startswith("--"):
            value, has_value, i = argv[i], True, i + 1  # `--since 2020-12-01` (a local test run) works too
        if key == "command":
            command = value.strip()
            if command not in COMMANDS:
                raise LaunchError(f"command must be one of {', '.join(COMMANDS)} (got {command!r})")
        elif key in DATE_PARAMS:
            out.append(f"--{key}={resolve_day(value, today)}")
        elif key in LOCAL_ONLY:
            raise LaunchError(f"--{key} only prints on the launcher; run `newsbeam backfill --dry-run` locally")
        elif key in switches and has_value:
            if value.strip().lower() not in ("true", "false", "1", "0", "yes", "no", ""):
                raise LaunchError(f"{key} must be true or false (got {value!r})")
            if value.strip().lower() in ("true", "1", "yes"):
                out.append(f"--{key}")
        elif key in lists and has_value:
            items = value.split()
            if items:
                out += [f"--{key}", *items]
            elif key in ("input", "feeds"):
                raise LaunchError(f"{key} is empty")
            # an empty `targets` means "not given": the targets config applies
        elif key in flags and has_value:
            out.append(f"--{key}={value}")
        else:
            out.append(arg)  # Beam / Dataflow options, exactly as the launcher gave them
    if command == "run" and any(a.startswith(("--since=", "--until=")) for a in out):
        raise LaunchError("since / until need command=backfill (with command=run Beam would ignore them)")
    return [command, *out]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = launcher_argv(argv)
    except LaunchError as exc:
        print(f"newsbeam flex template: error: {exc}", file=sys.stderr)
        return 2
    print("newsbeam flex template: newsbeam " + " ".join(args), flush=True)  # in the launcher's log

    from pipeline.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
