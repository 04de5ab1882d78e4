"""The ray engine: read and encode files as CPU tasks, score in model actors, write Parquet parts."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import logging
import os
import pickle
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from review_scorer.engines import EngineError
from review_scorer.errors import InputError, OutputError, ReviewScorerError, UsageError
from review_scorer.metrics import HighlightTracker, RowSample, StreamingMetrics
from review_scorer.score import (
    OUTPUT_COLUMNS,
    STATUS_FORMULA,
    TOP_WORDS_COLUMN,
    FileResult,
    ScoreOptions,
    ScoreResult,
    score_report_context,
)
from review_scorer.sentiment import STATUS_OK, SentimentModel, rounded_scores, sentiment_labels

log = logging.getLogger(__name__)

SOURCE_COLUMN = "source_file"
PART_FORMATS = ("parquet", "csv")
PART_SUFFIX = {"parquet": ".parquet", "csv": ".csv"}
PREDICTIONS_DIR_SUFFIX = ".predictions"
# A directory given as input contributes the files with these endings (a lone file of any
# supported kind can still be named directly).
DIRECTORY_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".xlsx", ".xlsm")
HIGHLIGHTS_PER_KIND = 5
REPORT_TEXT_LIMIT = 20000
CONNECT_TIMEOUT_S = 5.0
_GLOB_CHARS = re.compile(r"[*?\[]")

# Each row of the Ray dataset is one chunk of one input file (or a marker for a file's end or
# failure): "data" holds the pickled chunk, which keeps the dataset's schema the same whatever
# columns the input files have.
KIND_CHUNK, KIND_END, KIND_ERROR = "chunk", "end", "error"


@dataclass
class RayScoreResult(ScoreResult):
    """A ray-engine run: the per-file results plus where the parts and the one report went."""

    predictions_dir: Path | None = None
    report_path: Path | None = None
    part_format: str = "parquet"
    actors: int = 0
    address: str | None = None
    startup_seconds: float = 0.0
    metrics: dict[str, Any] | None = None
    nodes: int = 0  # cluster nodes that ran a model actor or wrote a part
    actor_processes: int = 0  # distinct actor processes that scored (more than actors: restarts)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(engine="ray", predictions_dir=str(self.predictions_dir) if self.predictions_dir
                   else None, report=str(self.report_path) if self.report_path else None,
                   part_format=self.part_format, actors=self.actors, address=self.address,
                   startup_seconds=round(self.startup_seconds, 3), metrics=self.metrics,
                   nodes=self.nodes, actor_processes=self.actor_processes)
        return out


# ------------------------------------------------------------------------------ inputs


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files named by INPUT arguments (files, globs, directories), sorted within each argument,
    each once. Remote URIs (s3://, gs://, ...) are listed through pyarrow's filesystems."""
    out: list[str] = []
    for raw in inputs:
        text = str(raw)
        found = _expand_remote(text) if "://" in text else _expand_local(text)
        out.extend(f for f in found if f not in out)
    if not out:
        raise InputError("no input files given; pass a file, a glob or a folder of review files")
    return out


def _expand_local(text: str) -> list[str]:
    path = Path(text).expanduser()
    if _GLOB_CHARS.search(text) and not path.exists():
        matches = sorted(p for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not matches:
            raise InputError(f"{text}: no files match this pattern; check the path and quoting")
        return matches
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _listable(p.name))
        if not files:
            raise InputError(f"{path}: no review files in this folder (looked for "
                             f"{', '.join(DIRECTORY_SUFFIXES)})")
        return files
    return [str(path)]  # a missing file fails in its read task with the reader's own message


