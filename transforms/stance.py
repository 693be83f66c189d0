"""Transformer stance toward configured targets: favor / against / neutral with a calibrated score.

Per target: find its mentions -- every mention of an entity whose id is the target's (modeling.entity_ids: so
`Azerbaijan` finds "Азербайджана" and "Azerbaycan"), plus the name and its aliases as words of the text, with
their inflected forms in the article's language (modeling.target_mentions: "Maskenpflicht" finds
"Maskenpflichten"; the aliases file stays an override for what NER misses) -- classify each mention in its
sentence with the fine-tuned classifier (modeling.stance), the first `max_mentions` in reading order and the
headline's mention, and decide the article's label over them with the article head shipped beside the model
(modeling.stance_article; without one, the mean of the probability vectors). Each record keeps its mentions'
own labels and sentences (`mention_labels`). Every target is listed with its mention count; one that is not
mentioned, or an article whose language the model does not cover, gets no label (`label: null`) and a `reason`,
at no model call. An article's own `targets` (JSONL input) replace the configured ones.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from schemas.article import NOT_MENTIONED

from .common import (DEAD, InferenceFailure, SharedAcrossProcesses, counter, dead_letter, fixed_batches,
                     infer_with_single_retry, set_torch_threads)
from .inference import LanguageRoute, RoutedInference, language_code

# Languages where stance is measured at or above MEASURED_BAR macro-F1 on dev data (docs/quality.md, "Stance per
# language"): English (NewsMTSC) and Russian (RuSentNE). German (GerNTSA: crowd-labelled target sentiment in
# online news) is trained on too but measures 0.48 on targets held out of training, below the bar. A language held
# out of training altogether measures 0.45 (German) and 0.49 (Russian): the estimate for a language stance never
# saw. Stance runs in every language NER runs on (its mentions come from NER's entity ids); outside these its
# labelled entries say `measured: false` and stance_status says zero-shot.
MEASURED_BAR = 0.55
STANCE_MEASURED = ("en", "ru")
MAX_MENTIONS = 16


def parse_stance_languages(spec: str | None, ner_languages: Sequence[str]) -> tuple[str, ...]:
    """--stance-languages: None -> every language NER runs on; "measured" -> those of STANCE_MEASURED among them;
    "en,de" -> exactly those. ValueError names a code that is not ISO 639 or that NER does not run on (without
    entities a target in another script or inflected would be "not mentioned", which is false)."""
    from .ner import known_language

    if spec is None:
        return tuple(ner_languages)
    if spec.strip() == "measured":
        return tuple(c for c in ner_languages if c in STANCE_MEASURED)
    codes = [c.strip().lower() for c in spec.split(",") if c.strip()]
    if not codes:
        raise ValueError("give at least one language code (e.g. en,de) or 'measured'")
    for code in codes:
        if not known_language(code):
            raise ValueError(f"{code!r} is not an ISO 639 language code that CLDR knows")
        if code not in ner_languages:
            raise ValueError(f"{code}: NER does not run on it (add it with --ner-languages +{code}); stance finds "
                             "its targets through the entities")
    return tuple(dict.fromkeys(codes))


def zero_shot_reason(code: str) -> str | None:
    """stance_status.reason of an article whose language stance quality is not measured in, else None."""
    if code in STANCE_MEASURED:
        return None
    return (f"zero-shot: stance quality is not measured for {code} (measured at macro-F1 >= {MEASURED_BAR}: "
            f"{', '.join(STANCE_MEASURED)}; docs/quality.md)")


def parse_target_specs(specs: Sequence[str]) -> dict[str, list[str]]:
    """CLI targets: 'Azerbaijan' or 'Azerbaijan=Azerbaijani,Baku' -> {target: [aliases]} (order kept)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, _, aliases = spec.partition("=")
        name = name.strip()
        if not name:
            raise ValueError(f"empty target in {spec!r}")
        out[name] = [a.strip() for a in aliases.split(",") if a.strip()]
    return out


