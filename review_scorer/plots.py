"""Report figures drawn with matplotlib's Figure API and returned as small inline SVG text."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from html import escape

import matplotlib
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


def training_curves_svg(history: dict | None, best_epoch: int | None) -> str | None:
    """Loss and accuracy per epoch (train vs validation), best epoch marked; None if no history.

    Series get ids ``curve-<loss|accuracy>-<train|validation>`` so tests and readers can find them.
    """
    history = history or {}
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
    shares = [
        [counts[r][c] / row_sums[r] if row_sums[r] else 0.0 for c in range(2)] for r in range(2)
    ]
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


def score_histogram_svg(hist: dict, threshold: float) -> str:
    """Distribution of scores in bins, coloured by side of the threshold, threshold line drawn."""
    edges = [float(e) for e in hist.get("edges") or []]
    counts = [int(c) for c in hist.get("counts") or []]
    if len(edges) != len(counts) + 1:
        edges = [i / 20 for i in range(21)]
        counts = [0] * 20
    total = sum(counts)
    keep = []
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.4, 2.6), layout="constrained")
        ax = fig.add_subplot()
        for i, count in enumerate(counts):
            lo, hi = edges[i], edges[i + 1]
            positive = (lo + hi) / 2 >= threshold
            patches = ax.bar(
                lo,
                count,
                width=hi - lo,
                align="edge",
                color=BLUE if positive else VERMILLION,
                edgecolor="white",
                linewidth=0.6,
                # Hatching keeps the two sides apart when printed in greyscale.
                hatch=None if positive else "////",
            )
            gid = f"hist-bar-{i}"
            patches[0].set_gid(gid)
            keep.append(gid)
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
            ax.text(
                0.5, 0.5, "no scored reviews", transform=ax.transAxes, ha="center", color=GREY
            )
            ax.set_ylim(0, 1)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("score (probability of positive)")
        ax.set_ylabel("reviews")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title("Score distribution", loc="left")
        below = sum(c for i, c in enumerate(counts) if (edges[i] + edges[i + 1]) / 2 < threshold)
        label = (
            f"Histogram of {total:,} scores in {len(counts)} bins; {below:,} below and "
            f"{total - below:,} at or above the threshold {threshold:.2f}"
        )
        return _figure_to_svg(fig, key="hist", label=label, keep_ids=keep)
