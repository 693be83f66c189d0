"""The options of `newsbeam run|backfill` as one table: each option's declaration and where it acts (which commands,
batch or --streaming, with which other options). The parsers, `--help`, Beam's PipelineOptions classes
(pipeline.options) and the check that refuses an option outside its mode are all built from it.

Beam-free on purpose: `newsbeam --version`, `--help` and every usage error are answered from here without
importing apache_beam, torch or the graph. Beam's own options (--direct_*, Dataflow's, ...) pass through; an
option no one knows is a usage error (exit 2, with the nearest known option), not Beam's warning followed by a
run with defaults.
"""
from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from modeling.ner import DEFAULT_WINDOW, FOREIGN_WINDOW
from modeling.precision import CHOICES as PRECISION_CHOICES
from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL, PackagePath

from .commands import (COMMANDS, EXIT_BUSY, EXIT_CODES, EXIT_FAILED, EXIT_INTERRUPTED,  # noqa: F401
                       EXIT_NOTHING_WRITTEN, EXIT_OK, EXIT_USAGE, PIPELINE_COMMANDS)

DATAFLOW_RUNNERS = ("DataflowRunner", "dataflow")

DEFAULT_TARGETS_CONFIG = PackagePath("pipeline", "targets.yaml")  # read on the launcher only
# Defaults of the streaming options (the dedup state's are transforms.dedup_stream's, mirrored below).
DEFAULT_POLL_INTERVAL = 300.0
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_SEEN_TTL = 7 * 24 * 3600.0  # an entry that left its feed is remembered this long (seconds)
DEFAULT_SEEN_MAX = 10_000  # remembered entry keys per feed (the entries of the current document always kept)
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_FETCH_RETRIES = 1  # in-poll retries; the next poll (with backoff) is the real retry
# Copies of defaults owned by modules that import Beam or torch (importing them would cost --help seconds);
# tests/test_cli_modes.py checks each equals its owner's value.
MIRRORED = {"DEFAULT_CONCURRENT_FETCHES": 8, "DEFAULT_MAX_ENTRIES": 500,  # pipeline.feeds
            "MAX_RETRY_AFTER": 30.0,  # pipeline.feeds.FetchLimits.max_retry_after
            "DEFAULT_URL_DELAY": 1.0,  # pipeline.pages
            "DEFAULT_DEDUP_TTL": 7 * 24 * 3600.0, "DEFAULT_TEXT_MAX": 200_000,  # transforms.dedup_stream
            "DEFAULT_BAND_MAX": 256,  # transforms.dedup_stream
            "NER_LANGUAGES": ("en", "de", "es", "nl", "fr", "it", "pt", "da", "pl", "ru", "cs", "sl", "uk", "bg",
                              "hr", "sr"),  # transforms.ner
            "STANCE_MEASURED": ("en", "ru")}  # transforms.stance


class UsageError(ValueError):
    """Bad options: reported in one line, before anything runs."""


@dataclass(frozen=True)
class Where:
    """Where an option acts; anywhere else it is a usage error naming what it needs."""

    commands: frozenset[str] = frozenset(PIPELINE_COMMANDS)
    streaming: bool | None = None  # True: only with --streaming; False: only without; None: both
    needs: tuple[str, ...] = ()  # acts only if one of these options is given too
    not_with: tuple[str, ...] = ()  # has no effect next to these
    dataflow: bool = False  # only with --runner DataflowRunner


ANYWHERE = Where()
BATCH = Where(streaming=False)
STREAMING = Where(commands=frozenset({"run"}), streaming=True)
BACKFILL = Where(commands=frozenset({"backfill"}))
MODEL = Where(not_with=("--skip-models",))
FEEDS = ("--feeds", "--feeds-file")
FETCHED = (*FEEDS, "--urls")  # what is fetched over HTTP in batch: feeds and article pages
PAGES = Where(commands=frozenset({"run"}), streaming=False, needs=("--urls",))


@dataclass(frozen=True)
class Option:
    """One option: its `--help` group, where it acts, and argparse's add_argument keywords."""

    flag: str
    group: str
    where: Where
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    beam: bool = False  # Beam's own option (shown in --help; Beam's parser defines it for PipelineOptions)

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest", self.flag[2:].replace("-", "_"))


