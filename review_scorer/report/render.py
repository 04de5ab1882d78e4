"""Render the self-contained HTML report (score or train) from a plain context dict."""

# "model" is model_section.model_context's dict; its optional "provenance" (provenance.model_provenance)
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
import hashlib
import logging
from pathlib import Path

from markupsafe import Markup

from review_scorer.errors import OutputError
from review_scorer.report import plots
from review_scorer.report.formatting import _fmt_num, _fmt_time, _markup
from review_scorer.report.loader import template_loader
from review_scorer.report.rows_view import DEFAULT_MAX_ROWS, _highlight_view, _table_view
from review_scorer.report.sections import (
    _confusion_or_none,
    _drivers_view,
    _groups_view,
    _headline_view,
    _metrics_rows,
    _model_label,
    _model_view,
    _ratings_view,
    _summary_view,
    _timeline_view,
)

# The report's parts live in formatting, rows_view and sections; these names stay importable here.
__all__ = ["DEFAULT_MAX_ROWS", "build_report_html", "write_report"]

logger = logging.getLogger(__name__)

_TEMPLATES = {"score": "score.html", "train": "train.html"}
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


def _require(context: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in context or context[k] is None]
    if missing:
        raise ValueError(f"report context: missing {', '.join(missing)}")


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
