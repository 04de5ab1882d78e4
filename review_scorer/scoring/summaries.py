"""The mergeable summaries of scored chunks, folded the same way by both engines.

The local engine folds every chunk of a file into one ``Summaries``; the ray engine folds each
chunk into its own on a worker and merges them on the driver. Either way the report gets the
same metrics, highlights, domain signal, time/group/rating sections and drivers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from review_scorer.metrics import DecisionRule, HighlightTracker, StreamingMetrics
from review_scorer.scoring.domain import DomainSignal
from review_scorer.scoring.kernel import ScoredChunk

HIGHLIGHTS_PER_KIND = 5


def insight_roles(info: Any) -> tuple:
    """The columns the report's time, group and rating sections read (date, group, rating,
    rating scale, id), as the reader found them; files with equal roles merge their insights."""
    return (info.date_column, info.group_column, info.rating_column, info.rating_scale,
            info.id_column)


def new_insights(roles: tuple, threshold: float) -> Any:
    """An empty FileInsights (the report's time/group/rating sections) for these roles."""
    from review_scorer.report.insights import FileInsights

    date, group, rating, scale, ident = roles
    return FileInsights(date, group, rating, scale, threshold, id_column=ident)


class Summaries:
    """Streaming metrics, highlights, the out-of-domain signal, the insights and the drivers of
    the chunks folded in; two of them merge into what one would hold for both chunk streams."""

    def __init__(self, rule: DecisionRule, roles: tuple):
        from review_scorer.explain.drivers import DriverAccumulator

        self.rule, self.roles = rule, roles
        self.streaming = StreamingMetrics(threshold=rule.threshold, neutral_band=rule.neutral_band)
        self.highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=rule.threshold)
        self.domain = DomainSignal()
        self.insights = new_insights(roles, rule.threshold)
        self.drivers = DriverAccumulator()

    @property
    def id_column(self) -> str | None:
        return self.roles[4]

    def update(self, chunk: ScoredChunk, *, source: str | None = None, source_rank: int = 0
               ) -> None:
        """Fold in one scored chunk (`source`: its file's name when a run has several)."""
        scored, labels = chunk.scored, chunk.label_codes()
        self.streaming.update(labels, np.nan_to_num(chunk.scores, nan=0.0), scored, chunk.positive,
                              chunk.neutral)
        self.domain.update(chunk.scores, scored, words=chunk.words,
                           unknown_words=chunk.unknown_words)
        ids, texts = chunk.ids(self.id_column), chunk.text_values()
        pos = np.flatnonzero(scored)
        self.highlights.update(chunk.rows[pos], chunk.scores[pos], [texts[i] for i in pos],
                               [ids[i] for i in pos], labels[pos], positive=chunk.positive[pos],
                               neutral=chunk.neutral[pos], source=source, source_rank=source_rank)
        self.insights.update(chunk)
        if chunk.attributions is not None:
            self.drivers.update(a for a in chunk.attributions if a is not None)

    def merge(self, other: Summaries, *, insights: bool = True) -> Summaries:
        """Fold `other` into this one; returns self. insights=False leaves the insights alone
        (a run whose files read different columns has none)."""
        self.streaming.merge(other.streaming)
        self.highlights.merge(other.highlights)
        self.domain.merge(other.domain)
        if insights:
            self.insights.merge(other.insights)
        self.drivers.merge(other.drivers)
        return self

    def metrics(self, labeled: bool) -> dict[str, Any] | None:
        """The file's metrics against its labels; None for a file without labels."""
        return self.streaming.result(self.rule.threshold) if labeled else None
