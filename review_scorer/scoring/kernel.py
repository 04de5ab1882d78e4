"""The per-chunk kernel both engines call: open a file, score a read chunk, shape its output rows.

A reader's chunk goes in; a typed ScoredChunk comes out with its statuses, scores and the one
positive/negative/neutral decision (metrics.DecisionRule). The local engine (score.py) and the
Ray stages (engines/) differ only in where they call these functions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import ReviewScorerError
from review_scorer.metrics import DECIDED_NEUTRAL, DECIDED_POSITIVE, DecisionRule, sentiment_names
from review_scorer.model.sentiment import STATUS_OK, rounded_scores

# A spreadsheet formula whose value was never computed (files written by scripts store none).
STATUS_FORMULA = "formula without value"
OUTPUT_COLUMNS = ("row", "sentiment", "score", "status")
TOP_WORDS_COLUMN = "top_words"
SOURCE_COLUMN = "source_file"  # the ray engine's parts name each row's input file
REPORT_TEXT_LIMIT = 20000  # characters of a review the report's table keeps


@dataclass
class ScoredChunk:
    """Consecutive input rows with their statuses and scores, in input order."""

    frame: Any  # pandas DataFrame: every original column (str values), index 0..n-1
    rows: np.ndarray  # int64 1-based record numbers in the source file
    texts: list[str | None]
    labels: np.ndarray | None  # int8 1 / 0 / -1 (none, unknown or neutral)
    ratings: np.ndarray | None  # float64 star ratings when a rating column is used
    status: np.ndarray  # object array of status strings
    scores: np.ndarray  # float32, NaN where not scored
    # bool: the row is positive (metrics.DecisionRule, decided once in scored_chunk); False
    # where not scored. Every sink reads this decision rather than comparing scores again.
    positive: np.ndarray
    attributions: list | None = None  # per row: explain.Attribution or None (when explained)
    values: Any = None  # DataFrame: the original columns with the input's types (JSON, Parquet)
    # bool: the score is in the neutral band (decided with `positive`; then positive is False).
    neutral: np.ndarray | None = None
    words: int = 0  # words the model read in this chunk, and of them unknown to its vocabulary
    unknown_words: int = 0

    def __post_init__(self) -> None:
        if self.neutral is None:
            self.neutral = np.zeros(len(self.rows), dtype=bool)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def scored(self) -> np.ndarray:
        return self.status == STATUS_OK

    def label_codes(self) -> np.ndarray:
        """The labels, or -1 (unknown) for every row of a file without labels."""
        return self.labels if self.labels is not None else np.full(len(self), -1, np.int8)

    def ids(self, id_column: str | None) -> list:
        """Each row's id (None for every row without an id column)."""
        return self.frame[id_column].tolist() if id_column else [None] * len(self)

    def text_values(self) -> list[str]:
        return ["" if t is None else str(t) for t in self.texts]


@dataclass
class RowCounts:
    """Exact counts of rows, scored rows, decisions and reasons for not scoring; they add up."""

    rows: int = 0
    scored: int = 0
    positive: int = 0
    neutral: int = 0
    not_scored: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, chunk: ScoredChunk) -> RowCounts:
        scored = chunk.scored
        reasons = Counter(str(s) for s in chunk.status[~scored].tolist())
        return cls(len(chunk), int(scored.sum()), int(np.count_nonzero(chunk.positive)),
                   int(np.count_nonzero(chunk.neutral)), dict(reasons))


def add_counts(total: Any, counts: Any) -> None:
    """Add `counts` (a RowCounts or a FileResult) into `total` (either kind) in place."""
    total.rows += counts.rows
    total.scored += counts.scored
    total.positive += counts.positive
    total.neutral += counts.neutral
    for status, n in counts.not_scored.items():
        total.not_scored[str(status)] = total.not_scored.get(str(status), 0) + int(n)
    if hasattr(total, "negative"):
        total.negative = total.scored - total.positive - total.neutral


# ------------------------------------------------------------------------------ scoring


def predict_prepared(model: Any, prepared: Any, *, batch_size: int) -> np.ndarray:
    """Scores of model.prepare's texts: float32, NaN where there was nothing to score."""
    scores = np.full(len(prepared.status), np.nan, dtype=np.float32)
    if prepared.sequences:
        scores[prepared.positions] = model.predict_ids(prepared.sequences, batch_size=batch_size)
    return scores


def scored_chunk(chunk: Any, status: np.ndarray, scores: np.ndarray, rule: DecisionRule,
                 attributions: list | None = None, *, words: tuple[int, int] = (0, 0)
                 ) -> ScoredChunk:
    """The reader's chunk (io.ReviewChunk) with its statuses, scores and decisions."""
    if chunk.formula is not None and np.any(chunk.formula):
        # The cell holds a formula whose result was never stored: say so, don't call it empty.
        status = np.where(np.asarray(chunk.formula, dtype=bool) & (status != STATUS_OK),
                          STATUS_FORMULA, status).astype(object)
    decided = rule.decide(scores, status == STATUS_OK)
    return ScoredChunk(frame=chunk.frame, rows=chunk.rows, texts=chunk.texts, labels=chunk.labels,
                       ratings=chunk.ratings, status=status, scores=scores,
                       positive=decided == DECIDED_POSITIVE, neutral=decided == DECIDED_NEUTRAL,
                       attributions=attributions, values=chunk.values,
                       words=int(words[0]), unknown_words=int(words[1]))


