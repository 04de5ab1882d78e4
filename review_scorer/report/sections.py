"""The reports' sections as view data: model, calibration, provenance, drivers, timeline,
groups, ratings, headline and summary."""

from __future__ import annotations

import functools
import json
from typing import Any

from review_scorer.metrics import accuracy_label
from review_scorer.report import plots
from review_scorer.report.data import (
    Calibration,
    Drivers,
    FileSummary,
    Groups,
    Metrics,
    ModelSection,
    Provenance,
    Ratings,
    ReportRow,
    Timeline,
)
from review_scorer.report.formatting import (
    _fmt_config_value,
    _fmt_int,
    _fmt_num,
    _fmt_pct,
    _fmt_seconds,
    _fmt_time,
    _markup,
    rounded_shares,
)
from review_scorer.report.insights import NONE_GROUP
from review_scorer.report.rows_view import _highlight_view

GROUPS_PLOTTED = 30  # more rows than this make the groups plot a wall; the table has them all


def _metrics_rows(columns: list[Metrics | None]) -> list[dict]:
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


def _confusion_or_none(metrics: Metrics | None, title: str) -> str | None:
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
    "test_confusion": lambda test: _confusion_or_none(test, "Model test set" if _is_test(test)
                                                      else "Model, cross-validated"),
    "reliability": lambda bins, ece: plots.reliability_diagram_svg(bins, "Validation", ece=ece),
}


def _is_test(metrics: dict | None) -> bool:
    """Whether a model's own metrics come from a held-out test set (an adapted model's are
    cross-validated on the labels it was adapted with)."""
    return accuracy_label((metrics or {}).get("kind")) == "test accuracy"


def _model_view(model: ModelSection) -> dict:
    test = model.test_metrics
    history = model.history or {}
    epochs = max((len(v) for v in history.values() if isinstance(v, list)), default=0)
    sizes = model.sizes or {}
    return {
        "name": model.name or "unnamed model",
        "label": _model_label(model),
        "path": model.path or "",
        "trained_at": _fmt_time(model.trained_at),
        "data_source": model.data_source or "unknown",
        "device": model.device or "unknown",
        "train_time": _fmt_seconds(model.train_seconds),
        "epochs": epochs,
        "best_epoch": model.best_epoch,
        "test_accuracy": _fmt_pct(test.get("accuracy")) if test else "not evaluated",
        "test_set": _test_set_name(model),
        # an adapted model's own accuracy is cross-validated on its labels, not a test set's
        **({"accuracy_name": f"{_test_set_name(model)} test accuracy",
            "accuracy_card": "Test accuracy", "metrics_column": "test set",
            "metrics_caption": "Test-set metrics",
            "confusion_caption": "Held-out test set: counts and share of each true class."}
           if _is_test(test) else
           {"accuracy_name": "cross-validated accuracy on its training labels",
            "accuracy_card": "Cross-validated accuracy", "metrics_column": "cross-validated",
            "metrics_caption": "Cross-validated metrics on the training labels",
            "confusion_caption": "Out-of-fold predictions on the labels the model was adapted "
                                 "with: counts and share of each true class."}),
        "test_roc_auc": _fmt_num(test.get("roc_auc")) if test else "n/a",
        "has_test_metrics": bool(test),
        "test_metrics_rows": _metrics_rows([test]) if test else [],
        "curves_svg": _markup(_model_plot("curves", history, model.best_epoch)),
        "curves_note": model.curves_note,
        "test_confusion_svg": _markup(_model_plot("test_confusion", test)),
        "sizes": [
            {"name": name, "value": _fmt_int(sizes.get(key))}
            for key, name in (("train", "Train"), ("validation", "Validation"), ("test", "Test"))
            if key in sizes
        ],
        "config": [
            {"key": str(k), "value": _fmt_config_value(v)}
            for k, v in (model.config or {}).items()
        ],
        "provenance": _provenance_view(model.provenance),
        "calibration": _calibration_view(model.calibration),
    }


def _model_label(model: ModelSection) -> str:
    """The model's name, with the model it was adapted from (train --data) when it was."""
    name = str(model.name or "unnamed model")
    start = model.adapted_from
    return f"{name} (adapted from {start})" if start else name


def _calibration_view(calibration: Calibration | None) -> dict | None:
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


def _provenance_view(provenance: Provenance | None) -> dict | None:
    """The "How this model was made" block (None: the model section has none)."""
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


