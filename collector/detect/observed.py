"""A measurement's observation (``extract.observation``), stored with its row at ingest.

Detection reads every stored measurement once; decompressing and parsing a 7 KB document to
keep a dozen fields costs it several times what extracting them does. Ingest has the document
parsed already, so it extracts the observation there and stores it beside the row as a short
JSON array (``encode``); the detection feed reads that back (``decode``) instead of the body.

The form is ``[version]`` for a measurement that carries no observation, else ``[version,
"run", cc, asn, target, t, outcome, layer, mechanism, fingerprint, handshake, slowdown,
failed, control_failed]`` or ``[version, "ladder", cc, asn, t, online, cause]``. The probe's
id is not in it: it is a column of the row already. Floats are written as ``repr`` writes
them, which reads back to the same double.

``VERSION`` names the rules of ``extract``: whoever changes what ``extract.observation``
returns for some measurement bumps it, and every stored observation of another version is
ignored (``decode`` returns ``STALE``, ``current`` is false), so detection goes back to the
body for those rows (``pipeline``).
A row without an observation (stored before the column existed, or copied without it) also
goes to the body: nothing read changes for old data.
"""

from __future__ import annotations

import json
from typing import Any, Final

from collector.detect.extract import OUTCOMES
from collector.detect.model import LadderReading, Observation, Run

VERSION: Final = 1


class Stale:
    """The marker of a stored observation detection must not use (``decode``)."""

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = Stale()


def encode(observation: Observation | None) -> str:
    """The stored form of ``observation`` (None: the measurement carries none)."""
    item: list[Any]
    if observation is None:
        item = [VERSION]
    elif isinstance(observation, Run):
        o = observation
        item = [VERSION, "run", o.cc, o.asn, o.target, o.t, o.outcome, o.layer, o.mechanism,
                o.fingerprint, o.handshake, o.slowdown, o.failed, o.control_failed]
    else:
        r = observation
        item = [VERSION, "ladder", r.cc, r.asn, r.t, r.online, r.cause]
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


def current(text: str) -> bool:
    """Whether stored ``text`` is of this ``VERSION`` (a cheap look at its start)."""
    return text.startswith((f"[{VERSION},", f"[{VERSION}]"))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    return float(value)


def _optional_number(value: Any) -> float | None:
    return None if value is None else _number(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def decode(text: str, probe_id: str) -> Observation | None | Stale:
    """The observation stored as ``text`` for a row of ``probe_id``: None when the
    measurement carries none, ``STALE`` when ``text`` is of another version or unreadable
    (the caller then extracts it from the body)."""
    try:
        item = json.loads(text)
        if not isinstance(item, list) or not item or item[0] != VERSION \
                or isinstance(item[0], bool):
            return STALE
        if len(item) == 1:
            return None
        if item[1] == "run" and len(item) == 14:
            outcome = _text(item[6])
            if outcome not in OUTCOMES:
                return STALE
            return Run(
                probe_id=probe_id, cc=_text(item[2]), asn=_text(item[3]),
                target=_text(item[4]), t=_number(item[5]),
                outcome=outcome,  # type: ignore[arg-type]
                layer=_optional_text(item[7]), mechanism=_optional_text(item[8]),
                fingerprint=_optional_text(item[9]), handshake=_optional_number(item[10]),
                slowdown=_optional_number(item[11]), failed=_flag(item[12]),
                control_failed=_flag(item[13]))
        if item[1] == "ladder" and len(item) == 7:
            return LadderReading(probe_id=probe_id, cc=_text(item[2]), asn=_text(item[3]),
                                 t=_number(item[4]), online=_flag(item[5]),
                                 cause=_text(item[6]))
    except ValueError:
        return STALE
    return STALE
