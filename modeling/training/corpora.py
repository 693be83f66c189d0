"""Readers for the shared corpora (read in place from ../shared/data, never copied).

Every NER source becomes the same thing: a text plus character spans (start, end, type), so that one labelling
path (subword pieces from character offsets) serves CoNLL, WikiANN and NEREL alike.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

NEREL_TYPE_MAP = {
    "PERSON": "PER",
    "ORGANIZATION": "ORG",
    "COUNTRY": "LOC",
    "CITY": "LOC",
    "STATE_OR_PROVINCE": "LOC",
    "LOCATION": "LOC",
    "DISTRICT": "LOC",
}


def shared_data_dir() -> Path:
    """../shared/data beside the project root, or $NEWSBEAM_SHARED_DATA."""
    env = os.environ.get("NEWSBEAM_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"  # modeling/training/ -> the root's parent


@dataclass(frozen=True)
class NerExample:
    text: str
    spans: tuple[tuple[int, int, str], ...]
    source: str  # e.g. "conll-en", "wikiann-ru", "nerel"
    has_misc: bool


def read_conll(path: str | os.PathLike) -> Iterator[tuple[list[str], list[str]]]:
    """Sentences of a token-per-line BIO file (`index<TAB>token<TAB>tag`); -DOCSTART- lines are dropped."""
    tokens: list[str] = []
    tags: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip():
                if tokens:
                    yield tokens, tags
                tokens, tags = [], []
                continue
            parts = line.split("\t")
            if len(parts) < 3:
                parts = line.split()
            token, tag = parts[-2], parts[-1]
            if token == "-DOCSTART-":
                continue
            tokens.append(token)
            tags.append(tag)
    if tokens:
        yield tokens, tags


def bio_spans(tags: list[str], starts: list[int], ends: list[int]) -> list[tuple[int, int, str]]:
    """BIO tags of tokens at [starts[i], ends[i]) as character spans (I- after O, or after another type, opens)."""
    spans: list[tuple[int, int, str]] = []
    current: list | None = None
    for tag, start, end in zip(tags, starts, ends):
        kind, _, etype = tag.partition("-")
        if kind == "B" or (kind == "I" and (current is None or current[2] != etype)):
            if current:
                spans.append(tuple(current))
            current = [start, end, etype]
        elif kind == "I":
            current[1] = end
        else:
            if current:
                spans.append(tuple(current))
            current = None
    if current:
        spans.append(tuple(current))
    return spans


def bio_to_spans(tokens: list[str], tags: list[str]) -> tuple[str, list[tuple[int, int, str]]]:
    """Join tokens with single spaces and turn BIO tags into character spans."""
    starts, pos = [], 0
    for token in tokens:
        starts.append(pos)
        pos += len(token) + 1
    return " ".join(tokens), bio_spans(tags, starts, [s + len(t) for s, t in zip(starts, tokens)])


def conll_examples(path: str | os.PathLike, source: str, has_misc: bool) -> list[NerExample]:
    out = []
    for tokens, tags in read_conll(path):
        text, spans = bio_to_spans(tokens, tags)
        out.append(NerExample(text, tuple(spans), source, has_misc))
    return out


def flatten_outermost(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Keep the outermost of nested/overlapping spans (longest first at each start)."""
    kept: list[tuple[int, int, str]] = []
    for s in sorted(spans, key=lambda x: (x[0], -(x[1] - x[0]))):
        if kept and s[0] < kept[-1][1]:
            continue
        kept.append(s)
    return kept


def read_brat_doc(txt_path: Path, type_map: dict[str, str] = NEREL_TYPE_MAP) -> tuple[str, list[tuple[int, int, str]]]:
    """One brat document: text and its mapped entity spans, nested ones flattened to the outermost.

    Discontinuous annotations (`start end;start end`) are skipped: a flat tagger cannot express them.
    """
    text = txt_path.read_text(encoding="utf-8")
    spans = []
    ann_path = txt_path.with_suffix(".ann")
    if ann_path.exists():
        for line in ann_path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("T"):
                continue
            try:
                _, info, _surface = line.split("\t", 2)
            except ValueError:
                continue
            etype, _, offsets = info.partition(" ")
            if ";" in offsets or etype not in type_map:
                continue
            start, end = (int(x) for x in offsets.split())
            spans.append((start, end, type_map[etype]))
    return text, flatten_outermost(spans)