# ------------------------------------------------------------------------------ files


def open_review_file(path: str | Path, options: Any) -> Any:
    """The review file opened with the run's column, sheet and chunk settings (ScoreOptions)."""
    from review_scorer.io import open_reviews

    o = options
    extra = {k: v for k, v in (("rating_column", o.rating_column), ("date_column", o.date_column),
                               ("group_column", o.group_column)) if v is not None}
    return open_reviews(path, text_column=o.text_column, label_column=o.label_column,
                        id_column=o.id_column, sheet=o.sheet, chunk_rows=o.chunk_rows, **extra)


def unexpected(exc: BaseException) -> bool:
    """True for a failure that is neither one of ours nor a lack of memory or stack."""
    return not isinstance(exc, (ReviewScorerError, MemoryError, RecursionError))


def file_error(path: Any, exc: BaseException, *, hint: str = "") -> tuple[str, int]:
    """(one-line message, exit code) recorded for a file that failed with `exc`; `hint` follows
    the message of an unexpected failure."""
    if isinstance(exc, ReviewScorerError):
        return str(exc), exc.exit_code
    if isinstance(exc, (MemoryError, RecursionError)):
        return f"{path}: {type(exc).__name__}", 1
    detail = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"{path}: unexpected {type(exc).__name__}: {detail}{hint}", 1


def file_columns(info: Any) -> dict[str, Any]:
    """The FileResult fields that say which columns the reader used: labels taken from star
    ratings name the rating column."""
    from_rating = bool(info.label_from_rating)
    return {"text_column": info.text_column,
            "label_column": info.rating_column if from_rating else info.label_column,
            "labels_from_rating": from_rating, "sheet": info.sheet}


def file_notes(review_file: Any) -> list[str]:
    """The reader's decisions about a file (complete once every row was read), each once."""
    info = review_file.info
    notes = list(review_file.notes)
    if info.encoding_fallback and not any("UTF-8" in n for n in notes):
        notes.insert(0, f"not valid UTF-8: read as {info.encoding}")
    if info.text_column_guessed and not any(info.text_column in n for n in notes):
        notes.append(f"text column '{info.text_column}' chosen by its content")
    return list(dict.fromkeys(notes))


def keep_clashing_columns(columns: Sequence[str], ours: Sequence[str]) -> dict[str, str]:
    """New names for input columns that clash with the columns scoring adds: `<name>_original`,
    then `<name>_original.1`, ... whichever is free (an input may already have row_original)."""
    taken = set(columns) | set(ours)
    rename = {}
    for column in columns:
        if column in ours:
            new, k = f"{column}_original", 0
            while new in taken:
                k += 1
                new = f"{column}_original.{k}"
            taken.add(new)
            rename[column] = new
    return rename


def rename_note(rename: dict[str, str]) -> list[str]:
    """The note that says which input columns were renamed (none when none were)."""
    if not rename:
        return []
    return ["input columns renamed to keep them: "
            + ", ".join(f"{a} -> {b}" for a, b in rename.items())]


# ------------------------------------------------------------------------------ output rows


def prediction_frame(chunk: ScoredChunk, rename: dict[str, str], *, typed: bool = False,
                     top_words: bool = False, source: str | None = None) -> Any:
    """The chunk's rows as written: [source_file,] the original columns (renamed where they
    clash; with the input's types when `typed` and the reader kept them), row, sentiment,
    score, status[, top_words]."""
    frame = (chunk.values if typed and chunk.values is not None else chunk.frame)
    frame = frame.rename(columns=rename).copy()
    if source is not None:
        frame.insert(0, SOURCE_COLUMN, source)
    frame["row"] = chunk.rows
    frame["sentiment"] = sentiment_names(chunk.positive, chunk.scored, chunk.neutral)
    frame["score"] = rounded_scores(chunk.scores, chunk.status)
    frame["status"] = chunk.status
    if top_words:
        frame[TOP_WORDS_COLUMN] = top_words_column(chunk)
    return frame.reset_index(drop=True)


def top_words_column(chunk: ScoredChunk) -> list[str]:
    from review_scorer.explain.drivers import format_top_terms

    attributions = chunk.attributions or [None] * len(chunk)
    return [format_top_terms(a) if a is not None else "" for a in attributions]


def table_row(*, row: int, id_: Any, text: Any, sentiment: Any, score: Any, status: Any,
              label: int, group: Any = None, rating: float | None = None) -> dict[str, Any]:
    """One row of the report's review table, the same shape from either engine."""
    score = None if status != STATUS_OK or score in ("", None) else float(score)
    out = {
        "row": int(row),
        "id": None if id_ is None or id_ == "" else str(id_),
        "text": ("" if text is None else str(text))[:REPORT_TEXT_LIMIT],
        "sentiment": str(sentiment or ""),
        "score": None if score is None or not np.isfinite(score) else round(score, 4),
        "status": str(status),
        "label": {1: "positive", 0: "negative"}.get(int(label)),
    }
    if group is not None:
        out["group"] = str(group)
    if rating is not None and np.isfinite(rating):
        out["rating"] = float(rating)
    return out
