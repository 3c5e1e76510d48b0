"""The unknown-blockpage rule: its phrase file, its constraints, and its false positives.

The false-positive check runs the rule in its most permissive setting (every page taken as
differing from the control, no control length to compare with) over every page the lab's
sites serve and every response body and control title of the OONI measurements kept under
``tests/testdata`` (OONI's QA corpus, where present): none may be called a blockpage.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from probe.nettests.web_connectivity import blockpages, blockphrases
from tests.helpers.paths import TESTDATA
from tests.lab import pages
from tests.lab.scenarios import SCENARIOS

HEADER = "phrase,language,where,source\n"


def page(body: str, length: int | None = None, title: str | None = None) -> dict[str, Any]:
    return {"code": 200, "headers": {}, "body_sample": body[:2048],
            "body_length": len(body.encode()) if length is None else length,
            "body_is_truncated": False,
            "title": blockpages.title_of({"body_sample": body}) if title is None else title}


@pytest.mark.parametrize(("row", "message"), [
    ("x,de,page,s", "phrases row 1.language: not one of"),
    ("x,ru,body,s", "phrases row 1.where: not one of"),
    ("x,ru,page,", "phrases row 1.source: required"),
    ("!!!,ru,page,s", "phrases row 1.phrase: no words"),
])
def test_bad_phrase_rows_are_rejected_with_their_place(row: str, message: str) -> None:
    with pytest.raises(blockphrases.PhraseError, match=message.replace(".", r"\.")):
        blockphrases.parse(HEADER + row + "\n")


def test_duplicates_are_rejected_after_normalisation() -> None:
    with pytest.raises(blockphrases.PhraseError, match=r"row 2\.phrase: duplicate"):
        blockphrases.parse(HEADER + 'Доступ ограничен,ru,page,s\n"доступ, ограничен!",ru,page,s\n')


def test_shipped_phrases_cover_the_region_with_sources() -> None:
    table = blockphrases.phrases()
    assert {p.language for p in table} == {"ru", "kk", "ky", "en"}
    assert all(p.source for p in table)
    assert "доступ ограничен" in {p.phrase for p in table}


def test_normalisation_ignores_case_markup_entities_and_punctuation() -> None:
    text = "<p>ДОСТУП&nbsp;к <b>ресурсу</b>\n ОГРАНИЧЁН!</p><script>var доступ</script>"
    assert blockphrases.normalise(text) == " доступ к ресурсу ограничен "


def test_a_phrase_in_the_title_counts_on_any_page() -> None:
    long_page = page("<title>Доступ ограничен</title>" + "x" * 100_000)
    found = blockphrases.match(long_page, control_length=20_000)
    assert found is not None and found.place == "title"
    assert [str(fact) for fact in found.evidence()] == [
        "blockpage_phrase:доступ ограничен", "phrase_in:title", "phrase_language:ru"]


def test_a_phrase_in_the_text_counts_only_on_a_short_page() -> None:
    stub = "<title>Уведомление</title><p>Доступ к ресурсу ограничен.</p>"
    assert blockphrases.match(page(stub), control_length=20_000) is not None
    assert blockphrases.match(page(stub), control_length=None) is not None
    # Longer than MAX_PAGE_BYTES, or more than MAX_SHARE of the control's body: no.
    assert blockphrases.match(page(stub, length=17 * 1024), control_length=200_000) is None
    assert blockphrases.match(page(stub, length=len(stub.encode())), 100) is None
    truncated = {**page(stub), "body_is_truncated": True}
    assert blockphrases.match(truncated, control_length=None) is None


def test_title_only_words_do_not_count_in_the_text() -> None:
    assert blockphrases.match(page("<p>Сайт бұғатталған</p>"), None) is None
    assert blockphrases.match(page("<title>Сайт бұғатталған</title>"), None) is not None


def test_a_known_false_positive_is_never_a_blockpage() -> None:
    # Censored Planet's "seemingly empty" page pattern (scope fp) vetoes the phrase.
    body = "<html><head><title>Доступ ограничен</title></head><body></body></html>"
    assert blockpages.match_response(page(body), frozenset({"false_positive"})) is not None
    assert blockphrases.match(page(body), None) is None


def news_article() -> str:
    """A news site's article about blocking, as Kyrgyz and Kazakh media publish them: it
    quotes a blockpage's wording, in the text, on a full page of the site."""
    paragraph = ("<p>Пользователи сообщают, что при открытии сайта появляется страница "
                 "«Доступ ограничен»: доступ к ресурсу ограничен в соответствии с решением "
                 "уполномоченного государственного органа. Министерство не комментирует.</p>")
    navigation = "".join(f"<li><a href='/news/{i}'>Новость {i}</a></li>" for i in range(400))
    return (f"<html><head><title>Новости Бишкека</title></head><body><ul>{navigation}</ul>"
            f"<article>{paragraph * 5}</article></body></html>")


def test_a_news_article_about_blocking_is_not_a_blockpage() -> None:
    article = news_article()
    assert len(article.encode()) > blockphrases.MAX_PAGE_BYTES
    assert blockphrases.match(page(article), control_length=30_000) is None


def lab_pages() -> Iterator[tuple[str, str]]:
    """Every page the lab's sites and the censor's non-blockpage servers serve."""
    for scenario in SCENARIOS:
        for site in scenario.sites:
            yield f"lab site {site.name}", pages.site_page(site.name)
    yield "lab big page", pages.big_page("www.slow.kg").decode()
    yield "lab notice page", pages.NOTICE


def _bodies(value: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(response, where) for every HTTP response with a body, and every control title."""
    keys = value.get("test_keys") if isinstance(value, dict) else None
    if not isinstance(keys, dict):
        return
    for index, request in enumerate(keys.get("requests") or []):
        response = (request or {}).get("response") or {}
        if response.get("body"):
            yield response, f"requests[{index}]"
    control = ((keys.get("control") or {}).get("http_request") or {})
    if control.get("title"):
        yield {"title": control["title"], "body": ""}, "control title"


def ooni_pages() -> Iterator[tuple[str, dict[str, Any]]]:
    """Response bodies and control titles of the OONI measurements under tests/testdata."""
    for path in sorted(TESTDATA.rglob("*.json*")):
        text = path.read_text("utf-8", errors="replace")
        lines = [text] if path.suffix == ".json" else text.splitlines()
        for line in lines:
            try:
                measurement = json.loads(line)
            except ValueError:
                continue
            for response, where in _bodies(measurement):
                yield f"{path.relative_to(TESTDATA)} {where}", response


def test_no_false_positive_on_lab_pages_or_ooni_measurements() -> None:
    checked, flagged = 0, []
    for name, body in lab_pages():
        checked += 1
        if blockphrases.match(page(body), control_length=None):
            flagged.append(name)
    for name, response in ooni_pages():
        checked += 1
        found = blockphrases.match(response, control_length=None)
        if found:
            flagged.append(f"{name}: {found.phrase.phrase}")
    assert checked > len(SCENARIOS)
    assert flagged == [], f"{len(flagged)} of {checked} pages called blockpages: {flagged}"


def test_the_lab_blockpages_are_found() -> None:
    for body in (pages.BLOCKPAGE, pages.UNKNOWN_BLOCKPAGE):
        assert blockphrases.match(page(body), control_length=8000) is not None
