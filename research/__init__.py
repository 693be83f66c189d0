"""Research probes: measurements that informed a design choice (docs/models.md cites them), kept to rerun.
Not part of the installed package: run from a checkout, e.g. `python -m research.shared_encoder_probe`."""
