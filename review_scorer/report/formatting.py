"""Formatting helpers of the reports: numbers, times, JSON for script islands, markup."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from markupsafe import Markup

from review_scorer.report.provenance import format_duration

_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


_SCRIPT_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


def script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>', '&', U+2028 or U+2029 survive."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_ESCAPE_RE.sub(lambda m: _SCRIPT_ESCAPES[m.group(0)], text)


def _display_text(text: str) -> str:
    """Review text as people read it: HTML line breaks (common in scraped text) become newlines."""
    # U+2028/U+2029 are line breaks too, and some tools mishandle them raw.
    return _BR_RE.sub("\n", text).replace("\u2028", "\n").replace("\u2029", "\n")


def _fmt_int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _fmt_num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def _fmt_pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.1%}"


def _fmt_seconds(seconds: Any) -> str:
    return "–" if seconds is None else format_duration(float(seconds))


def _fmt_time(value: Any) -> str:
    if not value:
        return "unknown"
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _fmt_config_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, ensure_ascii=False, default=str)


def _markup(html: str | None) -> Markup | None:
    return None if html is None else Markup(html)


def rounded_shares(counts: list[int], decimals: int = 1) -> list[str]:
    """Each count's share of the total as a percentage with `decimals` places, rounded by the
    largest remainder so the shown shares add up to exactly 100 (1 and 2 show 33.3% and 66.7%;
    three equal counts show 33.4%, 33.3%, 33.3%). "n/a" for every count when the total is 0.
    """
    total = sum(counts)
    if total <= 0:
        return ["n/a"] * len(counts)
    unit = 100 * 10**decimals  # the whole, in the smallest shown step
    floors = [c * unit // total for c in counts]
    remainders = [c * unit % total for c in counts]
    # The steps that plain flooring lost go to the largest remainders (ties: the earlier count).
    for i in sorted(range(len(counts)), key=lambda i: -remainders[i])[: unit - sum(floors)]:
        floors[i] += 1
    return [f"{f / 10**decimals:.{decimals}f}%" for f in floors]


def _finite_or_none(value: Any, digits: int) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None