def brat_examples(folder: str | os.PathLike, source: str = "nerel") -> list[NerExample]:
    out = []
    for txt in sorted(Path(folder).glob("*.txt")):
        text, spans = read_brat_doc(txt)
        out.append(NerExample(text, tuple(spans), source, has_misc=False))
    return out


# The one type convention (CoNLL's, docs/models.md): PER people, ORG organisations, LOC places and countries, MISC
# the rest (events, products, nationalities). Corpora that do not annotate MISC the CoNLL way leave those spans out
# and their O is read as "O or MISC" by the loss (has_misc=False): SlavNER's EVT/PRO (the disease is an EVT there)
# and its demonyms (typed PER with a GPE- id: "Američani"), and Universal NER's OTH.
SLAVNER_LANGS = ("bg", "cs", "pl", "ru", "sl", "uk")
UNER_LANGS = ("da", "hr", "pt", "sk", "sr", "sv", "zh")
WIKINEURAL_LANGS = ("fr", "it", "pt")
SLAVNER_DEV_EVERY = 5  # every 5th document of a language (by sorted id) is its dev set; the rest trains


def ner_sources(root: Path | None = None) -> dict[str, dict[str, Path]]:
    """name -> {split: path} for every NER dev/train file the project knows."""
    root = root or shared_data_dir()
    ner = root / "ner"
    sources: dict[str, dict[str, Path]] = {}
    for lang in ("en", "de", "es", "nl"):
        sources[f"conll-{lang}"] = {"train": ner / "conll" / lang / "train.conllu", "val": ner / "conll" / lang / "val.conllu"}
    for lang in ("en", "de", "es", "nl", "pl", "ru"):
        d = ner / "wikiann" / lang
        sources[f"wikiann-{lang}"] = {"train": _first(d, "train"), "val": _first(d, "val")}
    sources["nerel"] = {"train": ner / "nerel" / "train", "val": ner / "nerel" / "dev"}
    for lang in SLAVNER_LANGS:
        d = ner / "slavner_covid19"
        sources[f"slavner-{lang}"] = {"train": d, "val": d}
    for lang in UNER_LANGS:
        d = ner / "uner" / lang
        sources[f"uner-{lang}"] = {"train": d / "train.iob2", "val": d / "dev.iob2"}
    for lang in WIKINEURAL_LANGS:  # silver; its "test" file trains, its "val" file is the dev set
        d = ner / "wikineural" / lang
        sources[f"wikineural-{lang}"] = {"train": d / "test.conllu", "val": d / "val.conllu"}
    return sources


def source_language(name: str) -> str | None:
    """The ISO 639-1 code of a source ("uner-hr" -> "hr", "nerel" -> "ru")."""
    return "ru" if name == "nerel" else name.rpartition("-")[2] or None


def slavner_examples(folder: Path, lang: str, split: str) -> list[NerExample]:
    """SlavNER documents of one language: raw text and its character-offset mentions, mapped to the convention.

    A mention whose offsets do not give its surface in the text is left out (and so is read as O-or-MISC only if
    nothing else covers it); overlapping mentions keep the outermost."""
    out = []
    docs = sorted((folder / "raw" / lang).glob("*.txt"))
    for k, txt in enumerate(docs):
        if (k % SLAVNER_DEV_EVERY == 0) != (split == "val"):
            continue
        text = txt.read_text(encoding="utf-8")
        spans = []
        tsv = folder / "ner" / lang / (txt.stem + ".tsv")
        for line in tsv.read_text(encoding="utf-8").splitlines() if tsv.exists() else []:
            parts = line.split("\t")
            if len(parts) < 6 or not parts[0].isdigit():
                continue
            start, end, surface, _base, etype, xid = int(parts[0]), int(parts[1]), parts[2], parts[3], parts[4], parts[5]
            if etype not in ("PER", "ORG", "LOC") or (etype == "PER" and xid.startswith("GPE-")):
                continue
            if text[start:end] != surface:
                continue
            spans.append((start, end, etype))
        out.append(NerExample(text, tuple(flatten_outermost(spans)), f"slavner-{lang}", has_misc=False))
    return out


