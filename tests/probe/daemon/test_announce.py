"""Signed endpoint announcements: the operator moves the collector, probes follow.

The collector signs with the key ``python -m collector endpoints-key generate`` wrote; the
probe holds the public half from ``init``. Refused: unsigned, signed by another key, tampered,
replayed or older, expired. Accepted ones survive a restart and carry the probe's uploads once
the old address is gone, against the real collector on loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector import cli as collector_cli
from collector.announce import AnnounceConfig, Announcer, announcer, load_key
from collector.announce import Endpoint as Announced
from collector.config import CollectorConfig
from probe.daemon.announce import AnnouncementError, verify
from probe.daemon.endpoints import Endpoint, EndpointList, FailoverUploader, configured
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.probe.daemon.test_upload import measurement as full_measurement

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MOVED = (Endpoint("moved", "https://collector-2.example.org"),
         Endpoint("fronted", "https://collector.example.org", front="cdn.example.net"))


def make_key(tmp_path: Path, name: str = "endpoints.key") -> tuple[Path, str]:
    path = tmp_path / name
    assert collector_cli.main(["endpoints-key", "generate", "--key-file", str(path)]) == 0
    return path, announce_public(path)


def announce_public(path: Path) -> str:
    from collector.announce import public_half

    return public_half(load_key(path))


def announced(endpoints: tuple[Endpoint, ...]) -> tuple[Announced, ...]:
    return tuple(Announced(e.name, e.url, e.front) for e in endpoints)


def signed(path: Path, serial: int = 2, valid_for: float = 86400.0,
           endpoints: tuple[Endpoint, ...] = MOVED, now: datetime = NOW) -> dict[str, str]:
    config = AnnounceConfig(key_file=str(path), serial=serial, valid_for=valid_for,
                            endpoints=announced(endpoints))
    return Announcer(config, load_key(path)).current(now)


def test_the_key_command_writes_a_private_key_once_and_prints_the_public_half(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, public = make_key(tmp_path)
    printed = capsys.readouterr().out.strip()
    assert printed == public and len(base64.b64decode(public)) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert collector_cli.main(["endpoints-key", "generate", "--key-file", str(path)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert collector_cli.main(["endpoints-key", "public", "--key-file", str(path)]) == 0
    assert capsys.readouterr().out.strip() == public


def test_a_signed_newer_unexpired_announcement_is_believed(tmp_path: Path) -> None:
    path, public = make_key(tmp_path)
    found = verify(signed(path), public, NOW, applied_serial=1)
    assert found.serial == 2 and found.endpoints == MOVED
    assert found.expires == NOW + timedelta(days=1)


def test_unsigned_is_refused(tmp_path: Path) -> None:
    path, public = make_key(tmp_path)
    message = signed(path)
    with pytest.raises(AnnouncementError, match="unsigned"):
        verify({"payload": message["payload"]}, public, NOW, 0)


def test_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    path, _ = make_key(tmp_path)
    _, other = make_key(tmp_path, "other.key")
    with pytest.raises(AnnouncementError, match="bad signature"):
        verify(signed(path), other, NOW, 0)


def test_a_tampered_payload_is_refused(tmp_path: Path) -> None:
    path, public = make_key(tmp_path)
    message = signed(path)
    payload = base64.b64decode(message["payload"]).replace(b"collector-2", b"collector-x")
    forged = {**message, "payload": base64.b64encode(payload).decode()}
    with pytest.raises(AnnouncementError, match="bad signature"):
        verify(forged, public, NOW, 0)


@pytest.mark.parametrize("applied", [2, 3])
def test_a_replayed_or_older_announcement_is_refused(tmp_path: Path, applied: int) -> None:
    path, public = make_key(tmp_path)
    with pytest.raises(AnnouncementError, match="not newer"):
        verify(signed(path, serial=2), public, NOW, applied)


def test_an_expired_announcement_is_refused(tmp_path: Path) -> None:
    path, public = make_key(tmp_path)
    message = signed(path, valid_for=3600.0)
    with pytest.raises(AnnouncementError, match="expired"):
        verify(message, public, NOW + timedelta(hours=2), 0)


def test_the_collector_signs_again_before_half_the_validity_is_gone(tmp_path: Path) -> None:
    path, public = make_key(tmp_path)
    signer = Announcer(AnnounceConfig(key_file=str(path), endpoints=announced(MOVED),
                                      valid_for=3600.0), load_key(path))
    first = signer.current(NOW)
    assert signer.current(NOW + timedelta(minutes=20)) == first
    later = signer.current(NOW + timedelta(minutes=40))
    assert later != first
    assert verify(later, public, NOW + timedelta(minutes=90), 0).endpoints == MOVED


def test_a_config_without_key_or_endpoints_announces_nothing(tmp_path: Path) -> None:
    path, _ = make_key(tmp_path)
    assert announcer(AnnounceConfig(endpoints=announced(MOVED))) is None
    assert announcer(AnnounceConfig(key_file=str(path))) is None


def test_announced_endpoints_follow_the_configured_and_replace_earlier_ones() -> None:
    endpoints = EndpointList([Endpoint("primary", "http://127.0.0.1:1"),
                              Endpoint("moved", "http://127.0.0.1:2")])
    endpoints.announce([Endpoint("moved", "http://127.0.0.1:9"),
                        Endpoint("new", "http://127.0.0.1:3")])
    assert [(e.name, e.url[-1]) for e in endpoints.endpoints] == [
        ("primary", "1"), ("moved", "2"), ("new", "3")]
    endpoints.announce([Endpoint("newer", "http://127.0.0.1:4")])
    assert [e.name for e in endpoints.endpoints] == ["primary", "moved", "newer"]


async def test_the_probe_follows_a_moved_collector_across_a_restart(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    """Heartbeat through the old address learns the new one; the old address goes away; after
    a restart the probe's uploads reach the collector at the new address, each once."""
    key_file, public = make_key(tmp_path)
    old_port, new_port = free_port(), free_port()
    moved = Endpoint("moved", f"http://127.0.0.1:{new_port}")
    config = dataclasses.replace(collector_config, announce=AnnounceConfig(
        key_file=str(key_file), serial=5, endpoints=announced((moved,))))
    token = await issue_token(config, "p-moved")
    probe_config = loopback_config(tmp_path, f"http://127.0.0.1:{old_port}", token, [], 9)
    probe_config = dataclasses.replace(probe_config, collector=dataclasses.replace(
        probe_config.collector, announce_key=public))

    def uploader() -> FailoverUploader:
        link = probe_config.collector
        return FailoverUploader(EndpointList(configured(link.url, link.endpoints)), token,
                                timeout=2.0)

    old = SwitchableCollector(config, old_port)
    await old.start()
    try:
        daemon, db, _ = await make_daemon(probe_config, tmp_path, uploader=uploader())
        await daemon.start()
        await daemon._heartbeat()
        assert isinstance(daemon.uploader, FailoverUploader)
        assert [e.name for e in daemon.uploader.endpoints.endpoints] == ["primary", "moved"]
        await daemon.shutdown()
        await db.close()
    finally:
        await old.stop()

    new = SwitchableCollector(config, new_port)
    await new.start()
    try:
        daemon, db, _ = await make_daemon(probe_config, tmp_path, uploader=uploader())
        await daemon.start()  # the kept announcement comes back from the local database
        for index in range(4):
            await daemon.record(full_measurement(index))
        daemon.reachable = True
        await daemon._upload()
        await daemon._upload()
        await daemon._heartbeat()
        await daemon.shutdown()
        await db.close()
    finally:
        await new.stop()
    with sqlite3.connect(config.database) as store:
        uids = [row[0] for row in store.execute("SELECT uid FROM measurements")]
        beats = [json.loads(row[0]) for row in store.execute("SELECT body FROM heartbeats")]
    assert sorted(uids) == sorted(full_measurement(i)["measurement_uid"] for i in range(4))
    assert beats[-1]["collector_endpoint"] == "moved"
    # An endpoint after the first of the list: the collector's monitor_reach counts it.
    assert beats[-1]["collector_fallback"] is True


