"""The reports' review rows: texts with their highlighted words, and the table's packed rows."""

from __future__ import annotations

import math
import numbers
from collections import Counter
from typing import Any

from review_scorer.report.data import ReportRow, ReviewTable
from review_scorer.report.formatting import (
    _display_text,
    _finite_or_none,
    _fmt_int,
    _fmt_num,
    _markup,
    script_json,
)
from review_scorer.report.insights import NONE_GROUP

# Characters of review text shown before the "more" toggle (table) or the details box (highlights).
PREVIEW_CHARS = 300


# Upper bound on the review text bytes embedded in one page; keeps a 20k-row page well under 30 MB
# even when reviews are long. Longer texts are cut evenly; the predictions file keeps them whole.
TEXT_BUDGET_BYTES = 22_000_000


MAX_GROUP_OPTIONS = 200


# Words marked in a review's text: its strongest few, and only those near the strongest one,
# so "the" and "and" do not bury the words that moved the score; the row's word list has all.
STRONG_WORDS = 4


STRONG_SHARE = 0.35


OTHER_GROUPS_OPTION = "(other groups)"


_SENTIMENT_CODES = {"positive": 1, "negative": 0, "neutral": 2}


_SENTIMENT_CSS = {"positive": "pos", "negative": "neg", "neutral": "neu"}


def _weight_level(weight: float) -> int:
    """Four intensity steps by |weight|, so the page needs no per-word inline style."""
    return min(4, max(1, math.ceil(abs(weight) * 4)))


def _clean_spans(spans: Any, length: int) -> list[tuple[int, int, float]]:
    """Valid, non-overlapping spans in text order; anything malformed is dropped, not trusted."""
    out: list[tuple[int, int, float]] = []
    for item in spans or []:
        try:
            start, end, weight = int(item[0]), int(item[1]), float(item[2])
        except (TypeError, ValueError, IndexError):
            continue
        if 0 <= start < end <= length and math.isfinite(weight) and weight != 0:
            out.append((start, end, max(-1.0, min(1.0, weight))))
    out.sort()
    kept: list[tuple[int, int, float]] = []
    for span in out:
        if not kept or span[0] >= kept[-1][1]:
            kept.append(span)
    return kept


def strong_span_indices(spans: Any) -> list[int]:
    """Indices of the spans to mark in the text: those whose |weight| is at least both the
    STRONG_WORDS-th largest (equal weights all count) and STRONG_SHARE of the largest."""
    strengths = [abs(float(span[2])) for span in spans or ()]
    if not strengths:
        return []
    ranked = sorted(strengths, reverse=True)
    floor = max(ranked[min(STRONG_WORDS, len(ranked)) - 1], STRONG_SHARE * ranked[0])
    return [i for i, strength in enumerate(strengths) if strength >= floor and strength > 0]


def _cut_point(text: str, limit: int) -> int:
    """Where to cut the original text for a preview: never inside an HTML line-break tag."""
    if len(text) <= limit:
        return len(text)
    tag = text.rfind("<", max(0, limit - 6), limit)
    return tag if tag != -1 and ">" not in text[tag:limit] else limit


def text_segments(text: str, spans: Any, limit: int | None = None) -> tuple[list[dict], bool]:
    """The review text as display segments, its strongest words highlighted (strong_span_indices);
    and whether it was cut.

    Spans are offsets into the original text, so they are applied before the display transform
    (``<br>`` to a newline), which then runs on each segment alone.
    """
    stop = len(text) if limit is None else _cut_point(text, limit)
    kept = _clean_spans(spans, len(text))
    kept = [kept[i] for i in strong_span_indices(kept)]  # the others are in the word list
    # A preview never cuts a highlighted word in half: it stops before it.
    stop = next((start for start, end, _ in kept if start < stop < end), stop)
    segments: list[dict] = []
    position = 0
    for start, end, weight in kept:
        if start >= stop:
            break
        if start > position:
            segments.append({"text": _display_text(text[position:start]), "css": None})
        side = "pos" if weight > 0 else "neg"
        segments.append(
            {
                "text": _display_text(text[start : min(end, stop)]),
                "css": f"hl {side} w{_weight_level(weight)}",
                "title": f"{weight:+.2f}: pushes {'positive' if weight > 0 else 'negative'}",
            }
        )
        position = min(end, stop)
    cut = stop < len(text)
    tail = _display_text(text[position:stop])
    if cut:
        tail = tail.rstrip() + "…"
    if tail:
        segments.append({"text": tail, "css": None})
    return segments, cut