def read_iob2(path: Path) -> Iterator[tuple[str | None, list[str], list[str]]]:
    """Universal NER sentences: (the `# text =` line or None, tokens, tags of the first tag column)."""
    text, tokens, tags = None, [], []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("# text = "):
                text = line[len("# text = "):]
            elif line.startswith("#"):
                continue
            elif not line.strip():
                if tokens:
                    yield text, tokens, tags
                text, tokens, tags = None, [], []
            else:
                parts = line.split("\t")
                if len(parts) >= 3 and parts[0].isdigit():
                    tokens.append(parts[1])
                    tags.append(parts[2])
    if tokens:
        yield text, tokens, tags


def spans_in_text(text: str, tokens: list[str], tags: list[str]) -> tuple[str, list[tuple[int, int, str]]] | None:
    """BIO tags as character spans of the sentence as written (Chinese has no spaces between its tokens); None
    when a token is not found in order in the text."""
    starts, pos = [], 0
    for token in tokens:
        at = text.find(token, pos)
        if at < 0:
            return None
        starts.append(at)
        pos = at + len(token)
    return text, bio_spans(tags, starts, [s + len(t) for s, t in zip(starts, tokens)])


def uner_examples(path: Path, source: str) -> list[NerExample]:
    """Universal NER: PER/ORG/LOC kept, OTH left out (not CoNLL's MISC, so O there means O-or-MISC)."""
    out = []
    for text, tokens, tags in read_iob2(path):
        placed = spans_in_text(text, tokens, tags) if text else None
        sent, spans = placed if placed else bio_to_spans(tokens, tags)
        spans = [s for s in spans if s[2] in ("PER", "ORG", "LOC")]
        out.append(NerExample(sent, tuple(spans), source, has_misc=False))
    return out


def _first(folder: Path, stem: str) -> Path:
    hits = sorted(folder.glob(stem + "*"))
    return hits[0] if hits else folder / f"{stem}.conllu"


def load_ner_split(name: str, split: str, root: Path | None = None) -> list[NerExample]:
    path = ner_sources(root)[name][split]
    if name == "nerel":
        return brat_examples(path, "nerel")
    if name.startswith("slavner-"):
        return slavner_examples(path, source_language(name), split)
    if name.startswith("uner-"):
        return uner_examples(path, name)
    return conll_examples(path, name, has_misc=name.startswith(("conll", "wikineural")))


# ---------------------------------------------------------------- stance
STANCE_LABELS = ("against", "neutral", "favor")
NEWSMTSC_POLARITY = {2.0: "against", 4.0: "neutral", 6.0: "favor"}
RUSENTNE_LABEL = {-1: "against", 0: "neutral", 1: "favor"}


@dataclass(frozen=True)
class StanceExample:
    text: str
    target: str
    start: int
    end: int
    label: str
    source: str