def load_targets_config(path: str) -> dict[str, list[str]]:
    """A YAML file `targets: {Name: [alias, ...], Other: []}` (or a plain list of names)."""
    import yaml
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path) as fh:
        cfg = yaml.safe_load(fh.read().decode("utf-8")) or {}
    targets = cfg.get("targets", cfg) if isinstance(cfg, dict) else cfg
    if isinstance(targets, list):
        return {str(t): [] for t in targets}
    if isinstance(targets, dict):
        return {str(k): [str(a) for a in (v or [])] for k, v in targets.items()}
    raise ValueError(f"{path}: expected `targets:` as a mapping or a list")


def with_config_aliases(targets: Mapping[str, list[str]], config: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Targets named on the command line keep the aliases the config file has for them (names compared
    case-insensitively), after any given on the command line: `--targets Azerbaijan` still finds Baku and
    Азербайджана."""
    by_name = {name.casefold(): aliases for name, aliases in config.items()}
    return {name: list(dict.fromkeys([*aliases, *by_name.get(name.casefold(), [])]))
            for name, aliases in targets.items()}


AUTO = "auto"


def auto_targets(article: dict, top_n: int) -> dict[str, list[str]]:
    """`--stance-targets auto`: the article's top N PER/ORG/LOC entities by mentions; every surface form the NER
    found for an entity is an alias, so its mentions are exactly the NER's."""
    named = [e for e in article.get("entities") or [] if e["type"] in ("PER", "ORG", "LOC")]
    return {e["text"]: sorted({m["text"] for m in e["mentions"]} - {e["text"]}) for e in named[:top_n]}


def targets_for(article: dict, configured: Mapping[str, list[str]], auto_top_n: int = 3) -> dict[str, list[str]]:
    """The article's own targets (JSONL `targets`) replace the configured ones; aliases come from the config.
    With the configured targets set to auto, each article gets its own from its entities."""
    own = article.get("targets")
    if own:
        return {t: list(configured.get(t, [])) for t in own}
    if AUTO in configured:
        return auto_targets(article, auto_top_n)
    return dict(configured)


def target_spans(article: dict, target: str, aliases: Sequence[str]) -> list[tuple[int, int]]:
    """A target's mentions in an article, in reading order (modeling.target_mentions.target_spans: its
    entities with the target's id, then the target's words in the article's language)."""
    from modeling.target_mentions import target_spans as spans

    return spans(article["text"], article.get("entities") or [], target, aliases, language_code(article))


def plan_mentions(article: dict, targets: Mapping[str, list[str]], max_mentions: int = MAX_MENTIONS
                  ) -> dict[str, "MentionPlan"]:
    """For each target, its mention count and the mention inputs to classify (the first `max_mentions`), with
    what the article head needs besides their probabilities: the headline's mention (names: the target, its
    aliases and every surface form found in the text) and where in the text the mentions are."""
    from modeling.stance import mention_input
    from modeling.stance_article import mention_context, title_mention

    text = article["text"]
    plan = {}
    for target, aliases in targets.items():
        spans = target_spans(article, target, aliases)
        kept = spans[:max_mentions]
        items = [mention_input(target, text, start, end) for start, end in kept]
        if not items:
            plan[target] = MentionPlan(len(spans), items)
            continue
        names = sorted({target, *aliases, *(text[s:e] for s, e in spans)})
        plan[target] = MentionPlan(len(spans), items, tuple(kept), title_mention(target, article.get("title") or "",
                                                                                 names),
                                   mention_context(text, spans, len(items)))
    return plan


class MentionPlan(NamedTuple):
    count: int  # every mention of the target in the text
    items: list  # the modeling.stance.MentionInput of the first MAX_MENTIONS, the ones classified
    spans: tuple = ()  # their (start, end) in the text
    title: Any = None  # the headline's mention (a MentionInput), classified too; None if the title does not name it
    context: tuple = ((), 0.0, 0.0)  # modeling.stance_article.mention_context of the text


def unlabelled(target: str, mentions: int, reason: str, entities_known: bool = True) -> dict:
    """A target listed without a label (no model call): `reason` says why; an unmentioned target says so, but
    only where NER ran (`entities_known`): without entities a count of 0 means only that no alias string is in
    the text, not that the article does not name the target in its own language."""
    return {"target": target, "label": None, "score": None, "probabilities": None, "mentions": mentions,
            "reason": NOT_MENTIONED if mentions == 0 and entities_known else reason}


def mention_labels(plan: "MentionPlan", probs: Sequence[Sequence[float]]) -> list[dict]:
    """Each classified mention with its own label: offsets in the text, the sentence it was read in, the label
    and its probability (what a reader checks an article label against)."""
    from modeling.stance import LABELS

    out = []
    for (start, end), item, p in zip(plan.spans, plan.items, probs):
        best = max(range(len(LABELS)), key=p.__getitem__)
        out.append({"start": start, "end": end, "sentence": item.sentence, "label": LABELS[best],
                    "score": round(float(p[best]), 4)})
    return out


def stance_records(plan: Mapping[str, MentionPlan], probs_by_target: Mapping[str, list[list[float]]],
                   head=None, title_probs: Mapping[str, list[float]] | None = None) -> list[dict]:
    """Each target's article-level record: the article head (modeling.stance_article.ArticleHead, calibrated
    probabilities over all the evidence) where one is shipped, else the mean of the mention probabilities; the
    mention-level labels kept beside it. An unmentioned target gets no label (reason 'not mentioned')."""
    from modeling.stance import LABELS
    from modeling.stance_article import decide, from_context

    out = []
    for target, p in plan.items():
        if not p.items:
            out.append(unlabelled(target, 0, NOT_MENTIONED))
            continue
        probs = probs_by_target[target]
        ev = from_context(p.context, p.count, probs, (title_probs or {}).get(target))
        label, score, article_probs = decide(ev, head)
        out.append({"target": target, "label": label, "score": score,
                    "probabilities": dict(zip(LABELS, article_probs)), "mentions": p.count, "reason": None,
                    "mention_labels": mention_labels(p, probs)})
    return out


def unlabelled_records(article: dict, targets: Mapping[str, list[str]], reason: str) -> list[dict]:
    """Every target with its mention count and no label, for an article whose stance is not computed."""
    known = (article.get("ner") or {}).get("status") == "done"
    return [unlabelled(t, p.count, reason, known) for t, p in plan_mentions(article, targets, max_mentions=0).items()]


class StanceModelHandler(SharedAcrossProcesses, ModelHandler[dict, PredictionResult, Any]):
    """RunInference handler: one classifier per worker; all mentions of a batch of articles in one call."""

    def __init__(self, model: str, targets: Mapping[str, list[str]], max_batch_size: int = 32, auto_top_n: int = 3,
                 torch_threads: int = 0, compile_model: bool = False, precision: str = "auto",
                 copies: int | None = None):
        """torch_threads, compile_model, precision, copies: as NerModelHandler."""
        super().__init__()
        self.copies = copies
        self.model_name = model
        self.torch_threads, self.compile_model, self.precision = torch_threads, compile_model, precision
        self.targets = dict(targets)
        self.auto_top_n = auto_top_n
        self._batch = fixed_batches(max_batch_size)

    def load_model(self):
        from modeling.stance import StanceClassifier

        set_torch_threads(self.torch_threads)
        return StanceClassifier.load(self.model_name, compile=self.compile_model, precision=self.precision)

    def run_inference(self, batch: Sequence[dict], model, inference_args: Optional[dict] = None):
        pairs = infer_with_single_retry(list(batch), lambda b: self._stance_for(b, model),
                                        counter("stance_retried_singly"))
        return [PredictionResult(example=a, inference=r, model_id=self.model_name) for a, r in pairs]

    def _stance_for(self, batch: Sequence[dict], model) -> list[list[dict]]:
        plans = [plan_mentions(a, targets_for(a, self.targets, self.auto_top_n)) for a in batch]
        flat = [item for plan in plans for p in plan.values() for item in [*p.items, *([p.title] if p.title else [])]]
        probs = model.predict_proba(flat) if flat else []
        head = article_head(self.model_name)
        results, k = [], 0
        for article, plan in zip(batch, plans):
            by_target, titles = {}, {}
            for target, p in plan.items():
                by_target[target] = probs[k : k + len(p.items)]
                k += len(p.items)
                if p.title:
                    titles[target] = probs[k]
                    k += 1
            results.append(stance_records(plan, by_target, head, titles))
        return results

    def batch_elements_kwargs(self):
        return self._batch

    def get_metrics_namespace(self) -> str:
        return "newsbeam_stance"


@functools.lru_cache(maxsize=4)
def article_head(model_name: str):
    """The article head shipped beside the stance model (modeling.stance_article.HEAD_FILE), or None: loaded once
    per process, here and not with the model, so a model shared across processes (--model-copies) needs no
    attribute of it."""
    from modeling.stance_article import load_head

    return load_head(model_name)


def model_label(name: str) -> str:
    from pathlib import Path

    p = Path(str(name))
    return f"newsbeam-stance ({p.name})" if (p / "newsbeam.json").exists() else str(name)


def with_measured(records: Sequence[dict], code: str) -> list[dict]:
    """Each labelled entry says whether stance is measured in the article's language (`measured`), so a chart
    can keep zero-shot labels apart; an unlabelled entry has none."""
    measured = code in STANCE_MEASURED
    return [dict(r, measured=measured) if r["label"] is not None else r for r in records]


def attach_stance(result: PredictionResult, model_name: str):
    a = result.example
    if isinstance(result.inference, InferenceFailure):
        yield beam.pvalue.TaggedOutput(DEAD, dead_letter(a["input_ref"], "stance", result.inference.error,
                                                         article_id=a["id"]))
        return
    counter("stance_done").inc()
    code = language_code(a)
    status = {"status": "done", "model": model_label(model_name)}
    reason = zero_shot_reason(code)
    if reason:
        counter("stance_unmeasured_language").inc()
        status["reason"] = reason
    yield dict(a, stance=with_measured(result.inference, code), stance_status=status)


def skip_stance(article: dict, targets: Mapping[str, list[str]], reason: str, auto_top_n: int = 3) -> dict:
    """No stance model call for this article; its targets are still listed with their mention counts."""
    counter("stance_skipped").inc()
    stance = unlabelled_records(article, targets_for(article, targets, auto_top_n), reason)
    return dict(article, stance=stance, stance_status={"status": "skipped", "reason": reason})


class ClassifyStance(beam.PTransform):
    """Articles -> {"articles": with `stance` per target (or `stance_status` skipped and the reason),
    "dead_letter", "failed_batches"}; routed inside the model handler as RecogniseEntities."""

    def __init__(self, model: str, targets: Mapping[str, list[str]], languages: Sequence[str] = STANCE_MEASURED,
                 max_batch_size: int = 32, auto_top_n: int = 3, torch_threads: int = 0,
                 compile_model: bool = False, precision: str = "auto", copies: int | None = None):
        super().__init__()
        self.model = model
        self.targets, self.languages, self.auto_top_n = dict(targets), tuple(languages), auto_top_n
        self.handler = StanceModelHandler(model, self.targets, max_batch_size=max_batch_size, auto_top_n=auto_top_n,
                                          torch_threads=torch_threads, compile_model=compile_model,
                                          precision=precision, copies=copies)

    def routed(self) -> RoutedInference:
        """The stage itself (see RecogniseEntities.routed)."""
        return RoutedInference("stance", self.handler, LanguageRoute("stance", self.languages, self.targets),
                               functools.partial(attach_stance, model_name=self.model),
                               functools.partial(_skip, targets=self.targets, auto_top_n=self.auto_top_n))

    def expand(self, articles):
        return articles | "Routed" >> self.routed()


def _skip(article: dict, reason: str, targets: Mapping[str, list[str]], auto_top_n: int) -> dict:
    return skip_stance(article, targets, reason, auto_top_n)
