# newsbeam: `make install` then `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

OUT ?= out
TARGETS ?= Armenia Azerbaijan
SEEDS := 'seeds/*.txt' 'seeds/*.jsonl' 'seeds/*.xml'

.PHONY: install run report-png wheel check-install check-readme run-feeds backfill-yesterday test bench bench-scale eval eval-entities eval-precision calibrate-int8 train-ner train-stance schemas clean

install: $(BIN)/newsbeam

$(BIN)/newsbeam: setup.py requirements.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, exactly pinned: a looser requirement would pull the CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,dataflow]'
	$(BIN)/python -c "import newsbeam, pipeline, transforms, schemas, modeling; print('newsbeam installed')"
	touch $(BIN)/newsbeam

run: install
	rm -rf $(OUT)
	$(BIN)/newsbeam run --input $(SEEDS) --output $(OUT) --targets $(TARGETS) --format both

# docs/report.png: the report over `make run`'s output, screenshot in headless chromium (apt-get install chromium
# chromium-driver). The page names the output root as given (out), so no machine path gets into the picture.
report-png: run
	$(BIN)/newsbeam report --output $(OUT) --html $(OUT)/_report/report.html
	$(BIN)/python tools/report_png.py $(OUT)/_report/report.html docs/report.png --open drill-articles

# dist/newsbeam-VERSION-py3-none-any.whl: the package with the model weights inside, for `pip install` outside a
# clone (install torch==2.13.0 first, from the CPU index, so pip does not pull the CUDA build).
wheel: install
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w dist .
	rm -rf build
	ls -l dist/newsbeam-*.whl

# `pip install .` (not editable) into a fresh venv, then `import newsbeam` from outside the source tree:
# the packages, the report template and the model weights are in the wheel. Downloads the pinned dependencies.
check-install:
	bash tools/check_install.sh

# Every command line of the README's shell blocks: run on this clone, or parsed by its own parser where it needs
# the internet, a cloud project, the corpora or hours (tools/check_readme.py says which and why; a few minutes).
check-readme: install
	$(BIN)/python tools/check_readme.py

# make run-feeds FEEDS="https://example.org/rss https://example.com/atom.xml"  (or FEEDS_FILE=feeds.txt)
# Streaming: add STREAMING=1 [POLL_INTERVAL=300] [STOP_AFTER=3600]. FULL_TEXT=1 adds --fetch-full-text (both modes).
run-feeds: install
	$(BIN)/newsbeam run $(if $(FEEDS),--feeds $(FEEDS)) $(if $(FEEDS_FILE),--feeds-file $(FEEDS_FILE)) \
		$(if $(STREAMING),--streaming $(if $(POLL_INTERVAL),--poll-interval $(POLL_INTERVAL)) \
		$(if $(STOP_AFTER),--stop-after $(STOP_AFTER))) $(if $(FULL_TEXT),--fetch-full-text) \
		--output $(OUT) --targets $(TARGETS)

# Nightly: yesterday's articles, e.g. from cron: 15 2 * * * cd /srv/newsbeam && make backfill-yesterday INPUT='/data/news/*.jsonl'
backfill-yesterday: install
	$(BIN)/newsbeam backfill --since $$(date -u -d yesterday +%F) --until $$(date -u -d yesterday +%F) \
		--input $(INPUT) --output $(OUT) --targets $(TARGETS)

test: install
	$(BIN)/python -m pytest -q --durations=20  # the slowest tests listed: the suite must stay within ~20 min on 2 cores

schemas: install
	$(BIN)/python -m schemas.export

eval: install
	$(BIN)/pip install --quiet -e '.[eval]'
	mkdir -p logs
	$(BIN)/python -m modeling.evaluation.quality --write docs/quality.md --json logs/quality.json
	$(BIN)/python -m modeling.evaluation.bsnlp --write docs/quality.md --json logs/bsnlp.json
	$(BIN)/python -m modeling.evaluation.stance_article --write docs/quality.md --json logs/stance_article.json

# BSNLP-2017 dev: NER found per document, base forms, cross-language ids, per language (docs/quality.md section)
eval-entities: install
	mkdir -p logs
	$(BIN)/python -m modeling.evaluation.bsnlp --write docs/quality.md --json logs/bsnlp.json

# Which precisions `--precision auto` may use: each model's dev scores in fp32, bf16 and int8, recorded in its
# newsbeam.json and in docs/quality.md (WikiANN on its first 3,000 sentences per language: time on 2 cores).
eval-precision: install
	mkdir -p logs
	$(BIN)/python -m modeling.evaluation.quality --precisions fp32,bf16,int8 --wikiann-limit 3000 --record \
		--write docs/quality.md --json logs/precision_quality.json

# int8's SmoothQuant scales and static activation ranges, from a seeded pass over training text (never the dev
# sets); run after retraining a model, then `make eval-precision` to re-measure which precisions keep quality.
calibrate-int8: install
	$(BIN)/python -m modeling.training.calibrate

train-ner: install
	mkdir -p logs
	$(BIN)/newsbeam train ner --config configs/ner.yaml --log logs/train_ner.log
	$(BIN)/newsbeam train ner --config configs/ner-stage2.yaml --log logs/train_ner_stage2.log
	$(BIN)/newsbeam train ner --config configs/ner-stage3.yaml --log logs/train_ner_stage3.log
	$(BIN)/newsbeam train ner --config configs/ner-stage4.yaml --log logs/train_ner_stage4.log
	$(BIN)/newsbeam train ner --config configs/ner-stage5.yaml --log logs/train_ner_stage5.log

train-stance: install
	mkdir -p logs
	$(BIN)/newsbeam train stance --config configs/stance.yaml --log logs/train_stance.log

clean:
	rm -rf $(OUT) .pytest_cache build *.egg-info

# A CPU without AVX-512 (so without native bf16), emulated on an AVX-512 one: oneDNN, ATen, MKL and fbgemm capped
# at AVX2 (docs/benchmarks.md checks that the bf16 rate really drops).
AVX2_ONLY := ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2

bench: install
	mkdir -p logs
	$(BIN)/python bench/bench_stages.py --reuters 200
	$(BIN)/python bench/bench_entities.py
	$(BIN)/python bench/bench_models.py --compile --json logs/bench_models.json
	$(AVX2_ONLY) $(BIN)/python bench/bench_models.py --json logs/bench_models_avx2.json
	$(BIN)/python bench/bench_beam_batches.py
	$(BIN)/python bench/bench_feeds.py
	$(BIN)/python bench/bench_dedup.py --n 200000
	$(BIN)/python bench/bench_model_sharing.py --reuters 60

# `newsbeam run --skip-models` over N synthetic articles (parse, dedup, the sinks) on the local runner with two
# SDK processes: wall time, articles/s, peak memory per process (docs/benchmarks.md). make bench-scale N=100000
N ?= 1000000
bench-scale: install
	mkdir -p logs
	nice -n 19 $(BIN)/python bench/bench_scale.py --n $(N) --json logs/bench_scale.json
