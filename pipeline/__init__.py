"""newsbeam's pipeline: options, sources, the graph, sinks and the CLI."""
__version__ = "0.1.0"
