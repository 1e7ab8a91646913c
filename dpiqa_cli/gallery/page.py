"""The gallery's HTML: one template, the hand-written CSS and JS, and the data as a JSON block.

No file name can inject markup: the data is a `<script type="application/json">` block with `<`, `>`, `&`
escaped and reaches the page only through textContent and attributes; the title is HTML-escaped; and a
Content-Security-Policy allows only this page's own script and style (by sha256) and no network fetch.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources

from dpiqa_cli.version import __version__

_MARKER = re.compile(r"@(CSP|VERSION|TITLE|STYLE|SCRIPT|DATA)@")


def _asset(name: str) -> str:
    return resources.files("dpiqa_cli.gallery").joinpath(name).read_text(encoding="utf-8")


def json_for_script(obj) -> str:
    """JSON that is safe inside a <script> element: nothing in it can end the element or start a tag."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def render_page(data: dict, title: str) -> str:
    """The complete page; `data` is what gallery.js reads (see build.py for its fields)."""
    script, style = _asset("gallery.js"), _asset("gallery.css")
    assert "</script" not in script.lower() and "</style" not in style.lower()
    csp = (f"default-src 'none'; img-src 'self' data: file:; style-src {_sha256(style)}; "
           f"script-src {_sha256(script)}; base-uri 'none'; form-action 'none'")
    # a title from a file name may carry undecodable bytes (surrogate escapes): show them as U+FFFD
    title = title.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    parts = {"@CSP@": csp, "@VERSION@": __version__, "@TITLE@": html.escape(title), "@STYLE@": style,
             "@SCRIPT@": script, "@DATA@": json_for_script(data)}
    # one pass (re.sub never searches what it substituted), so a marker-like text in the data stays text
    return _MARKER.sub(lambda m: parts[m.group(0)], _asset("page.html"))
