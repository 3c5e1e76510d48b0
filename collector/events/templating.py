"""The jinja2 environment of the pages and feeds: templates shipped in this package, HTML and
XML autoescaped (every string from outside is escaped unless a template says otherwise), an
undefined name an error rather than an empty string."""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("collector.events", "templates"),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