def _listable(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(DIRECTORY_SUFFIXES)


def _expand_remote(uri: str) -> list[str]:
    from pyarrow import fs as pafs

    scheme = uri.split("://", 1)[0] + "://"
    pattern = uri if _GLOB_CHARS.search(uri) else None
    base = uri.split("*", 1)[0].rsplit("/", 1)[0] if pattern else uri
    try:
        filesystem, root = pafs.FileSystem.from_uri(base)
        info = filesystem.get_file_info(root)
        if info.type == pafs.FileType.File and pattern is None:
            return [uri]
        entries = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    except (OSError, ValueError) as exc:
        raise InputError(f"{uri}: cannot list ({_one_line(exc)}); check the address and "
                         f"credentials") from exc
    files = sorted(scheme + e.path for e in entries if e.type == pafs.FileType.File)
    if pattern:
        files = [f for f in files if fnmatch.fnmatch(f, pattern)]
    else:
        files = [f for f in files if _listable(f.rsplit("/", 1)[-1])]
    if not files:
        raise InputError(f"{uri}: no review files found there")
    return files


def run_name(inputs: Sequence[str | os.PathLike[str]]) -> str:
    """The base name of a run's outputs: the input's name, made safe for a file name."""
    first = str(inputs[0]).rstrip("/\\") if inputs else "reviews"
    last = re.split(r"[/\\]", first)[-1]
    stem = Path(last).stem if "." in last.lstrip(".") else last
    name = re.sub(r"[^\w.-]+", "_", stem).strip("_.") or "reviews"
    return name if len(inputs) <= 1 else f"{name}-and-{len(inputs) - 1}-more"


def _one_line(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())


# ------------------------------------------------------------------------------ stage 1: read


def _open_reviews(path: str, options: ScoreOptions):
    try:
        from review_scorer.io import open_reviews
    except ImportError:  # before the reader package existed
        from review_scorer.data import open_reviews
    o = options
    extra = {k: v for k, v in (("rating_column", o.rating_column), ("date_column", o.date_column),
                               ("group_column", o.group_column)) if v is not None}
    return open_reviews(path, text_column=o.text_column, label_column=o.label_column,
                        id_column=o.id_column, sheet=o.sheet, chunk_rows=o.chunk_rows, **extra)


@contextlib.contextmanager
def _local_copy(path: str) -> Iterator[str]:
    """A local path for the reader: the file itself, or a temporary copy of a remote one."""
    if "://" not in path:
        yield path
        return
    from pyarrow import fs as pafs

    suffix = Path(path.rsplit("/", 1)[-1]).suffix
    handle, local = tempfile.mkstemp(suffix=suffix, prefix="review-scorer-")
    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
        with os.fdopen(handle, "wb") as out, filesystem.open_input_stream(inner) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        yield local
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_one_line(exc)})") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(local)


def _file_notes(info: Any) -> list[str]:
    notes = []
    if info.encoding_fallback:
        notes.append(f"not valid UTF-8: read as {info.encoding}")
    if info.text_column_guessed:
        notes.append(f"text column '{info.text_column}' chosen by its content")
    notes.extend(getattr(info, "notes", ()) or ())
    return notes


def _row(kind: str, file_index: int, first_row: int, data: Any) -> dict[str, np.ndarray]:
    return {"kind": np.array([kind], dtype=object),
            "file": np.array([file_index], dtype=np.int64),
            "first_row": np.array([first_row], dtype=np.int64),
            "data": np.array([pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)], dtype=object)}


def read_files(batch: dict[str, np.ndarray], *, paths: Sequence[str], options: ScoreOptions
               ) -> Iterator[dict[str, np.ndarray]]:
    """Ray task: read each file of the batch with the package's own reader, one chunk per row.

    After the chunks comes an "end" row with the file's layout and row count, or an "error" row
    with the same one-line message and exit code the local engine records for that file.
    """
    for file_index in batch["file"].tolist():
        path = paths[int(file_index)]
        try:
            yield from _read_one(int(file_index), path, options)
        except ReviewScorerError as exc:
            yield _row(KIND_ERROR, file_index, -1, {"error": str(exc), "exit_code": exc.exit_code})
        except (MemoryError, RecursionError) as exc:
            yield _row(KIND_ERROR, file_index, -1, {"error": f"{path}: {type(exc).__name__}",
                                                    "exit_code": 1})
        except Exception as exc:  # one file's unexpected failure must not end the whole run
            detail = (str(exc).strip().splitlines() or [""])[0][:300]
            yield _row(KIND_ERROR, file_index, -1, {
                "error": f"{path}: unexpected {type(exc).__name__}: {detail}", "exit_code": 1})


def _read_one(file_index: int, path: str, options: ScoreOptions) -> Iterator[dict[str, np.ndarray]]:
    with _local_copy(path) as local, contextlib.closing(_open_reviews(local, options)) as review_file:
        info = review_file.info
        rename = {c: f"{c}_original" for c in info.columns
                  if c in (SOURCE_COLUMN, *OUTPUT_COLUMNS, TOP_WORDS_COLUMN)}
        total = 0
        for chunk in review_file.chunks():
            ids = chunk.frame[info.id_column].tolist() if info.id_column else None
            total += len(chunk.rows)
            yield _row(KIND_CHUNK, file_index, int(chunk.rows[0]), {
                "source": path, "frame": chunk.frame, "rows": chunk.rows, "texts": chunk.texts,
                "labels": chunk.labels, "ids": ids, "rename": rename,
                "formula": getattr(chunk, "formula", None)})
        notes = _file_notes(info) + list(getattr(review_file, "notes", ()) or ())
        if rename:
            notes.append("input columns renamed to keep them: "
                         + ", ".join(f"{a} -> {b}" for a, b in rename.items()))
        yield _row(KIND_END, file_index, total + 1, {
            "rows": total, "text_column": info.text_column, "label_column": info.label_column,
            "id_column": info.id_column, "sheet": getattr(info, "sheet", None), "notes": notes,
            "part_text_column": rename.get(info.text_column, info.text_column),
            "part_id_column": rename.get(info.id_column, info.id_column) if info.id_column else None})


