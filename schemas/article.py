"""The records newsbeam writes: Article (main output), DuplicateRecord and DeadLetter.

Every field a reader relies on is here, validated before anything is written; the JSON Schema files beside this
module are generated from these models (`python -m schemas.export`) and a test keeps them current.
"""
from __future__ import annotations

import datetime as dt
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "2.3"  # 2.0: entities carry base, id, name; a stance without a label has label null.
# 2.1: an entity's name keeps its letters; name_latin beside a name in another script.
# 2.2: a labelled stance says whether stance is measured in the article's language (measured); an article
# carries its authors and site_name where the input names them (HTML pages, CSV/TSV rows)
# 2.3: a labelled stance keeps its classified mentions' own labels and sentences (mention_labels); its label and
# probabilities are the article-level decision over them
EntityType = Literal["PER", "ORG", "LOC", "MISC"]
StanceLabel = Literal["favor", "against", "neutral"]
NOT_MENTIONED = "not mentioned"  # the reason of a stance whose target the article does not name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LanguageInfo(_Strict):
    code: str = Field(description="ISO 639-1 code, or 'und' when nothing could be detected")
    confidence: float = Field(ge=0.0, le=1.0)
    detector: str = Field(description="which library and model gave the code")


class Mention(_Strict):
    start: int = Field(ge=0, description="character offset into Article.text")
    end: int = Field(gt=0)
    text: str = Field(description="exactly Article.text[start:end]")
    score: float = Field(ge=0.0, le=1.0)
    base: str = Field(description="this mention's dictionary form in the article's language (\"Komisji "
                                  "Europejskiej\" -> \"Komisja Europejska\"); the text itself where names do not "
                                  "inflect")


class Entity(_Strict):
    text: str = Field(description="canonical surface form (the most frequent mention of its longest name)")
    type: EntityType
    count: int = Field(ge=1, description="number of mentions")
    score: float = Field(ge=0.0, le=1.0, description="mean mention score")
    base: str = Field(description="dictionary form of the entity's longest name in the article's language")
    id: str = Field(description="the same for one entity in every language, article, run and runner: `cldr:DE`, "
                                "`city:Europe/Brussels` (CLDR names) or `name:<hash of a cross-script phonetic "
                                "key>` (modeling/entity_ids.py)")
    name: str = Field(description="display name: CLDR's English name for cldr/city ids, else the base form as "
                                  "written, letters kept")
    name_latin: Optional[str] = Field(default=None, description="the display name transliterated to Latin "
                                      "letters, where it is written in another script")
    mentions: list[Mention]


class MentionLabel(_Strict):
    """One classified mention of a stance target, with the label the sentence-level model gave it there."""
    start: int = Field(ge=0, description="character offset of the mention into Article.text")
    end: int = Field(gt=0)
    sentence: str = Field(description="the text the mention was classified in: its sentence (clipped to 600 "
                                      "characters around the mention), containing text[start:end]")
    label: StanceLabel
    score: float = Field(ge=0.0, le=1.0, description="calibrated probability of this mention's label")


class Stance(_Strict):
    """Stance toward one target. Every configured target is listed, also where no label was computed: then
    `label` and `score` are null and `reason` says why ('not mentioned', an unsupported language, ...), so a
    groupby on `label` never counts an unread article as confidently neutral."""
    target: str
    label: Optional[StanceLabel] = Field(description="null when no label was computed (see reason)")
    score: Optional[float] = Field(default=None, ge=0.0, le=1.0,
                                   description="calibrated probability of the label; null with the label")
    probabilities: Optional[dict[StanceLabel, float]] = Field(
        default=None, description="calibrated article-level probability per label (the label is the largest)")
    mentions: int = Field(ge=0, description="mentions of the target in the text (the label aggregates at most "
                                            "the first 16)")
    mention_labels: Optional[list[MentionLabel]] = Field(
        default=None, description="with a label: the classified mentions (at most the first 16, reading order), "
        "each with its own sentence-level label")
    reason: Optional[str] = Field(default=None, description="why there is no label (e.g. 'not mentioned')")
    measured: Optional[bool] = Field(default=None, description="with a label: whether stance quality is measured "
                                     "in the article's language (false: zero-shot, docs/quality.md)")

    @model_validator(mode="after")
    def _label_or_reason(self) -> "Stance":
        if (self.label is None) != (self.reason is not None):
            raise ValueError("a stance has either a label or a reason for having none")
        if (self.label is None) != (self.score is None):
            raise ValueError("score is given exactly when a label is")
        if self.label is None and self.measured is not None:
            raise ValueError("measured is given only with a label")
        if self.label is None and self.mention_labels:
            raise ValueError("mention_labels are given only with a label")
        return self


class StageStatus(_Strict):
    status: Literal["done", "skipped"]
    reason: Optional[str] = None
    model: Optional[str] = None


class Article(_Strict):
    schema_version: str = SCHEMA_VERSION
    id: str = Field(description="stable content hash of normalised url + title + text (sha256, 24 hex)")
    source: str = Field(description="feed title, file name or the record's own source")
    url: Optional[str] = None
    title: str
    text: str
    published: dt.date
    published_at: Optional[dt.datetime] = Field(default=None, description="full UTC timestamp where known")
    fetched_at: Optional[dt.datetime] = Field(default=None,
                                              description="when the input was fetched (file mtime for files)")
    input_ref: str = Field(description="where the record came from: path, path:line or feed URL#entry")
    guid: Optional[str] = None
    authors: Optional[list[str]] = Field(default=None, description="the article's authors, where the input names "
                                         "them (an HTML page's author metadata, a CSV/TSV authors column)")
    site_name: Optional[str] = Field(default=None, description="the publishing site's name, where the input "
                                     "names it (an HTML page's og:site_name or publisher)")
    language: Optional[LanguageInfo] = None
    entities: list[Entity] = Field(default_factory=list)
    ner: Optional[StageStatus] = None
    stance: list[Stance] = Field(default_factory=list)
    stance_status: Optional[StageStatus] = None
    targets: Optional[list[str]] = Field(default=None, description="per-record targets from the input, if given")

    @model_validator(mode="after")
    def _offsets_match_text(self) -> "Article":
        for ent in self.entities:
            for m in ent.mentions:
                if self.text[m.start:m.end] != m.text:
                    raise ValueError(f"mention {m.text!r} does not match text[{m.start}:{m.end}]")
        for s in self.stance:
            for m in s.mention_labels or []:
                if not (m.start < m.end <= len(self.text)) or self.text[m.start:m.end] not in m.sentence:
                    raise ValueError(f"stance mention [{m.start}:{m.end}] of {s.target!r} is not in the text or "
                                     "not in its sentence")
        return self


class DuplicateRecord(_Strict):
    schema_version: str = SCHEMA_VERSION
    id: str
    duplicate_of: str = Field(description="id of the article that was kept")
    kind: Literal["exact", "near"]
    similarity: float = Field(ge=0.0, le=1.0, description="estimated Jaccard similarity of word shingles")
    source: str
    url: Optional[str] = None
    title: str
    published: dt.date
    input_ref: str


class DeadLetter(_Strict):
    schema_version: str = SCHEMA_VERSION
    input_ref: str = Field(description="file path, path:line, or feed URL (#entry) of the failed record")
    stage: str = Field(description="the stage that rejected it: read, parse, langid, dedup, ner, stance, validate, write")
    error: str
    id: Optional[str] = None
    excerpt: Optional[str] = Field(default=None, description="the first bytes of the input, for a human to look at")
