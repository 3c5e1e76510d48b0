"""Where things are in the repository, for tests: one definition, so that a test module reads
the same whether it sits one folder deep or three."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
TESTDATA = REPO / "tests" / "testdata"