# ------------------------------------------------------------------------------ stage 2: encode


def encode_chunks(batch: dict[str, np.ndarray], *, text_model: SentimentModel
                  ) -> dict[str, np.ndarray]:
    """Ray task: clean and encode each chunk's texts with the model's own text path (no TensorFlow)."""
    out = []
    for kind, data in zip(batch["kind"], batch["data"]):
        if kind == KIND_CHUNK:
            chunk = pickle.loads(data)
            prepared = text_model.prepare(chunk["texts"])
            chunk.update(status=prepared.status, positions=prepared.positions,
                         sequences=prepared.sequences)
            data = pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
        out.append(data)
    return {**batch, "data": np.array(out, dtype=object)}


# ------------------------------------------------------------------------------ stage 3: score


class ChunkScorer:
    """Ray actor: holds one SentimentModel (loaded once) and scores the encoded chunks it is given."""

    def __init__(self, model_ref: list, *, device: str, batch_size: int):
        # Before TensorFlow is imported in this worker: keep its C++ log lines out of the logs.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from review_scorer.sentiment import select_device

        self.device = select_device(device)
        self._dir = tempfile.mkdtemp(prefix="review-scorer-model-")
        for name, content in ray.get(model_ref[0]).items():
            Path(self._dir, name).write_bytes(content)
        self.model = SentimentModel.load(self._dir)
        self.batch_size = batch_size
        self.pid = os.getpid()
        self.node = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for kind, data in zip(batch["kind"], batch["data"]):
            if kind == KIND_CHUNK:
                chunk = pickle.loads(data)
                scores = np.full(len(chunk["rows"]), np.nan, dtype=np.float32)
                if chunk["sequences"]:
                    scores[chunk["positions"]] = self.model.predict_ids(
                        chunk["sequences"], batch_size=self.batch_size)
                del chunk["sequences"], chunk["positions"]
                chunk.update(scores=scores, device=self.device, actor_pid=self.pid,
                             actor_node=self.node)
                data = pickle.dumps(chunk, protocol=pickle.HIGHEST_PROTOCOL)
            out.append(data)
        return {**batch, "data": np.array(out, dtype=object)}

    def __del__(self):
        shutil.rmtree(getattr(self, "_dir", ""), ignore_errors=True)


# ------------------------------------------------------------------------------ stage 4: write


@dataclass(frozen=True)
class WriteSettings:
    """What the write tasks need to know: where parts go and how the report samples rows."""

    parts_dir: str
    part_format: str
    threshold: float
    sample_rows: int
    seed: int


def part_name(file_index: int, first_row: int, part_format: str) -> str:
    """The part file of one chunk: fixed by (file, first row), so a retried chunk overwrites its
    own part instead of adding a second copy."""
    return f"part-{file_index:06d}-{first_row:012d}{PART_SUFFIX[part_format]}"


def _chunk_status(chunk: dict[str, Any]) -> np.ndarray:
    status = chunk["status"]
    formula = chunk.get("formula")
    if formula is not None and np.any(formula):
        # As the local engine: a formula whose value was never stored is not an empty text.
        status = np.where(np.asarray(formula, dtype=bool) & (status != STATUS_OK),
                          STATUS_FORMULA, status).astype(object)
    return status


def _prediction_frame(chunk: dict[str, Any], status: np.ndarray, threshold: float):
    frame = chunk["frame"].rename(columns=chunk["rename"]).copy()
    frame.insert(0, SOURCE_COLUMN, chunk["source"])
    frame["row"] = chunk["rows"]
    frame["sentiment"] = sentiment_labels(chunk["scores"], status, threshold)
    frame["score"] = rounded_scores(chunk["scores"], status)
    frame["status"] = status
    return frame.reset_index(drop=True)