def _opt(group: str, flag: str, where: Where = ANYWHERE, beam: bool = False, **kwargs: Any) -> Option:
    return Option(flag, group, where, kwargs, beam)


GROUPS = {  # the --help groups, in order, with their descriptions
    "backfill": "only the articles published in [--since, --until], one partition per day",
    "input": "what to read: files (--input), feeds (see feeds) and/or article pages (see pages)",
    "output": None,
    "models": "stance targets and the two transformer stages",
    "dedup": "exact and near-duplicate detection (within a run and across runs)",
    "feeds": "RSS/Atom feeds over HTTP (batch: one pull; streaming: polled)",
    "pages": "article pages over HTTP (batch): each fetched once, one request at a time per host, robots.txt "
             "honoured, parsed as a saved .html page",
    "streaming": "with --streaming: poll the feeds until --stop-after (or until killed)",
    "runner": """any other Beam pipeline option is passed to the runner, e.g. --setup_file, --num_workers,
--max_num_workers, --sdk_container_image, --direct_running_mode multi_processing --direct_num_workers 2;
docs/runners.md lists what was tried""",
}

OPTIONS: tuple[Option, ...] = (
    _opt("backfill", "--since", BACKFILL, metavar="YYYY-MM-DD", default=None,
         help="first published day (YYYY-MM-DD), inclusive"),
    _opt("backfill", "--until", BACKFILL, metavar="YYYY-MM-DD", default=None,
         help="last published day (YYYY-MM-DD), inclusive"),
    _opt("backfill", "--dry-run", BACKFILL, action="store_true", default=False,
         help="parse the inputs (no models) and list the days and their article counts; write nothing"),
    _opt("input", "--input", BATCH, metavar="PATTERN", nargs="+", default=None,
         help="files or globs: local paths or any Beam filesystem (gs://, s3://); seed .txt, .jsonl, RSS/Atom .xml, "
              "saved HTML pages .html/.htm, tables .csv/.tsv with a header row"),
    _opt("input", "--csv-columns", Where(streaming=False, needs=("--input",)), metavar="FIELD=COLUMN,...",
         default=None,
         help="which header column of the .csv/.tsv inputs holds each field, where the names differ, e.g. "
              "text=body,published=date (fields: text, published, title, url, source, targets, authors; default: "
              "columns named as the fields)"),
    _opt("input", "--max-chars", metavar="N", type=int, default=200_000,
         help="articles longer than this are dead-lettered (never truncated)"),
    _opt("output", "--output", metavar="ROOT", default=None, help="output root (local folder, gs://..., s3://...)"),
    _opt("output", "--format", BATCH, choices=["jsonl", "parquet", "both"], default="jsonl",
         help="article files per day: JSONL, Parquet (pipeline/parquet_sink.py) or both (batch and backfill; "
              "duplicates and dead letters stay JSONL)"),
    _opt("output", "--break-lease", Where(not_with=("--dry-run",)), action="store_true", default=False,
         help="take the output root even though its lease (<output>/_state/lease) names another run: only when "
              "that run is known to be gone, e.g. a drained Dataflow streaming job (a killed local run's lease "
              "is taken over without it)"),
    _opt("output", "--quiet", action="store_true", default=False,
         help="no live progress on stderr (a bar in batch, a status line in streaming; shown only on a terminal)"),
    _opt("output", "--verbose", action="store_true", default=False,
         help="also log newsbeam's INFO lines (Beam's stay at WARNING) and list the internal counters in the "
              "summary"),
    _opt("models", "--targets", metavar="NAME[=ALIAS,...]", nargs="*", default=None,
         help="stance targets, e.g. Armenia 'Azerbaijan=Azerbaijani,Baku' (aliases after '='); each keeps the "
              "aliases --targets-config lists for it (default: the targets of --targets-config)"),
    _opt("models", "--stance-targets", metavar="NAME[=ALIAS,...]", nargs="*", default=None,
         help="same as --targets; `--stance-targets auto` takes each article's top --auto-targets PER/ORG/LOC "
              "entities by mentions"),
    _opt("models", "--auto-targets", Where(needs=("--stance-targets",)), metavar="N", type=int, default=3,
         help="how many entities `--stance-targets auto` takes"),
    _opt("models", "--targets-config", metavar="YAML", default=DEFAULT_TARGETS_CONFIG,
         help="YAML file with `targets: {Name: [aliases]}`"),
    _opt("models", "--ner-model", MODEL, metavar="ID_OR_DIR", default=DEFAULT_NER_MODEL,
         help="token-classification model: a Hugging Face id or a local directory"),
    _opt("models", "--stance-model", MODEL, metavar="ID_OR_DIR", default=DEFAULT_STANCE_MODEL,
         help="stance model: a Hugging Face id or a local directory"),
    _opt("models", "--ner-window", MODEL, metavar="PIECES", type=int, default=None,
         help="model window in pieces; overlapping windows cover longer texts (default: a newsbeam model's "
              f"training length, {DEFAULT_WINDOW} for the shipped one; {FOREIGN_WINDOW} for other models)"),
    _opt("models", "--ner-languages", MODEL, metavar="CODES", default=None,
         help="languages NER runs on: '+sk,sv' adds to the measured set, 'sk,sv' replaces it (default: the "
              f"measured set {','.join(MIRRORED['NER_LANGUAGES'])}; docs/quality.md). Articles in an added "
              "language say `zero-shot` in ner.reason; others are skipped with the reason"),
    _opt("models", "--stance-languages", MODEL, metavar="CODES", default=None,
         help="languages stance runs on: 'en,de' (each one NER runs on) or 'measured' (those of "
              f"{','.join(MIRRORED['STANCE_MEASURED'])} where stance quality is measured; docs/quality.md) "
              "(default: every language NER runs on; a labelled stance in another language says "
              "`measured: false`)"),
    _opt("models", "--ner-decoding", MODEL, choices=["viterbi", "argmax"], default=None,
         help="viterbi: the best BIO-valid label sequence; argmax: per word, an I- tag after O opens an entity, as "
              "IOB1 models need (default: viterbi for newsbeam models, argmax for other models)"),
    _opt("models", "--ner-batch-size", MODEL, metavar="N", type=int, default=32,
         help="articles per NER batch (fixed size: see transforms.common.fixed_batches)"),
    _opt("models", "--stance-batch-size", MODEL, metavar="N", type=int, default=32,
         help="articles per stance batch (fixed size, as NER)"),
    _opt("models", "--torch-threads", MODEL, metavar="N", type=int, default=0,
         help="torch intra-op threads per worker process for the model stages (0: torch's default, one per "
              "core). On Dataflow, which runs one SDK process per vCPU, use 1"),
    _opt("models", "--model-copies", MODEL, metavar="N", type=int, default=None,
         help="copies of each model per machine: N >= 1 loads at most N, shared by every SDK process of the "
              "machine (Beam's share_model_across_processes); 0 loads one per SDK process. Default: 1 where a "
              "machine runs several SDK processes (Dataflow, --direct_running_mode multi_processing), else 0"),
    _opt("models", "--precision", MODEL, choices=list(PRECISION_CHOICES), default="auto",
         help="numeric precision of the NER and stance models: fp32, bf16 (autocast), int8 (dynamic quantisation "
              "of the Linear layers), or auto: at model load each worker times them on the model's own layer "
              "shapes, among those whose dev-set quality was measured to hold, and takes bf16 where it is native and "
              "faster than fp32, else int8 where faster than fp32, else fp32 (docs/quality.md)"),
    _opt("models", "--compile-models", MODEL, action="store_true", default=False,
         help="torch.compile the two models in each worker (about 110 s once per worker, then about 20%% faster "
              "model stages; docs/benchmarks.md): for long runs"),
    _opt("models", "--skip-models", action="store_true", default=False,
         help="do not run NER and stance: articles are written with status `skipped` and the reason, targets "
              "listed unlabelled (a quick parse/dedup pass)"),
    _opt("dedup", "--dedup-threshold", metavar="J", type=float, default=0.8,
         help="Jaccard similarity of word shingles above which two articles are near-duplicates"),
    _opt("dedup", "--num-perm", metavar="N", type=int, default=128, help="MinHash permutations"),
    _opt("dedup", "--shingle-size", metavar="WORDS", type=int, default=3, help="words per shingle"),
    _opt("feeds", "--feeds", metavar="URL", nargs="+", default=None,
         help="RSS/Atom feed URLs (http/https): pulled once, or polled with --streaming"),
    _opt("feeds", "--feeds-file", metavar="FILE", default=None,
         help="a file with one feed URL per line (# comments and blank lines allowed)"),
    _opt("feeds", "--max-entries-per-feed", Where(needs=FEEDS), metavar="N", type=int,
         default=MIRRORED["DEFAULT_MAX_ENTRIES"], help="entries taken from one feed per run; the rest are dead-lettered as skipped"),
    _opt("feeds", "--fetch-full-text", action="store_true", default=False,
         help="feed entries that carry only a summary (no content, or under 600 characters): download the "
              "entry's link and use the page's main text (trafilatura); on failure the summary is kept and counted "
              "as full_text_failed (batch, and new entries with --streaming)"),
    _opt("feeds", "--full-text-allow-private-hosts", Where(needs=("--fetch-full-text",)), action="store_true",
         default=False,
         help="with --fetch-full-text, also fetch entry links whose host resolves to a loopback, private or "
              "link-local address (intranet feeds); off by default, since entry links come from untrusted feed "
              "content"),
    _opt("feeds", "--fetch-concurrency", Where(streaming=False, needs=FETCHED), metavar="N", type=int,
         default=MIRRORED["DEFAULT_CONCURRENT_FETCHES"],
         help="feeds (and hosts of --urls) fetched at once on each worker (batch pull)"),
    _opt("feeds", "--max-retry-after", Where(streaming=False, needs=FETCHED), metavar="SECONDS", type=float,
         default=MIRRORED["MAX_RETRY_AFTER"],
         help="a feed or page server's Retry-After is waited for up to this long; a longer one fails the fetch, "
              "saying so (batch pull)"),
    _opt("pages", "--urls", Where(commands=frozenset({"run"}), streaming=False), metavar="FILE", default=None,
         help="a file with one article page URL (http/https) per line (# comments and blank lines allowed); each "
              "page is fetched once and read as a saved .html page (title, date, author, site name, main text). "
              "A page that is not fetched (HTTP error, not HTML, disallowed by robots.txt, a refused host) is a "
              "dead letter with the reason"),
    _opt("pages", "--urls-delay", PAGES, metavar="SECONDS", type=float, default=MIRRORED["DEFAULT_URL_DELAY"],
         help="seconds from the end of one request to the start of the next to the same host (robots.txt "
              "included; a longer Crawl-delay in robots.txt wins, up to 30 s)"),
    _opt("pages", "--urls-allow-private-hosts", PAGES, action="store_true", default=False,
         help="also fetch --urls whose host (or a redirect's) resolves to a loopback, private or link-local "
              "address (intranet sites); off by default, so a URL list cannot reach internal services"),
    _opt("streaming", "--poll-interval", STREAMING, metavar="SECONDS", type=float, default=DEFAULT_POLL_INTERVAL,
         help="seconds between polls of each feed"),
    _opt("streaming", "--stop-after", STREAMING, metavar="SECONDS", type=float, default=None,
         help="stop the streaming run after this many seconds (default: run until killed)"),
    _opt("streaming", "--window-seconds", STREAMING, metavar="SECONDS", type=int, default=DEFAULT_WINDOW_SECONDS,
         help="output files are grouped in fixed windows of this many seconds"),
    _opt("streaming", "--seen-ttl", STREAMING, metavar="SECONDS", type=float, default=DEFAULT_SEEN_TTL,
         help="seconds an entry that left its feed is still remembered as seen"),
    _opt("streaming", "--dedup-ttl", STREAMING, metavar="SECONDS", type=float, default=MIRRORED["DEFAULT_DEDUP_TTL"],
         help="seconds an article is remembered for exact and near-duplicate dedup"),
    _opt("streaming", "--dedup-max", STREAMING, metavar="N", type=int, default=MIRRORED["DEFAULT_TEXT_MAX"],
         help="articles remembered for exact-duplicate dedup (the oldest are forgotten first)"),
    _opt("streaming", "--band-max", STREAMING, metavar="N", type=int, default=MIRRORED["DEFAULT_BAND_MAX"],
         help="articles remembered per LSH band for near-duplicate dedup (as batch's bucket cap)"),
    _opt("streaming", "--seen-max", STREAMING, metavar="N", type=int, default=DEFAULT_SEEN_MAX,
         help="entry keys remembered per feed (the current entries always are)"),
    _opt("streaming", "--max-backoff", STREAMING, metavar="SECONDS", type=float, default=DEFAULT_MAX_BACKOFF,
         help="longest wait (seconds) before polling a failing feed again"),
    _opt("streaming", "--fetch-retries", STREAMING, metavar="N", type=int, default=DEFAULT_FETCH_RETRIES,
         help="retries within one poll (5xx, timeouts); later polls back off"),
    _opt("runner", "--runner", beam=True, metavar="NAME", default=None,
         help="DirectRunner (local; the default) or DataflowRunner; BundleBasedDirectRunner and PortableRunner "
              "also work"),
    _opt("runner", "--streaming", Where(commands=frozenset({"run"})), beam=True, action="store_true", default=False,
         help="poll --feeds / --feeds-file continuously instead of one batch pass"),
    _opt("runner", "--project", beam=True, metavar="ID", default=None,
         help="the Google Cloud project: Dataflow's, and the one gs:// reads and writes are billed to"),
    _opt("runner", "--region", Where(dataflow=True), beam=True, metavar="REGION", default=None,
         help="Dataflow: the region, e.g. europe-west1"),
    _opt("runner", "--temp_location", Where(dataflow=True), beam=True, metavar="GS_PATH", default=None,
         help="Dataflow: a gs:// path for temporary files"),
    _opt("runner", "--staging_location", Where(dataflow=True), beam=True, metavar="GS_PATH", default=None,
         help="Dataflow: a gs:// path for staged packages"),
)
BY_FLAG: dict[str, Option] = {o.flag: o for o in OPTIONS}


