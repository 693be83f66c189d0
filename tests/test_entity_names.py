"""One display name per entity id within a run (transforms.entities): the choice, and the keyed Beam stage."""
from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from tests.conftest import beam_pipeline
from transforms.entities import ChooseName, NameEntities, apply_names, name_votes


def article(aid: str, *entities: tuple[str, str, int]) -> dict:
    return {"id": aid, "entities": [{"id": i, "name": n, "count": c} for i, n, c in entities]}


ARTICLES = [
    article("cs", ("name:ec", "Evropska komise", 3), ("cldr:DE", "Germany", 1)),
    article("pl", ("name:ec", "Komisja Europejska", 2), ("name:tr", "Trump", 1)),
    article("ru", ("name:ec", "Evropeyskaya komissiya", 2), ("name:tr", "Tramp", 1)),
]


def test_the_most_mentioned_name_wins_and_ties_go_to_the_first_alphabetically():
    fn = ChooseName()
    acc = fn.create_accumulator()
    for vote in [("Komisja Europejska", 2), ("Evropska komise", 3)]:
        acc = fn.add_input(acc, vote)
    other = fn.add_input(fn.create_accumulator(), ("Komisja Europejska", 2))
    assert fn.extract_output(fn.merge_accumulators([acc, other])) == "Komisja Europejska"  # 4 against 3
    tie = fn.add_input(fn.add_input(fn.create_accumulator(), ("Tramp", 1)), ("Trump", 1))
    assert fn.extract_output(tie) == "Tramp"


def test_cldr_names_are_not_voted_on_and_names_are_replaced():
    assert list(name_votes(ARTICLES[0])) == [("name:ec", ("Evropska komise", 3))]
    out = apply_names(ARTICLES[1], {"name:ec": "Evropska komise"})
    assert [e["name"] for e in out["entities"]] == ["Evropska komise", "Trump"]
    assert apply_names(ARTICLES[0], {"name:xx": "X"}) is ARTICLES[0]


def test_the_stage_gives_every_article_the_runs_name_for_an_id():
    with beam_pipeline() as p:
        out = p | beam.Create(ARTICLES) | NameEntities()
        assert_that(out | beam.Map(lambda a: (a["id"], [e["name"] for e in a["entities"]])), equal_to([
            ("cs", ["Evropska komise", "Germany"]),
            ("pl", ["Evropska komise", "Tramp"]),
            ("ru", ["Evropska komise", "Tramp"])]))