async def test_a_forged_announcement_changes_nothing(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    """A collector (or someone in its place) signing with a key the probe was not given:
    the probe keeps its configured endpoints and keeps nothing in its database."""
    key_file, _ = make_key(tmp_path)
    _, expected = make_key(tmp_path, "the-real-one.key")
    port = free_port()
    config = dataclasses.replace(collector_config, announce=AnnounceConfig(
        key_file=str(key_file), endpoints=(Announced("evil", "http://127.0.0.1:1"),)))
    token = await issue_token(config, "p-forged")
    probe_config = loopback_config(tmp_path, f"http://127.0.0.1:{port}", token, [], 9)
    probe_config = dataclasses.replace(probe_config, collector=dataclasses.replace(
        probe_config.collector, announce_key=expected))
    collector = SwitchableCollector(config, port)
    await collector.start()
    try:
        link = probe_config.collector
        uploader = FailoverUploader(EndpointList(configured(link.url, link.endpoints)), token,
                                    timeout=2.0)
        daemon, db, _ = await make_daemon(probe_config, tmp_path, uploader=uploader)
        await daemon.start()
        await daemon._heartbeat()
        assert daemon.heartbeats["ok"] == 1
        assert [e.name for e in uploader.endpoints.endpoints] == ["primary"]
        assert await daemon.journal.get("announced_endpoints") is None
        await daemon.shutdown()
        await db.close()
    finally:
        await collector.stop()


def test_a_signed_announcement_of_a_bad_endpoint_is_refused(tmp_path: Path) -> None:
    """The signature proves who sent it, not that it is well formed: endpoints are checked
    like configured ones."""
    from probe.core.announcement import encode_payload

    path, public = make_key(tmp_path)
    payload = encode_payload(3, NOW + timedelta(days=1),
                             [{"name": "no spaces allowed", "url": "https://x.example"}])
    message = {"payload": base64.b64encode(payload).decode(),
               "signature": base64.b64encode(load_key(path).sign(payload)).decode()}
    with pytest.raises(AnnouncementError, match="endpoints\\[0\\].name"):
        verify(message, public, NOW, 0)
