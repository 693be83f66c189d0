"""Every newsbeam option, as a Beam PipelineOptions subclass (so runners such as Dataflow carry them)."""
from __future__ import annotations

from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from modeling.ner import DEFAULT_WINDOW, FOREIGN_WINDOW
from modeling.precision import CHOICES as PRECISION_CHOICES

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class PackagePath(str):
    """A path inside the installed newsbeam package that re-resolves wherever it is unpickled.

    The default model directories are chosen on the launcher but loaded on the workers (the RunInference
    handlers carry them, pickled). A worker installs newsbeam from `--setup_file` or the SDK container into its
    own site-packages, so the launcher's absolute path (e.g. /home/me/newsbeam/modeling/weights/ner) does not
    exist there. Unpickling rebuilds the path from the worker's own PACKAGE_ROOT instead. It is a plain `str`
    everywhere else (argparse, os.path, Path(), JSON).
    """

    def __new__(cls, *parts: str) -> "PackagePath":
        obj = super().__new__(cls, str(PACKAGE_ROOT.joinpath(*parts)))
        obj.relative = parts
        return obj

    def __reduce__(self):
        return (PackagePath, tuple(self.relative))


DEFAULT_NER_MODEL = PackagePath("modeling", "weights", "ner")
DEFAULT_STANCE_MODEL = PackagePath("modeling", "weights", "stance")
DEFAULT_TARGETS_CONFIG = str(PACKAGE_ROOT / "pipeline" / "targets.yaml")  # read on the launcher only


class NewsbeamOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", nargs="+", default=None,
                            help="files or globs: local paths or any Beam filesystem (gs://, s3://); seed .txt, "
                                 ".jsonl, RSS/Atom .xml")
        parser.add_argument("--feeds", nargs="+", default=None, help="RSS/Atom feed URLs (http/https) to pull once")
        parser.add_argument("--feeds-file", default=None,
                            help="a file with one feed URL per line (# comments and blank lines allowed)")
        parser.add_argument("--max-entries-per-feed", type=int, default=500,
                            help="entries taken from one feed per run; the rest are dead-lettered as skipped")
        parser.add_argument("--fetch-full-text", action="store_true", default=False,
                            help="feed entries that carry only a summary (no content, or under 600 characters): "
                                 "download the entry's link and use the page's main text (trafilatura); on "
                                 "failure the summary is kept and counted as full_text_failed (batch)")
        parser.add_argument("--full-text-allow-private-hosts", action="store_true", default=False,
                            help="with --fetch-full-text, also fetch entry links whose host resolves to a "
                                 "loopback, private or link-local address (intranet feeds); off by default, "
                                 "since entry links come from untrusted feed content")
        parser.add_argument("--output", default=None, help="output root (local folder, gs://..., s3://...)")
        parser.add_argument("--targets", nargs="*", default=None,
                            help="stance targets, e.g. Armenia 'Azerbaijan=Azerbaijani,Baku' (aliases after '='); "
                                 "default: from --targets-config")
        parser.add_argument("--stance-targets", nargs="*", default=None,
                            help="same as --targets; `--stance-targets auto` takes each article's top "
                                 "--auto-targets PER/ORG/LOC entities by mentions")
        parser.add_argument("--auto-targets", type=int, default=3, help="how many entities `auto` takes")
        parser.add_argument("--targets-config", default=DEFAULT_TARGETS_CONFIG,
                            help="YAML file with `targets: {Name: [aliases]}`")
        parser.add_argument("--ner-model", default=DEFAULT_NER_MODEL,
                            help="token-classification model: a Hugging Face id or a local directory")
        parser.add_argument("--stance-model", default=DEFAULT_STANCE_MODEL,
                            help="stance model: a Hugging Face id or a local directory")
        parser.add_argument("--ner-window", type=int, default=None,
                            help="model window in pieces; overlapping windows cover longer texts (default: a "
                                 f"newsbeam model's training length, {DEFAULT_WINDOW} for the shipped one; "
                                 f"{FOREIGN_WINDOW} for other models)")
        parser.add_argument("--ner-decoding", choices=["viterbi", "argmax"], default=None,
                            help="viterbi: the best BIO-valid label sequence; argmax: per word, an I- tag after O "
                                 "opens an entity, as IOB1 models need (default: viterbi for newsbeam models, "
                                 "argmax for other models)")
        parser.add_argument("--ner-batch-size", type=int, default=32,
                            help="articles per NER batch (fixed size: see transforms.common.fixed_batches)")
        parser.add_argument("--stance-batch-size", type=int, default=32,
                            help="articles per stance batch (fixed size, as NER)")
        parser.add_argument("--torch-threads", type=int, default=0,
                            help="torch intra-op threads per worker process for the model stages (0: torch's "
                                 "default, one per core). On Dataflow, which runs one SDK process per vCPU, use 1")
        parser.add_argument("--precision", choices=list(PRECISION_CHOICES), default="auto",
                            help="numeric precision of the NER and stance models: fp32, bf16 (autocast), int8 "
                                 "(dynamic quantisation of the Linear layers), or auto: at model load each worker "
                                 "times them on the model's own layer shapes and takes the fastest of those whose "
                                 "dev-set quality was measured to hold (docs/quality.md)")
        parser.add_argument("--compile-models", action="store_true",
                            help="torch.compile the two models in each worker (about 110 s once per worker, then "
                                 "about 20%% faster model stages; docs/benchmarks.md): for long runs")
        parser.add_argument("--dedup-threshold", type=float, default=0.8,
                            help="Jaccard similarity of word shingles above which two articles are near-duplicates")
        parser.add_argument("--num-perm", type=int, default=128, help="MinHash permutations")
        parser.add_argument("--shingle-size", type=int, default=3, help="words per shingle")
        parser.add_argument("--max-chars", type=int, default=200_000,
                            help="articles longer than this are dead-lettered (never truncated)")
