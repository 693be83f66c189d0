"""`python -m pipeline.run` / `newsbeam run`: the batch pipeline over files, with a summary at the end.

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

from .graph import build
from .launch import (REMOTE_RUNNERS, RunFailed, UsageError, accounted, configure_logging, counter_values, feed_urls,
                     graph_config, remote_result_line, resolve_runner, summary_lines, validate, validate_runner)
from .options import NewsbeamOptions
from .progress import LiveProgress


def run(argv: list[str] | None = None, date_range: tuple[str, str] | None = None,
        side_files_dir: str | None = None) -> dict[str, int]:
    options = PipelineOptions(argv)
    opts = options.view_as(NewsbeamOptions)
    validate(opts)
    validate_runner(options)
    feeds = feed_urls(opts)
    cfg = graph_config(opts)
    cfg.date_range = date_range
    cfg.side_files_dir = side_files_dir
    resolve_runner(options)
    options.view_as(SetupOptions).save_main_session = False
    started = time.time()
    p = beam.Pipeline(options=options)
    build(p, opts.input, cfg, feeds=feeds, max_entries_per_feed=opts.max_entries_per_feed,
          fetch_concurrency=opts.fetch_concurrency, max_retry_after=opts.max_retry_after)
    remote = options.view_as(StandardOptions).runner in REMOTE_RUNNERS
    try:
        with LiveProgress(enabled=not remote and LiveProgress.wanted(opts.quiet)):
            result = p.run()
            result.wait_until_finish()
    except Exception as exc:
        raise RunFailed(f"the run failed: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}. Outputs are "
                        f"written whole and atomically, so rerunning the same command is safe.") from exc
    if remote:
        print(remote_result_line(result, options))
        return {}
    values = counter_values(result)
    reasons = counter_values(result, REASONS_NAMESPACE)
    for line in summary_lines(values, time.time() - started, reasons, verbose=opts.verbose):
        print(line)
    return values


def main(argv: list[str] | None = None, **run_kwargs) -> int:
    """Run already-checked arguments (pipeline.cli parses them first; `python -m pipeline.run` goes there)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging("--verbose" in argv)
    if "--streaming" in argv:  # polling feeds forever (or --stop-after): its own graph and runner choice
        from .streaming import main as streaming_main

        return streaming_main(argv)
    try:
        values = run(argv, **run_kwargs)
    except UsageError as exc:
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        logging.getLogger("newsbeam").debug("run failed", exc_info=exc.__cause__)
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return 1
    return 0 if values.get("read", 0) == accounted(values) else 1


if __name__ == "__main__":  # `python -m pipeline.run ...` is `newsbeam run ...`
    from .arguments import check_pipeline_args

    check_pipeline_args("run", sys.argv[1:])
    raise SystemExit(main(sys.argv[1:]))
