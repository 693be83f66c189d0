"""Evaluation of newsbeam's models and dedup on dev sets (`newsbeam eval`, `make eval`, `make eval-entities`):
what docs/quality.md reports. Not needed by a pipeline worker at run time."""
