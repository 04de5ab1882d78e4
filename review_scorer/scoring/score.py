"""score_files: stream review files through the model; every row out, in order, with a status.

Scoring is a generator of scored chunks (``iter_scored_chunks``); what consumes them are sinks:
the predictions writer (``PredictionSink``) and the report accumulator (``ReportAccumulator``).
A file's predictions and report are published together or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import InputError, OutputError, ReviewScorerError, UsageError
from review_scorer.metrics import (
    DECIDED_NEUTRAL,
    DECIDED_POSITIVE,
    DecisionRule,
    check_neutral_band,
    sentiment_names,
)
from review_scorer.model.sentiment import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_THRESHOLD,
    DEVICE_CHOICES,
    STATUS_EMPTY,
    STATUS_NO_WORDS,
    STATUS_OK,
    SentimentModel,
    rounded_scores,
    select_device,
)

log = logging.getLogger(__name__)

__all__ = ["STATUS_EMPTY", "STATUS_FORMULA", "STATUS_NO_WORDS", "STATUS_OK", "FileResult",
           "ReportAccumulator", "ScoreOptions", "ScoreResult", "ScoredChunk", "iter_scored_chunks",
           "score_files"]

# A spreadsheet formula whose value was never computed (files written by scripts store none).
STATUS_FORMULA = "formula without value"
OUTPUT_COLUMNS = ("row", "sentiment", "score", "status")
TOP_WORDS_COLUMN = "top_words"
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
class ScoredChunk:
    """Consecutive input rows with their statuses and scores, in input order."""

    frame: Any  # pandas DataFrame: every original column (str values), index 0..n-1
    rows: np.ndarray  # int64 1-based record numbers in the source file
    texts: list[str | None]
    labels: np.ndarray | None  # int8 1 / 0 / -1 (none, unknown or neutral)
    ratings: np.ndarray | None  # float64 star ratings when a rating column is used
    status: np.ndarray  # object array of status strings
    scores: np.ndarray  # float32, NaN where not scored
    # bool: the row is positive (metrics.DecisionRule, decided once here); False where not scored.
    # Every sink reads this decision rather than comparing scores with the threshold again.
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
                      "test_accuracy": self.model_test_accuracy},
            "device": self.device, "threshold": self.threshold,
            "neutral_band": list(self.neutral_band) if self.neutral_band else None,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(rows / self.seconds, 1) if self.seconds > 0 else None,
        })


# ------------------------------------------------------------------------------ output names


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Output base names, unique within the run (case-insensitively, for macOS/Windows disks).

    The input's stem, or its full name when two inputs share a stem (reviews.csv and
    reviews.xlsx); inputs whose names still collide get -2, -3... skipping any name that another
    input has on its own (so dup/a/reviews.csv, dup/b/reviews.csv and reviews.csv-2.csv never
    share outputs).
    """
    stems = Counter(p.stem.casefold() for p in paths)
    natural = [p.stem if stems[p.stem.casefold()] == 1 else p.name for p in paths]
    counts = Counter(n.casefold() for n in natural)
    taken = {n.casefold() for n in natural if counts[n.casefold()] == 1}
    out = []
    for name in natural:
        candidate, k = name, 1
        if counts[name.casefold()] > 1:
            while candidate.casefold() in taken:
                k += 1
                candidate = f"{name}-{k}"
            taken.add(candidate.casefold())
        out.append(candidate)
    return out


def output_paths(stem: str, out_dir: Path, fmt: str) -> tuple[Path, Path]:
    from review_scorer.io.predictions import PREDICTION_SUFFIX

    return out_dir / f"{stem}{PREDICTION_SUFFIX[fmt]}", out_dir / f"{stem}.html"


# ------------------------------------------------------------------------------ the core


