"""--model-copies: how many copies of each model a machine holds, resolved once at launch and carried by the
model handlers to RunInference (Beam's share_model_across_processes / model_copies). The memory it saves with
two SDK processes is measured by bench/bench_model_sharing.py (docs/benchmarks.md), not here."""
from __future__ import annotations

import pytest
from apache_beam.internal import pickler

from pipeline.arguments import UsageError
from pipeline.launch import graph_config, model_copies
from pipeline.options import DEFAULT_NER_MODEL, DEFAULT_STANCE_MODEL, NewsbeamOptions
from transforms.ner import RecogniseEntities
from transforms.stance import ClassifyStance


def _opts(*args: str) -> NewsbeamOptions:
    return NewsbeamOptions(["--output", "out", "--input", "in", *args])


@pytest.mark.parametrize("args, expected", [
    ((), None),  # one process (the in-memory local runner): its threads already share one copy
    (("--runner", "FnApiRunner"), None),
    (("--direct_running_mode", "multi_processing", "--direct_num_workers", "2"), 1),  # one copy for both
    (("--runner", "DataflowRunner"), 1),  # a Dataflow worker runs one SDK process per vCPU
    (("--runner", "DataflowRunner", "--model-copies", "0"), None),  # asked for one per process
    (("--model-copies", "2"), 2),
])
def test_model_copies_by_runner(args, expected):
    assert model_copies(_opts(*args)) == expected


def test_a_negative_count_is_a_usage_error():
    with pytest.raises(UsageError, match="--model-copies"):
        graph_config(_opts("--model-copies", "-1"))


@pytest.mark.parametrize("copies", [None, 1, 3])
def test_the_routed_handlers_tell_run_inference(copies):
    """What RunInference asks is the routed handler's answer, after the handler travelled to a worker."""
    ner = RecogniseEntities(DEFAULT_NER_MODEL, copies=copies).routed().handler
    stance = ClassifyStance(DEFAULT_STANCE_MODEL, {"Armenia": []}, copies=copies).routed().handler
    for handler in (ner, stance):
        handler = pickler.loads(pickler.dumps(handler))
        assert handler.share_model_across_processes() is (copies is not None)
        assert handler.model_copies() == (copies or 1)
