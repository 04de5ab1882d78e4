"""Report figures drawn with matplotlib's Figure API and returned as small inline SVG text."""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Sequence
from html import escape

import matplotlib
import matplotlib.ticker
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
BLUE = "#0072B2"
ORANGE = "#E69F00"
VERMILLION = "#D55E00"
GREY = "#555555"

_RC = {
    # Text stays <text> (small, selectable, searchable) instead of glyph outlines.
    "svg.fonttype": "none",
    "font.family": ["sans-serif"],
    "font.sans-serif": ["Arial", "Helvetica", "DejaVu Sans", "Liberation Sans"],
    "font.size": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "legend.frameon": False,
    "path.simplify": True,
}

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID_ATTR = re.compile(r'\sid="([^"]*)"')
_ID_REF = re.compile(r'(xlink:href="#|href="#|url\(#)([^")]+)')
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def _figure_to_svg(fig: Figure, *, key: str, label: str, keep_ids: Sequence[str] = ()) -> str:
    """Serialise a figure as embeddable SVG: no prolog, unique ids, role="img" and a <title>."""
    buf = io.StringIO()
    # A fixed salt per plot keeps the output deterministic and the hashed ids distinct per plot.
    with matplotlib.rc_context({"svg.hashsalt": key}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = _PROLOG.sub("", buf.getvalue(), count=1)
    svg = _METADATA.sub("", svg, count=1)

    # Several plots share one HTML page, so every id must be unique there. Matplotlib's
    # structural ids (figure_1, line2d_3, ...) are never referenced: drop them; prefix the rest.
    referenced = {m.group(2) for m in _ID_REF.finditer(svg)}
    prefix = f"{key}-"

    def _fix_id(m: re.Match[str]) -> str:
        ident = m.group(1)
        if ident in referenced:
            return f' id="{prefix}{ident}"'
        if ident in keep_ids:
            return f' id="{ident}"'
        return ""

    svg = _ID_ATTR.sub(_fix_id, svg)
    svg = _ID_REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", svg)

    label_attr = escape(label, quote=True)
    svg = _SVG_OPEN.sub(
        lambda m: (
            m.group(0)[:-1]
            + f' role="img" aria-label="{label_attr}" class="plot plot-{key}">'
            + f"\n <title>{escape(label, quote=False)}</title>"
        ),
        svg,
        count=1,
    )
    return svg.strip() + "\n"


def _finite(values: Sequence[float | None] | None) -> list[float]:
    """Values as floats, with None/NaN kept as NaN so the epochs stay aligned."""
    out = []
    for v in values or []:
        try:
            f = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            f = math.nan
        out.append(f)
    return out


def _curve_panels(history: dict) -> list[tuple]:
    """(metric, title, series) per panel that has at least one non-empty series."""
    panels = []
    for metric, title in (("loss", "Loss"), ("accuracy", "Accuracy")):
        series = []
        for key, name, colour, style, marker in (
            (metric, "train", BLUE, "-", "o"),
            (f"val_{metric}", "validation", VERMILLION, "--", "s"),
        ):
            values = _finite(history.get(key))
            if values and any(not math.isnan(v) for v in values):
                series.append((name, values, colour, style, marker))
        if series:
            panels.append((metric, title, series))
    return panels


def training_curves_svg(history: dict | None, best_epoch: int | None) -> str | None:
    """Loss and accuracy per epoch (train vs validation), best epoch marked; None if no history.

    Series get ids ``curve-<loss|accuracy>-<train|validation>`` so tests and readers can find them.
    """
    panels = _curve_panels(history or {})
    if not panels:
        return None

    n_epochs = max(len(values) for _, _, series in panels for _, values, *_ in series)
    keep = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.6, 2.9), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (metric, title, series) in zip(axes, panels, strict=True):
            for name, values, colour, style, marker in series:
                epochs = list(range(1, len(values) + 1))
                (line,) = ax.plot(
                    epochs,
                    values,
                    color=colour,
                    linestyle=style,
                    marker=marker,
                    markersize=4.5,
                    linewidth=1.8,
                    label=name,
                )
                gid = f"curve-{metric}-{name}"
                line.set_gid(gid)
                keep.append(gid)
            if best_epoch is not None and 1 <= best_epoch <= n_epochs:
                # In the legend rather than as a label on the plot, where it would hit the curves.
                ax.axvline(
                    best_epoch,
                    color=GREY,
                    linestyle=":",
                    linewidth=1.4,
                    zorder=0,
                    label=f"best epoch {best_epoch}",
                )
            ax.set_title(title, loc="left")
            ax.set_xlabel("epoch")
            ax.grid(True, color="#dddddd", linewidth=0.6)
            ax.set_axisbelow(True)
            if n_epochs == 1:
                ax.set_xlim(0.5, 1.5)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend(loc="best", fontsize=8.5)
        best = f", best epoch {best_epoch}" if best_epoch else ""
        label = f"Training curves: loss and accuracy per epoch for train and validation{best}"
        return _figure_to_svg(fig, key="curves", label=label, keep_ids=keep)