def iter_scored_chunks(review_file: Any, model: SentimentModel, options: ScoreOptions, *,
                       explainer: Any = None, explain_rows: int | None = None
                       ) -> Iterator[ScoredChunk]:
    """Every row of an opened review file, scored, in input order, a chunk at a time.

    With an explainer, rows also get word attributions: every row when explain_rows is None,
    else the file's first explain_rows rows (the report table). Explained rows take their scores
    from the explainer, which computes them anyway, so they are not scored twice; the rest go
    through the model's prefetching stream. The explaining network runs one chunk ahead in a
    worker thread, so it overlaps what the caller does with the chunk before (_explained_ahead).
    """
    rule = options.rule
    chunks = iter(review_file.chunks())
    if explainer is not None and explain_rows != 0:
        def heads() -> Iterator[tuple[Any, int]]:
            seen = 0
            for chunk in chunks:
                yield chunk, len(chunk) if explain_rows is None else min(explain_rows - seen, len(chunk))
                seen += len(chunk)
                if explain_rows is not None and seen >= explain_rows:
                    return  # the next chunk stays unread, for the stream below

        yield from _explained_ahead(heads(), explainer, model, options.batch_size, rule)
    stream = model.predict_stream(chunks, lambda c: c.texts, batch_size=options.batch_size,
                                  with_words=True)
    for chunk, status, scores, *words in stream:  # (words, unknown words) unless replaced
        yield _scored_chunk(chunk, status, scores, rule, words=words[0] if words else (0, 0))


def _explained_ahead(heads: Iterator[tuple[Any, int]], explainer: Any, model: SentimentModel,
                     batch_size: int, rule: DecisionRule) -> Iterator[ScoredChunk]:
    """Each (chunk, rows to explain) as a scored, explained chunk, in order.

    The network runs in a worker thread, one chunk ahead: while it explains chunk k + 1, this
    thread hands chunk k to the caller (the report's aggregation, the writer) and then reads and
    cleans chunk k + 2. TensorFlow releases the GIL, so the two overlap; Python work in both
    threads would only take turns, which is why all of it stays in this one.
    """
    from concurrent.futures import ThreadPoolExecutor

    def finish(chunk: Any, limit: int, future: Any) -> ScoredChunk:
        status, scores, attributions, words = _explain_and_score(model, chunk.texts, limit,
                                                                 batch_size, future.result())
        return _scored_chunk(chunk, status, scores, rule, attributions, words=words)

    pending = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-scorer-network")
    try:
        for chunk, limit in heads:
            future = pool.submit(explainer.explain_prepared, explainer.prepare(chunk.texts[:limit]))
            if pending is not None:
                yield finish(*pending)
            pending = (chunk, limit, future)
        if pending is not None:
            yield finish(*pending)
    finally:  # on an error or Ctrl-C, the chunk queued behind the failing one is dropped
        pool.shutdown(wait=True, cancel_futures=True)


def _explain_and_score(model: SentimentModel, texts: list, limit: int, batch_size: int,
                       head: list) -> tuple[np.ndarray, np.ndarray, list, tuple[int, int]]:
    """(status, scores, attributions, (words, unknown words)) of a chunk whose first `limit`
    texts are explained (`head`: their attributions); the rest are scored."""
    from review_scorer.explain.attribution import attribution_scores
    from review_scorer.scoring.domain import count_words

    status = np.array([STATUS_EMPTY if not isinstance(t, str) or not t.strip() else
                       STATUS_NO_WORDS if a is None else STATUS_OK
                       for t, a in zip(texts[:limit], head)], dtype=object)
    scores = np.asarray(attribution_scores(head), dtype=np.float32)
    words = count_words([a.ids for a in head if a is not None])
    if limit < len(texts):
        prepared = model.prepare(texts[limit:])
        words = tuple(a + b for a, b in zip(words, count_words(prepared.sequences)))
        rest = np.full(len(prepared.status), np.nan, dtype=np.float32)
        if prepared.sequences:
            rest[prepared.positions] = model.predict_ids(prepared.sequences, batch_size=batch_size)
        status = np.concatenate([status, prepared.status])
        scores = np.concatenate([scores, rest])
    return status, scores, head + [None] * (len(texts) - limit), words