def newsmtsc_examples(path: str | os.PathLike) -> list[StanceExample]:
    """NewsMTSC jsonl: one example per (sentence, target mention)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            text = rec["sentence_normalized"]
            for t in rec["targets"]:
                label = NEWSMTSC_POLARITY.get(float(t["polarity"]))
                if label is None:
                    continue
                out.append(StanceExample(text, t["mention"], int(t["from"]), int(t["to"]), label, "newsmtsc"))
    return out


def rusentne_examples(path: str | os.PathLike) -> list[StanceExample]:
    """RuSentNE tsv; fields are CSV-quoted (\"\" escapes), and the offsets refer to the unquoted sentence."""
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            try:
                label = RUSENTNE_LABEL[int(row["label"])]
                start, end = int(row["entity_pos_start_rel"]), int(row["entity_pos_end_rel"])
            except (KeyError, TypeError, ValueError):
                continue
            out.append(StanceExample(row["sentence"], row["entity"], start, end, label, "rusentne"))
    return out


def rusentne_split(examples: list[StanceExample], seed: int = 13, held: float = 0.15):
    """Fixed-seed 85/15 split of RuSentNE's train file, split by sentence so no sentence is on both sides."""
    sentences = sorted({e.text for e in examples})
    rng = random.Random(seed)
    rng.shuffle(sentences)
    dev_sentences = set(sentences[: int(len(sentences) * held)])
    train = [e for e in examples if e.text not in dev_sentences]
    dev = [e for e in examples if e.text in dev_sentences]
    return train, dev


GERNTSA_POLARITY = {"negative": "against", "neutral": "neutral", "positive": "favor"}
GERNTSA_DEV_PERCENT = 30  # share of targets (not items) in the by-target dev split


def gerntsa_examples(path: str | os.PathLike, skipped: Counter | None = None) -> list[StanceExample]:
    """GerNTSA JSON list: one example per item (opinion_snippet, target, target_anchor {from, to}, polarity).

    An item whose anchor does not give its target in the snippet, or whose polarity is unknown, is left out and
    counted in `skipped` (reason -> count) when a Counter is passed."""
    skipped = Counter() if skipped is None else skipped
    out = []
    with open(path, encoding="utf-8") as fh:
        items = json.load(fh)
    for item in items:
        try:
            text, target = item["opinion_snippet"], item["target"]
            start, end = int(item["target_anchor"]["from"]), int(item["target_anchor"]["to"])
            polarity = item["sentiment"]["polarity"]
        except (KeyError, TypeError, ValueError):
            skipped["malformed"] += 1
            continue
        if not (0 <= start < end <= len(text)) or text[start:end] != target:
            skipped["anchor mismatch"] += 1
            continue
        label = GERNTSA_POLARITY.get(str(polarity).lower())
        if label is None:
            skipped["unknown polarity"] += 1
            continue
        out.append(StanceExample(text, target, start, end, label, "gerntsa"))
    return out


def target_in_dev(target: str, dev_percent: int = GERNTSA_DEV_PERCENT) -> bool:
    """Whether a target belongs to the by-target dev split: a stable hash (sha1, not Python's salted hash) of the
    case-folded, stripped target, so every example of a target falls on one side, in every run."""
    digest = hashlib.sha1(target.strip().casefold().encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < dev_percent


def split_by_target(examples: list[StanceExample], dev_percent: int = GERNTSA_DEV_PERCENT):
    """(train, dev) with no target (case-folded) on both sides: held-out figures are on unseen topics."""
    train = [e for e in examples if not target_in_dev(e.target, dev_percent)]
    dev = [e for e in examples if target_in_dev(e.target, dev_percent)]
    return train, dev


# ---------------------------------------------------------------- news
def reuters_articles(root: Path | None = None, limit: int | None = None) -> list[dict]:
    """Reuters-21578 stories with a body, in file then NEWID order: {id, date, title, body}.

    The SGML is latin-1 with control characters; bodies are unescaped and re-flowed (the newswire wraps lines).
    """
    import html
    import re

    root = root or shared_data_dir()
    folder = root / "news" / "reuters21578"
    files = sorted(folder.glob("*.sgm"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    out = []
    story = re.compile(r"<REUTERS[^>]*NEWID=\"(\d+)\"[^>]*>(.*?)</REUTERS>", re.S)
    for f in files:
        raw = f.read_bytes().decode("latin-1")
        for m in story.finditer(raw):
            block = m.group(2)
            body = re.search(r"<BODY>(.*?)</BODY>", block, re.S)
            if not body:
                continue
            date = re.search(r"<DATE>\s*([^<]+?)\s*</DATE>", block)
            title = re.search(r"<TITLE>(.*?)</TITLE>", block, re.S)
            text = html.unescape(body.group(1))
            text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text).replace(" Reuter\n", "").strip()
            text = re.sub(r"\s*\bReuter\s*$", "", text)
            paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s{3,}", text)]
            out.append({"id": int(m.group(1)), "date": date.group(1) if date else "",
                        "title": html.unescape(title.group(1)).strip() if title else "",
                        "body": "\n".join(p for p in paragraphs if p)})
            if limit and len(out) >= limit:
                return out
    return out


def ru_news_articles(root: Path | None = None) -> list[dict]:
    """The Russian outlets of news/ru (natasha/corus ODS samples): {id, title, body} per article with a text."""
    import gzip

    root = root or shared_data_dir()
    csv.field_size_limit(1 << 24)  # article bodies are longer than csv's default field limit
    out = []
    for path in sorted((root / "news" / "ru").glob("*.csv.gz")):
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for k, row in enumerate(csv.DictReader(fh)):
                body = (row.get("text") or "").strip()
                if body:
                    out.append({"id": f"{path.name.split('.')[0]}-{k}", "title": (row.get("title") or "").strip(),
                                "body": body})
    return out


def feed_entry_texts(root: Path | None = None, min_chars: int = 40) -> list[dict]:
    """Title and summary/content of every entry of the captured feeds (feeds/feed-rs), read from the parser's
    own output beside each feed (`.serde.json`, one shape for RSS, Atom and JSON Feed), HTML reduced to its text.
    Entries with fewer than `min_chars` characters of text, and repeats, are left out."""
    import lxml.html

    root = root or shared_data_dir()

    def plain(node) -> str:
        value = (node or {}).get("content") or (node or {}).get("body") or ""
        if "<" in value:
            try:
                value = lxml.html.fromstring(value).text_content()
            except Exception:  # noqa: BLE001 - not parseable as HTML: keep the raw string
                pass
        return " ".join(value.split())

    out, seen = [], set()
    for path in sorted((root / "feeds" / "feed-rs").glob("*/*.serde.json")):
        for k, entry in enumerate(json.loads(path.read_text(encoding="utf-8")).get("entries") or []):
            title, body = plain(entry.get("title")), plain(entry.get("content")) or plain(entry.get("summary"))
            text = "\n".join(t for t in (title, body) if t)
            if len(text) >= min_chars and text not in seen:
                seen.add(text)
                out.append({"id": f"{path.parent.name}/{path.name}#{k}", "title": title, "body": body})
    return out


# ---------------------------------------------------------------- article-level stance
PERSENT_LABEL = {"negative": "against", "neutral": "neutral", "positive": "favor"}
PERSENT_TEST_PERCENT = 40  # share of target entities (not articles) in the article-level test part
PERSENT_SALT = "persent-article-split"  # so this split is not GerNTSA's by-target split under another name


@dataclass(frozen=True)
class PersentArticle:
    doc_id: str
    title: str
    target: str
    text: str  # DOCUMENT: paragraphs separated by newlines
    label: str  # TRUE_SENTIMENT read as against / neutral / favor
    paragraph_labels: tuple[str | None, ...]  # Paragraph0..15, None where the article has no such paragraph


def persent_path(root: Path | None = None, split: str = "dev") -> Path:
    return (root or shared_data_dir()) / "stance" / "persent" / f"{split}.csv"


def persent_articles(path: str | os.PathLike, skipped: Counter | None = None) -> list[PersentArticle]:
    """PerSenT CSV (DOCUMENT_INDEX, TITLE, TARGET_ENTITY, DOCUMENT, MASKED_DOCUMENT, TRUE_SENTIMENT,
    Paragraph0..15): one article-level example per row. A row without a known TRUE_SENTIMENT, a target or a
    document is left out and counted in `skipped` (reason -> count) when a Counter is passed."""
    skipped = Counter() if skipped is None else skipped
    out = []
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            label = PERSENT_LABEL.get((row.get("TRUE_SENTIMENT") or "").strip().lower())
            target, text = (row.get("TARGET_ENTITY") or "").strip(), row.get("DOCUMENT") or ""
            if label is None:
                skipped["unknown TRUE_SENTIMENT"] += 1
                continue
            if not target or not text.strip():
                skipped["no target or document"] += 1
                continue
            paragraphs = tuple(PERSENT_LABEL.get((row.get(f"Paragraph{i}") or "").strip().lower())
                               for i in range(16))
            out.append(PersentArticle(row["DOCUMENT_INDEX"], (row.get("TITLE") or "").strip(), target, text, label,
                                      paragraphs))
    return out


def persent_in_test(target: str, test_percent: int = PERSENT_TEST_PERCENT) -> bool:
    """Whether a target entity's articles are in the test part: a stable sha1 of the salted, case-folded target,
    so one entity's articles never straddle the split and every run splits alike."""
    key = f"{PERSENT_SALT}:{target.strip().casefold()}".encode("utf-8")
    return int.from_bytes(hashlib.sha1(key).digest()[:8], "big") % 100 < test_percent


def persent_split(articles: list[PersentArticle], test_percent: int = PERSENT_TEST_PERCENT):
    """(train, test): about 60% / 40% of the target entities, by persent_in_test."""
    train = [a for a in articles if not persent_in_test(a.target, test_percent)]
    test = [a for a in articles if persent_in_test(a.target, test_percent)]
    return train, test