def confusion_matrix_svg(confusion: Sequence[Sequence[int]], title: str) -> str:
    """A 2x2 confusion matrix [[tn, fp], [fn, tp]] with counts and row percentages."""
    counts = [[int(confusion[r][c]) for c in range(2)] for r in range(2)]
    names = ("negative", "positive")
    row_sums = [sum(row) for row in counts]
    shares = [[counts[r][c] / row_sums[r] if row_sums[r] else 0.0 for c in range(2)] for r in range(2)]
    described = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(3.5, 3.1), layout="constrained")
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["Blues"]
        for r in range(2):
            for c in range(2):
                # Shade by row share so an unbalanced file still shows where each class went;
                # vector squares rather than imshow, which would embed a blurry bitmap.
                ax.add_patch(
                    Rectangle(
                        (c - 0.5, r - 0.5),
                        1,
                        1,
                        facecolor=cmap(0.08 + 0.85 * shares[r][c]),
                        edgecolor="white",
                        linewidth=2,
                    )
                )
                pct = f"{shares[r][c]:.1%}" if row_sums[r] else "–"
                dark = shares[r][c] > 0.6
                ax.text(
                    c,
                    r,
                    f"{counts[r][c]:,}\n{pct}",
                    ha="center",
                    va="center",
                    fontsize=10,
                    fontweight="bold" if r == c else "normal",
                    color="white" if dark else "#1a1a1a",
                )
                described.append(f"true {names[r]}, predicted {names[c]}: {counts[r][c]:,} ({pct})")
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylim(1.5, -0.5)
        ax.set_aspect("equal")
        ax.set_xticks([0, 1], list(names))
        ax.set_yticks([0, 1], list(names))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_title(title, loc="left", parse_math=False)
        key = "cm-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "plot")
        label = f"Confusion matrix, {title}: " + "; ".join(described)
        return _figure_to_svg(fig, key=key, label=label)


def _bin_parts(count: int, positive: int | None, positive_side: bool,
               neutral: int = 0) -> list[tuple[int, str]]:
    """A bin's stacked parts, (count, side) bottom up: its negative rows, its neutral ones (a
    --neutral-band), then its positive ones. Without decisions, the whole bin takes the side of
    its midpoint (drawing only)."""
    side = "positive" if positive_side else "negative"
    if positive is None:
        return [(count, side)]
    parts = [(count - positive - neutral, "negative"), (neutral, "neutral"), (positive, "positive")]
    return [p for p in parts if p[0]] or [(0, side)]


_BAR_STYLE = {"positive": (BLUE, None), "negative": (VERMILLION, "////"), "neutral": (ORANGE, "..")}


