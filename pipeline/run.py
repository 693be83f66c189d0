"""`python -m pipeline.run` / `newsbeam run`: the pipeline over files, feeds and/or article pages (--urls), batch or
--streaming (feeds only), with a summary at the end.

Example:
    python -m pipeline.run --input 'seeds/*.txt' --output out/ --targets Armenia Azerbaijan --runner DirectRunner
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from transforms.common import REASONS_NAMESPACE

from .arguments import EXIT_BUSY, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, parse_pipeline_args
from .graph import build
from .launch import (COUNTERS, REMOTE_RUNNERS, RunFailed, UsageError, configure_logging, counter_values, exit_code,
                     feed_urls, graph_config, is_streaming, launch_credentials, page_urls, remote_result_line,
                     resolve_runner, summary_lines, validate, validate_runner)
from .layout import lease_file
from .lease import Lease, RootBusy, acquire, store_for
from .options import NewsbeamOptions
from .progress import LiveProgress
from .recovery import begin_writes, end_writes


def lease_kind(date_range: tuple[str, str] | None, streaming: bool, remote: bool) -> str:
    """What a refused run is told holds the root."""
    kind = f"newsbeam backfill {date_range[0]}..{date_range[1]}" if date_range else (
        "newsbeam run --streaming" if streaming else "newsbeam run")
    return kind + (" (Dataflow launcher)" if remote else "")


@contextlib.contextmanager
def holding_root(options: PipelineOptions, kind: str) -> Iterator[Lease | None]:
    """The output root's lease (pipeline.lease) for the block, renewed while it runs and released at its end,
    on failure and Ctrl-C too; RootBusy if another run holds it. None (no lease) for a remote launch that submits
    no job (Beam's --dry_run, --template_location: the flex-template job starts later, without this launcher).
    A remote streaming job outlives its launcher: the block hands the lease to the job (Lease.hand_to_job)."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions, S3Options

    all_opts = options.get_all_options()
    if options.view_as(StandardOptions).runner in REMOTE_RUNNERS and (
            all_opts.get("dry_run") or all_opts.get("template_location")):
        yield None
        return
    opts = options.view_as(NewsbeamOptions)
    s3 = options.view_as(S3Options)
    s3_client = {"region_name": s3.s3_region_name, "endpoint_url": s3.s3_endpoint_url, "verify": s3.s3_verify,
                 "api_version": s3.s3_api_version, "use_ssl": not s3.s3_disable_ssl,
                 "aws_access_key_id": s3.s3_access_key_id, "aws_secret_access_key": s3.s3_secret_access_key,
                 "aws_session_token": s3.s3_session_token}
    path = lease_file(opts.output)
    store = store_for(path, project=options.view_as(GoogleCloudOptions).project, s3_client_kwargs=s3_client)
    lease = acquire(opts.output, kind, break_lease=opts.break_lease, store=store)
    try:
        with lease.keep_alive():
            yield lease
    finally:
        if lease.holder.job is None:
            lease.release()


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
    feeds, urls = feed_urls(opts), page_urls(opts)
    cfg = graph_config(opts, date_range=date_range, side_files_dir=side_files_dir, runner=resolve_runner(options))
    options.view_as(SetupOptions).save_main_session = False
    remote = options.view_as(StandardOptions).runner in REMOTE_RUNNERS
    with holding_root(options, lease_kind(date_range, streaming, remote)) as lease:  # before the root is read
        started = time.time()
        p = beam.Pipeline(options=options)
        build(p, cfg, opts.input, feeds=feeds, urls=urls)
        what = "streaming graph" if streaming else "graph"
        # a local batch run: the index and the partitions agree after any kill (pipeline.recovery). Not on a cloud
        # runner: its launcher neither reads the partitions back nor should write to the bucket before submitting
        try:  # live progress of a local run: a bar in batch, a status line in streaming
            mark = None if streaming or remote else begin_writes(cfg.output, cfg.shingle_size, cfg.num_perm)
            with LiveProgress(enabled=not remote and LiveProgress.wanted(opts.quiet), streaming=streaming):
                result = p.run()
                if not remote or not streaming:  # a remote streaming job runs on until drained
                    result.wait_until_finish()
                elif lease is not None and getattr(result, "has_job", True):
                    lease.hand_to_job(f"{result.job_id()}")  # the job holds the root once this launcher exits
                values = {} if remote else {**dict.fromkeys(COUNTERS, 0), **counter_values(result)}
                if mark is not None:
                    end_writes(mark, cfg.output, cfg.shingle_size, cfg.num_perm,
                               reconcile=bool(values.get("backfill_replaced") or values.get("backfill_reopened")))
        except Exception as exc:
            raise RunFailed(f"the run failed: {type(exc).__name__}: {str(exc).splitlines()[0][:500]}. Outputs "
                            f"are written whole and atomically, so rerunning the same command is safe.") from exc
    if remote:
        print(remote_result_line(result, options, what))
    else:
        reasons = counter_values(result, REASONS_NAMESPACE)
        for line in summary_lines(values, time.time() - started, reasons, verbose=opts.verbose):
            print(line)
    if lease is not None and lease.lost:
        raise RunFailed(f"this run lost the lease of {cfg.output} while it ran ({lease.lost}): another run may have "
                        f"written into the root at the same time, so its accounting is not assured")
    return {} if remote else values


def main(argv: list[str] | None = None, **run_kwargs) -> int:
    """Run already-checked arguments (pipeline.cli parses them first; `python -m pipeline.run` goes there)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging("--verbose" in argv)
    try:
        values = run(argv, **run_kwargs)
    except UsageError as exc:
        print(f"newsbeam: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RootBusy as exc:
        print(f"newsbeam: refused: {exc}", file=sys.stderr)
        return EXIT_BUSY
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
