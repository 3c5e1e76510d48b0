"""Unknown blockpages: a page no fingerprint knows, recognised by the words it says.

Most ISPs in Kyrgyzstan and Kazakhstan (and Russia, whose wording they share) serve a stub
page in place of a blocked site, and many of those pages are in no fingerprint file. What they
have in common is their wording: "Доступ ограничен", "доступ к ресурсу ограничен ... в
соответствии с решением уполномоченного органа". The curated list is
``probe/nettests/web_connectivity/data/blocking_phrases.csv``: Russian, Kazakh, Kyrgyz and English
phrases, each with its source. It starts from OONI's *vague blocking word* fingerprints (scope
``vbw``) in these languages and from Citizen Lab's captured Russian and Belarusian blockpages; the
other vague rows ("Access Denied", "Request Rejected", "Web Filter", ...) are the wording of a
site's own web application firewall or of a CDN, pages that differ from the control for a reason
that is not censorship, and are left out.

A phrase is weaker evidence than a fingerprint, and news sites write about blocking, so the
rule (``match``) holds only under constraints, each for a reason:

1. The caller has established that the page differs from the control's (the page comparison
   that would otherwise say ``blocked/http/diff``): the phrase rule only names what an
   existing difference is; it never turns a page that matches the control into a block.
2. A phrase in the page's ``<title>`` counts: a blockpage titles itself by what it is, a
   site's front page by the site's name.
3. A phrase in the text counts only on a *short* page (at most ``MAX_PAGE_BYTES``) that is
   also at most ``MAX_SHARE`` of the control's body: blockpages are stubs of a few
   kilobytes (the 60 Russian and Belarusian ones Citizen Lab captured have a median of
   about 3.5 kB), while an article about blocking is a full page of the site.
4. Phrases marked ``title`` (a single word such as "бұғатталған", "blocked") never count in
   the text, where they are ordinary words.
5. A page that one of OONI's known-false-positive fingerprints matches (parked domains,
   hosting error pages) is not a blockpage.

Text is compared after normalisation: scripts, styles and tags removed, HTML entities
decoded, case folded, "ё" as "е", punctuation and whitespace as single spaces.
"""

from __future__ import annotations

import csv
import html
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from probe.core.evidence import Fact
from probe.nettests.web_connectivity import blockpages

LANGUAGES = frozenset({"ru", "kk", "ky", "en"})
WHERE = frozenset({"title", "page"})
MAX_PAGE_BYTES = 16 * 1024
MAX_SHARE = 0.5
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_NOT_WORD = re.compile(r"[\W_]+")


class PhraseError(ValueError):
    """The phrase file is malformed; the message names the row and column."""


@dataclass(frozen=True, slots=True)
class Phrase:
    phrase: str  # as written in the file
    language: str
    where: str
    source: str

    @property
    def words(self) -> str:
        return normalise(self.phrase)


@dataclass(frozen=True, slots=True)
class Found:
    """A phrase found on a page, and where: "title" or "text"."""

    phrase: Phrase
    place: str

    def evidence(self) -> list[Fact]:
        return [Fact("blockpage_phrase", self.phrase.phrase), Fact("phrase_in", self.place),
                Fact("phrase_language", self.phrase.language)]


def normalise(text: str) -> str:
    """Lower-case words separated by single spaces, without markup or punctuation."""
    text = html.unescape(_TAG.sub(" ", _SCRIPT.sub(" ", text)))
    return " " + _NOT_WORD.sub(" ", text.casefold().replace("ё", "е")).strip() + " "


def parse(text: str) -> tuple[Phrase, ...]:
    """Parse the phrase CSV; raises PhraseError with the row."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    out: list[Phrase] = []
    for index, row in enumerate(csv.DictReader(lines), start=1):
        where = f"phrases row {index}"
        try:
            phrase = Phrase(row["phrase"].strip(), row["language"].strip(),
                            row["where"].strip(), row["source"].strip())
        except (KeyError, AttributeError) as exc:
            raise PhraseError(f"{where}: missing column {exc}") from exc
        if not phrase.words.strip():
            raise PhraseError(f"{where}.phrase: no words")
        if phrase.language not in LANGUAGES:
            raise PhraseError(f"{where}.language: not one of {sorted(LANGUAGES)}")
        if phrase.where not in WHERE:
            raise PhraseError(f"{where}.where: not one of {sorted(WHERE)}")
        if not phrase.source:
            raise PhraseError(f"{where}.source: required")
        if any(p.words == phrase.words for p in out):
            raise PhraseError(f"{where}.phrase: duplicate {phrase.phrase!r}")
        out.append(phrase)
    return tuple(out)


@cache
def phrases() -> tuple[Phrase, ...]:
    """The shipped phrases (read once)."""
    text = (
        resources.files("probe.nettests.web_connectivity")
        .joinpath("data/blocking_phrases.csv")
        .read_text("utf-8")
    )
    return parse(text)


def _length(response: dict[str, Any]) -> int:
    length = response.get("x_body_length", response.get("body_length"))
    if isinstance(length, int):
        return length
    return len(blockpages.body_text(response).encode("utf-8"))


def short_page(response: dict[str, Any], control_length: int | None) -> bool:
    """Constraint 3: at most MAX_PAGE_BYTES, and at most MAX_SHARE of the control's body."""
    length = _length(response)
    if length > MAX_PAGE_BYTES or response.get("body_is_truncated"):
        return False
    return not control_length or length <= control_length * MAX_SHARE


def match(response: dict[str, Any] | None, control_length: int | None,
          table: tuple[Phrase, ...] | None = None) -> Found | None:
    """The first blocking phrase on ``response`` under constraints 2-5 (the caller checks 1:
    the page differs from the control's), or None."""
    if not response:
        return None
    if blockpages.match_response(response, frozenset({"false_positive"})):
        return None
    table = table if table is not None else phrases()
    title = normalise(blockpages.title_of(response))
    for phrase in table:
        if phrase.words in title:
            return Found(phrase, "title")
    if not short_page(response, control_length):
        return None
    text = normalise(blockpages.body_text(response))
    for phrase in table:
        if phrase.where == "page" and phrase.words in text:
            return Found(phrase, "text")
    return None
