"""The typed data of the two HTML reports: what a score report and a training report show."""

# The report objects (ScoreReport, TrainReport and the pieces they hold: ModelSection,
# FileSummary, ReviewTable) are frozen dataclasses, built in one place each:
# scoring.score_report.build_score_report (both engines) and model_section.build_train_report.
# render.build_report_html turns them into the templates' view data; report.publish writes them.
#
# The pieces that the streaming accumulators produce (rows, metrics, histogram, highlights,
# drivers, the time/group/rating sections, calibration, provenance) stay plain dicts and lists
# at run time: they are merged, pickled and compared as they are. Their keys are declared below
# as TypedDicts, so the report's whole schema lives here rather than in comments.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypedDict

DEFAULT_MAX_ROWS = 20000  # rows listed in a report's table unless --max-report-rows says


# ------------------------------------------------------------------------------ rows


class ReportRow(TypedDict, total=False):
    """One review as the report lists it (kernel.table_row; metrics.HighlightTracker for the
    highlights; insights.RatingAccumulator for the disagreements)."""

    row: int  # 1-based record number in its file
    id: str | None
    text: str
    sentiment: str  # "positive" | "negative" | "neutral" | "" (not scored)
    score: float | None
    status: str  # "ok" or why the row was not scored
    label: str | None  # "positive" | "negative" | None
    # [[start, end, weight], ...]: offsets into the original text, weight in [-1, 1]
    # (explain.row_spans); only on explained rows
    spans: list[list] | None
    group: str  # the row's value of the group column
    rating: float | None  # its star rating
    # indices of the driver terms the row holds (positive terms, then negative ones); without
    # it the page's driver filter matches the row's highlighted words instead
    terms: list[int]
    # the ray engine: the file the row came from (table rows, and highlights, which
    # metrics.HighlightTracker gives it when offered a source)
    source_file: str


class Highlights(TypedDict):
    """The most confident rows of each side and the least certain ones (HighlightTracker)."""

    positive: list[ReportRow]
    negative: list[ReportRow]
    uncertain: list[ReportRow]


# ------------------------------------------------------------------------------ numbers


class ReliabilityBin(TypedDict, total=False):
    """One bin of a reliability diagram (model.calibration.reliability_bins)."""

    low: float
    high: float
    n: int
    mean_score: float | None
    positive_share: float | None