def _scored_chunk(chunk: Any, status: np.ndarray, scores: np.ndarray, rule: DecisionRule,
                  attributions: list | None = None, *, words: tuple[int, int] = (0, 0)
                  ) -> ScoredChunk:
    formula = getattr(chunk, "formula", None)
    if formula is not None and np.any(formula):
        # The cell holds a formula whose result was never stored: say so, don't call it empty.
        status = np.where(np.asarray(formula, dtype=bool) & (status != STATUS_OK),
                          STATUS_FORMULA, status).astype(object)
    decided = rule.decide(scores, status == STATUS_OK)
    return ScoredChunk(frame=chunk.frame, rows=chunk.rows, texts=chunk.texts, labels=chunk.labels,
                       ratings=getattr(chunk, "ratings", None), status=status, scores=scores,
                       positive=decided == DECIDED_POSITIVE, neutral=decided == DECIDED_NEUTRAL,
                       attributions=attributions, values=getattr(chunk, "values", None),
                       words=int(words[0]), unknown_words=int(words[1]))


def score_files(paths: Sequence[str | Path], *, model: SentimentModel | None = None,
                model_dir: str | Path | None = None, out_dir: str | Path = "reports",
                options: ScoreOptions | None = None,
                progress: Callable[[int], None] | None = None,
                byte_progress: Callable[[int, int | None], None] | None = None,
                **settings: Any) -> ScoreResult:
    """Score every file; a file that fails is recorded as failed and the others are still scored.

    `settings` are ScoreOptions fields (batch_size=..., fmt=...) applied over `options`. Every
    input and output target is checked before the model is loaded: a missing input fails at
    once, and an output that is also an input of the run refuses the whole run (OutputError)
    before anything is written. `progress` gets the rows of each scored chunk; `byte_progress`
    (done, total) an estimate of the input bytes read, total None when it cannot be known.
    """
    from review_scorer.io.leftovers import clean_leftovers
    from review_scorer.io.publish import ensure_output_dir

    options = (options or ScoreOptions()).replace(**settings) if settings else (options or ScoreOptions())
    started, since = time.perf_counter(), time.time()
    notes: list[str] = []
    model_path: Path | None = None
    if model is None:
        from review_scorer.model.artifacts import read_meta, resolve_model_dir

        model_path = resolve_model_dir(model_dir, notes=notes)
        read_meta(model_path)  # a missing or broken model fails here, before TensorFlow loads
    paths = [Path(p) for p in paths]
    out = ensure_output_dir(Path(out_dir))
    plans = [_FilePlan(path, *output_paths(stem, out, options.fmt))
             for path, stem in zip(paths, output_stems(paths))]
    targets = [t for plan in plans for t in plan.targets(options)]
    refuse_inputs_as_outputs(paths, targets)
    # both outputs' names, even without a report: a killed run may have set one aside
    notes.extend(clean_leftovers([t for plan in plans for t in (plan.predictions_path,
                                                                plan.report_path)], since=since))
    pending = [plan for plan in plans if plan.precheck(options)]
    device_name, explainer = "not used (no file could be read)", None
    if pending:
        device_name = select_device(options.device)
        if model is None:
            model = SentimentModel.load(model_path)
        if options.explain or (options.report and options.max_report_rows > 0):
            from review_scorer.explain.attribution import Explainer

            explainer = Explainer(model, batch_size=options.batch_size)
    bytes_done = _BytesRead(pending, byte_progress)
    for plan in pending:
        plan.result = _FileScorer(plan, model=model, options=options, progress=progress,
                                  device_name=device_name, explainer=explainer,
                                  bytes_read=bytes_done).run()
        bytes_done.file_done(plan)
    name, path, accuracy, adapted_from = _model_summary(model, model_path)
    return ScoreResult([plan.result for plan in plans], name, path, accuracy, device_name,
                       options.threshold, time.perf_counter() - started, notes,
                       neutral_band=options.neutral_band, model_adapted_from=adapted_from)


