"""`python -m pipeline.run` / `newsbeam run`: the pipeline over files and/or feeds, batch or --streaming, with a
summary at the end.

Example:
    python -m pipeline.run --input 'seeds/*.txt' --output out/ --targets Armenia Azerbaijan --runner DirectRunner
"""
from __future__ import annotations

import logging
import sys
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from transforms.common import REASONS_NAMESPACE

from .arguments import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, parse_pipeline_args
from .graph import build
from .launch import (COUNTERS, REMOTE_RUNNERS, RunFailed, UsageError, configure_logging, counter_values, exit_code,
                     feed_urls, graph_config, is_streaming, launch_credentials, remote_result_line, resolve_runner,
                     summary_lines, validate, validate_runner)
from .options import NewsbeamOptions
from .progress import LiveProgress
from .recovery import begin_writes, end_writes


def run(argv: list[str] | None = None, date_range: tuple[str, str] | None = None,
        side_files_dir: str | None = None) -> dict[str, int]:
    """Validate, build (pipeline.graph.build: the batch or the streaming graph), run, print the summary and
    return the counters (each of COUNTERS present; {} for a submitted remote job). Raises UsageError for bad
    options, or an option outside its command or mode, before anything runs."""
    parse_pipeline_args("backfill" if date_range else "run", argv or [])  # the CLI's check, for Python callers
    options = PipelineOptions(argv)
    opts = options.view_as(NewsbeamOptions)
    streaming = is_streaming(options)
    validate_runner(options)
    launch_credentials(options)  # before validate(): matching gs:// --input without them retries for minutes
    validate(opts)
    feeds = feed_urls(opts)
    cfg = graph_config(opts, date_range=date_range, side_files_dir=side_files_dir, runner=resolve_runner(options))
    options.view_as(SetupOptions).save_main_session = False
    started = time.time()
    p = beam.Pipeline(options=options)
    build(p, cfg, opts.input, feeds=feeds)
    remote = options.view_as(StandardOptions).runner in REMOTE_RUNNERS
    what = "streaming graph" if streaming else "graph"
    # a local batch run: the index and the partitions agree after any kill (pipeline.recovery). Not on a cloud
    # runner: its launcher neither reads the partitions back nor should write to the bucket before submitting
    try:  # live progress of a local run: a bar in batch, a status line in streaming
        mark = None if streaming or remote else begin_writes(cfg.output, cfg.shingle_size, cfg.num_perm)
        with LiveProgress(enabled=not remote and LiveProgress.wanted(opts.quiet), streaming=streaming):
            result = p.run()
            if not remote or not streaming:  # a remote streaming job runs on until drained
                result.wait_until_finish()
            values = {} if remote else {**dict.fromkeys(COUNTERS, 0), **counter_values(result)}
            if mark is not None:
                end_writes(mark, cfg.output, cfg.shingle_size, cfg.num_perm,
                           reconcile=bool(values.get("backfill_replaced") or values.get("backfill_reopened")))
    except Exception as exc:
        raise RunFailed(f"the run failed: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}. Outputs are "
                        f"written whole and atomically, so rerunning the same command is safe.") from exc
    if remote:
        print(remote_result_line(result, options, what))
        return {}
    reasons = counter_values(result, REASONS_NAMESPACE)
    for line in summary_lines(values, time.time() - started, reasons, verbose=opts.verbose):
        print(line)
    return values


def main(argv: list[str] | None = None, **run_kwargs) -> int:
    """Run already-checked arguments (pipeline.cli parses them first; `python -m pipeline.run` goes there)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging("--verbose" in argv)
    try:
        values = run(argv, **run_kwargs)
    except UsageError as exc:
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunFailed as exc:
        logging.getLogger("newsbeam").debug("run failed", exc_info=exc.__cause__)
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("newsbeam: run interrupted; every file already written is complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    return exit_code(values)  # 0, 3 (nothing written: cron can tell) or 1 (accounting); README "Exit status"


if __name__ == "__main__":  # `python -m pipeline.run ...` is `newsbeam run ...`
    from .arguments import check_pipeline_args

    check_pipeline_args("run", sys.argv[1:])
    raise SystemExit(main(sys.argv[1:]))
