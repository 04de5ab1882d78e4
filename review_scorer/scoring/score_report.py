"""The score report's data, built one way for both engines (build_score_report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from review_scorer.metrics import DecisionRule
from review_scorer.report.data import (
    Drivers,
    FileSummary,
    Highlights,
    Insights,
    ReportRow,
    ReviewTable,
    ScoreHistogram,
    ScoreReport,
)
from review_scorer.scoring.kernel import SOURCE_COLUMN
from review_scorer.scoring.results import FileResult


def build_score_report(result: FileResult, *, model: Any, device_name: str, rule: DecisionRule,
                       histogram: ScoreHistogram, highlights: Highlights,
                       rows: Sequence[ReportRow], max_rows: int, drivers: Drivers | None = None,
                       insights: Insights | None = None, sample_seed: int | None = None,
                       full_paths: bool = False) -> ScoreReport:
    """The report of one file (local engine) or one run (ray engine).

    `result` holds the counts, metrics, domain signal and notes; `model` is the SentimentModel
    that scored. `rows` are the table's rows: the file's first ones, or with `sample_seed` a
    seeded random sample of the run's rows, which the page then says. `insights` (the time,
    group and rating sections) and `drivers` are left out when None.

    The report is meant to be mailed: unless full_paths, it names files and folders (the input,
    the model, the training data) by their names only, not by where they sit on this machine.
    """
    from review_scorer import __version__
    from review_scorer.report.model_section import model_section, report_time

    if not full_paths:
        _name_sources_only([*rows, *(r for group in highlights.values() for r in group)])
    sections = insights or {"timeline": None, "groups": None, "ratings": None}
    return ScoreReport(
        title=f"{result.path.name} — sentiment report",
        generated_at=report_time(),
        package_version=__version__,
        model=model_section(name=model.name, path=str(model.path), meta=model.meta,
                            config=model.config, history=model.history, metrics=model.metrics,
                            full_paths=full_paths),
        summary=file_summary(result, model_name=model.describe(), device_name=device_name,
                             rule=rule, full_paths=full_paths),
        table=ReviewTable(rows=tuple(rows), total=result.rows, max_rows=max_rows,
                          sampled=sample_seed is not None, sample_seed=sample_seed),
        file_metrics=result.metrics,
        score_histogram=histogram,
        highlights=highlights,
        drivers=drivers or None,
        timeline=sections["timeline"],
        groups=sections["groups"],
        ratings=sections["ratings"],
    )


def file_summary(result: FileResult, *, model_name: str, device_name: str, rule: DecisionRule,
                 full_paths: bool = False) -> FileSummary:
    """The report's Summary of a file's (or a run's) result."""
    from review_scorer.report.model_section import shorten_paths

    rows_per_second = result.rows / result.seconds if result.seconds > 0 else 0.0
    return FileSummary(
        file=result.path.name, path=str(result.path) if full_paths else result.path.name,
        rows=result.rows, scored=result.scored, not_scored=result.rows - result.scored,
        not_scored_reasons=dict(result.not_scored), positive=result.positive,
        negative=result.negative, positive_share=result.positive_share,
        neutral=result.neutral, neutral_share=result.neutral_share,
        neutral_band=tuple(rule.neutral_band) if rule.neutral_band else None,
        domain=result.domain, model=model_name, threshold=rule.threshold, device=device_name,
        seconds=round(result.seconds, 3), rows_per_second=round(rows_per_second, 1),
        text_column=result.text_column, label_column=result.label_column,
        notes=tuple(result.notes if full_paths else (shorten_paths(n) for n in result.notes)),
    )


def _name_sources_only(rows: list[ReportRow]) -> None:
    """The file each row came from (a ray run names it) by its name only."""
    from review_scorer.io.part_files import base_name, is_uri

    for row in rows:
        source = row.get(SOURCE_COLUMN)
        if isinstance(source, str):
            row[SOURCE_COLUMN] = base_name(source) if is_uri(source) else Path(source).name
