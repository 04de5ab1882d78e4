"""The sinks of the local engine: the predictions file and the report of one input file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from review_scorer.metrics import sentiment_names
from review_scorer.model.sentiment import SentimentModel
from review_scorer.report.data import Drivers, Highlights, ReportRow, ScoreReport
from review_scorer.scoring.kernel import (
    OUTPUT_COLUMNS,
    REPORT_TEXT_LIMIT,
    TOP_WORDS_COLUMN,
    ScoredChunk,
    keep_clashing_columns,
    prediction_frame,
    rename_note,
    table_row,
)
from review_scorer.scoring.results import FileResult, ScoreOptions
from review_scorer.scoring.summaries import Summaries, insight_roles


class PredictionSink:
    """Writes scored chunks to the predictions file (a hidden temp file until published)."""

    def __init__(self, path: Path, columns: Sequence[str], options: ScoreOptions):
        from review_scorer.io.predictions import PredictionWriter

        self.rename = keep_clashing_columns(columns, (*OUTPUT_COLUMNS, TOP_WORDS_COLUMN))
        self.columns = [self.rename.get(c, c) for c in columns] + list(OUTPUT_COLUMNS)
        if options.explain:
            self.columns.append(TOP_WORDS_COLUMN)
        self.options = options
        self.writer = PredictionWriter(path, options.fmt, overwrite=options.overwrite,
                                       excel_safe=options.excel_safe_csv,
                                       expected_columns=len(self.columns))

    def __enter__(self) -> PredictionSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.writer.abort()  # no-op once finished and published; drops the temp file otherwise

    @property
    def notes(self) -> list[str]:
        return rename_note(self.rename) + list(self.writer.notes)

    def write(self, chunk: ScoredChunk) -> None:
        self.writer.write(prediction_frame(chunk, self.rename,
                                           typed=self.writer.fmt in ("jsonl", "parquet"),
                                           top_words=self.options.explain))

    def finish(self) -> Path:
        """Close the temp file (with a header even when the input had no rows); return it."""
        if self.writer.rows_written == 0:
            import pandas as pd

            self.writer.write(pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns}))
        return self.writer.finish()


class ReportAccumulator:
    """Consumes scored chunks and keeps what the report needs: the mergeable summaries (exact
    metrics, highlights, time/group/rating statistics, the words that drove the scores) and the
    first rows for the table."""

    def __init__(self, info: Any, options: ScoreOptions, *, explainer: Any = None,
                 text_limit: int = REPORT_TEXT_LIMIT):
        self.info, self.options, self.text_limit = info, options, text_limit
        self.explainer = explainer
        self.summaries = Summaries(options.rule, insight_roles(info))
        self.rows: list[ReportRow] = []
        self._cleaned: list[str | None] = []  # per row: its cleaned text when already known

    @property
    def domain(self) -> Any:
        return self.summaries.domain

    def update(self, chunk: ScoredChunk) -> None:
        self.summaries.update(chunk)
        room = max(self.options.max_report_rows - len(self.rows), 0)
        if room == 0:
            return
        ids, texts, labels = chunk.ids(self.info.id_column), chunk.text_values(), chunk.label_codes()
        sentiment = sentiment_names(chunk.positive, chunk.scored, chunk.neutral)
        groups = chunk.frame[self.info.group_column] if self.info.group_column else None
        for i in range(min(room, len(chunk))):
            row = table_row(row=chunk.rows[i], id_=ids[i], text=texts[i], sentiment=sentiment[i],
                            score=chunk.scores[i], status=chunk.status[i], label=labels[i],
                            group=None if groups is None else groups.iloc[i],
                            rating=None if chunk.ratings is None else chunk.ratings[i])
            self.rows.append(self._with_spans(row, chunk, i))
            self._cleaned.append(self._known_cleaned(chunk, i, texts[i]))

    @staticmethod
    def _with_spans(row: dict[str, Any], chunk: ScoredChunk, i: int) -> dict[str, Any]:
        from review_scorer.explain.drivers import row_spans

        if chunk.attributions is not None and chunk.attributions[i] is not None:
            row["spans"] = row_spans(chunk.attributions[i])
        return row

    def _known_cleaned(self, chunk: ScoredChunk, i: int, text: str) -> str | None:
        """The row's cleaned text if its attribution read all of it and the table keeps the
        whole text (then the driver filter needs no second cleaning)."""
        from review_scorer.explain.drivers import cleaned_if_whole

        if chunk.attributions is None or len(text) > self.text_limit:
            return None
        return cleaned_if_whole(chunk.attributions[i])

    def metrics(self) -> dict[str, Any] | None:
        return self.summaries.metrics(bool(self.info.label_column or self.info.label_from_rating))

    def _highlights(self) -> Highlights:
        """The highlight rows, with their words highlighted (a handful of reviews: cheap)."""
        from review_scorer.explain.drivers import row_spans

        highlights = self.summaries.highlights.result()
        if self.explainer is None:
            return highlights
        for rows in highlights.values():
            for row, attribution in zip(rows, self.explainer.explain([r["text"] for r in rows])):
                if attribution is not None:
                    row["spans"] = row_spans(attribution)
        return highlights

    def report(self, result: FileResult, *, model: SentimentModel, device_name: str
               ) -> ScoreReport:
        """The file's report (scoring.score_report.build_score_report, as the ray engine's)."""
        from review_scorer.scoring.score_report import build_score_report

        s = self.summaries
        drivers = s.drivers.result(k=15) if s.drivers.reviews else None
        if drivers:
            self._mark_terms(drivers)
        return build_score_report(result, model=model, device_name=device_name,
                                  rule=self.options.rule, histogram=s.streaming.histogram(),
                                  highlights=self._highlights(), rows=self.rows,
                                  max_rows=self.options.max_report_rows, drivers=drivers,
                                  insights=s.insights.context(),
                                  full_paths=self.options.report_paths)

    def _mark_terms(self, drivers: Drivers) -> None:
        """Each table row's driver terms (the page's driver filter matches on them)."""
        from review_scorer.explain.drivers import TermMatcher

        matcher = TermMatcher([t["term"] for t in drivers["positive"] + drivers["negative"]])
        for row, cleaned in zip(self.rows, self._cleaned):
            row["terms"] = matcher(row["text"], cleaned=cleaned)