def _write_part(frame: Any, target: Path, part_format: str) -> None:
    """Write one part through a hidden temp file and rename it into place (atomic, idempotent)."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        if part_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), temp)
        else:
            frame.to_csv(temp, index=False, lineterminator="\r\n", encoding="utf-8",
                         errors="replace")
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _summarise(file_index: int, chunk: dict[str, Any], status: np.ndarray,
               settings: WriteSettings) -> dict[str, Any]:
    """The chunk's share of the report: counts, metrics, highlights and sample candidates."""
    scores, rows = chunk["scores"], chunk["rows"]
    scored = status == STATUS_OK
    labels = chunk["labels"] if chunk["labels"] is not None else np.full(len(rows), -1, np.int8)
    streaming = StreamingMetrics(threshold=settings.threshold)
    streaming.update(labels, np.nan_to_num(scores, nan=0.0), scored)
    highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
    pos = np.flatnonzero(scored)
    texts = ["" if t is None else str(t) for t in chunk["texts"]]
    ids = chunk["ids"]
    highlights.update(rows[pos], scores[pos], [texts[i] for i in pos],
                      None if ids is None else [ids[i] for i in pos], labels[pos],
                      source=chunk["source"], source_rank=file_index)
    sample = RowSample(settings.sample_rows, seed=settings.seed)
    sample.update(rows, source_rank=file_index, labels=labels)
    return {"rows": len(rows), "scored": int(scored.sum()),
            "positive": streaming.n_positive, "reasons": Counter(status[~scored].tolist()),
            "streaming": streaming, "highlights": highlights, "sample": sample,
            "device": chunk.get("device"), "actor_pid": chunk.get("actor_pid"),
            "nodes": {chunk.get("actor_node"), ray.get_runtime_context().get_node_id()}}


def write_chunks(batch: dict[str, np.ndarray], *, settings: WriteSettings) -> dict[str, np.ndarray]:
    """Ray task: write each scored chunk as its own part file; pass on only its small summary."""
    out = []
    for kind, file_index, first_row, data in zip(batch["kind"], batch["file"], batch["first_row"],
                                                 batch["data"]):
        if kind == KIND_CHUNK:
            chunk = pickle.loads(data)
            status = _chunk_status(chunk)
            frame = _prediction_frame(chunk, status, settings.threshold)
            target = Path(settings.parts_dir) / part_name(int(file_index), int(first_row),
                                                          settings.part_format)
            _write_part(frame, target, settings.part_format)
            data = pickle.dumps(_summarise(int(file_index), chunk, status, settings),
                                protocol=pickle.HIGHEST_PROTOCOL)
        out.append(data)
    return {**batch, "data": np.array(out, dtype=object)}


# ------------------------------------------------------------------------------ the model


def load_model_payload(model_path: str | Path | None, notes: list[str]
                       ) -> tuple[dict[str, bytes], SentimentModel]:
    """The model directory's files (sent to every actor, so nodes need no copy of it) and a
    TensorFlow-free SentimentModel for encoding and the report. Checked as `score` checks it."""
    import json

    from review_scorer import artifacts
    from review_scorer.config import TrainConfig
    from review_scorer.download import sha256_file
    from review_scorer.errors import ArtifactError
    from review_scorer.text import Vocabulary

    model_dir = artifacts.resolve_model_dir(model_path, notes=notes)
    meta = artifacts.read_meta(model_dir)
    recorded = meta.get("files") or {}
    for name in artifacts.CHECKED_FILES:
        path = model_dir / name
        if not path.is_file():
            raise ArtifactError(f"{model_dir}: {name} is missing; retrain the model")
        if recorded.get(name) != sha256_file(path):
            raise ArtifactError(f"{path}: checksum does not match {artifacts.META_FILE} (the file "
                                "was changed or corrupted); retrain the model")
    files = {p.name: p.read_bytes() for p in sorted(model_dir.iterdir())
             if p.is_file() and not p.name.startswith(".") and p.name != artifacts.REPORT_FILE}

    def read(name: str) -> Any:
        return json.loads(files[name].decode("utf-8"))

    config = TrainConfig.from_dict(read(artifacts.CONFIG_FILE),
                                   source=str(model_dir / artifacts.CONFIG_FILE))
    vocab = Vocabulary.load(model_dir / artifacts.VOCAB_FILE)
    model = SentimentModel(None, vocab, config, meta=meta, history=read(artifacts.HISTORY_FILE),
                           metrics=read(artifacts.METRICS_FILE), path=model_dir,
                           name=str(meta.get("name") or model_dir.name))
    return files, model


