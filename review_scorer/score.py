"""score_files: stream review files through the model; every row out, in order, with a status."""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer import __version__
from review_scorer.errors import DeviceError, OutputError, ReviewScorerError
from review_scorer.text import encode_text, length_bucketed_batches, pad_batch

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_EMPTY = "empty text"
STATUS_NO_WORDS = "no words"
OUTPUT_COLUMNS = ("row", "sentiment", "score", "status")
DEVICE_CHOICES = ("auto", "cpu", "gpu")
DEFAULT_BATCH_SIZE = 256
DEFAULT_THRESHOLD = 0.5
REPORT_TEXT_LIMIT = 20000  # characters of one review kept for the report page


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
    metrics: dict[str, Any] | None = None
    seconds: float = 0.0
    text_column: str | None = None
    label_column: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def positive_share(self) -> float | None:
        return self.positive / self.scored if self.scored else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "ok": self.ok,
            "error": self.error,
            "predictions": str(self.predictions_path) if self.predictions_path else None,
            "report": str(self.report_path) if self.report_path else None,
            "rows": self.rows,
            "scored": self.scored,
            "not_scored": sum(self.not_scored.values()),
            "not_scored_reasons": dict(self.not_scored),
            "positive": self.positive,
            "negative": self.negative,
            "positive_share": self.positive_share,
            "metrics": self.metrics,
            "text_column": self.text_column,
            "label_column": self.label_column,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds > 0 else None,
        }


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

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    def to_dict(self) -> dict[str, Any]:
        rows = sum(f.rows for f in self.files)
        scored = sum(f.scored for f in self.files)
        positive = sum(f.positive for f in self.files)
        reasons: Counter[str] = Counter()
        for f in self.files:
            reasons.update(f.not_scored)
        return {
            "files": [f.to_dict() for f in self.files],
            "rows": rows,
            "scored": scored,
            "not_scored": sum(reasons.values()),
            "not_scored_reasons": dict(reasons),
            "positive_share": positive / scored if scored else None,
            "failed_files": len(self.failed),
            "model": {"name": self.model_name, "path": str(self.model_path),
                      "test_accuracy": self.model_test_accuracy},
            "device": self.device,
            "threshold": self.threshold,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(rows / self.seconds, 1) if self.seconds > 0 else None,
        }


def select_device(device: str) -> str:
    """Apply --device before TensorFlow places any op; return a description of what runs."""
    import tensorflow as tf

    if device not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICE_CHOICES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceError(
            "--device gpu: TensorFlow sees no GPU on this machine; install the 'gpu' extra with "
            "NVIDIA drivers present, or use --device auto/cpu"
        )
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow already initialised its devices in this process
            raise DeviceError("--device cpu must be chosen before TensorFlow starts") from None
        gpus = []
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return "GPU: " + ", ".join(names)
    return "CPU"


def output_stems(paths: Sequence[Path]) -> list[str]:
    """Output base names: the input's stem, or its full name when two inputs share a stem
    (reviews.csv and reviews.xlsx), with -2, -3... when even the names collide."""
    stems = [p.stem for p in paths]
    names = [p.stem if stems.count(p.stem) == 1 else p.name for p in paths]
    seen: Counter[str] = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def output_paths(stem: str, out_dir: Path, fmt: str) -> tuple[Path, Path]:
    from review_scorer.outputs import PREDICTION_SUFFIX

    return out_dir / f"{stem}{PREDICTION_SUFFIX[fmt]}", out_dir / f"{stem}.html"


class _Pipeline:
    """Prepares batches ahead of the model (in tf.data's prefetch thread) and reassembles chunks.

    Each chunk is cleaned, vectorised and split into length-sorted batches; the model scores the
    batches in that order, and a chunk is released, in input order again, once all its batches
    are back. Memory holds a few chunks at most, whatever the file size.
    """

    def __init__(self, review_file, bundle, batch_size: int):
        self.review_file = review_file
        self.vocab = bundle.vocab
        self.max_len = bundle.config.max_len
        self.truncating = bundle.config.truncating
        self.batch_size = batch_size
        self.chunks: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()  # the producer runs in tf.data's prefetch thread
        self.error: BaseException | None = None

    def _prepare(self, chunk) -> dict[str, Any]:
        n = len(chunk.rows)
        status = np.full(n, STATUS_OK, dtype=object)
        seqs: list[np.ndarray] = []
        positions = []
        for i, text in enumerate(chunk.texts):
            if text is None or not str(text).strip():
                status[i] = STATUS_EMPTY
                continue
            ids = encode_text(str(text), self.vocab, max_len=self.max_len, truncating=self.truncating)
            if len(ids) == 0:
                status[i] = STATUS_NO_WORDS
                continue
            seqs.append(ids)
            positions.append(i)
        positions_arr = np.asarray(positions, dtype=np.int64)
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        batches = length_bucketed_batches(lengths, self.batch_size)
        return {"chunk": chunk, "status": status, "scores": np.full(n, np.nan, dtype=np.float32),
                "positions": positions_arr, "seqs": seqs, "pending": len(batches),
                "batches": batches}

    def batches(self) -> Iterator[tuple[np.int64, np.ndarray, np.ndarray]]:
        try:
            for number, chunk in enumerate(self.review_file.chunks()):
                state = self._prepare(chunk)
                batches = state.pop("batches")
                with self.lock:
                    self.chunks[number] = state
                for batch in batches:
                    padded = pad_batch([state["seqs"][i] for i in batch])
                    yield np.int64(number), batch.astype(np.int64), padded
        except BaseException as exc:  # surfaced by the consumer with its own type and message
            self.error = exc

    def dataset(self):
        import tensorflow as tf

        spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((None,), tf.int64),
                tf.TensorSpec((None, None), tf.int32))
        return tf.data.Dataset.from_generator(self.batches, output_signature=spec).prefetch(4)

    def record(self, number: int, batch: np.ndarray, scores: np.ndarray) -> None:
        with self.lock:
            state = self.chunks[number]
        state["scores"][state["positions"][batch]] = scores
        state["pending"] -= 1

    def pop_ready(self) -> Iterator[dict[str, Any]]:
        """Chunks whose every batch is scored, oldest first, stopping at the first incomplete one."""
        while True:
            with self.lock:
                if not self.chunks:
                    return
                first = min(self.chunks)
                if self.chunks[first]["pending"] > 0:
                    return
                state = self.chunks.pop(first)
            yield state


