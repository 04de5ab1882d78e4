"""score_files: stream review files through the model; every row out, in order, with a status.

Scoring is a generator of scored chunks (``iter_scored_chunks``); what consumes them are sinks:
the predictions writer (``PredictionSink``) and the report accumulator (``ReportAccumulator``).
A file's predictions and report are published together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import InputError, OutputError, ReviewScorerError
from review_scorer.metrics import DecisionRule
from review_scorer.model.sentiment import (
    STATUS_EMPTY,
    STATUS_NO_WORDS,
    STATUS_OK,
    SentimentModel,
    select_device,
)
from review_scorer.report.publish import publish_report
from review_scorer.scoring.domain import DomainReference
from review_scorer.scoring.kernel import (
    OUTPUT_COLUMNS,
    STATUS_FORMULA,
    TOP_WORDS_COLUMN,
    RowCounts,
    ScoredChunk,
    add_counts,
    file_columns,
    file_error,
    file_notes,
    open_review_file,
    predict_prepared,
    scored_chunk,
    unexpected,
)
from review_scorer.scoring.results import (
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MAX_REPORT_ROWS,
    FORMAT_CHOICES,
    FileResult,
    ScoreOptions,
    ScoreResult,
    json_safe,
)
from review_scorer.scoring.score_report import build_score_report
from review_scorer.scoring.sinks import PredictionSink, ReportAccumulator

log = logging.getLogger(__name__)

# The run's types and sinks live in results, kernel and sinks; these names stay importable here.
__all__ = ["DEFAULT_CHUNK_ROWS", "DEFAULT_MAX_REPORT_ROWS", "FORMAT_CHOICES", "OUTPUT_COLUMNS",
           "STATUS_EMPTY", "STATUS_FORMULA", "STATUS_NO_WORDS", "STATUS_OK", "TOP_WORDS_COLUMN",
           "FileResult", "PredictionSink", "ReportAccumulator", "ScoreOptions", "ScoreResult",
           "ScoredChunk", "build_score_report", "iter_scored_chunks", "json_safe", "score_files"]


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
        yield scored_chunk(chunk, status, scores, rule, words=words[0] if words else (0, 0))


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
        return scored_chunk(chunk, status, scores, rule, attributions, words=words)

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
        rest = predict_prepared(model, prepared, batch_size=batch_size)
        status = np.concatenate([status, prepared.status])
        scores = np.concatenate([scores, rest])
    return status, scores, head + [None] * (len(texts) - limit), words


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
    name, path, metrics, adapted_from = _model_summary(model, model_path)
    return ScoreResult([plan.result for plan in plans], name, path, metrics.get("accuracy"),
                       device_name, options.threshold, time.perf_counter() - started, notes,
                       neutral_band=options.neutral_band, model_adapted_from=adapted_from,
                       model_accuracy_kind=metrics.get("kind"))


def _model_summary(model: SentimentModel | None, model_path: Path | None
                   ) -> tuple[str, Path, dict, str | None]:
    """(name, path, its own metrics (metrics.json), starting model if adapted) of the run's
    model, loaded or only resolved."""
    if model is not None:
        return model.name, model.path, dict(model.metrics or {}), model.adapted_from
    import json

    from review_scorer.model.artifacts import METRICS_FILE, read_meta

    meta = read_meta(model_path)
    try:
        metrics = json.loads((model_path / METRICS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = None
    adaptation = meta.get("adaptation")
    adapted_from = adaptation.get("start_model") if isinstance(adaptation, dict) else None
    return (str(meta.get("name") or model_path.name), model_path,
            metrics if isinstance(metrics, dict) else {}, adapted_from)


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
        except Exception as exc:  # one file's failure, expected or not, must not end the run
            if unexpected(exc):
                log.debug("unexpected failure on %s", self.path, exc_info=True)
            self.result.error, self.result.exit_code = file_error(
                self.path, exc, hint=" (run with --verbose for details)")
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
        review_file = open_review_file(self.path, self.options)
        for name, value in file_columns(review_file.info).items():
            setattr(self.result, name, value)
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
                report.update(chunk)
                self._count(chunk)
            temps = [(sink.finish(), self.predictions_path)]
            self._collect_notes(review_file, sink)
            self._finish_counts(report)
            if o.report:  # the predictions and the report, as one step
                publish_report(report.report(self.result, model=self.model,
                                             device_name=self.device_name),
                               self.report_path, overwrite=o.overwrite, together=temps)
            else:
                publish_together(temps, overwrite=o.overwrite)
        self.result.predictions_path = self.predictions_path
        self.result.report_path = self.report_path if o.report else None

    def _collect_notes(self, review_file, sink: PredictionSink) -> None:
        """The reader's decisions (complete once every row was read), then the writer's."""
        for note in file_notes(review_file) + sink.notes:
            if note not in self.result.notes:
                self.result.notes.append(note)

    def _count(self, chunk: ScoredChunk) -> None:
        add_counts(self.result, RowCounts.of(chunk))
        if self.bytes_read is not None:  # first, so a progress bar knows its total at once
            self.bytes_read.chunk(self.path, chunk)
        if self.progress is not None:
            self.progress(len(chunk))

    def _finish_counts(self, report: ReportAccumulator) -> None:
        self.result.seconds = time.perf_counter() - self.started
        self.result.metrics = report.metrics()
        self.result.domain = report.domain.to_dict(DomainReference.from_meta(self.model.meta))
