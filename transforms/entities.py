"""One display name per entity id within a run: a keyed Beam stage after NER.

An entity's `id` is a pure function of its name (modeling.entity_ids), the same in every article, run and runner.
Its `name` is too for CLDR ids (`cldr:`, `city:`: CLDR's English name). For the other ids (`name:`, a phonetic key)
each article can only write its own spelling in Latin letters ("Evropska komise", "Komisja Europejska", ...), so
this stage counts, per id, the names the run's articles gave it (weighted by mentions) and writes the most frequent
(ties: the alphabetically first) into every article. The choice depends only on the run's input, not on the
runner or on bundle order, so a rerun writes the same bytes; another run with other articles may choose another
spelling for the same id (the id is the stable key).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import apache_beam as beam


def name_votes(article: dict) -> Iterable[tuple[str, tuple[str, int]]]:
    """(id, (name, mentions)) for each entity whose name is a per-article spelling."""
    for e in article.get("entities") or []:
        if str(e.get("id", "")).startswith("name:") and e.get("name"):
            yield e["id"], (e["name"], int(e.get("count") or 1))


class ChooseName(beam.CombineFn):
    """The most mentioned name of an id (ties: the alphabetically first): order-independent, so any runner and
    any bundling gives the same answer."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, vote: tuple[str, int]) -> dict:
        name, n = vote
        acc[name] = acc.get(name, 0) + n
        return acc

    def merge_accumulators(self, accs) -> dict:
        out: dict = {}
        for acc in accs:
            for name, n in acc.items():
                out[name] = out.get(name, 0) + n
        return out

    def extract_output(self, acc: dict) -> str | None:
        return min(acc, key=lambda name: (-acc[name], name)) if acc else None


def apply_names(article: dict, names: Mapping[str, str]) -> dict:
    """The article with each `name:` entity's name replaced by the run's choice for its id."""
    entities = article.get("entities") or []
    if not any(e.get("id") in names for e in entities):
        return article
    return dict(article, entities=[dict(e, name=names[e["id"]]) if e.get("id") in names else e for e in entities])


class NameEntities(beam.PTransform):
    """Articles with entities -> the same articles, one `name` per entity id across the run."""

    def expand(self, articles):
        names = (articles
                 | "NameVotes" >> beam.FlatMap(name_votes)
                 | "NamePerId" >> beam.CombinePerKey(ChooseName()))
        return articles | "SetNames" >> beam.Map(apply_names, beam.pvalue.AsDict(names))
