"""The layers hold: schemas <- modeling <- transforms <- pipeline <- newsbeam, nothing imports upward and no module cycle
inside a layer. Checked by import-linter with the contracts in .importlinter (the same check a developer runs
with `lint-imports`), so a change that breaks them fails `make test`."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_import_contracts_are_kept():
    exe = Path(sys.executable).parent / "lint-imports"
    assert exe.exists(), "import-linter is not installed (make install installs the test extras)"
    proc = subprocess.run([str(exe), "--config", str(ROOT / ".importlinter")], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout
