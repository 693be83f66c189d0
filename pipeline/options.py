"""newsbeam's options as Beam PipelineOptions subclasses, so Beam's parser accepts them and runners such as
Dataflow carry them. The declarations (and defaults) are pipeline.arguments' table, which the command line, its
`--help` and the mode check are built from too; this module only hands them to Beam."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL, PackagePath  # noqa: F401 (re-exported)
from transforms.dedup_stream import DEFAULT_BAND_MAX, DEFAULT_DEDUP_TTL, DEFAULT_TEXT_MAX  # noqa: F401 (re-exported)

from .arguments import (DEFAULT_FETCH_RETRIES, DEFAULT_MAX_BACKOFF, DEFAULT_POLL_INTERVAL,  # noqa: F401 (re-exported)
                        DEFAULT_SEEN_MAX, DEFAULT_SEEN_TTL, DEFAULT_TARGETS_CONFIG, DEFAULT_WINDOW_SECONDS,
                        add_beam_arguments)


class NewsbeamOptions(PipelineOptions):
    """newsbeam's own options of both commands (input, output, models, dedup, feeds, pages). A PipelineOptions
    subclass, so they pass through `PipelineOptions(argv)` and travel with a Dataflow job."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_beam_arguments(parser, ("input", "output", "models", "dedup", "feeds", "pages"))


class StreamingOptions(PipelineOptions):
    """Options of `newsbeam run --streaming` (Beam's own `--streaming` flag turns the mode on)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_beam_arguments(parser, ("streaming",))


class BackfillOptions(PipelineOptions):
    """Options of `newsbeam backfill`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_beam_arguments(parser, ("backfill",))