# ------------------------------------------------------------------------------ the cluster


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors run and what each one holds."""

    actors: int
    cpus: float
    gpus: float


def plan_actors(resources: dict[str, float], *, actors: int | None, device: str,
                cpus_per_task: float) -> ActorPlan:
    """One actor per GPU when the cluster has GPUs, else one per 2 CPUs; `actors` overrides.

    On CPUs the actors leave room for a reader (half a task's share, held for a whole file)
    and one more task, or a reader would hold the last CPU while waiting for encoders that
    could never start.
    """
    from review_scorer.errors import DeviceError

    gpus = 0.0 if device == "cpu" else float(resources.get("GPU", 0.0))
    cpus = float(resources.get("CPU", 1.0))
    if device == "gpu" and gpus < 1:
        raise DeviceError("--device gpu: the Ray cluster has no GPU; add GPU nodes or use "
                          "--device auto/cpu")
    if actors is not None and actors < 1:
        raise UsageError("--actors must be at least 1")
    if gpus >= 1:
        count = actors or int(gpus)
        return ActorPlan(count, 1.0 if cpus >= count + 1.5 * cpus_per_task else 0.5,
                         min(1.0, int(gpus) / count))
    count = actors or max(1, int(cpus // 2))
    spare = cpus - 1.5 * cpus_per_task
    per_actor = 1.0 if spare >= count else max(0.01, int(100 * spare / count) / 100)
    return ActorPlan(count, per_actor, 0.0)


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes of retries, when nothing listens at host:port."""
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {address!r}: expected HOST:PORT, for example 10.0.0.5:6379, "
                         "or 'auto' for the cluster this machine belongs to")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise EngineError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or _one_line(exc)}); "
            "start it with 'ray start --head' on that machine or check --address"
        ) from None


@contextlib.contextmanager
def ray_session(address: str | None, *, num_cpus: int | None = None,
                object_store_memory: int | None = None) -> Iterator[bool]:
    """Join the cluster at `address`, reuse this process's Ray, or start a quiet local one.

    Yields whether a new connection was made; that connection is closed on the way out (a
    local instance started here is stopped with it).
    """
    if address is None and ray.is_initialized():
        yield False
        return
    if address not in (None, "auto"):
        _check_reachable(address)
    kwargs: dict[str, Any] = {"address": address} if address else {
        "num_cpus": num_cpus, "include_dashboard": False, "object_store_memory": object_store_memory}
    try:
        with _quiet_ray_core():
            ray.init(log_to_driver=False, logging_level=logging.ERROR, **kwargs)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError here
        raise EngineError(f"cannot start or join Ray{f' at {address}' if address else ''} "
                          f"({_one_line(exc)[:300]})") from None
    try:
        yield True
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_ray_core() -> Iterator[None]:
    """Ray's C++ core prints an ERROR line to the driver's stderr for every Ray Data actor pool
    (its actors are restartable and take object-store arguments, ray-project/ray#53727): keep
    the core's lines below FATAL out, unless the user set RAY_BACKEND_LOG_LEVEL."""
    if "RAY_BACKEND_LOG_LEVEL" in os.environ:
        yield
        return
    os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    # The core announces that level on stderr as it starts: hide stderr for that moment only
    # (the processes Ray starts keep their own log files under its session folder).
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)


