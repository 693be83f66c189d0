"""Every newsbeam option, in `--help`'s groups, as Beam PipelineOptions subclasses (so Beam's parser accepts them
and runners such as Dataflow carry them). pipeline.cli builds the command line from these same definitions."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from modeling.ner import DEFAULT_WINDOW, FOREIGN_WINDOW
from modeling.precision import CHOICES as PRECISION_CHOICES
from modeling.shipping import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL, PackagePath  # noqa: F401 (re-exported)
from transforms.dedup_stream import DEFAULT_BAND_MAX, DEFAULT_DEDUP_TTL, DEFAULT_TEXT_MAX  # noqa: F401 (re-exported)
from transforms.ner import NER_LANGUAGES

from .feeds import DEFAULT_CONCURRENT_FETCHES, FetchLimits

DEFAULT_TARGETS_CONFIG = PackagePath("pipeline", "targets.yaml")  # read on the launcher only

# Defaults of the streaming options (the dedup state's come from transforms.dedup_stream).
DEFAULT_POLL_INTERVAL = 300.0
DEFAULT_WINDOW_SECONDS = 300
DEFAULT_SEEN_TTL = 7 * 24 * 3600.0  # an entry that left its feed is remembered this long (seconds)
DEFAULT_SEEN_MAX = 10_000  # remembered entry keys per feed (the entries of the current document always kept)
DEFAULT_MAX_BACKOFF = 3600.0
DEFAULT_FETCH_RETRIES = 1  # in-poll retries; the next poll (with backoff) is the real retry


def _group(parser, title: str, description: str | None = None):
    """The named argument group of `parser`, made once (several option classes add to the same groups)."""
    for group in parser._action_groups:
        if group.title == title:
            return group
    return parser.add_argument_group(title, description)


class NewsbeamOptions(PipelineOptions):
    """newsbeam's own options, in the groups `--help` shows (see pipeline.cli). A PipelineOptions subclass, so
    Beam's parser knows them too: they pass through `PipelineOptions(argv)` and travel with a Dataflow job."""

    @classmethod
    def _add_argparse_args(cls, parser):
        input_ = _group(parser, "input", "what to read: files (--input) and/or feeds (see feeds)")
        output = _group(parser, "output")
        models = _group(parser, "models", "stance targets and the two transformer stages")
        dedup = _group(parser, "dedup", "exact and near-duplicate detection (within a run and across runs)")
        feeds = _group(parser, "feeds", "RSS/Atom feeds over HTTP (batch: one pull; streaming: polled)")
        input_.add_argument("--input", metavar="PATTERN", nargs="+", default=None,
                            help="files or globs: local paths or any Beam filesystem (gs://, s3://); seed .txt, "
                                 ".jsonl, RSS/Atom .xml")
        feeds.add_argument("--feeds", metavar="URL", nargs="+", default=None, help="RSS/Atom feed URLs (http/https) to pull once")
        feeds.add_argument("--feeds-file", metavar="FILE", default=None,
                           help="a file with one feed URL per line (# comments and blank lines allowed)")
        feeds.add_argument("--max-entries-per-feed", metavar="N", type=int, default=500,
                           help="entries taken from one feed per run; the rest are dead-lettered as skipped")
        feeds.add_argument("--fetch-full-text", action="store_true", default=False,
                           help="feed entries that carry only a summary (no content, or under 600 characters): "
                                "download the entry's link and use the page's main text (trafilatura); on "
                                "failure the summary is kept and counted as full_text_failed (batch)")
        feeds.add_argument("--full-text-allow-private-hosts", action="store_true", default=False,
                           help="with --fetch-full-text, also fetch entry links whose host resolves to a "
                                "loopback, private or link-local address (intranet feeds); off by default, "
                                "since entry links come from untrusted feed content")
        feeds.add_argument("--fetch-concurrency", metavar="N", type=int, default=DEFAULT_CONCURRENT_FETCHES,
                           help="feeds fetched at once on each worker (batch pull)")
        feeds.add_argument("--max-retry-after", metavar="SECONDS", type=float, default=FetchLimits.max_retry_after,
                           help="a feed server's Retry-After is waited for up to this long; a longer one fails "
                                "the fetch, saying so (batch pull)")
        output.add_argument("--output", metavar="ROOT", default=None, help="output root (local folder, gs://..., s3://...)")
        output.add_argument("--format", choices=["jsonl", "parquet", "both"], default="jsonl",
                            help="article files per day: JSONL, Parquet (pipeline/parquet_sink.py) or both (batch "
                                 "and backfill; duplicates and dead letters stay JSONL)")
        models.add_argument("--targets", metavar="NAME[=ALIAS,...]", nargs="*", default=None,
                            help="stance targets, e.g. Armenia 'Azerbaijan=Azerbaijani,Baku' (aliases after '='); "
                                 "each keeps the aliases --targets-config lists for it (default: the targets "
                                 "of --targets-config)")
        models.add_argument("--stance-targets", metavar="NAME[=ALIAS,...]", nargs="*", default=None,
                            help="same as --targets; `--stance-targets auto` takes each article's top "
                                 "--auto-targets PER/ORG/LOC entities by mentions")
        models.add_argument("--auto-targets", metavar="N", type=int, default=3, help="how many entities `auto` takes")
        models.add_argument("--targets-config", metavar="YAML", default=DEFAULT_TARGETS_CONFIG,
                            help="YAML file with `targets: {Name: [aliases]}`")
        models.add_argument("--ner-model", metavar="ID_OR_DIR", default=DEFAULT_NER_MODEL,
                            help="token-classification model: a Hugging Face id or a local directory")
        models.add_argument("--stance-model", metavar="ID_OR_DIR", default=DEFAULT_STANCE_MODEL,
                            help="stance model: a Hugging Face id or a local directory")
        models.add_argument("--ner-window", metavar="PIECES", type=int, default=None,
                            help="model window in pieces; overlapping windows cover longer texts (default: a "
                                 f"newsbeam model's training length, {DEFAULT_WINDOW} for the shipped one; "
                                 f"{FOREIGN_WINDOW} for other models)")
        models.add_argument("--ner-languages", metavar="CODES", default=None,
                            help="languages NER runs on: '+bg,hr' adds to the measured set, 'bg,hr' replaces it "
                                 f"(default: the measured set {','.join(NER_LANGUAGES)}; docs/quality.md). Articles "
                                 "in an added language say `zero-shot` in ner.reason; others are skipped with the "
                                 "reason")
        models.add_argument("--ner-decoding", choices=["viterbi", "argmax"], default=None,
                            help="viterbi: the best BIO-valid label sequence; argmax: per word, an I- tag after O "
                                 "opens an entity, as IOB1 models need (default: viterbi for newsbeam models, "
                                 "argmax for other models)")
        models.add_argument("--ner-batch-size", metavar="N", type=int, default=32,
                            help="articles per NER batch (fixed size: see transforms.common.fixed_batches)")
        models.add_argument("--stance-batch-size", metavar="N", type=int, default=32,
                            help="articles per stance batch (fixed size, as NER)")
        models.add_argument("--torch-threads", metavar="N", type=int, default=0,
                            help="torch intra-op threads per worker process for the model stages (0: torch's "
                                 "default, one per core). On Dataflow, which runs one SDK process per vCPU, use 1")
        models.add_argument("--precision", choices=list(PRECISION_CHOICES), default="auto",
                            help="numeric precision of the NER and stance models: fp32, bf16 (autocast), int8 "
                                 "(dynamic quantisation of the Linear layers), or auto: at model load each worker "
                                 "times them on the model's own layer shapes and takes the fastest of those whose "
                                 "dev-set quality was measured to hold (docs/quality.md)")
        models.add_argument("--compile-models", action="store_true",
                            help="torch.compile the two models in each worker (about 110 s once per worker, then "
                                 "about 20%% faster model stages; docs/benchmarks.md): for long runs")
        models.add_argument("--skip-models", action="store_true", default=False,
                            help="do not run NER and stance: articles are written with status `skipped` and the "
                                 "reason, targets listed unlabelled (a quick parse/dedup pass)")
        dedup.add_argument("--dedup-threshold", metavar="J", type=float, default=0.8,
                           help="Jaccard similarity of word shingles above which two articles are near-duplicates")
        dedup.add_argument("--num-perm", metavar="N", type=int, default=128, help="MinHash permutations")
        dedup.add_argument("--shingle-size", metavar="WORDS", type=int, default=3, help="words per shingle")
        input_.add_argument("--max-chars", metavar="N", type=int, default=200_000,
                            help="articles longer than this are dead-lettered (never truncated)")
        output.add_argument("--quiet", action="store_true", default=False,
                            help="no live progress on stderr (it is shown only on a terminal anyway)")
        output.add_argument("--verbose", action="store_true", default=False,
                            help="also log at INFO level and list the internal counters in the summary")


