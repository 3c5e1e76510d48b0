"""The fingerprint data file: shipped rows are valid, bad rows fail with the row named."""

from __future__ import annotations

import pytest

from probe import blockpages

HEADER = "name,purpose,location,match,pattern,countries,source\n"


def test_shipped_fingerprints_load() -> None:
    table = blockpages.fingerprints()
    names = {f.name for f in table}
    assert {"kuzot_lab_blockpage", "ooni.kg_0", "kz_information_security_ca"} <= names
    assert all(f.source for f in table)


@pytest.mark.parametrize(("row", "message"), [
    ("a,blockpage,body,regex,x,*,s", "fingerprints row 1.match: not one of"),
    ("a,advert,body,contains,x,*,s", "fingerprints row 1.purpose: not one of"),
    ("a,blockpage,cookie,contains,x,*,s", "fingerprints row 1.location:"),
    ("a,blockpage,body,contains,,*,s", "fingerprints row 1: pattern, countries and source"),
])
def test_bad_rows_are_rejected_with_their_place(row: str, message: str) -> None:
    with pytest.raises(blockpages.FingerprintError, match=message.replace(".", r"\.")):
        blockpages.parse(HEADER + row + "\n")


def test_matching_rules() -> None:
    table = blockpages.parse(HEADER + "\n".join([
        "kg,blockpage,header.location,full,http://isp.kg/blocked,KG,test",
        "lab,blockpage,body,contains,BLOCKED-HERE,*,test",
        "ca,interception,tls.issuer,prefix,State CA,KZ,test",
    ]) + "\n")
    location = {"headers": {"Location": "http://isp.kg/blocked"}}
    assert blockpages.match_response(location, table=table).name == "kg"  # type: ignore[union-attr]
    assert blockpages.match_response({"headers": {"Location": "http://isp.kg/blocked/x"}},
                                     table=table) is None
    found = blockpages.match_response({"body": "x BLOCKED-HERE y"}, table=table)
    assert found is not None and found.applies_to("KZ") and found.applies_to(None)
    issuer = blockpages.match_value("tls.issuer", "State CA 2", table=table)
    assert issuer is not None and issuer.applies_to("KZ") and not issuer.applies_to("KG")