@contextlib.contextmanager
def _quiet_ray_data_logs() -> Iterator[None]:
    """Ray Data logs its plan, progress and timings at INFO/WARNING; the user sees our summary."""
    logger = logging.getLogger("ray.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _quiet_data_context() -> None:
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.verbose_stats_logs = False
    # Keep each chunk its own block so the chunks of one big file spread over the workers.
    context.target_max_block_size = 1 << 20


# ------------------------------------------------------------------------------ the driver


class _FileState:
    """One input file on the driver: its chunks' summaries folded in as they arrive."""

    def __init__(self, index: int, path: str, settings: WriteSettings):
        self.index, self.path = index, path
        self.result = FileResult(path=Path(path), ok=False)
        self.chunks: dict[int, int] = {}  # first row -> rows, for the completeness check
        self.end: dict[str, Any] | None = None
        self.streaming = StreamingMetrics(threshold=settings.threshold)
        self.highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.failed = False

    def add_chunk(self, first_row: int, summary: dict[str, Any]) -> bool:
        """Fold in one chunk; False for a chunk already counted (a retried task's copy)."""
        if self.failed or first_row in self.chunks:
            return False
        self.chunks[first_row] = summary["rows"]
        r = self.result
        r.rows += summary["rows"]
        r.scored += summary["scored"]
        r.positive += summary["positive"]
        for status, n in summary["reasons"].items():
            r.not_scored[str(status)] = r.not_scored.get(str(status), 0) + int(n)
        self.streaming.merge(summary["streaming"])
        self.highlights.merge(summary["highlights"])
        self.sample.merge(summary["sample"])
        return True

    def fail(self, error: str, exit_code: int) -> None:
        self.failed = True
        self.result.error, self.result.exit_code = error, exit_code

    def complete(self) -> bool:
        """True once the end marker came and the chunks cover rows 1..N exactly once."""
        if self.end is None or self.failed or self.result.rows != self.end["rows"]:
            return False
        expected = 1
        for first in sorted(self.chunks):
            if first != expected:
                return False
            expected += self.chunks[first]
        return expected == self.end["rows"] + 1

    def finish(self, parts_dir: Path) -> None:
        r, end = self.result, self.end or {}
        r.ok = True
        r.text_column, r.label_column = end.get("text_column"), end.get("label_column")
        r.sheet = end.get("sheet")
        r.notes.extend(end.get("notes") or [])
        r.negative = r.scored - r.positive
        r.metrics = self.streaming.result() if r.label_column else None
        r.predictions_path = parts_dir


class _Collector:
    """Reduces the stream of chunk summaries into per-file results and the run's report parts."""

    def __init__(self, files: Sequence[str], settings: WriteSettings, parts_dir: Path,
                 progress: Callable[[int], None] | None):
        self.states = [_FileState(i, p, settings) for i, p in enumerate(files)]
        self.settings, self.parts_dir, self.progress = settings, parts_dir, progress
        self.streaming = StreamingMetrics(threshold=settings.threshold)
        self.highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.devices: Counter[str] = Counter()
        self.actor_pids: set[int] = set()
        self.nodes: set[str] = set()

    def add(self, kind: str, file_index: int, first_row: int, data: bytes) -> None:
        state = self.states[file_index]
        payload = pickle.loads(data)
        if kind == KIND_ERROR:
            state.fail(payload["error"], int(payload["exit_code"]))
        elif kind == KIND_END:
            state.end = payload
        elif state.add_chunk(first_row, payload):
            self.devices[str(payload.get("device"))] += payload["rows"]
            if payload.get("actor_pid") is not None:
                self.actor_pids.add(int(payload["actor_pid"]))
            self.nodes.update(n for n in payload.get("nodes", ()) if n)
            if self.progress is not None:
                self.progress(payload["rows"])
        if kind != KIND_ERROR and state.complete() and not state.result.ok:
            self._fold(state)

    def _fold(self, state: _FileState) -> None:
        state.finish(self.parts_dir)
        self.streaming.merge(state.streaming)
        self.highlights.merge(state.highlights)
        self.sample.merge(state.sample)
        # What the file's accumulators held now lives in the run's; keep only its counts.
        state.streaming = state.highlights = state.sample = None  # type: ignore[assignment]

    def close(self) -> None:
        """After the last summary: a file neither finished nor failed lost rows (never expected)."""
        for state in self.states:
            if not state.result.ok and not state.failed:
                state.fail(f"{state.path}: the cluster returned {state.result.rows} rows of this "
                           "file but not all of them; run it again", 1)
            if state.failed:
                _remove_parts(self.parts_dir, state.index)


def _remove_parts(parts_dir: Path, file_index: int) -> None:
    # A file that failed part-way leaves no predictions, as with the local engine.
    for part in parts_dir.glob(f"part-{file_index:06d}-*"):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()


# ------------------------------------------------------------------------------ the report


def _read_part(path: Path, part_format: str, columns: list[str]):
    if part_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path, columns=columns).to_pandas()
    import pandas as pd

    return pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False)


def sampled_rows(collector: _Collector, settings: WriteSettings) -> list[dict[str, Any]]:
    """The report table's rows: the run's seeded sample, read back from the written parts."""
    wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for rank, row, label in collector.sample.rows():
        firsts = sorted(collector.states[rank].chunks)
        first = firsts[int(np.searchsorted(firsts, row, side="right")) - 1]
        wanted.setdefault((rank, first), []).append((row, label))
    out = []
    for (rank, first), rows in sorted(wanted.items()):
        end = collector.states[rank].end or {}
        text_col, id_col = end["part_text_column"], end.get("part_id_column")
        columns = [text_col, "row", "sentiment", "score", "status"] + ([id_col] if id_col else [])
        part = collector.parts_dir / part_name(rank, first, settings.part_format)
        frame = _read_part(part, settings.part_format, list(dict.fromkeys(columns)))
        frame = frame.set_index(frame["row"].astype(np.int64))
        for row, label in rows:
            out.append(_report_row(frame.loc[row], collector.states[rank].path, text_col, id_col,
                                   label))
    return out


def _report_row(values: Any, source: str, text_col: str, id_col: str | None, label: int
                ) -> dict[str, Any]:
    score = values["score"]
    score = None if values["status"] != STATUS_OK or score in ("", None) else float(score)
    ident = values[id_col] if id_col else None
    text = values[text_col]
    return {
        "row": int(values["row"]),
        "id": None if ident is None or ident == "" else str(ident),
        "text": ("" if text is None else str(text))[:REPORT_TEXT_LIMIT],
        "sentiment": str(values["sentiment"] or ""),
        "score": None if score is None or not np.isfinite(score) else round(score, 4),
        "status": str(values["status"]),
        "label": {1: "positive", 0: "negative"}.get(int(label)),
        SOURCE_COLUMN: source,
    }