def _histogram_bars(ax, edges: list[float], counts: list[int], positives: list[int] | None,
                    threshold: float, neutrals: list[int] | None = None) -> list[str]:
    """Draw one bar per bin, split where a bin holds several sides; returns the bars' ids."""
    keep = []
    for i, count in enumerate(counts):
        lo, hi = edges[i], edges[i + 1]
        bottom = 0
        parts = _bin_parts(count, None if positives is None else positives[i],
                           (lo + hi) / 2 >= threshold, neutrals[i] if neutrals else 0)
        for k, (height, side) in enumerate(parts):
            colour, hatch = _BAR_STYLE[side]
            # Hatching keeps the sides apart when printed in greyscale.
            patches = ax.bar(lo, height, width=hi - lo, bottom=bottom, align="edge", color=colour,
                             edgecolor="white", linewidth=0.6, hatch=hatch)
            bottom += height
            gid = f"hist-bar-{i}" if k == 0 else f"hist-bar-{i}-{side}"
            patches[0].set_gid(gid)
            keep.append(gid)
    return keep


def _histogram_label(total: int, bins: int, positives: list[int] | None, threshold: float,
                     neutral: int | None = None) -> str:
    """The histogram's description; the split counts the rows' own decisions, never bins."""
    label = f"Histogram of {total:,} scores in {bins} bins"
    if positives is None:
        return f"{label}; threshold {threshold:.2f}"
    above = sum(positives)
    if neutral is not None:
        return (f"{label}; {above:,} positive, {neutral:,} neutral and "
                f"{total - above - neutral:,} negative at the threshold {threshold:.2f}")
    return f"{label}; {total - above:,} below and {above:,} at or above the threshold {threshold:.2f}"


