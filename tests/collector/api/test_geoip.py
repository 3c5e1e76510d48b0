"""GeoIP placement with real MaxMind DB files (built by the test, read by ``maxminddb``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector import config as collector_config
from collector.api.geoip import GeoIP, Location
from collector.store import Filters
from probe.core.typed_config import ConfigError
from tests.collector.factory import measurement
from tests.helpers.collector_app import running
from tests.helpers.collector_process import cli
from tests.helpers.mmdb import write_mmdb
from tests.helpers.ports import free_port
from tests.helpers.servers import serve_app

COUNTRIES: dict[str, dict[str, Any]] = {
    "127.0.0.0/24": {"country": {"iso_code": "KZ", "names": {"en": "Kazakhstan"}}},
    "198.51.100.0/24": {"country": {"iso_code": "KG"}},
    "2001:db8:1::/48": {"country": {"iso_code": "KG"}},
}
NETWORKS: dict[str, dict[str, Any]] = {
    "127.0.0.0/24": {"autonomous_system_number": 9198,
                     "autonomous_system_organization": "JSC Kazakhtelecom"},
    "2001:db8:1::/48": {"autonomous_system_number": 8449},
}


@pytest.fixture
def geoip_files(tmp_path: Path) -> tuple[str, str]:
    country, asn = tmp_path / "country.mmdb", tmp_path / "asn.mmdb"
    write_mmdb(country, COUNTRIES, "GeoLite2-Country")
    write_mmdb(asn, NETWORKS, "GeoLite2-ASN")
    return str(country), str(asn)


def test_lookups_merge_country_and_network_files(geoip_files: tuple[str, str],
                                                 tmp_path: Path) -> None:
    geoip = GeoIP(*geoip_files)
    try:
        assert geoip.lookup("127.0.0.1") == Location("KZ", "AS9198")
        found = geoip.lookup("198.51.100.7")
        assert found is not None and (found.cc, found.asn) == ("KG", None)
        found = geoip.lookup("2001:db8:1::99")
        assert found is not None and (found.cc, found.asn) == ("KG", "AS8449")
        assert geoip.lookup("203.0.113.1") is None
        assert geoip.lookup("not an address") is None
        assert geoip.lookup(None) is None
    finally:
        geoip.close()
    combined = tmp_path / "combined.mmdb"  # one file with both, as some vendors ship
    write_mmdb(combined, {"192.0.2.0/24": {"country": "kz", "asn": "AS48503"}})
    geoip = GeoIP(str(combined))
    try:
        found = geoip.lookup("192.0.2.1")
        assert found is not None and (found.cc, found.asn) == ("KZ", "AS48503")
    finally:
        geoip.close()


async def test_ingest_places_by_address_and_flags_disagreement(
        database: str, geoip_files: tuple[str, str]) -> None:
    country, asn = geoip_files
    async with running(database, geoip_database=country, geoip_asn_database=asn) as c:
        headers = await c.token()
        agrees = measurement(probe_cc="KZ", probe_asn="AS9198")
        disagrees = measurement(probe_cc="KG", probe_asn="AS8449")
        response = await c.client.post("/api/v1/measurements", headers=headers,
                                       json={"measurements": [agrees, disagrees]})
        assert response.status == 200
        rows = {r["uid"]: r for r in await c.store.measurements(Filters())}
        ok, flagged = rows[agrees["measurement_uid"]], rows[disagrees["measurement_uid"]]
        assert (ok["probe_cc"], ok["probe_asn"], ok["location_source"],
                ok["location_mismatch"]) == ("KZ", "AS9198", "geoip", False)
        assert (flagged["probe_cc"], flagged["probe_asn"], flagged["location_source"],
                flagged["location_mismatch"]) == ("KZ", "AS9198", "geoip", True)
        body = (await c.store.measurement_bodies([disagrees["measurement_uid"]]))
        assert json.loads(body[disagrees["measurement_uid"]])["probe_cc"] == "KG"
        assert c.sample("kuzot_measurements_location_mismatch_total") == 1
        listed = await c.client.get("/api/v1/measurements?cc=KZ")
        assert len((await listed.json())["measurements"]) == 2


async def test_unknown_addresses_keep_the_declaration(tmp_path: Path) -> None:
    other = tmp_path / "other.mmdb"
    write_mmdb(other, {"203.0.113.0/24": {"country": {"iso_code": "UZ"}}})
    async with running(f"{tmp_path}/k.sqlite", geoip_database=str(other)) as c:
        m = measurement()
        await c.client.post("/api/v1/measurements", json=m, headers=await c.token())
        [row] = await c.store.measurements(Filters())
        assert (row["probe_cc"], row["location_source"], row["location_mismatch"]) == (
            "KG", "declared", False)


def test_config_paths_are_relative_to_the_file_and_must_exist(tmp_path: Path) -> None:
    write_mmdb(tmp_path / "country.mmdb", COUNTRIES)
    (tmp_path / "c.yaml").write_text("geoip_database: country.mmdb\n")
    assert collector_config.load(tmp_path / "c.yaml").geoip_database == str(
        tmp_path / "country.mmdb")
    (tmp_path / "bad.yaml").write_text("geoip_asn_database: missing.mmdb\n")
    with pytest.raises(ConfigError, match="geoip_asn_database: no such file: missing.mmdb"):
        collector_config.load(tmp_path / "bad.yaml")


async def test_serve_refuses_a_file_that_is_not_a_maxmind_db(tmp_path: Path) -> None:
    (tmp_path / "junk.mmdb").write_bytes(b"not a database at all")
    (tmp_path / "c.yaml").write_text(
        f"geoip_database: junk.mmdb\ndatabase: {tmp_path}/k.sqlite\n"
        f"listen: 127.0.0.1:{free_port()}\n")
    code, _, err = await cli("serve", "--config", str(tmp_path / "c.yaml"), timeout=30)
    assert code == 2
    assert err.startswith("config error: geoip_database: not a readable MaxMind DB file")


async def test_the_control_names_each_addresss_network_from_the_asn_database(
        database: str, geoip_files: tuple[str, str]) -> None:
    """OONI's control reports ``ip_info[ip].asn``; with an ASN database the collector's control
    does too (the probe copies it into ``answers[].asn``), and without one it says null."""
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<title>Site</title>")

    site = web.Application()
    site.router.add_get("/", page)
    control = collector_config.Control(allow_private_addresses=True, timeout=5.0)
    async with serve_app(site) as port:
        url = f"http://127.0.0.1:{port}/"
        request = {"http_request": url, "tcp_connect": [f"127.0.0.1:{port}"]}
        _country, asn = geoip_files
        async with running(database, geoip_asn_database=asn, control=control) as c:
            view = await (await c.client.post("/api/v1/control", json=request)).json()
            assert view["http_request"]["status_code"] == 200
            assert view["ip_info"]["127.0.0.1"]["asn"] == 9198
        async with running(database, control=control) as c:
            view = await (await c.client.post("/api/v1/control", json=request)).json()
            assert view["ip_info"]["127.0.0.1"]["asn"] is None