def _run_summary(name: str, inputs: Sequence[str], collector: _Collector, seconds: float,
                 notes: list[str]) -> FileResult:
    """The whole run as one FileResult-shaped summary, for the report's header and counts."""
    done = [s.result for s in collector.states if s.result.ok]
    total = FileResult(path=Path(str(inputs[0]) if len(inputs) == 1 else name), ok=True)
    for r in done:
        total.rows += r.rows
        total.scored += r.scored
        total.positive += r.positive
        for status, n in r.not_scored.items():
            total.not_scored[status] = total.not_scored.get(status, 0) + n
    total.negative = total.scored - total.positive
    total.seconds = seconds
    total.text_column = ", ".join(dict.fromkeys(r.text_column for r in done if r.text_column))
    total.label_column = ", ".join(dict.fromkeys(r.label_column for r in done if r.label_column)) or None
    total.metrics = collector.streaming.result() if total.label_column else None
    total.notes = notes
    return total


def build_report_context(summary: FileResult, collector: _Collector, *, model: SentimentModel,
                         device_name: str, settings: WriteSettings) -> dict[str, Any]:
    """The report context of a ray run: exact counts, metrics, histogram and highlights merged
    from every partition; the table a seeded sample, which the page says."""
    rows = sampled_rows(collector, settings)
    summary.notes.append(
        f"The review table shows a random sample of {len(rows):,} of {summary.rows:,} rows "
        f"(seed {settings.seed}); counts, metrics, the histogram and the highlights cover every "
        "row, and the predictions folder holds them all.")
    context = score_report_context(summary, model=model, device_name=device_name,
                                   threshold=settings.threshold,
                                   histogram=collector.streaming.histogram(),
                                   highlights=collector.highlights.result(), rows=rows,
                                   max_rows=settings.sample_rows)
    context["rows_sampled"] = True
    context["sample_seed"] = settings.seed
    context["engine"] = "ray"
    return context


def _publish_report(context: dict[str, Any], report_path: Path, overwrite: bool) -> None:
    from review_scorer.outputs import publish_together, write_temp_beside
    from review_scorer.report import build_report_html

    temp = write_temp_beside(report_path, build_report_html(context).encode("utf-8", "replace"))
    publish_together([(temp, report_path)], overwrite=overwrite)


# ------------------------------------------------------------------------------ the entry point