def _highlight_view(rows: list[ReportRow]) -> list[dict]:
    out = []
    for row in rows or []:
        text = str(row.get("text") or "")
        preview, shortened = text_segments(text, row.get("spans"), PREVIEW_CHARS)
        rating = row.get("rating")
        out.append(
            {
                "row": _fmt_int(row.get("row")),
                "id": row.get("id"),
                "score": _fmt_num(row.get("score")),
                "sentiment": row.get("sentiment") or "not scored",
                "css": _SENTIMENT_CSS.get(row.get("sentiment"), "none"),
                "preview": preview,
                "full": text_segments(text, row.get("spans"))[0] if shortened else None,
                "rating": None if rating is None else f"{float(rating):g}",
                "has_spans": bool(row.get("spans")),
                "words": word_list(text, row.get("spans")),
            }
        )
    return out


def word_list(text: str, spans: Any) -> list[dict]:
    """Every weighted word of a review, strongest first: the detail behind its few marked words."""
    kept = _clean_spans(spans, len(text))
    return [
        {
            "text": _display_text(text[start:end]),
            "weight": f"{weight:+.2f}",
            "css": f"hl {'pos' if weight > 0 else 'neg'} w{_weight_level(weight)}",
            "title": f"{weight:+.2f}: pushes {'positive' if weight > 0 else 'negative'}",
        }
        for start, end, weight in sorted(kept, key=lambda s: (-abs(s[2]), s[0]))
    ]


def _text_caps(texts: list[str], budget: int) -> int | None:
    """Largest per-text byte cap so that the capped texts fit the budget (None: no cap needed)."""
    sizes = sorted(len(t.encode("utf-8", "replace")) for t in texts)
    if sum(sizes) <= budget:
        return None
    remaining = budget
    n = len(sizes)
    for i, size in enumerate(sizes):
        share = remaining // (n - i)
        if size > share:
            return max(PREVIEW_CHARS, share)
        remaining -= size
    return None


def _cut_text(text: str, cap: int) -> str:
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text
    return data[:cap].decode("utf-8", "ignore").rstrip() + "…"


def _group_name(value: Any) -> str:
    """A row's group as the groups section names it: empty values are "(none)"."""
    text = "" if value is None else str(value).strip()
    return text or NONE_GROUP


def _group_options(names: list[str]) -> tuple[list[str], dict[str, int]]:
    """The group filter's options (sorted) and each row group's option index.

    Past MAX_GROUP_OPTIONS distinct groups, the rarest share one "(other groups)" option, so a
    column with thousands of values does not become a select with thousands of entries.
    """
    counts = Counter(names)
    if len(counts) <= MAX_GROUP_OPTIONS:
        options = sorted(counts)
        return options, {name: i for i, name in enumerate(options)}
    by_count = sorted(counts, key=lambda name: (-counts[name], name))
    kept = sorted(by_count[:MAX_GROUP_OPTIONS])
    options = [*kept, OTHER_GROUPS_OPTION]
    index = {name: i for i, name in enumerate(kept)}
    return options, {name: index.get(name, len(kept)) for name in counts}


def _packed_spans(spans: Any, length: int) -> list[list] | None:
    tidy = _already_clean(spans, length)
    if tidy is not None:
        return tidy or None
    kept = _clean_spans(spans, length)
    return [[start, end, round(weight, 3)] for start, end, weight in kept] or None


