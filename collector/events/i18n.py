"""The words of the status page, the feed and the alerts, in English, Russian, Kyrgyz, Kazakh.

English and Russian are complete: every key exists in both (a test checks it). Kyrgyz and
Kazakh carry the page's fixed text (headings, table heads, tiers, kinds, countries, the footer);
any sentence they lack falls back to Russian, which readers in both countries read, and then to
English. The English and Russian texts were written by the project's maintainers; the Kyrgyz and
Kazakh texts are the maintainers' own drafts awaiting review by native speakers (corrections
welcome, key by key).

The texts are data, one file per language (``data/i18n.<language>.json``): every language has
the same kinds of key, so written as code the four catalogs only repeated one shape.

Texts are for people reading during a protest: short, exact, no internal keys. Placeholders are
``str.format`` fields; counts go through ``plural`` (Russian has three forms).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal, cast

Language = Literal["en", "ru", "ky", "kk"]
LANGUAGES: tuple[Language, ...] = ("en", "ru", "ky", "kk")
LANGUAGE_NAMES: dict[Language, str] = {"en": "English", "ru": "Русский", "ky": "Кыргызча",
                                       "kk": "Қазақша"}
FALLBACK: dict[Language, tuple[Language, ...]] = {
    "en": ("en",), "ru": ("ru", "en"), "ky": ("ky", "ru", "en"), "kk": ("kk", "ru", "en")}
# The language people in each country read the tier words and kinds in, for HTML lang=.
DEFAULT: Language = "en"

DATA = Path(__file__).resolve().parent / "data"


def _catalog(language: Language) -> dict[str, str]:
    """One language's texts: ``data/i18n.<language>.json``, key by key, kept as data so a
    translator edits one file per language and never the code."""
    path = DATA / f"i18n.{language}.json"
    table = json.loads(path.read_text(encoding="utf-8"))
    if not (isinstance(table, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in table.items())):
        raise ValueError(f"{path.name}: not an object of texts")
    return {str(key): str(value) for key, value in table.items()}


EN = _catalog("en")
RU = _catalog("ru")
# Kyrgyz and Kazakh: the page's fixed text. Drafts by the maintainers, not yet reviewed by a
# native speaker.
KY = _catalog("ky")
KK = _catalog("kk")
CATALOG: dict[Language, dict[str, str]] = {"en": EN, "ru": RU, "ky": KY, "kk": KK}
# Plural keys exist as <key>.one/.many (English) and .one/.few/.many (Russian).
_PLURAL_SUFFIXES = (".one", ".few", ".many")


def text(language: Language, key: str, **values: object) -> str:
    """The text of ``key`` in ``language`` (or its fallback), formatted with ``values``."""
    for lang in FALLBACK[language]:
        found = CATALOG[lang].get(key)
        if found is not None:
            return found.format(**values) if values else found
    raise KeyError(key)


def plural_form(language: Language, n: int) -> str:
    """``one``, ``few`` or ``many`` (CLDR's categories for Russian; English has one/many)."""
    if language == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "many"


def plural(language: Language, key: str, n: int) -> str:
    """``key.one``/``key.few``/``key.many`` for ``n``, formatted with ``n``."""
    form = plural_form(language, n)
    for lang in FALLBACK[language]:
        table = CATALOG[lang]
        # A language without a "few" form uses "many" there.
        lang_form = plural_form(lang, n) if lang != language else form
        for candidate in (lang_form, "many"):
            found = table.get(f"{key}.{candidate}")
            if found is not None:
                return found.format(n=n)
    raise KeyError(key)


def translated(language: Language) -> frozenset[str]:
    """The keys ``language`` has its own text for (the rest fall back)."""
    return frozenset(CATALOG[language])


_RANGE = re.compile(r"\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*")


def negotiate(accept_language: str | None) -> Language:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 §12.5.4);
    English when nothing matches or the header is malformed."""
    best: tuple[float, int, Language] | None = None
    for index, part in enumerate((accept_language or "")[:1000].split(",")[:32]):
        match = _RANGE.fullmatch(part)
        if not match:
            continue
        tag, q = match.group(1).lower(), match.group(2)
        try:
            weight = 1.0 if q is None else float(q)
        except ValueError:
            continue
        if not 0 < weight <= 1:
            continue
        primary = tag.split("-")[0]
        if primary not in LANGUAGES:
            continue
        candidate = (weight, -index, cast(Language, primary))
        if best is None or candidate > best:
            best = candidate
    return DEFAULT if best is None else best[2]


def parse_language(value: str) -> Language:
    """A ``lang`` query value; ValueError naming the choices otherwise."""
    for language in LANGUAGES:
        if value == language:
            return language
    raise ValueError(f"lang: one of {', '.join(LANGUAGES)}")