def _model_summary(model: SentimentModel | None, model_path: Path | None
                   ) -> tuple[str, Path, float | None, str | None]:
    """(name, path, test accuracy, starting model if adapted) of the run's model, loaded or only
    resolved."""
    if model is not None:
        return model.name, model.path, (model.metrics or {}).get("accuracy"), model.adapted_from
    import json

    from review_scorer.model.artifacts import METRICS_FILE, read_meta

    meta = read_meta(model_path)
    try:
        metrics = json.loads((model_path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
    adaptation = meta.get("adaptation")
    adapted_from = adaptation.get("start_model") if isinstance(adaptation, dict) else None
    return str(meta.get("name") or model_path.name), model_path, accuracy, adapted_from


def refuse_inputs_as_outputs(inputs: Sequence[Path], targets: Sequence[Path]) -> None:
    """OutputError when an output of the run would replace one of its inputs (the same resolved
    path, or the same file through a link): checked before anything is written."""
    resolved = {Path(p).resolve(): Path(p) for p in inputs}
    identities = {}
    for p in inputs:
        with contextlib.suppress(OSError):
            st = Path(p).stat()
            identities[(st.st_dev, st.st_ino)] = Path(p)
    for target in targets:
        clash = resolved.get(Path(target).resolve())
        if clash is None:
            with contextlib.suppress(OSError):
                st = Path(target).stat()
                clash = identities.get((st.st_dev, st.st_ino))
        if clash is not None:
            raise OutputError(f"{target} is also an input of this run ({clash}); choose another "
                              "--out-dir (nothing was written)")


def check_input_file(path: Path) -> None:
    """The cheap checks of an input before any work: it exists and is a regular file."""
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass a review file")
    if not path.is_file():
        raise InputError(f"{path} is not a regular file (a pipe, socket or device); save the "
                         "reviews to a file and pass that")


class _FilePlan:
    """One input file of the run: its output paths, its result, and the checks made up front."""

    def __init__(self, path: Path, predictions_path: Path, report_path: Path):
        self.path, self.predictions_path, self.report_path = path, predictions_path, report_path
        self.result = FileResult(path=path, ok=False)

    def targets(self, options: ScoreOptions) -> list[Path]:
        return [self.predictions_path] + ([self.report_path] if options.report else [])

    def precheck(self, options: ScoreOptions) -> bool:
        """False (and the result records why) when the file cannot be scored at all."""
        from review_scorer.io.publish import check_output_target

        try:
            check_input_file(self.path)
            for target in self.targets(options):
                check_output_target(target, options.overwrite)
        except ReviewScorerError as exc:
            self.result.error, self.result.exit_code = str(exc), exc.exit_code
            return False
        return True


class _BytesRead:
    """An estimate of the input bytes read so far, for a percentage and an ETA: the text of the
    rows read (delimited text, JSON lines) or their share of the rows (Parquet); files whose
    rows cannot be sized (Excel workbooks) leave the total unknown."""

    def __init__(self, plans: Sequence[_FilePlan], callback):
        self.callback, self.done, self.current = callback, 0, 0
        self.total: int | None = None
        self.sizes: dict[Path, tuple[int, Any]] = {}
        if callback is None:
            return
        for plan in plans:
            size, rows = _input_size(plan.path)
            if size is None:
                return
            self.sizes[plan.path] = (size, rows)
        self.total = sum(size for size, _ in self.sizes.values())

    def chunk(self, path: Path, chunk: ScoredChunk) -> None:
        if self.callback is None:
            return
        size, rows = self.sizes.get(path, (None, None))
        if size is not None:
            share = (len(chunk) / rows * size) if rows else _text_bytes(chunk.frame)
            self.current = min(self.current + int(share), max(size - 1, 0))
        self.callback(self.done + self.current, self.total)

    def file_done(self, plan: _FilePlan) -> None:
        self.done += self.sizes.get(plan.path, (0, None))[0]
        self.current = 0
        if self.callback is not None:
            self.callback(self.done, self.total)


def _input_size(path: Path) -> tuple[int | None, int | None]:
    """(bytes, rows when the format says so cheaply); (None, None) when not measurable."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError:
        return None, None
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq

            return size, pq.ParquetFile(path).metadata.num_rows
        except Exception:
            return None, None
    if suffix in (".xlsx", ".xlsm"):
        return None, None
    return size, None


def _text_bytes(frame: Any) -> int:
    """About the bytes a chunk's rows took in a delimited or JSON-lines file."""
    if frame is None or not len(frame):
        return 0
    cells = sum(int(frame[c].astype(object).str.len().fillna(0).sum()) for c in frame.columns)
    return cells + len(frame) * (len(frame.columns) + 1)


class _FileScorer:
    """Scores one file: open it, stream its chunks into the sinks, publish the outputs."""

    def __init__(self, plan: _FilePlan, *, model: SentimentModel, options: ScoreOptions, progress,
                 device_name: str, explainer: Any = None, bytes_read: _BytesRead | None = None):
        self.path, self.model, self.options, self.explainer = plan.path, model, options, explainer
        self.progress, self.device_name, self.bytes_read = progress, device_name, bytes_read
        self.predictions_path, self.report_path = plan.predictions_path, plan.report_path
        self.result = plan.result
        self.started = time.perf_counter()

    def run(self) -> FileResult:
        review_file = None
        try:
            self._check_targets()
            review_file = self._open()
            self._score(review_file)
            self.result.ok = True
        except ReviewScorerError as exc:
            self.result.error, self.result.exit_code = str(exc), exc.exit_code
        except (MemoryError, RecursionError) as exc:
            self.result.error, self.result.exit_code = f"{self.path}: {type(exc).__name__}", 1
        except Exception as exc:  # one file's unexpected failure must not end the whole run
            log.debug("unexpected failure on %s", self.path, exc_info=True)
            detail = (str(exc).strip().splitlines() or [""])[0][:300]
            self.result.error = (f"{self.path}: unexpected {type(exc).__name__}: {detail} "
                                 "(run with --verbose for details)")
            self.result.exit_code = 1
        finally:
            if review_file is not None:
                review_file.close()  # openpyxl's read-only workbook holds the file open
            self.result.seconds = time.perf_counter() - self.started
        if not self.result.ok:
            self.result.predictions_path = self.result.report_path = None
        return self.result

    def _check_targets(self) -> None:
        from review_scorer.io.publish import check_output_target

        targets = [self.predictions_path] + ([self.report_path] if self.options.report else [])
        for target in targets:
            check_output_target(target, self.options.overwrite)

    def _open(self):
        from review_scorer.io import open_reviews

        o = self.options
        extra = {k: v for k, v in (("rating_column", o.rating_column), ("date_column", o.date_column),
                                   ("group_column", o.group_column)) if v is not None}
        review_file = open_reviews(self.path, text_column=o.text_column, label_column=o.label_column,
                                   id_column=o.id_column, sheet=o.sheet, chunk_rows=o.chunk_rows,
                                   **extra)
        info = review_file.info
        self.result.text_column, self.result.label_column = info.text_column, info.label_column
        if getattr(info, "label_from_rating", False):
            self.result.label_column, self.result.labels_from_rating = info.rating_column, True
        self.result.sheet = info.sheet
        return review_file

    def _score(self, review_file) -> None:
        from review_scorer.io.publish import publish_together

        info, o = review_file.info, self.options
        sink = PredictionSink(self.predictions_path, info.columns, o)
        report = ReportAccumulator(info, o if o.report else o.replace(max_report_rows=0),
                                   explainer=self.explainer)
        explain_rows = None if o.explain else (o.max_report_rows if o.report else 0)
        with sink:
            for chunk in iter_scored_chunks(review_file, self.model, o, explainer=self.explainer,
                                            explain_rows=explain_rows):
                sink.write(chunk)
                if report is not None:
                    report.update(chunk)
                self._count(chunk)
            temps = [(sink.finish(), self.predictions_path)]
            self._collect_notes(review_file, sink)
            self._finish_counts(report)
            if o.report:
                context = report.context(self.result, model=self.model, device_name=self.device_name)
                temps.append((report.render_to_temp(context, self.report_path), self.report_path))
            publish_together(temps, overwrite=o.overwrite)
        self.result.predictions_path = self.predictions_path
        self.result.report_path = self.report_path if o.report else None

    def _collect_notes(self, review_file, sink: PredictionSink) -> None:
        """The reader's decisions (complete once every row was read), then the writer's."""
        info = review_file.info
        notes = list(review_file.notes)
        if info.encoding_fallback and not any("UTF-8" in n for n in notes):
            notes.insert(0, f"not valid UTF-8: read as {info.encoding}")
        if info.text_column_guessed and not any(info.text_column in n for n in notes):
            notes.append(f"text column '{info.text_column}' chosen by its content")
        for note in notes + sink.notes:
            if note not in self.result.notes:
                self.result.notes.append(note)

    def _count(self, chunk: ScoredChunk) -> None:
        scored = chunk.scored
        self.result.rows += len(chunk)
        self.result.scored += int(scored.sum())
        self.result.positive += int(np.count_nonzero(chunk.positive))
        self.result.neutral += int(np.count_nonzero(chunk.neutral))
        for status, n in Counter(chunk.status[~scored].tolist()).items():
            self.result.not_scored[str(status)] = self.result.not_scored.get(str(status), 0) + n
        if self.bytes_read is not None:  # first, so a progress bar knows its total at once
            self.bytes_read.chunk(self.path, chunk)
        if self.progress is not None:
            self.progress(len(chunk))

    def _finish_counts(self, report: ReportAccumulator) -> None:
        self.result.negative = self.result.scored - self.result.positive - self.result.neutral
        self.result.seconds = time.perf_counter() - self.started
        self.result.metrics = report.metrics()
        self.result.domain = report.domain.to_dict()


# ------------------------------------------------------------------------------ sinks


class PredictionSink:
    """Writes scored chunks to the predictions file (a hidden temp file until published)."""

    def __init__(self, path: Path, columns: Sequence[str], options: ScoreOptions):
        from review_scorer.io.predictions import PredictionWriter

        self.rename = _keep_clashing_columns(columns, (*OUTPUT_COLUMNS, TOP_WORDS_COLUMN))
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
        notes = list(self.writer.notes)
        if self.rename:
            notes.insert(0, "input columns renamed to keep them: "
                         + ", ".join(f"{a} -> {b}" for a, b in self.rename.items()))
        return notes

    def write(self, chunk: ScoredChunk) -> None:
        typed = chunk.values is not None and self.writer.fmt in ("jsonl", "parquet")
        frame = (chunk.values if typed else chunk.frame).rename(columns=self.rename).copy()
        frame["row"] = chunk.rows
        frame["sentiment"] = sentiment_names(chunk.positive, chunk.scored, chunk.neutral)
        frame["score"] = rounded_scores(chunk.scores, chunk.status)
        frame["status"] = chunk.status
        if self.options.explain:
            frame[TOP_WORDS_COLUMN] = _top_words_column(chunk)
        self.writer.write(frame)

    def finish(self) -> Path:
        """Close the temp file (with a header even when the input had no rows); return it."""
        if self.writer.rows_written == 0:
            import pandas as pd

            self.writer.write(pd.DataFrame({c: pd.Series(dtype=object) for c in self.columns}))
        return self.writer.finish()


def _keep_clashing_columns(columns: Sequence[str], ours: Sequence[str]) -> dict[str, str]:
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


def _top_words_column(chunk: ScoredChunk) -> list[str]:
    from review_scorer.explain.drivers import format_top_terms

    attributions = chunk.attributions or [None] * len(chunk)
    return [format_top_terms(a) if a is not None else "" for a in attributions]


class ReportAccumulator:
    """Consumes scored chunks and keeps what the report needs: exact counts, streaming metrics,
    the score histogram, highlights, time/group/rating statistics, the words that drove the
    scores, and the first rows for the table."""

    def __init__(self, info: Any, options: ScoreOptions, *, explainer: Any = None,
                 text_limit: int = 20000):
        from review_scorer.explain.drivers import DriverAccumulator
        from review_scorer.metrics import HighlightTracker, StreamingMetrics
        from review_scorer.report.insights import FileInsights
        from review_scorer.scoring.domain import DomainSignal

        self.info, self.options, self.text_limit = info, options, text_limit
        self.explainer = explainer
        self.streaming = StreamingMetrics(threshold=options.threshold,
                                          neutral_band=options.neutral_band)
        self.highlights = HighlightTracker(k=5, threshold=options.threshold)
        self.domain = DomainSignal()
        self.insights = FileInsights(info.date_column, info.group_column, info.rating_column,
                                     info.rating_scale, options.threshold, id_column=info.id_column)
        self.drivers = DriverAccumulator()
        self.rows: list[dict[str, Any]] = []
        self._cleaned: list[str | None] = []  # per row: its cleaned text when already known

    def update(self, chunk: ScoredChunk) -> None:
        scored = chunk.scored
        labels = chunk.labels if chunk.labels is not None else np.full(len(chunk), -1, np.int8)
        self.streaming.update(labels, np.nan_to_num(chunk.scores, nan=0.0), scored, chunk.positive,
                              chunk.neutral)
        self.domain.update(chunk.scores, scored, words=chunk.words,
                           unknown_words=chunk.unknown_words)
        ids = self._ids(chunk)
        texts = ["" if t is None else str(t) for t in chunk.texts]
        pos = np.flatnonzero(scored)
        self.highlights.update(chunk.rows[pos], chunk.scores[pos], [texts[i] for i in pos],
                               [ids[i] for i in pos], labels[pos], positive=chunk.positive[pos],
                               neutral=chunk.neutral[pos])
        self.insights.update(chunk)
        if chunk.attributions is not None:
            self.drivers.update(a for a in chunk.attributions if a is not None)
        room = self.options.max_report_rows - len(self.rows)
        sentiment = sentiment_names(chunk.positive, scored, chunk.neutral)
        for i in range(min(max(room, 0), len(chunk))):
            self.rows.append(self._row(chunk, i, ids[i], texts[i], sentiment[i], labels[i]))
            self._cleaned.append(self._known_cleaned(chunk, i, texts[i]))

    def _known_cleaned(self, chunk: ScoredChunk, i: int, text: str) -> str | None:
        """The row's cleaned text if its attribution read all of it and the table keeps the
        whole text (then the driver filter needs no second cleaning)."""
        from review_scorer.explain.drivers import cleaned_if_whole

        if chunk.attributions is None or len(text) > self.text_limit:
            return None
        return cleaned_if_whole(chunk.attributions[i])

    def _ids(self, chunk: ScoredChunk) -> list:
        if self.info.id_column:
            return chunk.frame[self.info.id_column].tolist()
        return [None] * len(chunk)

    def _row(self, chunk: ScoredChunk, i: int, id_: Any, text: str, sentiment: str,
             label: int) -> dict[str, Any]:
        from review_scorer.explain.drivers import row_spans

        score = chunk.scores[i] if chunk.status[i] == STATUS_OK else None
        row = {
            "row": int(chunk.rows[i]),
            "id": None if id_ is None or id_ == "" else str(id_),
            "text": text[: self.text_limit],
            "sentiment": str(sentiment),
            "score": None if score is None else round(float(score), 4),
            "status": str(chunk.status[i]),
            "label": {1: "positive", 0: "negative"}.get(int(label)),
        }
        if self.info.group_column:
            row["group"] = str(chunk.frame[self.info.group_column].iloc[i])
        if chunk.ratings is not None and np.isfinite(chunk.ratings[i]):
            row["rating"] = float(chunk.ratings[i])
        if chunk.attributions is not None and chunk.attributions[i] is not None:
            row["spans"] = row_spans(chunk.attributions[i])
        return row

    def metrics(self) -> dict[str, Any] | None:
        labeled = self.info.label_column or getattr(self.info, "label_from_rating", False)
        return self.streaming.result(self.options.threshold) if labeled else None

    def _highlights(self) -> dict:
        """The highlight rows, with their words highlighted (a handful of reviews: cheap)."""
        from review_scorer.explain.drivers import row_spans

        highlights = self.highlights.result()
        if self.explainer is None:
            return highlights
        for rows in highlights.values():
            for row, attribution in zip(rows, self.explainer.explain([r["text"] for r in rows])):
                if attribution is not None:
                    row["spans"] = row_spans(attribution)
        return highlights

    def context(self, result: FileResult, *, model: SentimentModel, device_name: str) -> dict:
        from review_scorer.explain.drivers import TermMatcher

        context = score_report_context(result, model=model, device_name=device_name,
                                       threshold=self.options.threshold,
                                       neutral_band=self.options.neutral_band,
                                       histogram=self.streaming.histogram(),
                                       highlights=self._highlights(), rows=self.rows,
                                       max_rows=self.options.max_report_rows,
                                       full_paths=self.options.report_paths)
        context.update(self.insights.context())
        if self.drivers.reviews:
            context["drivers"] = self.drivers.result(k=15)
            terms = [t["term"] for t in context["drivers"]["positive"] + context["drivers"]["negative"]]
            matcher = TermMatcher(terms)
            for row, cleaned in zip(context["rows"], self._cleaned):
                row["terms"] = matcher(row["text"], cleaned=cleaned)
        return context

    @staticmethod
    def render_to_temp(context: dict, report_path: Path) -> Path:
        from review_scorer.io.publish import write_temp_beside
        from review_scorer.report.render import build_report_html

        return write_temp_beside(report_path, build_report_html(context).encode("utf-8", "replace"))


def score_report_context(result: FileResult, *, model: SentimentModel, device_name: str,
                         threshold: float, histogram: dict, highlights: dict, rows: list,
                         max_rows: int, full_paths: bool = False,
                         neutral_band: tuple[float, float] | None = None) -> dict:
    """The plain-data context of one file's HTML report.

    The report is meant to be mailed: unless full_paths, it names files and folders (the input,
    the model, the training data) by their names only, not by where they sit on this machine.
    """
    import datetime as _dt

    from review_scorer import __version__
    from review_scorer.model.artifacts import model_context, shorten_paths

    rows_per_second = result.rows / result.seconds if result.seconds > 0 else 0.0
    summary = {
        "file": result.path.name, "path": str(result.path) if full_paths else result.path.name,
        "rows": result.rows,
        "scored": result.scored, "not_scored": result.rows - result.scored,
        "not_scored_reasons": dict(result.not_scored), "positive": result.positive,
        "negative": result.negative, "positive_share": result.positive_share,
        "neutral": result.neutral, "neutral_share": result.neutral_share,
        "neutral_band": list(neutral_band) if neutral_band else None,
        "domain": result.domain, "model": model.describe(),
        "threshold": threshold, "device": device_name, "seconds": round(result.seconds, 3),
        "rows_per_second": round(rows_per_second, 1), "text_column": result.text_column,
        "label_column": result.label_column,
        "notes": list(result.notes) if full_paths else [shorten_paths(n) for n in result.notes],
    }
    return {
        "kind": "score",
        "title": f"{result.path.name} — sentiment report",
        "generated_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "package_version": __version__,
        "model": model_context(name=model.name, path=str(model.path), meta=model.meta,
                               config=model.config, history=model.history, metrics=model.metrics,
                               full_paths=full_paths),
        "summary": summary,
        "file_metrics": result.metrics,
        "score_histogram": histogram,
        "highlights": highlights,
        "rows": rows,
        "rows_total": result.rows,
        "max_rows": max_rows,
    }
