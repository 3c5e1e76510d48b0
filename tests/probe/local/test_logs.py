"""Logs name no address and no token, whatever a message or an exception carries."""

from __future__ import annotations

import io
import logging

from probe.local import logs


def test_addresses_and_the_token_never_reach_the_log() -> None:
    stream = io.StringIO()
    handler = logs.setup("info", secrets=["kz_very-secret-token"], stream=stream)
    log = logging.getLogger("probe.test")
    try:
        log.info("connected from %s to %s", "203.0.113.7", "[2001:db8::7]:443")
        log.warning("token kz_very-secret-token refused")
        try:
            raise OSError("bind 198.51.100.9 failed")
        except OSError:
            log.exception("upload failed")
        log.debug("debug lines are not written at the default level")
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert "connected from [scrubbed] to [[scrubbed]]:443" in text
    assert "token [secret] refused" in text
    assert "bind [scrubbed] failed" in text and "Traceback" in text
    for leaked in ("203.0.113.7", "2001:db8::7", "198.51.100.9", "kz_very-secret-token",
                   "debug lines"):
        assert leaked not in text
