"""newsbeam's pipeline: options, sources, the graph, sinks and the CLI."""
from ._version import __version__  # noqa: F401 (the one place the version is written: pipeline/_version.py)