class Metrics(TypedDict, total=False):
    """Binary metrics against labels (metrics.binary_metrics, StreamingMetrics.result; a
    model's metrics.json)."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    loss: float
    threshold: float
    confusion: list[list[int]]  # [[tn, fp], [fn, tp]]
    neutral: int  # labeled rows left out as neutral (--neutral-band)
    ece: float
    reliability: list[ReliabilityBin]
    kind: str  # how the metrics were measured, when not on a test split


class ScoreHistogram(TypedDict, total=False):
    """Scores of every scored row (StreamingMetrics.histogram). Without "positive_counts"
    (each bin's rows decided positive) the histogram's caption does not split them by side."""

    edges: list[float]
    counts: list[int]
    positive_counts: list[int]
    neutral_counts: list[int]
    neutral_band: list[float]


class DomainSignal(TypedDict, total=False):
    """How unlike the model's training text the file looks (scoring.domain.DomainSignal)."""

    words: int
    unknown_words: int
    unknown_rate: float | None
    mean_confidence: float | None
    near_half_share: float | None
    unknown_rate_limit: float | None  # None: an adapted model that did not record its own rate
    model_unknown_rate: float | None  # the model's own training text's rate, when recorded
    note: str | None  # the advice shown in the summary, when the file looks out of domain


# ------------------------------------------------------------------------------ sections


class DriverTerm(TypedDict):
    term: str
    weight: float  # mean per-review weight, logit units
    reviews: int  # reviews holding the term


class Drivers(TypedDict):
    """The words that drove the scores (explain.DriverAccumulator.result)."""

    positive: list[DriverTerm]
    negative: list[DriverTerm]
    reviews_explained: int


class TimelineBucket(TypedDict, total=False):
    start: str
    label: str
    reviews: int
    scored: int
    positive: int
    positive_share: float | None
    mean_score: float | None


class UnreadableDate(TypedDict):
    row: int
    value: str


class Timeline(TypedDict, total=False):
    """Sentiment over time (insights.TimelineAccumulator.context)."""

    column: str
    granularity: str | None  # "day" | "week" | "month" | "year"
    date_format: str | None
    day_month_ambiguous: bool
    first: str | None
    last: str | None
    dated: int
    missing: int
    unreadable: int
    unreadable_examples: list[UnreadableDate]
    far: int  # reviews whose date lies far from all the others: left out of the plot
    far_examples: list[str]
    buckets: list[TimelineBucket]


class GroupItem(TypedDict, total=False):
    name: str
    missing: bool  # the rows without a group value
    other: bool  # the long tail merged into one row
    reviews: int
    scored: int
    positive: int
    positive_share: float | None
    ci_low: float | None  # Wilson 95% interval of positive_share
    ci_high: float | None
    mean_score: float | None


class Groups(TypedDict, total=False):
    """Sentiment by group (insights.GroupAccumulator.context)."""

    column: str
    total_groups: int
    shown: int
    other_groups: int
    capped: bool
    items: list[GroupItem]


class RatingValue(TypedDict, total=False):
    rating: float
    label: str
    side: str  # "positive" | "negative" | "neutral"
    reviews: int
    scored: int
    positive_share: float | None
    mean_score: float | None
    q1: float | None
    median: float | None
    q3: float | None


class Ratings(TypedDict, total=False):
    """Scores against star ratings (insights.RatingAccumulator.context)."""

    column: str
    scale: int
    values: list[RatingValue]
    positive: int
    negative: int
    neutral: int
    missing: int
    other_values: int
    compared: int
    agreement: float | None
    high_rating_negative: list[ReportRow]
    low_rating_positive: list[ReportRow]


class Insights(TypedDict):
    """A file's time, group and rating sections (insights.FileInsights.context); None for a
    section whose column the file lacks."""

    timeline: Timeline | None
    groups: Groups | None
    ratings: Ratings | None


# ------------------------------------------------------------------------------ the model


class Calibration(TypedDict, total=False):
    """meta.json's "calibration" (model.calibration.calibration_meta)."""

    method: str
    temperature: float
    fitted_on: str
    n: int
    reason: str
    validation_ece_before: float
    validation_ece_after: float
    validation_bins: list[ReliabilityBin]


class ProvenanceFact(TypedDict):
    label: str
    value: str


class ProvenanceStage(TypedDict):
    key: str
    title: str
    text: str
    facts: list[ProvenanceFact]


class Provenance(TypedDict):
    """How the model was made (provenance.model_provenance)."""

    from_scratch: bool
    headline: str
    stages: list[ProvenanceStage]  # in the order they ran
    # {"x", "x_label", "trace_x", "trace_loss", "loss", "heldout_loss", "heldout_perplexity",
    #  "softmax"} or None (fewer than two points to draw)
    lm_curve: dict[str, Any] | None
    lm_note: str | None  # the numbers, when there is a measurement but no curve


@dataclass(frozen=True)
class ModelSection:
    """The model's part of both reports (model_section.model_section): paths already cut to
    their names unless the report is to show them."""

    name: str
    path: str = ""
    trained_at: str = ""
    data_source: str = ""
    device: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)  # the TrainConfig's settings
    history: Mapping[str, list[float]] = field(default_factory=dict)  # the curves drawn
    curves_note: str | None = None  # what the curves' lines are, when not plain train/val
    best_epoch: int | None = None
    test_metrics: Metrics | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)  # train / validation / test
    train_seconds: float = 0.0
    provenance: Provenance | None = None  # the "How this model was made" block
    calibration: Calibration | None = None
    adapted_from: str | None = None  # the starting model of `train --data`


# ------------------------------------------------------------------------------ the reports


@dataclass(frozen=True)
class FileSummary:
    """The Summary of a score report: one file's (or one ray run's) counts and settings."""

    file: str  # the name shown in the title
    path: str  # the name too, unless --report-paths
    rows: int
    scored: int
    not_scored: int
    not_scored_reasons: Mapping[str, int]
    positive: int
    negative: int
    positive_share: float | None
    threshold: float
    device: str
    seconds: float
    rows_per_second: float
    text_column: str | None
    label_column: str | None = None
    model: str = ""  # the model's name as the CLI shows it (SentimentModel.describe)
    neutral: int = 0
    neutral_share: float | None = None
    neutral_band: tuple[float, float] | None = None
    domain: DomainSignal | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReviewTable:
    """The report's table of reviews: the first rows of the file, or (ray engine) a seeded
    random sample of the run's rows, which the page then says."""

    rows: tuple[ReportRow, ...]
    total: int  # the rows of the file (or run), listed or not
    max_rows: int = DEFAULT_MAX_ROWS
    sampled: bool = False
    sample_seed: int | None = None


@dataclass(frozen=True)
class ScoreReport:
    """Everything a score report shows. Each optional section appears only when it holds data."""

    kind: ClassVar[str] = "score"

    title: str
    generated_at: str  # ISO time with offset
    package_version: str
    model: ModelSection
    summary: FileSummary
    table: ReviewTable
    file_metrics: Metrics | None = None  # None: the file has no labels
    score_histogram: ScoreHistogram | None = None
    highlights: Highlights | None = None
    drivers: Drivers | None = None
    timeline: Timeline | None = None
    groups: Groups | None = None
    ratings: Ratings | None = None


@dataclass(frozen=True)
class TrainReport:
    """Everything a training report shows: the model section under a page header."""

    kind: ClassVar[str] = "train"

    title: str
    generated_at: str
    package_version: str
    model: ModelSection

