"""What every way of launching newsbeam shares: options checked into a GraphConfig (the one place configuration
is validated, batch and streaming), the runner chosen, and the counters read back into the summary. pipeline.run
(batch, backfill and streaming) builds on it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

from .arguments import DATAFLOW_RUNNERS, EXIT_FAILED, EXIT_NOTHING_WRITTEN, EXIT_OK, UsageError  # noqa: F401
from .graph import GraphConfig, StreamConfig
from .options import NewsbeamOptions, StreamingOptions
from .streaming import StreamRunner, streaming_runner

COUNTERS = ("read", "written", "duplicates", "dead_lettered")
OUTCOMES = ("written", "duplicates", "dead_lettered", "out_of_range")
INGESTED = ("written", "duplicates")  # what makes a run worth exit 0: something new, or found already there


class RunFailed(RuntimeError):
    """The pipeline itself failed (e.g. the output could not be written)."""


def is_streaming(options: PipelineOptions) -> bool:
    return bool(options.view_as(StandardOptions).streaming)


def resolve_runner(options: PipelineOptions) -> StreamRunner | None:
    """The runner for this mode; in streaming, returns what it decides in the graph (the impulse's pacing and
    the writer: pipeline.streaming.StreamRunner), None in batch.

    Batch: DirectRunner -> Beam's FnApiRunner with an explicit running mode. Beam's DirectRunner first tries to
    download the Prism runner binary (offline that fails and it falls back to the FnApiRunner anyway); choosing
    the FnApiRunner directly skips the attempt. in_memory by default; --direct_running_mode multi_processing
    --direct_num_workers N works too (the project is an installed package). Streaming: see
    pipeline.streaming.streaming_runner.
    """
    if is_streaming(options):
        try:
            return streaming_runner(options)
        except ValueError as exc:
            raise UsageError(f"--streaming: {exc}") from None
    std = options.view_as(StandardOptions)
    direct = options.view_as(DirectOptions)
    if std.runner in (None, "DirectRunner", "direct"):
        std.runner = "FnApiRunner"
        if not direct.direct_running_mode:
            direct.direct_running_mode = "in_memory"
    return None


def graph_config(opts: NewsbeamOptions, date_range: tuple[str, str] | None = None,
                 side_files_dir: str | None = None, runner: StreamRunner | None = None) -> GraphConfig:
    """The one frozen configuration of a run, from its options (batch, backfill with `date_range` and
    `side_files_dir`, or streaming with the `runner`'s choices: resolve_runner)."""
    from transforms.ner import parse_ner_languages, unmeasured
    from transforms.records import FullTextPolicy, ParseLimits
    from transforms.stance import (load_targets_config, parse_stance_languages, parse_target_specs,
                                   with_config_aliases)
    from transforms.table_input import parse_csv_columns

    if opts.targets and opts.stance_targets:
        raise UsageError("give --targets or --stance-targets, not both")
    try:
        config = load_targets_config(opts.targets_config)
    except Exception as exc:  # missing file, YAML syntax, wrong shape: one line naming the flag
        raise UsageError(f"--targets-config {opts.targets_config}: {type(exc).__name__}: {exc}") from None
    specs = opts.targets or opts.stance_targets
    try:
        targets = with_config_aliases(parse_target_specs(specs), config) if specs else config
    except ValueError as exc:
        raise UsageError(f"--targets: {exc}") from None
    if not 0 < opts.dedup_threshold <= 1:
        raise UsageError("--dedup-threshold must be in (0, 1]")
    if opts.torch_threads < 0:
        raise UsageError("--torch-threads must be 0 (torch's default) or a positive number of threads")
    if opts.model_copies is not None and opts.model_copies < 0:
        raise UsageError("--model-copies must be 0 (one per SDK process) or a positive number of copies")
    for flag, value in (("--ner-batch-size", opts.ner_batch_size), ("--stance-batch-size", opts.stance_batch_size)):
        if value < 1:
            raise UsageError(f"{flag} must be a positive number of articles, not {value}")
    try:
        ner_languages = parse_ner_languages(opts.ner_languages)
    except ValueError as exc:
        raise UsageError(f"--ner-languages: {exc}") from None
    try:
        stance_languages = parse_stance_languages(opts.stance_languages, ner_languages)
    except ValueError as exc:
        raise UsageError(f"--stance-languages: {exc}") from None
    if unmeasured(ner_languages) and not opts.skip_models:
        logging.getLogger("newsbeam").warning(
            "NER runs zero-shot on %s: its quality there is not measured (docs/quality.md); those articles say "
            "so in ner.reason", ", ".join(unmeasured(ner_languages)))
    try:
        csv_columns = parse_csv_columns(opts.csv_columns)
    except ValueError as exc:
        raise UsageError(f"--csv-columns: {exc}") from None
    limits = ParseLimits(max_chars=opts.max_chars, csv_columns=csv_columns)
    full_text = FullTextPolicy(enabled=opts.fetch_full_text, allow_private_hosts=opts.full_text_allow_private_hosts)
    return GraphConfig(output=opts.output, targets=targets, ner_model=opts.ner_model,
                       stance_model=opts.stance_model, ner_window=opts.ner_window, ner_decoding=opts.ner_decoding,
                       ner_languages=ner_languages, stance_languages=stance_languages,
                       ner_batch_size=opts.ner_batch_size, stance_batch_size=opts.stance_batch_size,
                       dedup_threshold=opts.dedup_threshold, num_perm=opts.num_perm,
                       shingle_size=opts.shingle_size, limits=limits, full_text=full_text,
                       auto_targets=opts.auto_targets, torch_threads=opts.torch_threads,
                       model_copies=model_copies(opts),
                       compile_models=opts.compile_models, precision=opts.precision,
                       skip_models=opts.skip_models, article_format=getattr(opts, "format", "jsonl"),
                       max_entries_per_feed=opts.max_entries_per_feed,
                       fetch_concurrency=opts.fetch_concurrency, max_retry_after=opts.max_retry_after,
                       urls_delay=opts.urls_delay, urls_allow_private_hosts=opts.urls_allow_private_hosts,
                       date_range=date_range, side_files_dir=side_files_dir, stream=stream_config(opts, runner))


LOCAL_RUNNERS = (None, "DirectRunner", "direct", "FnApiRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                 "PrismRunner", "prism")


def model_copies(opts: PipelineOptions) -> int | None:
    """--model-copies as the handlers take it (None: one per SDK process). Unset: one copy per machine where a
    machine runs several SDK processes (a cloud runner, the local multi_processing mode), else one per process,
    since one process already shares its copy between its threads and a model server would only add a hop."""
    n = opts.view_as(NewsbeamOptions).model_copies
    if n is None:
        several = (opts.view_as(StandardOptions).runner not in LOCAL_RUNNERS
                   or opts.view_as(DirectOptions).direct_running_mode == "multi_processing")
        n = 1 if several else 0
    return n or None


def stream_config(opts: NewsbeamOptions, runner: StreamRunner | None = None) -> StreamConfig | None:
    """The --streaming options as a StreamConfig (None in batch), with the runner's choices (StreamConfig's
    defaults without one)."""
    if not opts.view_as(StandardOptions).streaming:
        return None
    sopts = opts.view_as(StreamingOptions)
    chosen = runner._asdict() if runner is not None else {}
    fields = {f.name for f in dataclasses.fields(StreamConfig)} - set(StreamRunner._fields)
    return StreamConfig(**chosen, **{name: getattr(sopts, name) for name in fields})


def feed_urls(opts: NewsbeamOptions) -> list[str]:
    """--feeds and --feeds-file together, validated (http/https only)."""
    from .feeds import read_feed_list, validate_feed_url

    urls = list(opts.feeds or [])
    try:
        if opts.feeds_file:
            urls += read_feed_list(opts.feeds_file)
        return [validate_feed_url(u) for u in urls]
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def page_urls(opts: NewsbeamOptions) -> list[str]:
    """The article page URLs of --urls, validated (http/https only, one per line), or [] without it."""
    from .feeds import read_feed_list

    if not opts.urls:
        return []
    try:
        return read_feed_list(opts.urls, what="page URL")
    except (OSError, ValueError) as exc:
        raise UsageError(f"--urls {opts.urls}: {exc}" if isinstance(exc, OSError) else str(exc)) from None


REMOTE_RUNNERS = DATAFLOW_RUNNERS


def validate_runner(options: PipelineOptions) -> None:
    """Runner-specific checks up front, with the fix in the message."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    std = options.view_as(StandardOptions)
    if std.runner in REMOTE_RUNNERS:
        gcp = options.view_as(GoogleCloudOptions)
        for flag, value in (("--temp_location", gcp.temp_location), ("--staging_location", gcp.staging_location)):
            if not value or not value.startswith("gs://"):
                raise UsageError(f"DataflowRunner needs {flag} gs://BUCKET/PATH (got {value or 'nothing'})")
        if not gcp.project or not gcp.region:
            raise UsageError("DataflowRunner needs --project and --region")
        out = options.view_as(NewsbeamOptions).output or ""
        if "://" not in out:
            raise UsageError(f"on Dataflow --output must be a cloud path (gs://...), not the local {out!r}")


def launch_credentials(options: PipelineOptions) -> None:
    """Dataflow: fail at once, naming what is missing, when the launch needs Google credentials and has none
    (pipeline.gcp_credentials); Beam itself would retry for minutes first. RunFailed, exit 1."""
    from apache_beam.options.pipeline_options import TestOptions

    from .gcp_credentials import MissingCredentials, check_launch_credentials, gcs_paths

    if options.view_as(StandardOptions).runner not in REMOTE_RUNNERS:
        return
    opts = options.view_as(NewsbeamOptions)
    reads = gcs_paths([*(opts.input or []), opts.feeds_file, opts.targets_config])
    try:
        found = check_launch_credentials(True, bool(options.view_as(TestOptions).dry_run), reads)
    except MissingCredentials as exc:
        raise RunFailed(str(exc)) from None
    if found:
        logging.getLogger("newsbeam").info("Google credentials: %s", found)


def expand_directories(patterns: list[str]) -> list[str]:
    """A local directory given to --input means the files under it (recursively): `DIR` -> `DIR/**`. Remote
    prefixes ending in '/' (gs://bucket/news/) already match the objects under them."""
    out = []
    for pattern in patterns:
        local = "://" not in pattern and not any(c in pattern for c in "*?[")
        out.append(os.path.join(pattern, "**") if local and os.path.isdir(pattern) else pattern)
    return out


def validate(opts: NewsbeamOptions) -> None:
    """Every check that needs no runner, batch and streaming; also expands --input directories (in place)."""
    from .sources import check_patterns

    if opts.view_as(StandardOptions).streaming:
        validate_streaming(opts)
    if not opts.input and not opts.feeds and not opts.feeds_file and not opts.urls:
        raise UsageError("give --input (files or globs), --feeds / --feeds-file and/or --urls (article pages)")
    if not opts.output:
        raise UsageError("--output is required")
    if os.path.isfile(opts.output):  # found only after the models ran otherwise
        raise UsageError(f"--output {opts.output} is a file; give a folder (new or existing)")
    if opts.input:
        opts.input = expand_directories(opts.input)
    missing = check_patterns(opts.input or [])
    if missing:
        raise UsageError(f"--input matches no file: {', '.join(missing)}")
    for flag, value in (("--ner-model", opts.ner_model), ("--stance-model", opts.stance_model)):
        if opts.skip_models:
            break
        looks_local = value.startswith((".", "/", "~")) or value.count("/") > 1
        if looks_local and "://" not in value and not os.path.isdir(os.path.expanduser(value)):
            raise UsageError(f"{flag} {value}: no such model directory")
    if opts.max_entries_per_feed < 1:
        raise UsageError("--max-entries-per-feed must be at least 1")
    if opts.fetch_concurrency < 1:
        raise UsageError("--fetch-concurrency must be at least 1")
    if opts.max_retry_after < 0:
        raise UsageError("--max-retry-after must be 0 or more seconds")
    if opts.urls_delay < 0:
        raise UsageError("--urls-delay must be 0 or more seconds")


def validate_streaming(opts: NewsbeamOptions) -> None:
    """What only --streaming has: feeds (--input is refused by the mode check, pipeline.arguments), and positive
    times and bounds for its state."""
    s = opts.view_as(StreamingOptions)
    if not opts.feeds and not opts.feeds_file:
        raise UsageError("--streaming needs --feeds and/or --feeds-file")
    if s.poll_interval <= 0:
        raise UsageError("--poll-interval must be > 0 seconds")
    if s.stop_after is not None and s.stop_after <= 0:
        raise UsageError("--stop-after must be > 0 seconds")
    if s.window_seconds < 1:
        raise UsageError("--window-seconds must be at least 1")
    for flag, value, low in (("--seen-ttl", s.seen_ttl, 0), ("--dedup-ttl", s.dedup_ttl, 0),
                             ("--max-backoff", s.max_backoff, 0), ("--seen-max", s.seen_max, 0),
                             ("--dedup-max", s.dedup_max, 0), ("--band-max", s.band_max, 1),
                             ("--fetch-retries", s.fetch_retries, -1)):
        if value <= low:
            raise UsageError(f"{flag} must be {'at least 2' if low == 1 else '>= 0' if low < 0 else 'positive'}, "
                             f"not {value}")


def counter_values(result, namespace: str = "newsbeam") -> dict[str, int]:
    """Committed counter values by name, summed over steps (attempted where a runner has no committed).

    Read in a thread with a large stack and a raised recursion limit (both restored): after a streaming run the
    FnApiRunner's monitoring data is a chain of lazy generators, one per bundle, so reading it recurses once per
    bundle (RecursionError at the default limit, measured; docs/streaming.md)."""
    box: dict = {}

    def target():
        try:
            box["values"] = _counter_values(result, namespace)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    old_limit, old_stack = sys.getrecursionlimit(), threading.stack_size()
    try:
        threading.stack_size(512 * 1024 * 1024)
        sys.setrecursionlimit(max(old_limit, 200_000))
        worker = threading.Thread(target=target, name="read-counters")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in box:
        raise box["error"]
    return box["values"]


def _counter_values(result, namespace: str) -> dict[str, int]:
    from apache_beam.metrics.metric import MetricsFilter

    values: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        values[c.key.metric.name] = values.get(c.key.metric.name, 0) + (value or 0)
    return values


def accounted(values: dict[str, int]) -> int:
    return sum(values.get(k, 0) for k in OUTCOMES)


def exit_code(values: dict[str, int]) -> int:
    """0: every record accounted for and something written or found a duplicate; 3: accounted, but nothing was
    (no record, or every one dead-lettered or out of range), so cron can tell a dead feed from a quiet day's
    work; 1: the accounting does not balance. A submitted remote job has no counters here ({}): 0."""
    if values.get("read", 0) != accounted(values):
        return EXIT_FAILED
    if values and not any(values.get(k, 0) for k in INGESTED):
        return EXIT_NOTHING_WRITTEN
    return EXIT_OK


def nothing_written_line(values: dict[str, int]) -> str:
    """Why exit 3: what became of the records read, if any."""
    if not values.get("read", 0):
        return f"  nothing written: no record was read (exit {EXIT_NOTHING_WRITTEN})"
    fates = [(name, values[k]) for k, name in (("dead_lettered", "dead-lettered"), ("out_of_range", "out of range"))
             if values.get(k)]
    said = " or ".join(f"{name} ({n})" if len(fates) > 1 else name for name, n in fates)
    return f"  nothing written: every record read was {said} (exit {EXIT_NOTHING_WRITTEN})"


# the counters every summary shows; the others (stage and index internals) are listed under --verbose
SHOWN = COUNTERS + ("out_of_range",)
TOP_REASONS = 5


def summary_lines(values: dict[str, int], seconds: float, reasons: dict[str, int] | None = None,
                  verbose: bool = False) -> list[str]:
    """The accounting line, whether every record is accounted for, the commonest dead-letter reasons; the
    internal counters with `verbose`."""
    read = values.get("read", 0)
    shown = COUNTERS + (("out_of_range",) if "out_of_range" in values else ())
    lines = [f"newsbeam summary ({seconds:.1f}s): " + ", ".join(f"{k.replace('_', '-')} {values.get(k, 0)}"
                                                                   for k in shown)]
    total = accounted(values)
    lines.append("  every record accounted for" if read == total else
                 f"  WARNING: read {read} != written + duplicates + dead-lettered + out-of-range {total}")
    if exit_code(values) == EXIT_NOTHING_WRITTEN:
        lines.append(nothing_written_line(values))
    if values.get("inputs_skipped"):
        lines.append(f"  {values['inputs_skipped']} inputs skipped (not regular files, or names/dates that cannot be "
                     f"read): each is a dead letter")
    if reasons:
        ranked = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append("  dead letters by reason:")
        lines += [f"    {n} \u00d7 {reason}" for reason, n in ranked[:TOP_REASONS]]
        if len(ranked) > TOP_REASONS:
            rest = ranked[TOP_REASONS:]
            lines.append(f"    {sum(n for _, n in rest)} more with {len(rest)} other reasons (dead_letter/)")
    detail = {k: v for k, v in sorted(values.items()) if k not in SHOWN}
    if verbose and detail:
        lines.append("  stages: " + ", ".join(f"{k} {v}" for k, v in detail.items()))
    return lines


def remote_result_line(result, options: PipelineOptions, what: str = "graph") -> str:
    """What a remote run did: a dry run, a job file for a template (--template_location: no job exists, as
    when the flex-template launcher runs newsbeam), or a submitted job."""
    all_opts = options.get_all_options()
    if all_opts.get("dry_run"):
        return f"dry run: the {what} was built, validated and serialised; no job was submitted"
    if not getattr(result, "has_job", True):
        return f"template: the {what} was written to {all_opts.get('template_location')}; no job was submitted"
    return (f"submitted: job {result.job_id()} ({result.state}); counters are in the runner's console")


class _DropBeamMemoryWarning(logging.Filter):
    """Beam's RunInference reads its memory use with `resource` only where scipy is installed (it imports both
    together) and otherwise warns, on the root logger, at every model load that it cannot; newsbeam needs no
    scipy, so on the command line that one message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Resource module is not available" not in record.getMessage()


def configure_logging(verbose: bool) -> None:
    """Libraries log at WARNING and above (Beam's INFO is type-hint and bundle chatter, a hundred lines a run);
    newsbeam's own loggers (`newsbeam.*`) add their INFO lines with --verbose."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("newsbeam").setLevel(logging.INFO if verbose else logging.WARNING)
    if not any(isinstance(f, _DropBeamMemoryWarning) for f in logging.getLogger().filters):
        logging.getLogger().addFilter(_DropBeamMemoryWarning())