class StreamingOptions(PipelineOptions):
    """Options of `newsbeam run --streaming` (Beam's own `--streaming` flag turns the mode on)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        g = _group(parser, "streaming", "with --streaming: poll the feeds until --stop-after (or until killed)")
        g.add_argument("--poll-interval", metavar="SECONDS", type=float, default=DEFAULT_POLL_INTERVAL,
                       help="seconds between polls of each feed")
        g.add_argument("--stop-after", metavar="SECONDS", type=float, default=None,
                       help="stop the streaming run after this many seconds (default: run until killed)")
        g.add_argument("--window-seconds", metavar="SECONDS", type=int, default=DEFAULT_WINDOW_SECONDS,
                       help="output files are grouped in fixed windows of this many seconds")
        g.add_argument("--seen-ttl", metavar="SECONDS", type=float, default=DEFAULT_SEEN_TTL,
                       help="seconds an entry that left its feed is still remembered as seen")
        g.add_argument("--dedup-ttl", metavar="SECONDS", type=float, default=DEFAULT_DEDUP_TTL,
                       help="seconds an article is remembered for exact and near-duplicate dedup")
        g.add_argument("--dedup-max", metavar="N", type=int, default=DEFAULT_TEXT_MAX,
                       help="articles remembered for exact-duplicate dedup (the oldest are forgotten first)")
        g.add_argument("--band-max", metavar="N", type=int, default=DEFAULT_BAND_MAX,
                       help="articles remembered per LSH band for near-duplicate dedup (as batch's bucket cap)")
        g.add_argument("--seen-max", metavar="N", type=int, default=DEFAULT_SEEN_MAX,
                       help="entry keys remembered per feed (the current entries always are)")
        g.add_argument("--max-backoff", metavar="SECONDS", type=float, default=DEFAULT_MAX_BACKOFF,
                       help="longest wait (seconds) before polling a failing feed again")
        g.add_argument("--fetch-retries", metavar="N", type=int, default=DEFAULT_FETCH_RETRIES,
                       help="retries within one poll (5xx, timeouts); later polls back off")


class BackfillOptions(PipelineOptions):
    """Options of `newsbeam backfill`."""

    @classmethod
    def _add_argparse_args(cls, parser):
        g = _group(parser, "backfill", "only the articles published in [--since, --until], one partition per day")
        g.add_argument("--since", metavar="YYYY-MM-DD", default=None, help="first published day (YYYY-MM-DD), inclusive")
        g.add_argument("--until", metavar="YYYY-MM-DD", default=None, help="last published day (YYYY-MM-DD), inclusive")
        g.add_argument("--dry-run", action="store_true", default=False,
                       help="parse the inputs (no models) and list the days and their article counts; write nothing")


RUNNER_HELP = """any other Beam pipeline option is passed to the runner, e.g. --setup_file, --num_workers,
--max_num_workers, --sdk_container_image, --direct_running_mode multi_processing --direct_num_workers 2;
docs/runners.md lists what was tried"""


def add_runner_arguments(parser, streaming: bool = True) -> None:
    """The Beam options users need most, shown in `--help` (Beam's parser defines them; values pass through)."""
    g = _group(parser, "runner", RUNNER_HELP)
    g.add_argument("--runner", metavar="NAME", default=None,
                   help="DirectRunner (local; the default) or DataflowRunner; BundleBasedDirectRunner and "
                        "PortableRunner also work")
    if streaming:
        g.add_argument("--streaming", action="store_true", default=False,
                       help="poll --feeds / --feeds-file continuously instead of one batch pass")
    g.add_argument("--project", metavar="ID", default=None, help="Dataflow: the Google Cloud project")
    g.add_argument("--region", metavar="REGION", default=None, help="Dataflow: the region, e.g. europe-west1")
    g.add_argument("--temp_location", metavar="GS_PATH", default=None, help="Dataflow: a gs:// path for temporary files")
    g.add_argument("--staging_location", metavar="GS_PATH", default=None, help="Dataflow: a gs:// path for staged packages")
