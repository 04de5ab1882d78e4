"""Render the self-contained HTML report (score or train) from a plain context dict."""

# "model" is artifacts.model_context's dict; its optional "provenance" (provenance.model_provenance)
# becomes the "How this model was made" block of both reports.
# The score context, as score.py builds it. Required: "kind", "model", "summary", "rows".
# Optional (each section appears only when its key holds data):
#   "file_metrics", "score_histogram", "highlights": {"positive"|"negative"|"uncertain": [row]}
#   "score_histogram": {"edges", "counts", and optionally "positive_counts": each bin's rows that
#                       were decided positive (StreamingMetrics.histogram); without it the
#                       histogram's description does not split the rows by side}
#   "drivers":  {"positive": [{"term", "weight", "reviews"}], "negative": [...],
#                "reviews_explained": int}                       (explain.DriverAccumulator.result)
#   "timeline", "groups", "ratings": insights.FileInsights.context()'s three keys, as they are.
# A row (in "rows", in highlights and in ratings' disagreement lists) is a dict with
#   "row", "id", "text", "sentiment", "score", "status", "label", and optionally
#   "spans": [[start, end, weight], ...] (explain.row_spans: offsets into the original text,
#            weight in [-1, 1]), "group": the row's group value, "rating": its star rating,
#   "terms": indices of the driver terms the row holds (explain.terms_in_text against the
#            drivers' positive terms followed by the negative ones); without it the driver
#            filter matches the row's highlighted words instead.

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import math
import numbers
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from review_scorer.errors import OutputError
from review_scorer.report import plots
from review_scorer.report.insights import NONE_GROUP
from review_scorer.report.loader import template_loader
from review_scorer.report.provenance import format_duration

logger = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 20000
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
GROUPS_PLOTTED = 30  # more rows than this make the groups plot a wall; the table has them all
OTHER_GROUPS_OPTION = "(other groups)"

_TEMPLATES = {"score": "score.html", "train": "train.html"}
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_SCRIPT_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SENTIMENT_CODES = {"positive": 1, "negative": 0, "neutral": 2}
_SENTIMENT_CSS = {"positive": "pos", "negative": "neg", "neutral": "neu"}

_env = None