def _push(term: dict) -> float:
    """A term's total push over the file: its mean weight times the reviews holding it."""
    return abs(float(term.get("weight") or 0)) * max(1, int(term.get("reviews") or 0))


def _drivers_view(drivers: Drivers | None) -> dict | None:
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


def _timeline_view(timeline: Timeline | None, threshold: float) -> dict | None:
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
        "far": int(timeline.get("far") or 0),
        "far_examples": [str(d) for d in timeline.get("far_examples") or []],
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


def _groups_view(groups: Groups | None, overall_share: float | None) -> dict | None:
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


def _disagreement_rows(items: list[ReportRow], sentiment: str) -> list[dict]:
    """A disagreement list's rows; the list says the model's decision (a high rating the model
    called negative, a low one it called positive), so no score is compared here."""
    return _highlight_view([{**item, "sentiment": sentiment} for item in items or []])


def _ratings_view(ratings: Ratings | None, threshold: float) -> dict | None:
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


def _test_set_name(model: ModelSection) -> str:
    """What the model's own test set was, for the label of its accuracy."""
    return "IMDB" if "imdb" in str(model.data_source or "").lower() else "own"


def _headline_view(file_metrics: Metrics | None, ratings: Ratings | None,
                   model: ModelSection) -> dict | None:
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
    test = model.test_metrics or {}
    accuracy = test.get("accuracy")
    if accuracy is None:
        return {"file": cards, "model": None}
    n = f" (n = {_fmt_int(test.get('n'))})" if test.get("n") else ""
    if _is_test(test):
        label, note = f"Model's {_test_set_name(model)} test accuracy", f"its own test set{n}"
    else:  # an adapted model: cross-validated on the labels it was adapted with
        label, note = "Model's cross-validated accuracy", f"on the labels it was adapted with{n}"
    return {"file": cards,
            "model": {"label": label, "value": _fmt_pct(accuracy), "note": f"{note}, not this file"}}


def _band_view(summary: FileSummary) -> dict:
    """The neutral band's part of the Summary (has_band False without --neutral-band)."""
    band = summary.neutral_band
    counts = [int(summary.positive or 0), int(summary.negative or 0), int(summary.neutral or 0)]
    scored = int(summary.scored or 0)
    shares = [*rounded_shares(counts if band else counts[:2]), "0.0%"]
    domain = summary.domain or {}
    return {
        "has_band": bool(band),
        "band": f"[{float(band[0]):g}, {float(band[1]):g})" if band else None,
        "neutral": _fmt_int(counts[2]),
        "positive_share": shares[0],
        "negative_share": shares[1],
        "neutral_share": shares[2],
        "neutral_width": f"{100 * counts[2] / scored:.2f}" if scored else "0",
        "domain_note": domain.get("note"),
        "model_label": summary.model,
    }


def _summary_view(summary: FileSummary, threshold: float) -> dict:
    scored = int(summary.scored or 0)
    positive = int(summary.positive or 0)
    negative = int(summary.negative or 0)
    reasons = summary.not_scored_reasons or {}
    band = _band_view(summary)
    return {
        **band,
        "file": summary.file or "",
        "path": summary.path or "",
        "rows": _fmt_int(summary.rows),
        "scored": _fmt_int(scored),
        "not_scored": _fmt_int(summary.not_scored),
        "any_scored": scored > 0,
        "any_not_scored": bool(summary.not_scored),
        "not_scored_reasons": [{"status": k, "count": _fmt_int(v)} for k, v in reasons.items() if v],
        "positive": _fmt_int(positive),
        "negative": _fmt_int(negative),
        # Shown shares (band's positive_share, negative_share, neutral_share) add up to
        # 100.0% (largest remainder), not 99.9%.
        # Widths of the split bar, in percent of the scored reviews.
        "positive_width": f"{100 * positive / scored:.2f}" if scored else "0",
        "negative_width": f"{100 * negative / scored:.2f}" if scored else "0",
        "threshold": _fmt_num(threshold, 2),
        "device": summary.device or "unknown",
        "seconds": _fmt_seconds(summary.seconds),
        "rows_per_second": (
            _fmt_int(round(summary.rows_per_second)) if summary.rows_per_second else "–"
        ),
        "text_column": summary.text_column or "",
        "label_column": summary.label_column,
        "notes": list(summary.notes or []),
    }
