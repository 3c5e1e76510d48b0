"""The block list (/24 split, opt-out, limits, clear errors) and the packet-rate bucket."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.outside.blocks import BlockFileError, parse_blocks, parse_opt_out
from collector.outside.pacer import TokenBucket


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def test_prefixes_split_into_sorted_24s_with_comments_ignored() -> None:
    blocks = parse_blocks(
        [
            "# test networks",
            "KZ  net-b  198.51.100.0/24   # documentation range",
            "",
            "KG  net-a  192.0.2.0/24",
            "KZ  net-b  198.18.0.0/23",
        ]
    )
    assert [(b.country, b.network, str(b.prefix)) for b in blocks] == [
        ("KG", "net-a", "192.0.2.0/24"),
        ("KZ", "net-b", "198.18.0.0/24"),
        ("KZ", "net-b", "198.18.1.0/24"),
        ("KZ", "net-b", "198.51.100.0/24"),
    ]


def test_opt_out_drops_every_overlapping_24_whole() -> None:
    opt_out = parse_opt_out(["198.18.1.128/28  # asked on 2026-01-01", "# none"])
    blocks = parse_blocks(["KZ net-b 198.18.0.0/23"], opt_out=opt_out)
    assert [str(b.prefix) for b in blocks] == ["198.18.0.0/24"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("KZ net-b", "expected 'COUNTRY NETWORK PREFIX'"),
        ("kz net-b 192.0.2.0/24", "two capital letters"),
        ("KZ net-b 192.0.2.0/25", "longer than /24"),
        ("KZ net-b 192.0.2.1/24", "not a network prefix"),
        ("KZ net-b 2001:db8::/32", "only IPv4"),
        ("KZ net-b 10.0.0.0/8", "more than 1000"),
    ],
)
def test_bad_lines_are_refused_with_the_line_number(line: str, message: str) -> None:
    with pytest.raises(BlockFileError, match=message) as caught:
        parse_blocks(["# header", line], max_blocks=1000, name="kzkg.txt")
    assert str(caught.value).startswith("kzkg.txt:2:")


def test_one_block_in_two_networks_is_refused() -> None:
    with pytest.raises(BlockFileError, match="already listed for KG net-a"):
        parse_blocks(["KG net-a 192.0.2.0/24", "KZ net-b 192.0.2.0/23"])


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert bucket.try_take(0.0) == 0.0
    assert bucket.try_take(0.0) == 0.0
    assert bucket.try_take(0.0) == pytest.approx(0.5)
    assert bucket.try_take(0.5) == 0.0
    assert bucket.try_take(0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_bucket_refuses_bad_limits(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate=rate, burst=burst)


@given(
    st.floats(0.5, 50.0),
    st.integers(1, 5),
    st.lists(st.floats(0.0, 0.5), min_size=1, max_size=200),
)
def test_bucket_never_exceeds_rate_times_time_plus_burst(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=float(burst))
    now, sent = 0.0, 0
    for step in steps:
        now += step
        while bucket.try_take(now) == 0.0:
            sent += 1
    assert sent <= burst + rate * now + 1e-9


def test_waiting_the_returned_time_always_yields_a_token() -> None:
    # At a clock of 1e3 s the wait is rounded; the bucket must not ask for a wait too small
    # to move the clock (which would make a caller spin forever).
    bucket = TokenBucket(rate=7.0, burst=1.0)
    now = 1000.0
    for _ in range(2000):
        wait = bucket.try_take(now)
        if wait > 0:
            now += wait
            assert bucket.try_take(now) == 0.0