def _check_table() -> None:
    """The table's own consistency, once at import: known groups, one entry per flag and dest, and every option
    a `needs` / `not_with` names is in the table."""
    if not len(BY_FLAG) == len(OPTIONS) == len({o.dest for o in OPTIONS}):
        raise ValueError("an option is declared twice in pipeline.arguments.OPTIONS")
    for o in OPTIONS:
        if o.group not in GROUPS or not o.where.commands <= set(PIPELINE_COMMANDS):
            raise ValueError(f"{o.flag}: unknown group or command")
        if not all(f in BY_FLAG for f in (*o.where.needs, *o.where.not_with)):
            raise ValueError(f"{o.flag}: needs or not_with names an option that does not exist")


_check_table()


def options_for(command: str) -> list[Option]:
    """The options that act somewhere in `command` (what its `--help` lists)."""
    return [o for o in OPTIONS if command in o.where.commands]


def with_default(option: Option) -> str:
    """The help text with the default where it has one (not for switches that are off, nor None); the shipped
    models as package paths, not this machine's absolute paths."""
    text, default = option.kwargs.get("help", ""), option.kwargs.get("default")
    if default is None or default is False or "(default:" in text:
        return text
    if isinstance(default, PackagePath):
        return f"{text} (default: {'/'.join(default.relative)}, installed with newsbeam)"
    if isinstance(default, (list, tuple)):
        return f"{text} (default: {' '.join(map(str, default))})" if default else text
    return f"{text} (default: {default})"