def _environment():
    """The one jinja2 Environment, created on first use (importing jinja2 lazily).

    Templates live in the top-level templates/ folder, packaged as review_scorer.templates
    (report/loader.py finds them in a checkout and in an installed wheel alike).
    """
    global _env
    if _env is None:
        import jinja2

        _env = jinja2.Environment(
            loader=template_loader(),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    return _env


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


def _metrics_rows(columns: list[dict | None]) -> list[dict]:
    """Rows of the metrics table, one value per column (a column may be None: no metrics)."""
    spec = [
        ("accuracy", "Accuracy", _fmt_num),
        ("precision", "Precision", _fmt_num),
        ("recall", "Recall", _fmt_num),
        ("f1", "F1", _fmt_num),
        ("roc_auc", "ROC AUC", _fmt_num),
        ("loss", "Loss (log loss)", _fmt_num),
        ("n", "Reviews", _fmt_int),
        ("neutral", "Neutral, left out", _fmt_int),
        ("ece", "ECE (calibration)", _fmt_num),
        ("threshold", "Threshold", lambda v: _fmt_num(v, 2)),
    ]
    out = []
    for key, name, fmt in spec:
        if key in ("neutral", "ece") and not any(col and col.get(key) is not None for col in columns):
            continue
        values = [fmt(col.get(key)) if col else "–" for col in columns]
        out.append({"name": name, "values": values})
    return out


def _confusion_or_none(metrics: dict | None, title: str) -> str | None:
    if not metrics or not metrics.get("confusion"):
        return None
    return plots.confusion_matrix_svg(metrics["confusion"], title)


def _model_plot(name: str, *args: Any) -> str | None:
    """One of the model's own plots, which depend only on the model: a run that scores many
    files draws them once (matplotlib takes about 0.2 s a figure here)."""
    try:
        key = json.dumps([name, args], sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return _MODEL_PLOTS[name](*args)
    return _cached_model_plot(key)


@functools.lru_cache(maxsize=16)
def _cached_model_plot(key: str) -> str | None:
    name, args = json.loads(key)
    return _MODEL_PLOTS[name](*args)


_MODEL_PLOTS = {
    "curves": lambda history, best_epoch: plots.training_curves_svg(history, best_epoch),
    "test_confusion": lambda test: _confusion_or_none(test, "Model test set"),
    "reliability": lambda bins, ece: plots.reliability_diagram_svg(bins, "Validation", ece=ece),
}


def _model_view(model: dict) -> dict:
    test = model.get("test_metrics")
    history = model.get("history") or {}
    epochs = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
    sizes = model.get("sizes") or {}
    return {
        "name": model.get("name") or "unnamed model",
        "label": _model_label(model),
        "path": model.get("path") or "",
        "trained_at": _fmt_time(model.get("trained_at")),
        "data_source": model.get("data_source") or "unknown",
        "device": model.get("device") or "unknown",
        "train_time": _fmt_seconds(model.get("train_seconds")),
        "epochs": epochs,
        "best_epoch": model.get("best_epoch"),
        "test_accuracy": _fmt_pct(test.get("accuracy")) if test else "not evaluated",
        "test_set": _test_set_name(model),
        "test_roc_auc": _fmt_num(test.get("roc_auc")) if test else "n/a",
        "has_test_metrics": bool(test),
        "test_metrics_rows": _metrics_rows([test]) if test else [],
        "curves_svg": _markup(_model_plot("curves", history, model.get("best_epoch"))),
        "curves_note": model.get("curves_note"),
        "test_confusion_svg": _markup(_model_plot("test_confusion", test)),
        "sizes": [
            {"name": name, "value": _fmt_int(sizes.get(key))}
            for key, name in (("train", "Train"), ("validation", "Validation"), ("test", "Test"))
            if key in sizes
        ],
        "config": [
            {"key": str(k), "value": _fmt_config_value(v)}
            for k, v in (model.get("config") or {}).items()
        ],
        "provenance": _provenance_view(model.get("provenance")),
        "calibration": _calibration_view(model.get("calibration")),
    }


def _model_label(model: dict) -> str:
    """The model's name, with the model it was adapted from (train --data) when it was."""
    name = str(model.get("name") or "unnamed model")
    start = model.get("adapted_from")
    return f"{name} (adapted from {start})" if start else name


def _calibration_view(calibration: dict | None) -> dict | None:
    """The model's calibration block: temperature, validation ECE before/after, its diagram."""
    if not isinstance(calibration, dict) or not calibration:
        return None
    return {
        "temperature": _fmt_num(calibration.get("temperature")),
        "fitted_on": str(calibration.get("fitted_on") or "validation"),
        "n": _fmt_int(calibration.get("n")),
        "ece_before": _fmt_num(calibration.get("validation_ece_before")),
        "ece_after": _fmt_num(calibration.get("validation_ece_after")),
        "diagram_svg": _markup(_model_plot("reliability", calibration.get("validation_bins"),
                                           calibration.get("validation_ece_after"))),
    }


def _provenance_view(provenance: dict | None) -> dict | None:
    """The "How this model was made" block (None: the context has none, as in older callers)."""
    if not provenance:
        return None
    return {
        "from_scratch": bool(provenance.get("from_scratch")),
        "headline": str(provenance.get("headline") or ""),
        "stages": [
            {
                "key": str(stage.get("key") or "stage"),
                "title": str(stage.get("title") or ""),
                "text": str(stage.get("text") or ""),
                "facts": [
                    {"label": str(f.get("label") or ""), "value": str(f.get("value") or "")}
                    for f in stage.get("facts") or []
                ],
            }
            for stage in provenance.get("stages") or []
        ],
        "lm_curve_svg": _markup(plots.language_model_curve_svg(provenance.get("lm_curve"))),
        "lm_note": provenance.get("lm_note"),
    }


def _markup(html: str | None) -> Markup | None:
    return None if html is None else Markup(html)


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


def _highlight_view(rows: list[dict]) -> list[dict]:
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


def _rows_payload(rows: list[dict]) -> tuple[dict, int]:
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


def _finite_or_none(value: Any, digits: int) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return round(number, digits) if math.isfinite(number) else None


def _packed_row(r: dict, text: str, cut: int, status_index: dict, group_index: dict | None) -> list:
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


def _require(context: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in context or context[k] is None]
    if missing:
        raise ValueError(f"report context: missing {', '.join(missing)}")


def _push(term: dict) -> float:
    """A term's total push over the file: its mean weight times the reviews holding it."""
    return abs(float(term.get("weight") or 0)) * max(1, int(term.get("reviews") or 0))


def _drivers_view(drivers: dict | None) -> dict | None:
    """Two term lists; each bar is the term's total push, relative to the strongest on the page."""
    if not drivers or not (drivers.get("positive") or drivers.get("negative")):
        return None
    sides = {key: list(drivers.get(key) or []) for key in ("positive", "negative")}
    strongest = max((_push(t) for terms in sides.values() for t in terms), default=0)
    view = {"reviews_explained": _fmt_int(drivers.get("reviews_explained") or 0)}
    # Terms are numbered positive first, then negative: the numbering of a row's "terms".
    offsets = {"positive": 0, "negative": len(sides["positive"])}
    for key, terms in sides.items():
        view[key] = [
            {
                "index": offsets[key] + i,
                "term": str(t.get("term") or ""),
                "weight": f"{float(t.get('weight') or 0):+.2f}",
                "reviews": _fmt_int(t.get("reviews") or 0),
                "width": f"{100 * _push(t) / strongest:.1f}" if strongest else "0",
            }
            for i, t in enumerate(terms)
        ]
    return view


def _timeline_view(timeline: dict | None, threshold: float) -> dict | None:
    if not timeline or not timeline.get("column"):
        return None
    buckets = timeline.get("buckets") or []
    return {
        "column": str(timeline["column"]),
        "granularity": timeline.get("granularity") or "period",
        "first": timeline.get("first") or "",
        "last": timeline.get("last") or "",
        "dated": _fmt_int(timeline.get("dated") or 0),
        "missing": int(timeline.get("missing") or 0),
        "unreadable": int(timeline.get("unreadable") or 0),
        "examples": [
            {"row": _fmt_int(e.get("row")), "value": str(e.get("value") or "")}
            for e in timeline.get("unreadable_examples") or []
        ],
        "ambiguous": bool(timeline.get("day_month_ambiguous")),
        "day_first": "%d" in str(timeline.get("date_format") or "").split("%m")[0],
        "svg": _markup(plots.timeline_svg(timeline, threshold)),
        "buckets": [
            {
                "label": b.get("label") or b.get("start") or "",
                "reviews": _fmt_int(b.get("reviews")),
                "positive_share": _fmt_pct(b.get("positive_share")),
                "mean_score": _fmt_num(b.get("mean_score")),
            }
            for b in buckets
        ],
    }


def _sort_value(value: Any) -> str:
    """A number for the table's sort attribute; missing values sort as -1 (first when ascending)."""
    return "-1" if value is None else f"{float(value):.6f}"


def _groups_view(groups: dict | None, overall_share: float | None) -> dict | None:
    if not groups or not groups.get("items"):
        return None
    items = [
        {
            "name": str(g.get("name") or NONE_GROUP),
            "filterable": not g.get("other"),
            "missing": bool(g.get("missing")),
            "other": bool(g.get("other")),
            "reviews": _fmt_int(g.get("reviews")),
            "scored": _fmt_int(g.get("scored")),
            "positive_share": _fmt_pct(g.get("positive_share")),
            "interval": (
                f"{_fmt_pct(g.get('ci_low'))} – {_fmt_pct(g.get('ci_high'))}"
                if g.get("ci_low") is not None
                else "n/a"
            ),
            "mean_score": _fmt_num(g.get("mean_score")),
            "sort": {
                "reviews": _sort_value(g.get("reviews")),
                "scored": _sort_value(g.get("scored")),
                "share": _sort_value(g.get("positive_share")),
                "mean": _sort_value(g.get("mean_score")),
            },
        }
        for g in groups["items"]
    ]
    plottable = [g for g in groups["items"] if g.get("positive_share") is not None and not g.get("other")]
    plotted = min(GROUPS_PLOTTED, len(plottable))
    return {
        "column": str(groups.get("column") or ""),
        "total": _fmt_int(groups.get("total_groups") or len(items)),
        "shown": int(groups.get("shown") or len(items)),
        "other_groups": _fmt_int(groups.get("other_groups")) if groups.get("other_groups") else None,
        "capped": bool(groups.get("capped")),
        "svg": _markup(plots.groups_svg(groups, overall_share, max_groups=GROUPS_PLOTTED)),
        "plotted_note": plotted < len(plottable),
        "plotted": plotted,
        "items": items,
    }


def _disagreement_rows(items: list[dict], sentiment: str) -> list[dict]:
    """A disagreement list's rows; the list says the model's decision (a high rating the model
    called negative, a low one it called positive), so no score is compared here."""
    return _highlight_view([{**item, "sentiment": sentiment} for item in items or []])


def _ratings_view(ratings: dict | None, threshold: float) -> dict | None:
    if not ratings or not ratings.get("column"):
        return None
    scale = int(ratings.get("scale") or 5)
    high, low = (7, 4) if scale == 10 else (4, 2)
    values = ratings.get("values") or []
    return {
        "column": str(ratings["column"]),
        "scale": scale,
        "rule": f"{high} or more of {scale} counts as positive, {low} or less as negative",
        "positive": _fmt_int(ratings.get("positive") or 0),
        "negative": _fmt_int(ratings.get("negative") or 0),
        "neutral": _fmt_int(ratings.get("neutral") or 0),
        "missing": int(ratings.get("missing") or 0),
        "agreement": _fmt_pct(ratings.get("agreement")),
        "compared": _fmt_int(ratings.get("compared") or 0),
        "svg": _markup(plots.rating_scores_svg(ratings, threshold)),
        "values": [
            {
                "label": str(v.get("label") or v.get("rating")),
                "side": v.get("side") or "neutral",
                "reviews": _fmt_int(v.get("reviews")),
                "positive_share": _fmt_pct(v.get("positive_share")),
                "mean_score": _fmt_num(v.get("mean_score")),
                "middle": (
                    f"{_fmt_num(v.get('q1'), 2)} – {_fmt_num(v.get('q3'), 2)}"
                    if v.get("q1") is not None
                    else "n/a"
                ),
            }
            for v in values
        ],
        "high_rating_negative": _disagreement_rows(ratings.get("high_rating_negative"), "negative"),
        "low_rating_positive": _disagreement_rows(ratings.get("low_rating_positive"), "positive"),
    }


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


def _test_set_name(model: dict) -> str:
    """What the model's own test set was, for the label of its accuracy."""
    return "IMDB" if "imdb" in str(model.get("data_source") or "").lower() else "own"


def _headline_view(file_metrics: dict | None, ratings: dict | None, model: dict) -> dict | None:
    """The Summary's lead figures for a labelled (or rated) file: this file's accuracy and ROC
    AUC (F1 when AUC is undefined), with n; the model's own test accuracy beside them, labelled
    as the model's. None for a file with neither labels nor ratings to compare with."""
    cards = []
    if file_metrics:
        n = f"n = {_fmt_int(file_metrics.get('n'))} labelled reviews"
        if file_metrics.get("neutral"):
            n += f"; {_fmt_int(file_metrics['neutral'])} called neutral left out"
        cards.append({"key": "accuracy", "label": "Accuracy on this file",
                      "value": _fmt_pct(file_metrics.get("accuracy")), "note": n})
        if file_metrics.get("roc_auc") is not None:
            cards.append({"key": "roc-auc", "label": "ROC AUC on this file",
                          "value": _fmt_num(file_metrics["roc_auc"]), "note": n})
        else:
            cards.append({"key": "f1", "label": "F1 on this file",
                          "value": _fmt_num(file_metrics.get("f1")), "note": n})
    elif ratings and ratings.get("compared"):
        cards.append({"key": "rating-agreement", "label": "Agrees with the star ratings",
                      "value": _fmt_pct(ratings.get("agreement")),
                      "note": f"n = {_fmt_int(ratings['compared'])} rated reviews"})
    if not cards:
        return None
    test = model.get("test_metrics") or {}
    accuracy = test.get("accuracy")
    return {
        "file": cards,
        "model": None if accuracy is None else {
            "label": f"Model's {_test_set_name(model)} test accuracy",
            "value": _fmt_pct(accuracy),
            "note": f"its own test set (n = {_fmt_int(test.get('n'))}), not this file"
            if test.get("n") else "its own test set, not this file",
        },
    }


def _band_view(summary: dict) -> dict:
    """The neutral band's part of the Summary (has_band False without --neutral-band)."""
    band = summary.get("neutral_band")
    counts = [int(summary.get(k) or 0) for k in ("positive", "negative", "neutral")]
    scored = int(summary.get("scored") or 0)
    shares = [*rounded_shares(counts if band else counts[:2]), "0.0%"]
    domain = summary.get("domain") or {}
    return {
        "has_band": bool(band),
        "band": f"[{float(band[0]):g}, {float(band[1]):g})" if band else None,
        "neutral": _fmt_int(counts[2]),
        "positive_share": shares[0],
        "negative_share": shares[1],
        "neutral_share": shares[2],
        "neutral_width": f"{100 * counts[2] / scored:.2f}" if scored else "0",
        "domain_note": domain.get("note"),
        "model_label": summary.get("model"),
    }


def _summary_view(summary: dict, threshold: float) -> dict:
    scored = int(summary.get("scored") or 0)
    positive = int(summary.get("positive") or 0)
    negative = int(summary.get("negative") or 0)
    reasons = summary.get("not_scored_reasons") or {}
    band = _band_view(summary)
    return {
        **band,
        "file": summary.get("file") or "",
        "path": summary.get("path") or "",
        "rows": _fmt_int(summary.get("rows")),
        "scored": _fmt_int(scored),
        "not_scored": _fmt_int(summary.get("not_scored")),
        "any_scored": scored > 0,
        "any_not_scored": bool(summary.get("not_scored")),
        "not_scored_reasons": [{"status": k, "count": _fmt_int(v)} for k, v in reasons.items() if v],
        "positive": _fmt_int(positive),
        "negative": _fmt_int(negative),
        # Shown shares (band's positive_share, negative_share, neutral_share) add up to
        # 100.0% (largest remainder), not 99.9%.
        # Widths of the split bar, in percent of the scored reviews.
        "positive_width": f"{100 * positive / scored:.2f}" if scored else "0",
        "negative_width": f"{100 * negative / scored:.2f}" if scored else "0",
        "threshold": _fmt_num(threshold, 2),
        "device": summary.get("device") or "unknown",
        "seconds": _fmt_seconds(summary.get("seconds")),
        "rows_per_second": (
            _fmt_int(round(summary["rows_per_second"])) if summary.get("rows_per_second") else "–"
        ),
        "text_column": summary.get("text_column") or "",
        "label_column": summary.get("label_column"),
        "notes": list(summary.get("notes") or []),
    }


def _table_view(context: dict) -> dict:
    max_rows = context.get("max_rows")
    max_rows = DEFAULT_MAX_ROWS if max_rows is None else max(0, int(max_rows))
    rows = list(context["rows"])[:max_rows]
    rows_total = max(int(context.get("rows_total") or 0), len(rows))
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
        "sampled": bool(context.get("rows_sampled")),
        "sample_seed": context.get("sample_seed"),
        "cut_count": _fmt_int(cut_count) if cut_count else None,
        "empty": not rows,
    }


def _score_view(context: dict) -> dict:
    _require(context, "summary", "rows")
    summary = context["summary"]
    file_metrics = context.get("file_metrics")
    test_metrics = (context.get("model") or {}).get("test_metrics")
    threshold = float(summary.get("threshold", 0.5))
    highlights = context.get("highlights") or {}
    return {
        **_summary_view(summary, threshold),
        "headline": _headline_view(file_metrics, context.get("ratings"), context.get("model") or {}),
        **_table_view(context),
        "histogram_svg": _markup(plots.score_histogram_svg(context.get("score_histogram") or {}, threshold)),
        "file_metrics": bool(file_metrics),
        "file_confusion_svg": _markup(_confusion_or_none(file_metrics, "this file")),
        "file_reliability_svg": _markup(plots.reliability_diagram_svg(
            (file_metrics or {}).get("reliability"), "This file",
            ece=(file_metrics or {}).get("ece"))),
        "file_ece": _fmt_num((file_metrics or {}).get("ece")),
        "compare_rows": _metrics_rows([test_metrics, file_metrics]) if file_metrics else [],
        "has_test_metrics": bool(test_metrics),
        "highlights": [
            {"key": key, "title": title, "items": _highlight_view(highlights.get(key) or [])}
            for key, title in (
                ("positive", "Most confident positive"),
                ("negative", "Most confident negative"),
                ("uncertain", "Least certain"),
            )
        ],
        "drivers": _drivers_view(context.get("drivers")),
        "timeline": _timeline_view(context.get("timeline"), threshold),
        "groups": _groups_view(context.get("groups"), summary.get("positive_share")),
        "ratings": _ratings_view(context.get("ratings"), threshold),
    }


def _page_title(context: dict) -> str:
    title = str(context.get("title") or "").strip()
    if context["kind"] == "score":
        name = str((context.get("summary") or {}).get("file") or "")
        if not title:
            return f"{name} — sentiment report"
    else:
        name = str((context.get("model") or {}).get("name") or "")
        if not title:
            return f"{name} — training report"
    # The browser tab must say which file (or model) this is, whatever title the caller chose.
    return title if name in title else f"{name} — {title}"


def build_report_html(context: dict) -> str:
    """Render the report page for a context whose "kind" is "score" or "train"."""
    kind = context.get("kind")
    if kind not in _TEMPLATES:
        raise ValueError(f"report context: kind must be 'score' or 'train', not {kind!r}")
    _require(context, "model")
    env = _environment()
    css = env.loader.get_source(env, "report.css")[0]
    js = env.loader.get_source(env, "report.js")[0] if kind == "score" else ""
    script_hash = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    # Only our own script may run, even if some text ever slipped through escaping.
    csp = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{script_hash}'; base-uri 'none'; form-action 'none'"
    )
    page = {
        "kind": kind,
        "title": _page_title(context),
        "generated_at": _fmt_time(context.get("generated_at")),
        "package_version": str(context.get("package_version") or ""),
        "css": _markup(css),
        "js": _markup(js),
        "csp": Markup(csp),  # our constant, no data: keep the quotes readable
        "model": _model_view(context["model"]),
        # the header names the model that scored (or was trained), adapted-from included
        "model_label": _model_label(context["model"]),
        "score": _score_view(context) if kind == "score" else None,
    }
    return env.get_template(_TEMPLATES[kind]).render(page=page)


def write_report(context: dict, out_path: Path, *, overwrite: bool = False) -> Path:
    """Render the report and write it atomically to out_path; returns the path written.

    Raises OutputError when the file exists (and overwrite is False) or cannot be written.
    """
    from review_scorer.io.publish import atomic_write_bytes

    out_path = Path(out_path)
    if out_path.is_dir():
        raise OutputError(f"{out_path}: is a directory; give a file name for the report")
    data = build_report_html(context).encode("utf-8", "replace")
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_path}: cannot write the report ({exc.strerror or exc}); "
                          "choose a writable location") from None
    atomic_write_bytes(out_path, data, overwrite=overwrite)
    logger.info("wrote report %s (%d bytes)", out_path, len(data))
    return Path(out_path)