def score_files(
    paths: Sequence[str | Path],
    *,
    model_dir: str | Path | None = None,
    out_dir: str | Path = "reports",
    text_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    sheet: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threshold: float = DEFAULT_THRESHOLD,
    fmt: str = "csv",
    device: str = "auto",
    overwrite: bool = False,
    report: bool = True,
    max_report_rows: int | None = None,
    chunk_rows: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> ScoreResult:
    """Score every file; a bad file is recorded as failed and the others are still scored."""
    from review_scorer.artifacts import load_model_dir, resolve_model_dir
    from review_scorer.outputs import ensure_output_dir

    if not 0.0 < threshold < 1.0:
        raise ReviewScorerError("--threshold must be between 0 and 1 (exclusive)")
    if batch_size < 1:
        raise ReviewScorerError("--batch-size must be at least 1")
    started = time.perf_counter()
    device_name = select_device(device)
    bundle = load_model_dir(resolve_model_dir(model_dir))
    out = ensure_output_dir(Path(out_dir))
    from review_scorer.model import compile_inference

    infer = compile_inference(bundle.model)
    results = []
    paths = [Path(p) for p in paths]
    for path, stem in zip(paths, output_stems(paths)):
        results.append(_score_one(
            path, stem, bundle=bundle, infer=infer, out_dir=out, text_column=text_column,
            label_column=label_column, id_column=id_column, sheet=sheet, batch_size=batch_size,
            threshold=threshold, fmt=fmt, overwrite=overwrite, report=report,
            max_report_rows=max_report_rows, chunk_rows=chunk_rows, progress=progress,
            device_name=device_name,
        ))
    test_acc = (bundle.metrics or {}).get("accuracy")
    return ScoreResult(results, bundle.name, bundle.path, test_acc, device_name, threshold,
                       time.perf_counter() - started)


def _score_one(path: Path, stem: str, *, bundle, infer, out_dir: Path, text_column, label_column, id_column,
               sheet, batch_size: int, threshold: float, fmt: str, overwrite: bool, report: bool,
               max_report_rows, chunk_rows: int, progress, device_name: str) -> FileResult:
    from review_scorer.data import open_reviews
    from review_scorer.metrics import HighlightTracker, StreamingMetrics
    from review_scorer.outputs import PredictionWriter
    from review_scorer.report import DEFAULT_MAX_ROWS, write_report

    result = FileResult(path=path, ok=False)
    started = time.perf_counter()
    predictions_path, report_path = output_paths(stem, out_dir, fmt)
    review_file = None
    try:
        if not overwrite:
            for target in (predictions_path, report_path if report else None):
                if target is not None and target.exists():
                    raise OutputError(
                        f"{target} already exists; pass --overwrite to replace it or use --out-dir"
                    )
        review_file = open_reviews(path, text_column=text_column, label_column=label_column,
                                   id_column=id_column, sheet=sheet, chunk_rows=chunk_rows)
        info = review_file.info
        result.text_column, result.label_column = info.text_column, info.label_column
        if info.encoding_fallback:
            result.notes.append(f"not valid UTF-8: read as {info.encoding}")
        if info.text_column_guessed:
            result.notes.append(f"text column '{info.text_column}' chosen by its content")
        rename = {c: f"{c}_original" for c in info.columns if c in OUTPUT_COLUMNS}
        if rename:
            result.notes.append(
                "input columns renamed to keep them: "
                + ", ".join(f"{a} -> {b}" for a, b in rename.items())
            )
        limit = DEFAULT_MAX_ROWS if max_report_rows is None else max_report_rows
        streaming = StreamingMetrics(threshold=threshold)
        highlights = HighlightTracker(k=5, threshold=threshold)
        report_rows: list[dict[str, Any]] = []
        reasons: Counter[str] = Counter()
        pipeline = _Pipeline(review_file, bundle, batch_size)
        with PredictionWriter(predictions_path, fmt, overwrite=overwrite) as writer:
            def flush(state: dict[str, Any]) -> None:
                chunk, status, scores = state["chunk"], state["status"], state["scores"]
                scored = status == STATUS_OK
                sentiment = np.where(scored, np.where(scores >= threshold, "positive", "negative"), "")
                frame = chunk.frame.rename(columns=rename).copy()
                frame["row"] = chunk.rows
                frame["sentiment"] = sentiment
                frame["score"] = np.where(scored, np.round(scores.astype(np.float64), 6), np.nan)
                frame["status"] = status
                writer.write(frame)
                labels = chunk.labels if chunk.labels is not None else np.full(len(scored), -1, np.int8)
                streaming.update(labels, np.nan_to_num(scores, nan=0.0), scored)
                ids = (chunk.frame[info.id_column].tolist() if info.id_column
                       else [None] * len(chunk.rows))
                texts = ["" if t is None else str(t) for t in chunk.texts]
                pos = np.flatnonzero(scored)
                highlights.update(chunk.rows[pos], scores[pos], [texts[i] for i in pos],
                                  [ids[i] for i in pos], labels[pos])
                reasons.update(str(s) for s in status[~scored])
                result.rows += len(scored)
                result.scored += int(scored.sum())
                result.positive += int((scores[scored] >= threshold).sum())
                room = limit - len(report_rows)
                for i in range(min(room, len(scored))):
                    report_rows.append(_report_row(chunk.rows[i], ids[i], texts[i], sentiment[i],
                                                   scores[i] if scored[i] else None, status[i],
                                                   labels[i]))
                if progress is not None:
                    progress(len(scored))

            for number, batch, ids in pipeline.dataset():
                pipeline.record(int(number), batch.numpy(), infer(ids).numpy())
                for state in pipeline.pop_ready():
                    flush(state)
            if pipeline.error is not None:
                raise pipeline.error
            for state in pipeline.pop_ready():
                flush(state)
            writer.commit()
            result.notes.extend(writer.notes)
        result.predictions_path = predictions_path
        result.negative = result.scored - result.positive
        result.not_scored = dict(reasons)
        result.metrics = streaming.result(threshold) if info.label_column else None
        result.seconds = time.perf_counter() - started
        if report:
            context = score_report_context(
                result, bundle=bundle, device_name=device_name, threshold=threshold,
                histogram=streaming.histogram(), highlights=highlights.result(),
                rows=report_rows, max_rows=limit,
            )
            write_report(context, report_path, overwrite=overwrite)
            result.report_path = report_path
        result.ok = True
    except ReviewScorerError as exc:
        result.error = str(exc)
        result.exit_code = exc.exit_code
        if result.predictions_path is not None:
            _remove_partial(result.predictions_path)
            result.predictions_path = None
    finally:
        if review_file is not None:
            review_file.close()  # openpyxl's read-only workbook holds the file open
    result.seconds = time.perf_counter() - started
    return result


def _remove_partial(path: Path | None) -> None:
    # The predictions file was committed but its report failed: keep outputs consistent.
    if path is not None and path.exists():
        os.unlink(path)


def _report_row(row, id_, text, sentiment, score, status, label) -> dict[str, Any]:
    return {
        "row": int(row),
        "id": None if id_ is None or id_ == "" else str(id_),
        "text": text[:REPORT_TEXT_LIMIT],
        "sentiment": str(sentiment),
        "score": None if score is None else round(float(score), 4),
        "status": str(status),
        "label": {1: "positive", 0: "negative"}.get(int(label)),
    }


def score_report_context(result: FileResult, *, bundle, device_name: str, threshold: float,
                         histogram: dict, highlights: dict, rows: list, max_rows: int) -> dict:
    from review_scorer.artifacts import model_context

    rows_per_second = result.rows / result.seconds if result.seconds > 0 else 0.0
    return {
        "kind": "score",
        "title": f"{result.path.name} — sentiment report",
        "generated_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "package_version": __version__,
        "model": model_context(name=bundle.name, path=str(bundle.path), meta=bundle.meta,
                               config=bundle.config, history=bundle.history,
                               metrics=bundle.metrics),
        "summary": {
            "file": result.path.name,
            "path": str(result.path),
            "rows": result.rows,
            "scored": result.scored,
            "not_scored": result.rows - result.scored,
            "not_scored_reasons": dict(result.not_scored),
            "positive": result.positive,
            "negative": result.negative,
            "positive_share": result.positive_share,
            "threshold": threshold,
            "device": device_name,
            "seconds": round(result.seconds, 3),
            "rows_per_second": round(rows_per_second, 1),
            "text_column": result.text_column,
            "label_column": result.label_column,
            "notes": list(result.notes),
        },
        "file_metrics": result.metrics,
        "score_histogram": histogram,
        "highlights": highlights,
        "rows": rows,
        "rows_total": result.rows,
        "max_rows": max_rows,
    }

