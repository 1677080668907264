"""Links from a deal row to its record in the CRM (``PIPELINEBI_CRM_DEAL_URL``).

The template is an http(s) URL with exactly one ``{deal_id}`` placeholder; the id is
percent-encoded into it, so a deal id can never change the scheme, host or path around it
(``D1/../admin`` stays one path segment, ``"><script>`` stays text).

>>> check_template("https://crm.example/deals/{deal_id}")
'https://crm.example/deals/{deal_id}'
>>> deal_url("https://crm.example/deals/{deal_id}", "D 1/x?y")
'https://crm.example/deals/D%201%2Fx%3Fy'
>>> check_template("javascript:alert(1)//{deal_id}")
Traceback (most recent call last):
...
ValueError: write an http:// or https:// address with a host, e.g. https://crm.example/deals/{deal_id}
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

PLACEHOLDER = "{deal_id}"
EXAMPLE = "https://crm.example/deals/{deal_id}"


def check_template(template: str) -> str:
    """The template, stripped, if it is an http(s) URL with exactly one ``{deal_id}`` and no
    other braces; else ValueError saying what to write."""
    t = template.strip()
    if t.count(PLACEHOLDER) != 1 or re.search(r"[{}]", t.replace(PLACEHOLDER, "")):
        raise ValueError(f"put exactly one {PLACEHOLDER} placeholder in it (and no other braces), e.g. {EXAMPLE}")
    if re.search(r"[\s\"'<>\\`]", t):
        raise ValueError(f"an address has no spaces, quotes, angle brackets or backslashes, e.g. {EXAMPLE}")
    parts = urlsplit(t.replace(PLACEHOLDER, "x"))
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or PLACEHOLDER in urlsplit(t).netloc:
        raise ValueError(f"write an http:// or https:// address with a host, e.g. {EXAMPLE}")
    return t


def deal_url(template: str | None, deal_id: object) -> str | None:
    """The deal's CRM address (None without a template or an id); the id percent-encoded,
    every character but letters, digits and ``-._~``."""
    if not template or deal_id is None or deal_id != deal_id or str(deal_id) == "":
        return None
    return template.replace(PLACEHOLDER, quote(str(deal_id), safe=""))
