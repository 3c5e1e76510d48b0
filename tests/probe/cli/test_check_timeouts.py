"""``probe check --timeout OP=DURATION``: parsed into per-operation seconds, bad input exits 2."""

from __future__ import annotations

import pytest

from probe.cli.main import main, parse_timeouts


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["connect=2s"], {"connect": 2.0}),
        (["dns=250ms", "http=3", "control=1m"], {"dns": 0.25, "http": 3.0, "control": 60.0}),
        (["tls=1s", "tls=2s"], {"tls": 2.0}),
    ],
)
def test_good_timeouts(items: list[str], expected: dict[str, float]) -> None:
    assert parse_timeouts(items) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("connect", "not OP=DURATION"),
        ("read=2s", "not OP=DURATION"),
        ("dns=soon", "not a duration"),
        ("http=0", "must be positive"),
        ("http=nan", "must be positive"),
    ],
)
def test_bad_timeouts(item: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timeouts([item])


def test_a_bad_timeout_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "https://example.org/", "--timeout", "connect=fast"]) == 2
    assert "--timeout: not a duration" in capsys.readouterr().err
