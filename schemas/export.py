"""Write the JSON Schema of each record model beside this module: `python -m schemas.export [--check]`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .article import Article, DeadLetter, DuplicateRecord

HERE = Path(__file__).resolve().parent
SCHEMAS = {"article.schema.json": Article, "duplicate.schema.json": DuplicateRecord,
           "dead_letter.schema.json": DeadLetter}


def render(model) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name, model in SCHEMAS.items():
        path = HERE / name
        text = render(model)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("stale schema files (run `python -m schemas.export`):", ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