def score_with_ray(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    model_path: str | Path | None = None,
    out_dir: str | Path = "reports",
    options: ScoreOptions | None = None,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_task: float = 0.5,
    num_cpus: int | None = None,
    part_format: str = "parquet",
    name: str | None = None,
    seed: int = 0,
    object_store_memory: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> RayScoreResult:
    """Score every input file on Ray: CPU tasks read and encode, model actors score, and each
    chunk becomes a part file under OUT_DIR/NAME.predictions/ with `source_file` and `row`.

    Without `address` a local Ray instance is started (and stopped); with one, the driver joins
    that cluster. A file that fails is recorded as failed (its parts removed) and the others are
    still scored. One report, OUT_DIR/NAME.html, covers the run. Raises EngineError when the
    cluster cannot be reached or fails.
    """
    options = options or ScoreOptions()
    if options.explain:
        raise UsageError("--explain is not available with --engine ray; use the local engine")
    if part_format not in PART_FORMATS:
        raise UsageError(f"ray parts are written as {' or '.join(PART_FORMATS)}, not {part_format!r}")
    started = time.perf_counter()
    files = expand_inputs(inputs)
    notes: list[str] = []
    model_files, text_model = load_model_payload(model_path, notes)
    name = name or run_name(inputs)
    parts_dir, report_path = _prepare_outputs(Path(out_dir), name, options)
    settings = WriteSettings(str(parts_dir), part_format, options.threshold,
                             options.max_report_rows if options.report else 0, seed)
    collector = _Collector(files, settings, parts_dir, progress)
    try:
        with ray_session(address, num_cpus=num_cpus, object_store_memory=object_store_memory):
            startup = time.perf_counter() - started
            plan = plan_actors(ray.cluster_resources(), actors=actors, device=options.device,
                               cpus_per_task=cpus_per_task)
            model_ref = ray.put(model_files)
            dataset = _build_dataset(files, options, text_model, model_ref, plan, settings,
                                     cpus_per_task)
            with _quiet_ray_data_logs():
                _drain(dataset, collector)
            del model_ref
    except BaseException:
        shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    collector.close()
    device = ", ".join(collector.devices) or "none"
    device_name = f"{device}, {plan.actors} Ray actor{'s' if plan.actors != 1 else ''}"
    seconds = time.perf_counter() - started
    summary = _run_summary(name, [str(i) for i in inputs], collector, seconds, list(notes))
    published = None
    if options.report and summary.ok and any(s.result.ok for s in collector.states):
        context = build_report_context(summary, collector, model=text_model,
                                       device_name=device_name, settings=settings)
        _publish_report(context, report_path, options.overwrite)
        published = report_path
    return RayScoreResult(
        files=[s.result for s in collector.states], model_name=text_model.name,
        model_path=text_model.path, model_test_accuracy=(text_model.metrics or {}).get("accuracy"),
        device=device_name, threshold=options.threshold, seconds=time.perf_counter() - started,
        notes=notes, predictions_dir=parts_dir, report_path=published, part_format=part_format,
        actors=plan.actors, address=address, startup_seconds=startup, metrics=summary.metrics,
        nodes=len(collector.nodes), actor_processes=len(collector.actor_pids))


def _prepare_outputs(out_dir: Path, name: str, options: ScoreOptions) -> tuple[Path, Path]:
    """Refuse to mix with an earlier run's parts unless overwriting; then clear those parts."""
    from review_scorer.outputs import check_output_target, ensure_output_dir

    out = ensure_output_dir(out_dir)
    parts_dir, report_path = out / f"{name}{PREDICTIONS_DIR_SUFFIX}", out / f"{name}.html"
    if options.report:
        check_output_target(report_path, options.overwrite)
    if parts_dir.exists() and not parts_dir.is_dir():
        raise OutputError(f"{parts_dir} exists and is not a folder; remove it or use --out-dir")
    old = sorted(parts_dir.glob("part-*")) if parts_dir.is_dir() else []
    if old and not options.overwrite:
        raise OutputError(f"{parts_dir} already holds predictions; pass --overwrite to replace "
                          "them or use --out-dir")
    for part in old:
        part.unlink()
    parts_dir.mkdir(parents=True, exist_ok=True)
    return parts_dir, report_path


def _build_dataset(files: Sequence[str], options: ScoreOptions, text_model: SentimentModel,
                   model_ref: Any, plan: ActorPlan, settings: WriteSettings,
                   cpus_per_task: float):
    _quiet_data_context()
    dataset = ray.data.from_items([{"file": i} for i in range(len(files))],
                                  override_num_blocks=len(files))
    # A reader holds its CPU share for a whole file, so it asks for half a task's share. The
    # different share also keeps Ray from fusing reading and encoding into one task: apart, the
    # chunks of one big file are encoded by all the CPUs, not by its reader alone.
    dataset = dataset.map_batches(read_files, batch_size=1, batch_format="numpy",
                                  fn_kwargs={"paths": list(files), "options": options},
                                  num_cpus=cpus_per_task / 2)
    dataset = dataset.map_batches(encode_chunks, batch_size=1, batch_format="numpy",
                                  fn_kwargs={"text_model": text_model}, num_cpus=cpus_per_task)
    # An actor that dies (a lost node, an out-of-memory kill) is restarted and its chunk is
    # retried: Ray Data's actor pools set max_restarts and max_task_retries to -1 themselves
    # (ray/data/_internal/execution/operators/actor_pool_map_operator.py), and passing them here
    # is deprecated since Ray 2.5x. The model travels as one object the driver keeps alive for
    # the whole run, so a restarted actor can fetch it again; the list stops Ray resolving it.
    dataset = dataset.map_batches(
        ChunkScorer, batch_size=1, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        fn_constructor_args=([model_ref],),
        fn_constructor_kwargs={"device": options.device, "batch_size": options.batch_size},
        num_cpus=plan.cpus, num_gpus=plan.gpus or None)
    return dataset.map_batches(write_chunks, batch_size=1, batch_format="numpy",
                               fn_kwargs={"settings": settings}, num_cpus=cpus_per_task)


def _drain(dataset: Any, collector: _Collector) -> None:
    """Pull the chunk summaries to the driver; a failure inside Ray becomes one line."""
    try:
        for row in dataset.iter_rows():
            collector.add(str(row["kind"]), int(row["file"]), int(row["first_row"]), row["data"])
    except ray.exceptions.RayError as exc:
        ours = _our_error(exc)
        if ours is not None:
            raise ours from None
        raise EngineError(f"the Ray run failed: {_last_line(exc)}") from None


def _our_error(exc: BaseException) -> ReviewScorerError | None:
    """The ReviewScorerError behind a Ray exception (a model that fails to load in an actor)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ReviewScorerError):
            return type(current)(str(current))
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return None


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:300]
