"""Render the self-contained HTML report (score or train) from its typed data (report.data)."""

# The report objects hold plain data; here, and only here, they become the templates' view data
# (sections.py, rows_view.py, formatting.py), and the templates hold no logic.

from __future__ import annotations

import base64
import hashlib

from markupsafe import Markup

from review_scorer.report import plots
from review_scorer.report.data import DEFAULT_MAX_ROWS, ScoreReport, TrainReport
from review_scorer.report.formatting import _fmt_num, _fmt_time, _markup
from review_scorer.report.loader import template_loader
from review_scorer.report.rows_view import _highlight_view, _table_view
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

# The report's parts live in data, formatting, rows_view and sections; these names stay
# importable here.
__all__ = ["DEFAULT_MAX_ROWS", "build_report_html"]

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


def _score_view(report: ScoreReport) -> dict:
    summary, file_metrics = report.summary, report.file_metrics
    test_metrics = report.model.test_metrics
    threshold = float(summary.threshold)
    highlights = report.highlights or {}
    return {
        **_summary_view(summary, threshold),
        "headline": _headline_view(file_metrics, report.ratings, report.model),
        **_table_view(report.table),
        "histogram_svg": _markup(plots.score_histogram_svg(report.score_histogram or {}, threshold)),
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
        "drivers": _drivers_view(report.drivers),
        "timeline": _timeline_view(report.timeline, threshold),
        "groups": _groups_view(report.groups, summary.positive_share),
        "ratings": _ratings_view(report.ratings, threshold),
    }


def _page_title(report: ScoreReport | TrainReport) -> str:
    title = str(report.title or "").strip()
    if isinstance(report, ScoreReport):
        name = str(report.summary.file or "")
        if not title:
            return f"{name} — sentiment report"
    else:
        name = str(report.model.name or "")
        if not title:
            return f"{name} — training report"
    # The browser tab must say which file (or model) this is, whatever title the caller chose.
    return title if name in title else f"{name} — {title}"


def build_report_html(report: ScoreReport | TrainReport) -> str:
    """Render the report page of a ScoreReport or a TrainReport."""
    if not isinstance(report, ScoreReport | TrainReport):
        raise ValueError(f"report: the kind of report must be a ScoreReport or a TrainReport, "
                         f"not {type(report).__name__}")
    kind = report.kind
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
        "title": _page_title(report),
        "generated_at": _fmt_time(report.generated_at),
        "package_version": str(report.package_version or ""),
        "css": _markup(css),
        "js": _markup(js),
        "csp": Markup(csp),  # our constant, no data: keep the quotes readable
        "model": _model_view(report.model),
        # the header names the model that scored (or was trained), adapted-from included
        "model_label": _model_label(report.model),
        "score": _score_view(report) if isinstance(report, ScoreReport) else None,
    }
    return env.get_template(_TEMPLATES[kind]).render(page=page)
