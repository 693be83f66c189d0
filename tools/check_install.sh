#!/usr/bin/env bash
# `pip install .` in a fresh venv, then `import newsbeam` from an empty folder with nothing else on the path:
# the wheel must carry the newsbeam facade, the four design packages, the report template and the model weights.
#
#   bash tools/check_install.sh            # full: the pinned dependencies too (downloads torch etc.; minutes)
#   DEPS_FROM=/path/to/venv bash tools/check_install.sh
#       # fast: the package alone (--no-deps); its dependencies are read from that venv's site-packages through
#       # PYTHONPATH, which does not run that venv's .pth files, so an editable newsbeam there stays invisible
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$PY" -m venv "$WORK/venv"
if [ -n "${DEPS_FROM:-}" ]; then
  SITE=$("$DEPS_FROM/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  "$DEPS_FROM/bin/python" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT"
  "$WORK/venv/bin/python" -m pip install --quiet --no-deps "$WORK"/dist/newsbeam-*.whl
  EXTRA_PATH="$SITE"
else
  "$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
  "$WORK/venv/bin/python" -m pip install --quiet torch==2.13.0  # CPU build first, as `make install` does
  "$WORK/venv/bin/python" -m pip install --quiet "$ROOT"
  EXTRA_PATH=""
fi
rm -rf "$ROOT/build"  # setuptools' staging folder; not part of the source tree
mkdir "$WORK/empty"
cd "$WORK/empty"
env -i PATH=/usr/bin:/bin HOME="$WORK" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$EXTRA_PATH" \
  "$WORK/venv/bin/python" - "$ROOT" <<'PY'
import sys
from pathlib import Path

root = Path(sys.argv[1]).resolve()
import newsbeam, pipeline, modeling  # noqa: E402,E401

for mod in (newsbeam, pipeline, modeling):
    path = Path(mod.__file__).resolve()
    assert root not in path.parents, f"{mod.__name__} imported from the source tree: {path}"
    assert "site-packages" in path.parts, path
assert (Path(pipeline.__file__).parent / "templates" / "report.html.j2").is_file(), "report template missing"
assert (Path(modeling.__file__).parent / "weights" / "ner" / "model.safetensors").is_file(), "weights missing"
articles = newsbeam.enrich(["date 2020-11-10\nArmenia and Azerbaijan signed a ceasefire in Moscow."],
                           targets=["Armenia"])
assert articles[0].ner.status == "done" and articles[0].entities, articles[0]
print(f"check_install: newsbeam {newsbeam.__version__} from {Path(newsbeam.__file__).parent}: "
      f"{len(articles[0].entities)} entities, stance {articles[0].stance[0].label}")
PY
