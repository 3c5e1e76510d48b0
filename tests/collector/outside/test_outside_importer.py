"""The block-file importer: ipverse/asn-ip JSON in, a loadable block file with sources out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.outside.blocks import parse_blocks
from collector.outside.importer import Source, SourceError, main, render

SHIPPED = Path(__file__).resolve().parents[3] / "configs" / "outside"


def as_file(tmp_path: Path, asn: int, prefixes: list[str]) -> Path:
    path = tmp_path / f"{asn}.json"
    path.write_text(json.dumps({"asn": asn, "handle": f"NET{asn}", "description": "Example",
                                "subnets": {"ipv4": prefixes, "ipv6": ["2001:db8::/32"]}}))
    return path


def test_a_more_specific_announcement_of_another_network_wins(tmp_path: Path) -> None:
    big = as_file(tmp_path, 64500, ["198.18.0.0/22", "192.0.2.128/25"])
    small = as_file(tmp_path, 64501, ["198.18.1.0/24"])
    text = render([Source("KZ", "big", big, "a" * 40), Source("KZ", "small", small)])
    blocks = {str(b.prefix): b.network for b in parse_blocks(text.splitlines())}
    assert blocks == {"198.18.0.0/24": "AS64500", "198.18.1.0/24": "AS64501",
                      "198.18.2.0/24": "AS64500", "198.18.3.0/24": "AS64500"}
    assert "# skipped, longer than /24: 192.0.2.128/25" in text
    assert "ipverse/asn-ip as/64500/aggregated.json @aaaaaaaaaaaa" in text


def test_bad_inputs_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "x.json"
    broken.write_text("{}")
    with pytest.raises(SourceError, match="x.json: not an ipverse"):
        render([Source("KZ", "x", broken)])
    assert main(["KZ-only"]) == 1
    assert "COUNTRY:NETWORK:FILE" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "country", "least"), [("kg-blocks.txt", "KG", 400),
                                                        ("kz-blocks.txt", "KZ", 9000)])
def test_the_shipped_block_files_load_and_name_their_source(name: str, country: str,
                                                            least: int) -> None:
    text = (SHIPPED / name).read_text()
    blocks = parse_blocks(text.splitlines(), name=name)
    assert len(blocks) >= least
    assert {b.country for b in blocks} == {country}
    assert "https://github.com/ipverse/asn-ip" in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert line.split()[1].startswith("AS") and "#" in line