def score_histogram_svg(hist: dict, threshold: float) -> str:
    """Distribution of scores in bins, coloured by side of the threshold, threshold line drawn.

    With "positive_counts" (metrics.StreamingMetrics.histogram: each bin's rows that were
    decided positive) a bin that straddles the threshold is drawn as two stacked parts and the
    description counts the decisions exactly.
    """
    edges = [float(e) for e in hist.get("edges") or []]
    counts = [int(c) for c in hist.get("counts") or []]
    positives = hist.get("positive_counts")
    if len(edges) != len(counts) + 1:
        edges = [i / 20 for i in range(21)]
        counts = [0] * 20
        positives = None
    if positives is not None and len(positives) != len(counts):
        positives = None
    positives = None if positives is None else [int(c) for c in positives]
    neutrals = hist.get("neutral_counts") if positives is not None else None
    neutrals = [int(c) for c in neutrals] if neutrals and len(neutrals) == len(counts) else None
    band = hist.get("neutral_band")
    total = sum(counts)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 2.6), layout="constrained")
        ax = fig.add_subplot()
        if band:
            ax.axvspan(float(band[0]), float(band[1]), color=ORANGE, alpha=0.12, linewidth=0)
        keep = _histogram_bars(ax, edges, counts, positives, threshold, neutrals)
        ax.axvline(threshold, color="#1a1a1a", linestyle="--", linewidth=1.3)
        # Above the plot area, so the label never sits on top of a bar.
        ax.annotate(
            f"threshold {threshold:.2f}",
            xy=(threshold, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center" if 0.1 < threshold < 0.9 else ("left" if threshold <= 0.1 else "right"),
            va="bottom",
            fontsize=8.5,
        )
        if total == 0:
            ax.text(0.5, 0.5, "no scored reviews", transform=ax.transAxes, ha="center", color=GREY)
            ax.set_ylim(0, 1)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("score (probability of positive)")
        ax.set_ylabel("reviews")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title("Score distribution", loc="left")
        label = _histogram_label(total, len(counts), positives, threshold,
                                 None if neutrals is None else sum(neutrals))
        if band:
            label += f"; scores in [{float(band[0]):g}, {float(band[1]):g}) are neutral"
        return _figure_to_svg(fig, key="hist", label=label, keep_ids=keep)


def _plain_text(text: str, limit: int = 40) -> str:
    """A label shown literally: shortened, and with no mathtext (a '$' in a name stays a '$')."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Tick steps tried, in buckets: for months these keep ticks on quarters and half years.
_TICK_STEPS = (1, 2, 3, 4, 6, 12, 24, 36, 60, 120, 240, 600, 1200)
MAX_TIME_TICKS = 12


def _tick_labels(starts: list[str], granularity: str | None) -> list[str]:
    """Short labels for the shown ticks: a month is "Mar", with the year under it on the first
    tick and where the year changes; a day or week start is "6 Jan", a year "2025"."""
    labels, last_year = [], None
    for start in starts:
        year, month, day = start.split("-")
        name = _MONTHS[int(month) - 1]
        if granularity == "year":
            labels.append(year)
        elif granularity == "month":
            labels.append(name if year == last_year else f"{name}\n{year}")
        else:
            labels.append(f"{int(day)} {name}")
        last_year = year
    return labels


def _labels_overlap(fig: Figure, ax) -> bool:
    """True when two of the x tick labels, as drawn, touch or overlap."""
    fig.draw_without_rendering()
    boxes = sorted(
        (t.get_window_extent() for t in ax.get_xticklabels() if t.get_visible() and t.get_text()),
        key=lambda b: b.x0,
    )
    gap = 4  # pixels between neighbours, so they read as separate labels
    return any(b.x0 < a.x1 + gap for a, b in itertools.pairwise(boxes))


def _set_time_ticks(fig: Figure, ax, starts: list[str], granularity: str | None) -> None:
    """Label every step-th bucket, with the smallest step (from _TICK_STEPS) at which there are
    at most MAX_TIME_TICKS labels and no two of them overlap once drawn."""
    n = len(starts)
    steps = [s for s in _TICK_STEPS if math.ceil(n / s) <= MAX_TIME_TICKS] or [_TICK_STEPS[-1]]
    for step in steps:
        shown = list(range(0, n, step))
        ax.set_xticks(shown, _tick_labels([starts[i] for i in shown], granularity))
        if len(shown) <= 1 or not _labels_overlap(fig, ax):
            return


def timeline_figure(timeline: dict, threshold: float = 0.5) -> tuple[Figure, list[str]] | None:
    """The timeline plot as a Figure and the ids it keeps (see timeline_svg); call it inside
    matplotlib.rc_context(_RC), as timeline_svg does."""
    buckets = timeline.get("buckets") or []
    if not any(b.get("reviews") for b in buckets):
        return None
    xs = list(range(len(buckets)))
    keep = ["timeline-share", "timeline-mean"]
    fig = Figure(figsize=(7.6, 3.0), layout="constrained")
    ax = fig.add_subplot()
    counts_ax = ax.twinx()
    # Lines in front of the count bars: the share is what the plot is about.
    ax.set_zorder(counts_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    bars = counts_ax.bar(xs, [b["reviews"] for b in buckets], width=0.7, color="#d4dbe1", label="reviews")
    for i, patch in enumerate(bars):
        patch.set_gid(f"timeline-count-{i}")
        keep.append(f"timeline-count-{i}")
    marker = 4.5 if len(buckets) <= 40 else 0
    (line,) = ax.plot(xs, [_nan(b.get("positive_share")) for b in buckets], color=BLUE, marker="o",
                      markersize=marker, linewidth=1.9, label="positive share")
    line.set_gid("timeline-share")
    (line,) = ax.plot(xs, [_nan(b.get("mean_score")) for b in buckets], color=VERMILLION,
                      linestyle="--", marker="s", markersize=marker, linewidth=1.6, label="mean score")
    line.set_gid("timeline-mean")
    ax.axhline(threshold, color=GREY, linestyle=":", linewidth=1, zorder=0)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share / score")
    counts_ax.set_ylabel("reviews", color=GREY)
    counts_ax.spines["right"].set_visible(True)
    counts_ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlim(-0.6, len(buckets) - 0.4)
    ax.grid(True, axis="y", color="#e4e4e4", linewidth=0.6)
    handles = ax.get_legend_handles_labels()[0] + [bars]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 1.16), ncols=3, fontsize=8.5)
    _set_time_ticks(fig, ax, [b["start"] for b in buckets], timeline.get("granularity"))
    return fig, keep


def timeline_svg(timeline: dict, threshold: float = 0.5) -> str | None:
    """Positive share and mean score per bucket (lines, left axis) over review counts (bars, right).

    Series get ids ``timeline-share``, ``timeline-mean`` and ``timeline-count-<i>``; None when no
    bucket holds a review. Tick labels are thinned until none overlap (a month is "Mar", with
    its year on the first tick and where the year changes).
    """
    with matplotlib.rc_context(_RC):
        drawn = timeline_figure(timeline, threshold)
        if drawn is None:
            return None
        fig, keep = drawn
        buckets = timeline["buckets"]
        per = timeline.get("granularity") or "period"
        label = (
            f"Sentiment per {per}, {len(buckets)} {per}s "
            f"from {buckets[0]['start']} to {buckets[-1]['start']}: "
            "positive share (solid line), mean score (dashed line), reviews (bars)"
        )
        return _figure_to_svg(fig, key="timeline", label=label, keep_ids=keep)


def _group_row(ax, y: int, g: dict, overall_share: float | None) -> str:
    """One group's interval (with end caps) and point; returns the point's id."""
    share = g["positive_share"]
    low = g.get("ci_low") if g.get("ci_low") is not None else share
    high = g.get("ci_high") if g.get("ci_high") is not None else share
    ax.plot([low, high], [y, y], color=GREY, linewidth=1.6, solid_capstyle="butt")
    ax.plot([low, low], [y - 0.18, y + 0.18], color=GREY, linewidth=1.2)
    ax.plot([high, high], [y - 0.18, y + 0.18], color=GREY, linewidth=1.2)
    # Groups clearly below the file as a whole get a different shape, not just a colour.
    below = overall_share is not None and high < overall_share
    (point,) = ax.plot(
        share,
        y,
        marker="D" if below else "o",
        markersize=6.5,
        color=VERMILLION if below else BLUE,
        linestyle="none",
    )
    point.set_gid(f"group-point-{y}")
    return f"group-point-{y}"


def groups_svg(groups: dict, overall_share: float | None = None, max_groups: int = 30) -> str | None:
    """Positive share per group with Wilson 95% error bars, sorted; the most reviewed groups only.

    Points get ids ``group-point-<i>`` in plotted order (lowest share first); None without groups.
    """
    items = [
        g for g in groups.get("items") or [] if g.get("positive_share") is not None and not g.get("other")
    ]
    if not items:
        return None
    items = sorted(items, key=lambda g: -g["reviews"])[:max_groups]
    items.sort(key=lambda g: (g["positive_share"], g["name"]), reverse=True)
    ys = list(range(len(items)))
    keep = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.6, 1.1 + 0.28 * len(items)), layout="constrained")
        ax = fig.add_subplot()
        for y, g in zip(ys, items, strict=True):
            keep.append(_group_row(ax, y, g, overall_share))
        if overall_share is not None:
            ax.axvline(overall_share, color="#1a1a1a", linestyle="--", linewidth=1.1, zorder=0)
            ax.annotate(
                f"all reviews {overall_share:.0%}",
                xy=(overall_share, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8.5,
            )
        labels = [f"{_plain_text(g['name'], 32)} ({g['scored']:,})" for g in items]
        ax.set_yticks(ys, labels)
        for tick in ax.get_yticklabels():
            tick.set_parse_math(False)
        ax.set_ylim(len(items) - 0.5, -0.5)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("positive share with 95% interval (scored reviews in brackets)")
        ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.6)
        ax.set_axisbelow(True)
        worst = items[-1]
        label = (
            f"Positive share for {len(items)} groups with 95% Wilson intervals; lowest: "
            f"{_plain_text(worst['name'])} at {worst['positive_share']:.0%}"
        )
        return _figure_to_svg(fig, key="groups", label=label, keep_ids=keep)


_SIDE_STYLE = {"positive": (BLUE, "o"), "negative": (VERMILLION, "s"), "neutral": (GREY, "D")}


def rating_scores_svg(ratings: dict, threshold: float = 0.5) -> str | None:
    """Score against star rating: the middle half of scores (bar), the mean (marker), the median (tick).

    Means get ids ``rating-mean-<i>``; None when no rating has a scored review.
    """
    values = [v for v in ratings.get("values") or [] if v.get("mean_score") is not None]
    if not values:
        return None
    keep = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(5.2, 3.0), layout="constrained")
        ax = fig.add_subplot()
        xs = list(range(len(values)))
        for x, v in zip(xs, values, strict=True):
            colour, marker = _SIDE_STYLE.get(v.get("side"), _SIDE_STYLE["neutral"])
            if v.get("q1") is not None and v.get("q3") is not None:
                ax.bar(
                    x,
                    v["q3"] - v["q1"],
                    bottom=v["q1"],
                    width=0.45,
                    color=colour,
                    alpha=0.22,
                    edgecolor=colour,
                    linewidth=1,
                )
            if v.get("median") is not None:
                ax.plot([x - 0.22, x + 0.22], [v["median"]] * 2, color="#1a1a1a", linewidth=1.4)
            (point,) = ax.plot(
                x, v["mean_score"], marker=marker, markersize=7, color=colour, linestyle="none"
            )
            point.set_gid(f"rating-mean-{x}")
            keep.append(f"rating-mean-{x}")
        ax.axhline(threshold, color=GREY, linestyle=":", linewidth=1.1, zorder=0)
        ax.set_xticks(xs, [f"{v['label']}\n{v['scored']:,}" for v in values])
        ax.set_xlim(-0.6, len(values) - 0.4)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"{_plain_text(ratings.get('column') or 'rating', 24)} (scored reviews below)")
        for tick in ax.get_xticklabels():
            tick.set_parse_math(False)
        ax.xaxis.label.set_parse_math(False)
        ax.set_ylabel("score")
        ax.grid(True, axis="y", color="#e4e4e4", linewidth=0.6)
        ax.set_axisbelow(True)
        described = "; ".join(f"{v['label']}: mean {v['mean_score']:.2f}" for v in values)
        label = (
            f"Model score per rating (box: middle half of scores, line: median, marker: mean). {described}"
        )
        return _figure_to_svg(fig, key="ratings", label=label, keep_ids=keep)


def _lm_series(curve: dict) -> list[tuple]:
    """(gid, label, xs, ys, style) of each language-model loss series that has a point."""
    trace_name = "training loss, running mean"
    if curve.get("softmax") == "sampled":
        trace_name += " (sampled softmax)"
    epoch_x = _finite(curve.get("x"))
    candidates = [
        ("lm-trace-loss", trace_name, _finite(curve.get("trace_x")), _finite(curve.get("trace_loss")),
         {"color": BLUE, "linewidth": 1.5}),
        ("lm-epoch-loss", "training loss, each epoch", epoch_x, _finite(curve.get("loss")),
         {"color": BLUE, "linestyle": "none", "marker": "o", "markersize": 4.5}),
        ("lm-heldout-loss", "held-out loss", epoch_x, _finite(curve.get("heldout_loss")),
         {"color": VERMILLION, "linestyle": "--", "marker": "s", "markersize": 4.5,
          "linewidth": 1.6}),
    ]
    out = []
    for gid, label, xs, ys, style in candidates:
        pairs = [(x, y) for x, y in zip(xs, ys) if not (math.isnan(x) or math.isnan(y))]
        if pairs:
            out.append((gid, label, [x for x, _ in pairs], [y for _, y in pairs], style))
    if out and out[0][0] != "lm-trace-loss":
        # No trace: the per-epoch training losses are the training curve, so join them.
        for gid, _, _, _, style in out:
            if gid == "lm-epoch-loss":
                style.update(linestyle="-", linewidth=1.8)
    return out


def _perplexity_axis(ax) -> None:
    """A right-hand axis reading the same curves as perplexity (exp of the loss in nats)."""
    import numpy as np

    def to_perplexity(loss):
        return np.exp(np.clip(loss, -50, 50))

    def to_loss(perplexity):
        return np.log(np.clip(perplexity, 1e-12, None))

    right = ax.secondary_yaxis("right", functions=(to_perplexity, to_loss))
    right.set_ylabel("perplexity", color=GREY)
    # Perplexity grows exponentially up the loss axis: 1-2-5 steps keep its ticks spread out.
    right.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    right.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    right.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos: f"{v:,.0f}"))


def language_model_curve_svg(curve: dict | None) -> str | None:
    """The pretrained language model's loss against tokens seen: the training loss trace, the
    per-epoch training and held-out losses, and a perplexity scale on the right (perplexity is
    exp(loss)). None when there is nothing to draw.

    Series get ids ``lm-trace-loss``, ``lm-epoch-loss`` and ``lm-heldout-loss``.
    """
    series = _lm_series(curve or {})
    if not series or max(len(xs) for _, _, xs, _, _ in series) < 2:
        return None
    keep = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.6, 2.9), layout="constrained")
        ax = fig.add_subplot()
        for gid, label, xs, ys, style in series:
            (line,) = ax.plot(xs, ys, label=label, **style)
            line.set_gid(gid)
            keep.append(gid)
        _perplexity_axis(ax)
        by_tokens = curve.get("x_label") == "tokens seen"
        ax.set_xlabel("tokens seen" if by_tokens else "epoch")
        if by_tokens:
            ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel("loss (nats per token)")
        ax.set_title("Language model", loc="left")
        ax.grid(True, color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="best", fontsize=8)
        held = [ys for gid, _, _, ys, _ in series if gid == "lm-heldout-loss"]
        last = f"; last held-out perplexity {math.exp(min(held[0][-1], 50)):,.1f}" if held else ""
        label = ("Language-model pretraining: loss against " + ("tokens seen" if by_tokens else "epochs")
                 + ", " + ", ".join(name for _, name, *_ in series) + last)
        return _figure_to_svg(fig, key="lm-curve", label=label, keep_ids=keep)


def reliability_diagram_svg(bins: Sequence[dict] | None, title: str, *,
                            ece: float | None = None) -> str | None:
    """A reliability diagram: per score bin, the share of reviews that are truly positive (bars,
    with the bin's count above) against the diagonal a calibrated model would follow, and a
    point at each bin's mean score. `bins` are calibration.reliability_bins' dicts; None when
    no bin holds a review."""
    filled = [b for b in bins or [] if b.get("n") and b.get("positive_share") is not None]
    if not filled:
        return None
    total = sum(int(b["n"]) for b in filled)
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(3.6, 3.3), layout="constrained")
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", linewidth=1, label="calibrated")
        for b in filled:
            low, high, share = float(b["low"]), float(b["high"]), float(b["positive_share"])
            ax.bar(low, share, width=high - low, align="edge", color=BLUE, alpha=0.75,
                   edgecolor="white", linewidth=0.6)
            ax.text((low + high) / 2, min(share, 0.93) + 0.015, f"{int(b['n']):,}", ha="center",
                    va="bottom", fontsize=6.5, color=GREY)
        ax.plot([float(b["mean_score"]) for b in filled],
                [float(b["positive_share"]) for b in filled], "o", color=VERMILLION,
                markersize=3.5, label="mean score of the bin")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("score (probability of positive)")
        ax.set_ylabel("truly positive")
        ax.legend(loc="upper left", fontsize=7.5)
        shown = "" if ece is None else f" (ECE {ece:.3f})"
        ax.set_title(f"{title}{shown}", loc="left", parse_math=False)
        key = "rel-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "plot")
        described = "; ".join(f"{float(b['low']):.1f}-{float(b['high']):.1f}: {int(b['n']):,} "
                              f"reviews, {float(b['positive_share']):.0%} positive" for b in filled)
        label = (f"Reliability diagram, {title}: {total:,} labelled reviews in score bins"
                 f"{shown}; {described}")
        return _figure_to_svg(fig, key=key, label=label)
