"""What a `score` run is told (ScoreOptions) and what it returns (FileResult, ScoreResult)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import UsageError
from review_scorer.metrics import DecisionRule, accuracy_label, check_neutral_band
from review_scorer.model.sentiment import DEFAULT_BATCH_SIZE, DEFAULT_THRESHOLD, DEVICE_CHOICES

DEFAULT_MAX_REPORT_ROWS = 20000
DEFAULT_CHUNK_ROWS = 5000
FORMAT_CHOICES = ("csv", "xlsx", "jsonl", "parquet")


@dataclass(frozen=True)
class ScoreOptions:
    """Every setting of a `score` run; the CLI builds one, so its defaults are these."""

    text_column: str | None = None
    label_column: str | None = None  # "" turns label detection off
    id_column: str | None = None
    rating_column: str | None = None
    date_column: str | None = None
    group_column: str | None = None
    sheet: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    threshold: float = DEFAULT_THRESHOLD
    neutral_band: tuple[float, float] | None = None  # scores in [low, high) are "neutral"
    fmt: str = "csv"
    device: str = "auto"
    overwrite: bool = False
    report: bool = True
    max_report_rows: int = DEFAULT_MAX_REPORT_ROWS
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    explain: bool = False
    excel_safe_csv: bool = False
    report_paths: bool = False  # the report shows full paths, not file names only

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold)
                and 0.0 < self.threshold < 1.0):
            raise UsageError(f"--threshold must be a number between 0 and 1 (exclusive), "
                             f"not {self.threshold!r}")
        try:
            object.__setattr__(self, "neutral_band", check_neutral_band(self.neutral_band))
        except ValueError as exc:
            raise UsageError(f"--neutral-band: {exc}") from None
        for name in ("batch_size", "chunk_rows"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be a whole number of at least 1")
        if not isinstance(self.max_report_rows, int) or self.max_report_rows < 0:
            raise UsageError("--max-report-rows must be a whole number of at least 0")
        if self.fmt not in FORMAT_CHOICES:
            raise UsageError(f"--format must be one of {', '.join(FORMAT_CHOICES)}, not {self.fmt!r}")
        if self.device not in DEVICE_CHOICES:
            raise UsageError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {self.device!r}")

    def replace(self, **changes: Any) -> ScoreOptions:
        return dataclasses.replace(self, **changes)

    @property
    def rule(self) -> DecisionRule:
        """The run's one decision rule (threshold and neutral band)."""
        return DecisionRule(self.threshold, self.neutral_band)


@dataclass
class FileResult:
    """What happened to one input file."""

    path: Path
    ok: bool
    error: str | None = None
    exit_code: int = 0
    predictions_path: Path | None = None
    report_path: Path | None = None
    rows: int = 0
    scored: int = 0
    not_scored: dict[str, int] = field(default_factory=dict)
    positive: int = 0
    negative: int = 0
    neutral: int = 0  # scored rows in the neutral band (0 without --neutral-band)
    metrics: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None  # domain.DomainSignal.to_dict(): the out-of-domain check
    seconds: float = 0.0
    text_column: str | None = None
    label_column: str | None = None
    labels_from_rating: bool = False  # label_column is a star-rating column
    sheet: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.scored if self.scored else None

    @property
    def neutral_share(self) -> float | None:
        return self.neutral / self.scored if self.scored else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path), "ok": self.ok, "error": self.error,
            "predictions": str(self.predictions_path) if self.predictions_path else None,
            "report": str(self.report_path) if self.report_path else None,
            "rows": self.rows, "scored": self.scored,
            "not_scored": sum(self.not_scored.values()),
            "not_scored_reasons": dict(self.not_scored),
            "positive": self.positive, "negative": self.negative,
            "positive_share": self.positive_share, "neutral": self.neutral,
            "neutral_share": self.neutral_share, "metrics": self.metrics, "domain": self.domain,
            "text_column": self.text_column, "label_column": self.label_column,
            "labels_from_rating": self.labels_from_rating, "sheet": self.sheet, "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
        }


def json_safe(value: Any) -> Any:
    """A summary value that json.dumps(allow_nan=False) writes: NaN and infinities become None,
    numpy scalars Python numbers, tuples lists (a model's metrics may hold a NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ScoreResult:
    """The outcome of one `score` run over one or more files."""

    files: list[FileResult]
    model_name: str
    model_path: Path
    model_test_accuracy: float | None
    device: str
    threshold: float
    seconds: float
    notes: list[str] = field(default_factory=list)
    neutral_band: tuple[float, float] | None = None
    model_adapted_from: str | None = None  # the starting model of an adapted model
    # metrics.json's "kind" when it is not a test set's (an adapted model's is cross-validated)
    model_accuracy_kind: str | None = None

    @property
    def model_accuracy_label(self) -> str:
        """What model_test_accuracy is: a held-out test set's, or cross-validated on the labels
        an adapted model was made from."""
        return accuracy_label(self.model_accuracy_kind)

    @property
    def model_label(self) -> str:
        """The model as the CLI names it: "name (adapted from start)" for an adapted model."""
        start = self.model_adapted_from
        return self.model_name if not start else f"{self.model_name} (adapted from {start})"

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    def to_dict(self) -> dict[str, Any]:
        rows = sum(f.rows for f in self.files)
        scored = sum(f.scored for f in self.files)
        positive = sum(f.positive for f in self.files)
        neutral = sum(f.neutral for f in self.files)
        reasons: Counter[str] = Counter()
        for f in self.files:
            reasons.update(f.not_scored)
        return json_safe({
            "files": [f.to_dict() for f in self.files], "rows": rows, "scored": scored,
            "not_scored": sum(reasons.values()), "not_scored_reasons": dict(reasons),
            "positive_share": positive / scored if scored else None,
            "neutral": neutral, "neutral_share": neutral / scored if scored else None,
            "failed_files": len(self.failed),
            "model": {"name": self.model_name, "path": str(self.model_path),
                      "adapted_from": self.model_adapted_from,
                      "test_accuracy": self.model_test_accuracy,
                      "accuracy_kind": self.model_accuracy_label},
            "device": self.device, "threshold": self.threshold,
            "neutral_band": list(self.neutral_band) if self.neutral_band else None,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(rows / self.seconds, 1) if self.seconds > 0 else None,
        })
