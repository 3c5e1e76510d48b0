"""The fingerprint and phrase data: shipped rows are valid, bad rows fail with the row named,
and real blockpages (Citizen Lab's captures of Russian and Belarusian ISPs' pages) are
recognised, by a fingerprint where one knows them and by their wording where none does."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from probe.nettests.web_connectivity import blockpages, blockphrases
from tests.helpers.paths import TESTDATA

HEADER = "name,purpose,location,match,pattern,countries,source\n"
OONI_HEADER = ("name,scope,other_names,location_found,pattern_type,pattern,confidence_no_fp,"
               "expected_countries,source,exp_url,notes\n")
REAL = TESTDATA / "blockpages"


def page(body: str, length: int | None = None, headers: dict[str, str] | None = None,
         ) -> dict[str, Any]:
    """An HTTP response record as the probe stores it (2 KiB sample, title of the body)."""
    return {"code": 200, "headers": headers or {}, "body_sample": body[:2048],
            "body_length": len(body.encode()) if length is None else length,
            "body_is_truncated": False, "title": blockpages.title_of({"body_sample": body})}


def test_shipped_fingerprints_load_with_origin_scope_and_confidence() -> None:
    table = blockpages.fingerprints()
    by_origin: dict[str, int] = {}
    for fingerprint in table:
        by_origin[fingerprint.origin] = by_origin.get(fingerprint.origin, 0) + 1
        assert fingerprint.source and fingerprint.scope in blockpages.SCOPES
        assert 0 <= fingerprint.confidence <= 10
    # Every row of OONI's two files (1,729 HTTP and 226 DNS) and Kuzot's six.
    assert by_origin == {blockpages.KUZOT: 6, blockpages.OONI: 1729 + 226}
    names = {f.name for f in table}
    assert {"kuzot_lab_blockpage", "ooni.kg_0", "kz_information_security_ca"} <= names
    kg = next(f for f in table if f.name == "ooni.kg_0")
    assert (kg.origin, kg.scope, kg.location, kg.countries) == (
        blockpages.OONI, "isp", "header.location", frozenset({"KG"}))
    assert next(f for f in table if f.name == "cl.dns_br_localhost").vague


@pytest.mark.parametrize(("row", "message"), [
    ("a,blockpage,body,like,x,*,s", "fingerprints row 1.match: not one of"),
    ("a,advert,body,contains,x,*,s", "fingerprints row 1.purpose: not one of"),
    ("a,blockpage,cookie,contains,x,*,s", "fingerprints row 1.location:"),
    ("a,blockpage,body,contains,,*,s", "fingerprints row 1: pattern, countries and source"),
    ("a,blockpage,body,regexp,(x,*,s", "fingerprints row 1.pattern: bad regular expression"),
])
def test_bad_rows_are_rejected_with_their_place(row: str, message: str) -> None:
    with pytest.raises(blockpages.FingerprintError, match=message.replace(".", r"\.")):
        blockpages.parse(HEADER + row + "\n")


def test_kuzot_rows_with_and_without_scope_and_confidence() -> None:
    old = blockpages.parse(HEADER + "a,blockpage,body,contains,x,*,s\n")
    assert (old[0].origin, old[0].scope, old[0].confidence) == (blockpages.KUZOT, "", 10)
    new = blockpages.parse(HEADER.replace("\n", ",scope,confidence\n")
                           + "a,blockpage,body,contains,x,KG,s,isp,7\n")
    assert (new[0].scope, new[0].confidence) == ("isp", 7)
    with pytest.raises(blockpages.FingerprintError, match=r"row 1\.scope"):
        blockpages.parse(HEADER.replace("\n", ",scope\n") + "a,blockpage,body,contains,x,*,s,z\n")
    with pytest.raises(blockpages.FingerprintError, match=r"row 2\.name: duplicate"):
        blockpages.parse(HEADER + "a,blockpage,body,contains,x,*,s\n" * 2)


def test_ooni_rows_keep_their_scope_confidence_and_countries() -> None:
    table = blockpages.parse_ooni(OONI_HEADER + "\n".join([
        "o.kg,isp,,header.location,full,http://isp.kg/b,5,KG,ooni,,",
        'o.two,nat,,body,contains,"Blocked, by law",10,"RU, BY",cp,https://x,',
        "o.any,prod,,body,contains,Filter,8,ZZ,cl,,",
        "o.fp,fp,,body,contains,<h1>It works!</h1>,5,,cp,,",
        "o.vague,vbw,,body,regexp,Access .* denied,5,,cp,,",
    ]) + "\n")
    kg, two, anywhere, false_positive, vague = table
    assert (kg.purpose, kg.scope, kg.confidence, kg.countries) == (
        "blockpage", "isp", 5, frozenset({"KG"}))
    assert two.countries == frozenset({"RU", "BY"}) and two.source == "cp https://x"
    assert anywhere.countries == frozenset({"*"})
    assert false_positive.purpose == "false_positive"
    assert vague.vague and vague.matches("Access is denied") and not vague.matches("Access")
    with pytest.raises(blockpages.FingerprintError, match=r"ooni row 1\.confidence"):
        blockpages.parse_ooni(OONI_HEADER + "x,isp,,body,contains,y,high,,s,,\n")
    with pytest.raises(blockpages.FingerprintError, match=r"ooni row 1: missing column"):
        blockpages.parse_ooni("name,scope\nx,isp\n")


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


def test_an_imported_fingerprint_decides_only_where_it_was_seen() -> None:
    def named(name: str) -> blockpages.Fingerprint:
        return next(f for f in blockpages.fingerprints() if f.name == name)

    # India's institutional page is titled as any CDN's refusal: not proof elsewhere.
    access_denied = page("<html><head><title>Access Denied</title></head><body></body></html>")
    assert blockpages.match_blockpage(access_denied, "IN").name == "ooni.in_11"  # type: ignore[union-attr]
    assert blockpages.match_blockpage(access_denied, "KG") is None
    assert blockpages.match_blockpage(access_denied, None) is None
    # A blockpage host's address in a Location header is proof anywhere.
    homeline = {"headers": {"location": "http://homeline.kg/access/blockpage.html"}}
    assert blockpages.match_blockpage(homeline, None).name == "ooni.kg_0"  # type: ignore[union-attr]
    assert named("ooni.kg_0").applies_to("KG") and not named("ooni.kg_0").applies_to("KZ")
    # Country-less rows decide only when their sources rated them specific (8 or more).
    assert named("cl.prod_fortiguard_webfilter_poweredby").decides(None)
    assert not named("cp.a_prod_ddos_guard").decides(None)
    assert not named("cp.f_gen_ru_3").decides("RU")  # vague: "Доступ ограничен"
    assert not named("cp.fp_x_fpru_works").decides(None)  # a known false positive
    assert named("kuzot_lab_blockpage").decides(None)


def test_dns_fingerprints_decide_in_their_country_and_never_when_vague() -> None:
    assert blockpages.match_dns("95.167.13.50", "RU").name == "ooni.ru_dns_1"  # type: ignore[union-attr]
    assert blockpages.match_dns("95.167.13.50", "KG") is None
    # Iran's blockpage address is a private address anywhere else (the lab's forged bogon).
    assert blockpages.match_dns("10.10.34.35", None) is None
    assert blockpages.match_dns("10.10.34.35", "IR").name == "ooni.ir_5"  # type: ignore[union-attr]
    assert blockpages.match_dns("127.0.0.1", None) is None  # cl.dns_br_localhost is vague
    assert blockpages.match_dns("127.0.0.1", "BR") is None


def test_body_of_an_ooni_measurement_is_read_as_ooni_stores_it() -> None:
    text = "<html><head><title>Доступ ограничен</title></head><body>x</body></html>"
    encoded = {"body": {"format": "base64", "data": base64.b64encode(text.encode()).decode()}}
    assert blockpages.body_text(encoded) == text
    assert blockpages.title_of(encoded) == "Доступ ограничен"
    assert blockpages.title_of({"body": text}) == "Доступ ограничен"
    assert blockpages.body_text({"body": {"format": "base64", "data": "%%%"}}) == ""


# What each real page is recognised by: its best phrase and where (None: no phrase can see
# it in the probe's 2 KiB sample), and the fingerprint that knows it in its country (None:
# no file knows it; only its wording names it).
REAL_PAGES = {
    "isp_by_a1_block.html": (("доступ ограничен", "title"), "cl.isp_by_a1_block", "BY"),
    "isp_by_beltelecom_block.html": (("доступ к информационному ресурсу ограничен", "text"),
                                     "cl.isp_by_beltelecom_block", "BY"),
    "isp_ru_akado_block.html": (None, "ooni.ru_44", "RU"),
    "isp_ru_ktelecom_block.html": (("доступ ограничен", "title"),
                                   "cl.isp_ru_ktelecom_block", "RU"),
    "isp_ru_mipt_block.html": (("доступ заблокирован", "title"), "ooni.ru_48", "RU"),
    "isp_ru_mts_block.html": (("доступ к информационному ресурсу ограничен", "text"),
                              "ooni.ru_3", "RU"),
    "isp_ru_novotelecom_forward.html": (("доступ к ресурсу ограничен", "title"), None, "RU"),
    "isp_ru_obit_block.html": (("доступ ограничен", "title"), None, "RU"),
    "isp_ru_pakt_block.html": (("заблокировано роскомнадзором", "title"),
                               "cl.isp_ru_pakt_block", "RU"),
    "isp_ru_podryad_block.html": (("заблокирован по решению", "title"), None, "RU"),
    "isp_ru_rostelcom_block.html": (("доступ ограничен", "title"), None, "RU"),
    "isp_ru_tcentr_block.html": (("доступ ограничен", "text"), "ooni.ru_47", "RU"),
    "isp_ru_tinkoff_block.html": (("страница заблокирована", "title"),
                                  "cl.isp_ru_tinkoff_block", "RU"),
    "isp_ru_ugmktelecom_block.html": (("доступ к ресурсу заблокирован", "text"),
                                      "cl.isp_ru_ugmktelecom_block", "RU"),
    "isp_ru_westcall_blockpage.html": (("доступ ограничен", "text"), None, "RU"),
    "isp_ru_yota_block.html": (("доступ к информационному ресурсу ограничен", "text"),
                               None, "RU"),
}


@pytest.mark.parametrize("name", sorted(REAL_PAGES))
def test_real_blockpages_are_recognised(name: str) -> None:
    phrase, fingerprint, cc = REAL_PAGES[name]
    response = page((REAL / name).read_text("utf-8"))
    found = blockphrases.match(response, control_length=40_000)
    assert (found.phrase.phrase, found.place) == phrase if found else phrase is None, found
    known = blockpages.match_blockpage(response, cc)
    assert (known.name if known else None) == fingerprint
    # Elsewhere (or with no known country) an imported body fingerprint proves nothing.
    if known is not None and known.origin == blockpages.OONI and known.location == "body":
        assert blockpages.match_blockpage(response, "KG") is None


def test_every_real_page_is_named_by_a_fingerprint_or_its_wording() -> None:
    assert sorted(p.name for p in REAL.glob("*.html")) == sorted(REAL_PAGES)
    assert all(phrase or fingerprint for phrase, fingerprint, _cc in REAL_PAGES.values())
