"""The outside-in lab (``tests.helpers.outsidelab``) as a fixture for the tests that probe it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.outsidelab import OutsideLab, built


@pytest.fixture
def lab() -> Iterator[OutsideLab]:
    with built() as lab:
        yield lab
