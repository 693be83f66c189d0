"""Deduplication of an in-memory list (newsbeam.enrich): the steps of `transforms.dedup.Deduplicate` without Beam.

Each step runs the very code the graph runs on one group (`new_member`, `SplitExact`, `shared_buckets`,
`near_duplicate_edges`, `jump_to_root`, `DecideKeep`), only the grouping is a dict here instead of a GroupByKey, so
the keep rule (which copy is kept, what a duplicate points at) cannot drift from the pipeline's. No cross-run index:
a list has no output root.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

import apache_beam as beam

from modeling.minhash import lsh_params

from .dedup import bucket_edges, DecideKeep, jump_to_root, new_member, shared_buckets, SplitExact


def _split(outputs: Iterable) -> dict[str, list]:
    """A DoFn's outputs by tag ("main" for untagged)."""
    by_tag: dict[str, list] = defaultdict(list)
    for out in outputs:
        if isinstance(out, beam.pvalue.TaggedOutput):
            by_tag[out.tag].append(out.value)
        else:
            by_tag["main"].append(out)
    return by_tag


def _grouped(pairs: Iterable[tuple]) -> dict:
    groups: dict = defaultdict(list)
    for key, value in pairs:
        groups[key].append(value)
    return groups


def deduplicate_list(articles: list[dict], threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3,
                     seed: int = 1, max_bucket: int = 256, resolve_rounds: int = 6) -> tuple[list[dict], list[dict]]:
    """(kept articles in input order, duplicate records): what `Deduplicate` (without index_root) gives."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("dedup threshold must be in (0, 1]")
    bands, rows = lsh_params(threshold, num_perm)
    split_exact = SplitExact(bands, rows, with_index=False)
    exact = defaultdict(list)
    for group in _grouped(new_member(a, shingle_size, num_perm, seed) for a in articles).items():
        for tag, values in _split(split_exact.process(group)).items():
            exact[tag] += values
    members = _grouped(exact["band_members"])
    buckets = _grouped((key, m) for bucket in _grouped(exact["main"]).items()
                       for article_id, key in shared_buckets(bucket) for m in members[article_id])
    near = [edge for bucket in buckets.items() for edge in bucket_edges(bucket, threshold, max_bucket)]
    parents = {child: (e[1], e[2], e[3], False)
               for child, e in ((child, min(es)) for child, es in _grouped(exact["parents"] + near).items())}
    for _ in range(resolve_rounds):
        down = _grouped((e[0], (child, e[1], e[2], e[3])) for child, e in parents.items())
        nodes = sorted(set(parents) | set(down))
        parents = dict(pair for node in nodes
                       for pair in jump_to_root((node, {"up": [parents[node]] if node in parents else [],
                                                 "down": down.get(node, [])})))
    by_id = _grouped((a["id"], a) for a in articles)
    decide = DecideKeep()
    kept_ids: set[int] = set()  # the kept copies themselves (object ids): one id may be read twice
    duplicates: list[dict] = []
    for article_id, copies in by_id.items():
        out = _split(decide.process((article_id, {"article": copies, "parent": [parents[article_id]]
                                                  if article_id in parents else []})))
        kept_ids.update(id(a) for a in out["main"])
        duplicates += out["duplicates"]
    return [a for a in articles if id(a) in kept_ids], duplicates