def _already_clean(spans: Any, length: int) -> list[list] | None:
    """The spans as they are when _clean_spans would keep every one in the same order (what
    explain.row_spans gives: int offsets in order, apart, inside the text, weights in [-1, 1]
    and not zero); None to say they need the full cleaning. One cheap pass, as every row of a
    large table has a dozen spans."""
    last = 0
    for item in spans or ():
        if type(item) is not list or len(item) != 3:
            return None
        start, end, weight = item
        if type(start) is not int or type(end) is not int or type(weight) is not float:
            return None
        if not (last <= start < end <= length and -1.0 <= weight <= 1.0 and weight != 0.0):
            return None
        last = end
    return list(spans or ())


def _rows_payload(rows: list[ReportRow]) -> tuple[dict, int]:
    """Compact row arrays for the page script, and how many texts were cut to fit the budget.

    Each row is [row, id, text, sentiment (1/0/null), score, status index, label (1/0/null),
    cut (1 if the text was shortened for the page), spans ([[start, end, weight]] or null),
    group index (into "groups", or null), rating (or null), driver term indices (or null),
    the indices of the spans marked in the text (strong_span_indices, or null)].
    """
    statuses: list[str] = []
    index: dict[str, int] = {}
    for status in sorted({r.get("status") or "" for r in rows}, key=lambda s: (s != "ok", s)):
        index[status] = len(statuses)
        statuses.append(status)
    has_group = any("group" in r for r in rows)
    groups, group_index = _group_options([_group_name(r.get("group")) for r in rows] if has_group else [])
    cap = _text_caps([str(r.get("text") or "") for r in rows], TEXT_BUDGET_BYTES)
    cut_count = 0
    packed = []
    for r in rows:
        text = r.get("text")
        text = "" if text is None else str(text)
        cut = 0
        if cap is not None:
            shortened = _cut_text(text, cap)
            if shortened is not text:
                text, cut = shortened, 1
                cut_count += 1
        packed.append(_packed_row(r, text, cut, index, group_index if has_group else None))
    payload = {
        "statuses": statuses,
        "groups": groups,
        "has_id": any(r.get("id") not in (None, "") for r in rows),
        "has_label": any(r.get("label") for r in rows),
        "has_spans": any(p[8] for p in packed),
        "has_rating": any(p[10] is not None for p in packed),
        "preview_chars": PREVIEW_CHARS,
        "rows": packed,
    }
    return payload, cut_count


def _packed_row(r: ReportRow, text: str, cut: int, status_index: dict, group_index: dict | None) -> list:
    row_id = r.get("id")
    # A text cut for the page keeps only the spans that still fit in it.
    spans = _packed_spans(r.get("spans"), len(text))
    return [
        int(r["row"]),
        None if row_id is None or row_id == "" else str(row_id),
        text,
        _SENTIMENT_CODES.get(r.get("sentiment") or ""),
        _finite_or_none(r.get("score"), 4),
        status_index[r.get("status") or ""],
        _SENTIMENT_CODES.get(r.get("label") or ""),
        cut,
        spans,
        None if group_index is None else group_index[_group_name(r.get("group"))],
        _finite_or_none(r.get("rating"), 2),
        _term_indices(r.get("terms")),
        strong_span_indices(spans) if spans else None,
    ]


def _term_indices(terms: Any) -> list[int] | None:
    """A row's driver terms as indices (None: not computed, so the page matches highlights)."""
    if terms is None:
        return None
    return sorted({int(t) for t in terms if isinstance(t, numbers.Integral) and t >= 0})


def _table_view(table: ReviewTable) -> dict:
    max_rows = max(0, int(table.max_rows))
    rows = list(table.rows)[:max_rows]
    rows_total = max(int(table.total or 0), len(rows))
    payload, cut_count = _rows_payload(rows)
    return {
        "statuses": payload["statuses"],
        "group_names": payload["groups"],
        "has_id": payload["has_id"],
        "has_label": payload["has_label"],
        "has_rating": payload["has_rating"],
        "rows_json": _markup(script_json(payload)),
        "shown": _fmt_int(len(rows)),
        "rows_total": _fmt_int(rows_total),
        "truncated": rows_total > len(rows),
        # The ray engine lists a seeded random sample of the rows, not the first ones.
        "sampled": bool(table.sampled),
        "sample_seed": table.sample_seed,
        "cut_count": _fmt_int(cut_count) if cut_count else None,
        "empty": not rows,
    }