def pipeline_parser(command: str, presence: bool = False) -> argparse.ArgumentParser:
    """`newsbeam run|backfill`'s parser. It knows every option of the table, so an option of another command is
    recognised (and refused by mode_errors); `--help` lists only this command's. `presence`: every default is
    SUPPRESS, so the parsed namespace holds exactly the options given."""
    if command == "backfill":
        epilog = "example: newsbeam backfill --since 2020-12-01 --until 2020-12-31 --input 'archive/*.jsonl' --output out/"
    else:
        epilog = ("example: newsbeam run --input 'seeds/*' --output out/ --targets Armenia Azerbaijan\n"
                  "         newsbeam run --streaming --feeds https://example.org/rss.xml --output out/")
    parser = argparse.ArgumentParser(prog=f"newsbeam {command}", description=COMMANDS[command],
                                     usage=f"newsbeam {command} [options]  (newsbeam {command} --help lists them)",
                                     epilog=f"{epilog}\n\n{EXIT_CODES}", allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mine = {o.flag for o in options_for(command)}
    groups = {title: parser.add_argument_group(title, description) for title, description in GROUPS.items()
              if any(o.group == title and o.flag in mine for o in OPTIONS)}
    for o in OPTIONS:
        kwargs = dict(o.kwargs, help=with_default(o) if o.flag in mine else argparse.SUPPRESS)
        if presence:
            kwargs["default"] = argparse.SUPPRESS
        (groups[o.group] if o.flag in mine else parser).add_argument(o.flag, **kwargs)
    return parser


def add_beam_arguments(parser: argparse.ArgumentParser, groups: Iterable[str]) -> None:
    """The table's options of `groups` on Beam's parser, for the PipelineOptions classes of pipeline.options
    (Beam defines its own runner options itself)."""
    for o in OPTIONS:
        if o.group in groups and not o.beam:
            parser.add_argument(o.flag, **o.kwargs)


def is_dataflow(runner: str | None) -> bool:
    return runner in DATAFLOW_RUNNERS


def mode_errors(command: str, given: Iterable[str], streaming: bool, runner: str | None) -> list[str]:
    """One message per given option outside the commands and modes where it acts, e.g. `--dry-run: only for
    newsbeam backfill`, `--poll-interval: only with --streaming`."""
    given = set(given)
    errors = []
    for o in OPTIONS:
        w = o.where
        if o.flag not in given:
            continue
        if command not in w.commands:
            mode = " --streaming" if w.streaming else ""
            errors.append(f"{o.flag}: only for newsbeam {' and '.join(sorted(w.commands))}{mode}")
        elif w.streaming is True and not streaming:
            errors.append(f"{o.flag}: only with --streaming")
        elif w.streaming is False and streaming:
            errors.append(f"{o.flag}: not with --streaming (batch runs only)")
        elif w.needs and not given & set(w.needs):
            errors.append(f"{o.flag}: only with {' or '.join(w.needs)}")
        elif given & set(w.not_with):
            errors.append(f"{o.flag}: not with {' or '.join(sorted(given & set(w.not_with)))} (it has no effect there)")
        elif w.dataflow and not is_dataflow(runner):
            errors.append(f"{o.flag}: only with --runner DataflowRunner")
    return errors


def given_options(command: str, argv: Sequence[str]) -> set[str]:
    """The table's options that appear in `argv` (by value, not by comparing with defaults)."""
    present = vars(pipeline_parser(command, presence=True).parse_known_args(list(argv))[0])
    return {o.flag for o in OPTIONS if o.dest in present}


def _beam_unknown(args: Sequence[str]) -> list[str]:
    """The arguments no Beam PipelineOptions class knows (what Beam itself would only warn about and drop), read
    with the parser Beam builds from every PipelineOptions class (handed over by get_all_options' public hook)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parsers: list[argparse.ArgumentParser] = []
    PipelineOptions([]).get_all_options(add_extra_args_fn=parsers.append)
    return parsers[0].parse_known_args(list(args))[1]


def unknown_option_message(unknown: Sequence[str], known: Sequence[str]) -> str:
    """'unrecognized arguments: --target Armenia (--target: did you mean --targets?)'."""
    hints = []
    for token in unknown:
        if token.startswith("--"):
            close = difflib.get_close_matches(token.split("=", 1)[0], known, n=1, cutoff=0.6)
            if close:
                hints.append(f"{token.split('=', 1)[0]}: did you mean {close[0]}?")
    return f"unrecognized arguments: {' '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")


def parse_pipeline_args(command: str, argv: Sequence[str],
                        parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Parse `newsbeam run|backfill` arguments and check each option is in its command and mode; UsageError
    otherwise. The mode check needs no Beam import; only leftovers (Beam's own options) are shown to Beam."""
    parser = parser or pipeline_parser(command)
    args, rest = parser.parse_known_args(list(argv))
    streaming = command == "run" and bool(args.streaming)
    errors = mode_errors(command, given_options(command, argv), streaming=streaming, runner=args.runner)
    if errors:
        raise UsageError("; ".join(errors))
    unknown = _beam_unknown(rest) if rest else []
    if unknown:
        raise UsageError(unknown_option_message(unknown, [o.flag for o in options_for(command)]))
    return args


def check_pipeline_args(command: str, argv: Sequence[str]) -> argparse.Namespace:
    """parse_pipeline_args for a command line: a usage error exits 2 with argparse's usage line."""
    parser = pipeline_parser(command)
    try:
        return parse_pipeline_args(command, argv, parser)
    except UsageError as exc:
        parser.error(str(exc))
