"""The Ray-free half of a partitioned run: inputs, part files, chunk summaries and their reduction.

The ray engine (engines/ray.py) moves chunks between processes; everything here works on one
chunk or on the driver's summaries, so it runs (and is tested) without a cluster.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import pickle
import re
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import InputError, OutputError, ReviewScorerError
from review_scorer.io.common import one_line
from review_scorer.metrics import (
    DECIDED_NEUTRAL,
    DECIDED_POSITIVE,
    DecisionRule,
    HighlightTracker,
    RowSample,
    StreamingMetrics,
    sentiment_names,
)
from review_scorer.model.sentiment import STATUS_OK, SentimentModel, rounded_scores
from review_scorer.scoring.domain import DomainSignal
from review_scorer.scoring.score import (
    OUTPUT_COLUMNS,
    STATUS_FORMULA,
    TOP_WORDS_COLUMN,
    FileResult,
    ScoreOptions,
    score_report_context,
)

SOURCE_COLUMN = "source_file"
PART_FORMATS = ("parquet", "csv")
PART_SUFFIX = {"parquet": ".parquet", "csv": ".csv"}
PREDICTIONS_DIR_SUFFIX = ".predictions"
# A directory given as input contributes the files with these endings (a lone file of any
# supported kind can still be named directly).
DIRECTORY_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".xlsx", ".xlsm")
HIGHLIGHTS_PER_KIND = 5
REPORT_TEXT_LIMIT = 20000
SAMPLE_READERS = 16  # parts read at once when the report's sample is fetched
_GLOB_CHARS = re.compile(r"[*?\[]")

# What a reader yields for one file: its chunks, then an "end" marker with the file's layout and
# row count, or an "error" marker with the one-line message the local engine would record.
KIND_CHUNK, KIND_END, KIND_ERROR = "chunk", "end", "error"


# ------------------------------------------------------------------------------ inputs


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Files named by INPUT arguments (files, globs, directories), sorted within each argument,
    each once. Remote URIs (s3://, gs://, ...) are listed through pyarrow's filesystems."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in inputs:
        text = restore_uri(raw)
        for found in _expand_remote(text) if "://" in text else _expand_local(text):
            if found not in seen:
                seen.add(found)
                out.append(found)
    if not out:
        raise InputError("no input files given; pass a file, a glob or a folder of review files")
    return out


_COLLAPSED_URI = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):/(?!/)")


def restore_uri(path: str | os.PathLike[str]) -> str:
    """A path as text, with a URI that went through pathlib.Path ("s3:/bucket/key", the double
    slash collapsed) given its "://" back, unless such a local path exists. Schemes of one
    letter are Windows drives and stay as they are."""
    text = str(path)
    if _COLLAPSED_URI.match(text) and not os.path.exists(text):
        text = _COLLAPSED_URI.sub(
            lambda m: f"{m.group(1)}://" + ("/" if m.group(1).lower() == "file" else ""), text)
    return text


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
        raise InputError(f"{uri}: cannot list ({one_line(exc)}); check the address and "
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


# ------------------------------------------------------------------------------ reading


def _open_reviews(path: str, options: ScoreOptions):
    from review_scorer.io import open_reviews

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
        try:
            filesystem, inner = pafs.FileSystem.from_uri(path)
            with os.fdopen(handle, "wb") as out, filesystem.open_input_stream(inner) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot read ({one_line(exc)}); check the address and "
                             "credentials") from exc
        yield local
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


def read_file_chunks(path: str, options: ScoreOptions) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(kind, first row, payload) for one file: each chunk read by the package's own reader, then
    an "end" marker with the file's layout and row count, or an "error" marker carrying the same
    one-line message and exit code the local engine records for that file."""
    try:
        yield from _read_chunks(path, options)
    except ReviewScorerError as exc:
        yield KIND_ERROR, -1, {"error": str(exc), "exit_code": exc.exit_code}
    except (MemoryError, RecursionError) as exc:
        yield KIND_ERROR, -1, {"error": f"{path}: {type(exc).__name__}", "exit_code": 1}
    except Exception as exc:  # one file's unexpected failure must not end the whole run
        detail = (str(exc).strip().splitlines() or [""])[0][:300]
        yield KIND_ERROR, -1, {"error": f"{path}: unexpected {type(exc).__name__}: {detail}",
                               "exit_code": 1}


def _read_chunks(path: str, options: ScoreOptions) -> Iterator[tuple[str, int, dict[str, Any]]]:
    with _local_copy(path) as local, contextlib.closing(_open_reviews(local, options)) as review_file:
        info = review_file.info
        rename = {c: f"{c}_original" for c in info.columns
                  if c in (SOURCE_COLUMN, *OUTPUT_COLUMNS, TOP_WORDS_COLUMN)}
        roles = insight_roles(info)
        total = 0
        for chunk in review_file.chunks():
            ids = chunk.frame[info.id_column].tolist() if info.id_column else None
            total += len(chunk.rows)
            yield KIND_CHUNK, int(chunk.rows[0]), {
                "source": path, "frame": chunk.frame, "rows": chunk.rows, "texts": chunk.texts,
                "labels": chunk.labels, "ids": ids, "rename": rename, "roles": roles,
                "ratings": getattr(chunk, "ratings", None),
                "formula": getattr(chunk, "formula", None)}
        # info.notes may already hold some of these (and grows while rows stream): once each.
        notes = list(dict.fromkeys(_file_notes(info) + list(getattr(review_file, "notes", ()) or ())))
        if rename:
            notes.append("input columns renamed to keep them: "
                         + ", ".join(f"{a} -> {b}" for a, b in rename.items()))
        yield KIND_END, total + 1, {
            "rows": total, "text_column": info.text_column, "label_column": info.label_column,
            "id_column": info.id_column, "sheet": getattr(info, "sheet", None), "notes": notes,
            "label_from_rating": bool(getattr(info, "label_from_rating", False)),
            "rating_column": getattr(info, "rating_column", None), "roles": roles,
            "part_text_column": rename.get(info.text_column, info.text_column),
            "part_id_column": rename.get(info.id_column, info.id_column) if info.id_column else None,
            "part_columns": {role: rename.get(column, column) for role, column in (
                ("text", info.text_column), ("id", info.id_column),
                ("group", getattr(info, "group_column", None)),
                ("rating", getattr(info, "rating_column", None))) if column}}


# ------------------------------------------------------------------------------ part files


@dataclass(frozen=True)
class WriteSettings:
    """What the write tasks need to know: where parts go and how the report samples rows."""

    parts_dir: str
    part_format: str
    threshold: float
    sample_rows: int
    seed: int
    excel_safe: bool = False  # --excel-safe-csv: CSV parts get formula cells neutralised
    neutral_band: tuple[float, float] | None = None

    @property
    def rule(self) -> DecisionRule:
        return DecisionRule(self.threshold, self.neutral_band)


def part_name(file_index: int, first_row: int, part_format: str) -> str:
    """The part file of one chunk: fixed by (file, first row), so a retried chunk overwrites its
    own part instead of adding a second copy."""
    return f"part-{file_index:06d}-{first_row:012d}{PART_SUFFIX[part_format]}"


def chunk_status(chunk: dict[str, Any]) -> np.ndarray:
    """The chunk's statuses as the local engine writes them (formula cells included)."""
    status = chunk["status"]
    formula = chunk.get("formula")
    if formula is not None and np.any(formula):
        # As the local engine: a formula whose value was never stored is not an empty text.
        status = np.where(np.asarray(formula, dtype=bool) & (status != STATUS_OK),
                          STATUS_FORMULA, status).astype(object)
    return status


def chunk_decisions(chunk: dict[str, Any], status: np.ndarray, rule: DecisionRule | float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The chunk's (positive, neutral) decisions (metrics.DecisionRule, as the local engine),
    made once and kept on the chunk for the part file and the summary alike."""
    if chunk.get("positive") is None:
        rule = rule if isinstance(rule, DecisionRule) else DecisionRule(rule)
        decided = rule.decide(chunk["scores"], status == STATUS_OK)
        chunk["positive"], chunk["neutral"] = decided == DECIDED_POSITIVE, decided == DECIDED_NEUTRAL
    if chunk.get("neutral") is None:
        chunk["neutral"] = np.zeros(len(chunk["positive"]), dtype=bool)
    return chunk["positive"], chunk["neutral"]


def prediction_frame(chunk: dict[str, Any], status: np.ndarray, rule: DecisionRule | float):
    """The chunk's rows as written: source_file, the original columns, row, sentiment, score,
    status (the same columns, renames and rounding as the local engine, plus source_file)."""
    frame = chunk["frame"].rename(columns=chunk["rename"]).copy()
    frame.insert(0, SOURCE_COLUMN, chunk["source"])
    frame["row"] = chunk["rows"]
    positive, neutral = chunk_decisions(chunk, status, rule)
    frame["sentiment"] = sentiment_names(positive, status == STATUS_OK, neutral)
    frame["score"] = rounded_scores(chunk["scores"], status)
    frame["status"] = status
    return frame.reset_index(drop=True)


def write_part(frame: Any, target: str | Path, part_format: str, *,
               excel_safe: bool = False) -> None:
    """Write one part atomically: through a hidden temp file renamed into place, or for a URI in
    one object store upload (published whole on close). Writing it again replaces it.
    excel_safe: CSV cells and headers a spreadsheet would run as formulas get a leading '."""
    if excel_safe and part_format == "csv":
        from review_scorer.io.predictions import _neutralise_formulas

        frame = _neutralise_formulas(frame)
    if is_uri(target):
        _write_remote_part(frame, target, part_format)
        return
    target = Path(target)
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


def _write_remote_part(frame: Any, target: str, part_format: str) -> None:
    filesystem, inner = _filesystem(target)
    with filesystem.open_output_stream(inner) as sink:
        if part_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
        else:
            text = frame.to_csv(index=False, lineterminator="\r\n")
            sink.write(text.encode("utf-8", "replace"))


def insight_roles(info: Any) -> tuple:
    """The columns the report's time, group and rating sections read (date, group, rating,
    rating scale, id), as the reader found them; files with equal roles merge their insights."""
    return tuple(getattr(info, name, None) for name in
                 ("date_column", "group_column", "rating_column", "rating_scale", "id_column"))


def new_insights(roles: tuple, threshold: float) -> Any:
    """An empty FileInsights for these roles (the local engine's time/group/rating sections)."""
    from review_scorer.report.insights import FileInsights

    date, group, rating, scale, ident = roles
    return FileInsights(date, group, rating, scale, threshold, id_column=ident)


def _chunk_insights(chunk: dict[str, Any], status: np.ndarray, rule: DecisionRule) -> Any:
    from review_scorer.scoring.score import ScoredChunk

    insights = new_insights(chunk["roles"], rule.threshold)
    positive, neutral = chunk_decisions(chunk, status, rule)
    insights.update(ScoredChunk(frame=chunk["frame"], rows=chunk["rows"], texts=chunk["texts"],
                                labels=chunk["labels"], ratings=chunk.get("ratings"),
                                status=status, scores=chunk["scores"],
                                positive=positive, neutral=neutral))
    return insights


def summarise_chunk(file_index: int, chunk: dict[str, Any], status: np.ndarray,
                    settings: WriteSettings, *, node: str | None = None) -> dict[str, Any]:
    """The chunk's share of the report: counts, metrics, highlights and sample candidates."""
    scores, rows = chunk["scores"], chunk["rows"]
    scored = status == STATUS_OK
    labels = chunk["labels"] if chunk["labels"] is not None else np.full(len(rows), -1, np.int8)
    positive, neutral = chunk_decisions(chunk, status, settings.rule)
    streaming = StreamingMetrics(threshold=settings.threshold, neutral_band=settings.neutral_band)
    streaming.update(labels, np.nan_to_num(scores, nan=0.0), scored, positive, neutral)
    domain = DomainSignal()
    words, unknown = chunk.get("words") or (0, 0)
    domain.update(scores, scored, words=words, unknown_words=unknown)
    highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
    pos = np.flatnonzero(scored)
    texts = ["" if t is None else str(t) for t in chunk["texts"]]
    ids = chunk["ids"]
    highlights.update(rows[pos], scores[pos], [texts[i] for i in pos],
                      None if ids is None else [ids[i] for i in pos], labels[pos],
                      positive=positive[pos], neutral=neutral[pos], source=chunk["source"],
                      source_rank=file_index)
    sample = RowSample(settings.sample_rows, seed=settings.seed)
    sample.update(rows, source_rank=file_index, labels=labels)
    return {"rows": len(rows), "scored": int(scored.sum()),
            "positive": streaming.n_positive, "neutral": streaming.n_neutral,
            "reasons": Counter(status[~scored].tolist()),
            "streaming": streaming, "highlights": highlights, "sample": sample, "domain": domain,
            "insights": _chunk_insights(chunk, status, settings.rule),
            "device": chunk.get("device"), "actor_pid": chunk.get("actor_pid"),
            "nodes": {chunk.get("actor_node"), node}}


def is_uri(path: Any) -> bool:
    """True for a filesystem URI (s3://, gs://, file://...), which pyarrow reads and writes."""
    return isinstance(path, str) and "://" in path


def join(base: str | Path, name: str) -> str | Path:
    """`name` inside the folder `base`, a local path or a URI."""
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else Path(base) / name


def _filesystem(uri: str):
    from pyarrow import fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as exc:
        raise OutputError(f"{uri}: cannot use this location ({one_line(exc)}); check the address "
                          "and credentials") from exc


def _exists(path: str | Path) -> bool:
    if not is_uri(path):
        return Path(path).exists()
    from pyarrow import fs as pafs

    filesystem, inner = _filesystem(path)
    return filesystem.get_file_info(inner).type != pafs.FileType.NotFound


def _list_parts(parts_dir: str | Path, prefix: str = "part-") -> list:
    if not is_uri(parts_dir):
        folder = Path(parts_dir)
        return sorted(folder.glob(f"{prefix}*")) if folder.is_dir() else []
    from pyarrow import fs as pafs

    filesystem, inner = _filesystem(parts_dir)
    infos = filesystem.get_file_info(pafs.FileSelector(inner, allow_not_found=True))
    return sorted(join(parts_dir, i.base_name) for i in infos
                  if i.type == pafs.FileType.File and i.base_name.startswith(prefix))


def _delete(path: str | Path) -> None:
    if is_uri(path):
        filesystem, inner = _filesystem(path)
        with contextlib.suppress(FileNotFoundError):
            filesystem.delete_file(inner)
    else:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()


@dataclass
class RunOutputs:
    """Where a run's outputs go: parts are written into `staging` (a hidden sibling of `final`)
    and only moved onto `final` by publish_outputs, so an earlier run's predictions and report
    stay exactly as they were until the new run has succeeded."""

    final: str | Path  # OUT/NAME.predictions
    staging: str | Path  # OUT/.NAME.predictions.<pid>-<token>.tmp
    report: str | Path  # OUT/NAME.html
    notes: list[str]  # leftovers of killed runs cleaned up on the way


def prepare_outputs(out_dir: str | Path, name: str, options: ScoreOptions,
                    inputs: Sequence[str] = ()) -> RunOutputs:
    """The outputs of a run under `out_dir`, a local folder or a URI that every node can write.

    Refuses, before anything is written, to mix with an earlier run's parts unless overwriting
    (they are replaced only when the new run succeeds) and any output that is also an input.
    """
    import time

    from review_scorer.io.leftovers import clean_leftovers
    from review_scorer.io.publish import check_output_target, ensure_output_dir, temp_name

    since = time.time()
    out_dir = restore_uri(out_dir)
    base = out_dir.rstrip("/") if is_uri(out_dir) else ensure_output_dir(Path(out_dir))
    final = join(base, f"{name}{PREDICTIONS_DIR_SUFFIX}")
    report_path = join(base, f"{name}.html")
    _refuse_inputs_as_outputs(inputs, final, report_path if options.report else None)
    if options.report and is_uri(report_path):
        if _exists(report_path) and not options.overwrite:
            raise OutputError(f"{report_path} already exists; pass --overwrite to replace it")
    elif options.report:
        check_output_target(report_path, options.overwrite)
    if not is_uri(final) and final.exists() and not final.is_dir():
        raise OutputError(f"{final} exists and is not a folder; remove it or use --out-dir")
    if _list_parts(final) and not options.overwrite:
        raise OutputError(f"{final} already holds predictions; pass --overwrite to replace "
                          "them or use --out-dir")
    notes = [] if is_uri(final) else clean_leftovers([final, report_path], since=since)
    staging = join(base, temp_name(f"{name}{PREDICTIONS_DIR_SUFFIX}", "tmp"))
    if is_uri(staging):
        filesystem, inner = _filesystem(staging)
        filesystem.create_dir(inner, recursive=True)
    else:
        staging.mkdir()
    return RunOutputs(final, staging, report_path, notes)


def _refuse_inputs_as_outputs(inputs: Sequence[str], final: str | Path,
                              report: str | Path | None) -> None:
    """OutputError when an input of the run is the report or lies in the predictions folder
    (replacing that folder would delete it)."""
    def resolved(path: str | Path) -> str:
        return str(path).rstrip("/") if is_uri(path) else str(Path(path).resolve())

    folder = resolved(final)
    for item in inputs:
        where = resolved(item)
        inside = where.startswith(folder.rstrip("/\\") + ("/" if is_uri(item) else os.sep))
        is_report = report is not None and where == resolved(report)
        if where == folder or inside or is_report:
            raise OutputError(f"{item} is also an output of this run ({report if is_report else final}"
                              "); choose another --out-dir (nothing was written)")


def publish_outputs(outputs: RunOutputs, report: Callable[[], None] | None) -> None:
    """Move the staged parts onto the final folder and publish the report (`report()`), as one
    step: if anything fails or the run is interrupted, the new parts are removed and the
    earlier run's folder (set aside meanwhile) is put back; on success it is deleted."""
    from review_scorer.io.publish import temp_name

    final = outputs.final
    backup = join(_parent(final), temp_name(_base_name(final), "old"))
    moved_old = moved_new = False
    try:
        if _exists(final):
            _move_folder(final, backup)
            moved_old = True
        _move_folder(outputs.staging, final)
        moved_new = True
        if report is not None:
            report()
    except BaseException:
        if moved_new:
            _delete_folder(final)
        if moved_old:
            _move_folder(backup, final)
        _delete_folder(outputs.staging)
        raise
    if moved_old:
        _delete_folder(backup)


def discard_outputs(outputs: RunOutputs) -> None:
    """Drop a run's staged parts; the earlier run's outputs were never touched."""
    _delete_folder(outputs.staging)


def _parent(path: str | Path) -> str | Path:
    return path.rstrip("/").rsplit("/", 1)[0] if is_uri(path) else Path(path).parent


def _base_name(path: str | Path) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] if is_uri(path) else Path(path).name


def _move_folder(source: str | Path, target: str | Path) -> None:
    """Rename a local folder; on a URI move its files one by one (object stores have no
    folder rename)."""
    if not is_uri(source):
        os.rename(source, target)
        return
    from pyarrow import fs as pafs

    filesystem, inner = _filesystem(source)
    _, inner_target = _filesystem(target)
    filesystem.create_dir(inner_target, recursive=True)
    for info in filesystem.get_file_info(pafs.FileSelector(inner, allow_not_found=True)):
        if info.type == pafs.FileType.File:
            filesystem.move(info.path, f"{inner_target.rstrip('/')}/{info.base_name}")
    with contextlib.suppress(OSError):
        filesystem.delete_dir(inner)


def _delete_folder(path: str | Path) -> None:
    if not is_uri(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    filesystem, inner = _filesystem(path)
    with contextlib.suppress(OSError):
        filesystem.delete_dir(inner)


def remove_parts(parts_dir: str | Path, file_index: int | None = None) -> None:
    """Delete one file's parts (a file that failed part-way leaves no predictions, as with the
    local engine), or with no index the whole parts folder of a run that failed."""
    prefix = "part-" if file_index is None else f"part-{file_index:06d}-"
    for part in _list_parts(parts_dir, prefix):
        _delete(part)
    if file_index is None and not is_uri(parts_dir):
        shutil.rmtree(parts_dir, ignore_errors=True)


# ------------------------------------------------------------------------------ the model


def load_model_payload(model_path: str | Path | None, notes: list[str]
                       ) -> tuple[dict[str, bytes], SentimentModel]:
    """The model directory's files (sent to every actor, so nodes need no copy of it) and a
    TensorFlow-free SentimentModel for encoding and the report. Checked as `score` checks it."""
    import json

    from review_scorer.config import TrainConfig
    from review_scorer.model import artifacts
    from review_scorer.text.vocabulary import Vocabulary

    model_dir = artifacts.resolve_model_dir(model_path, notes=notes)
    meta = artifacts.read_meta(model_dir)
    artifacts.verify_checksums(model_dir, artifacts.CHECKED_FILES, meta.get("files") or {},
                               redo="retrain the model")
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


# ------------------------------------------------------------------------------ the driver


class FileState:
    """One input file on the driver: its chunks' summaries folded in as they arrive."""

    def __init__(self, index: int, path: str, settings: WriteSettings):
        self.index, self.path = index, path
        # a URI stays text: pathlib would fold its "//"
        self.result = FileResult(path=path if is_uri(path) else Path(path), ok=False)
        self.chunks: dict[int, int] = {}  # first row -> rows, for the completeness check
        self.end: dict[str, Any] | None = None
        self.streaming = StreamingMetrics(threshold=settings.threshold,
                                          neutral_band=settings.neutral_band)
        self.highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.domain = DomainSignal()
        self.insights: Any = None  # FileInsights, from the first chunk on
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
        r.neutral += summary.get("neutral", 0)
        for status, n in summary["reasons"].items():
            r.not_scored[str(status)] = r.not_scored.get(str(status), 0) + int(n)
        self.streaming.merge(summary["streaming"])
        if summary.get("domain") is not None:
            self.domain.merge(summary["domain"])
        self.highlights.merge(summary["highlights"])
        self.sample.merge(summary["sample"])
        if self.insights is None:
            self.insights = summary["insights"]
        else:
            self.insights.merge(summary["insights"])
        return True

    def fail(self, error: str, exit_code: int) -> None:
        """Record the file as failed; its later chunks are ignored and its parts removed."""
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

    def finish(self, parts_dir: str | Path) -> None:
        """Fill in the file's result once every row is accounted for."""
        r, end = self.result, self.end or {}
        r.ok = True
        r.text_column, r.label_column = end.get("text_column"), end.get("label_column")
        if end.get("label_from_rating"):  # as the local engine: labels from the star ratings
            r.label_column, r.labels_from_rating = end.get("rating_column"), True
        r.sheet = end.get("sheet")
        r.notes.extend(end.get("notes") or [])
        r.negative = r.scored - r.positive - r.neutral
        r.metrics = self.streaming.result() if r.label_column else None
        r.domain = self.domain.to_dict()
        r.predictions_path = parts_dir


class Collector:
    """Reduces the stream of chunk summaries into per-file results and the run's report parts."""

    def __init__(self, files: Sequence[str], settings: WriteSettings, parts_dir: str | Path,
                 progress: Callable[[int], None] | None):
        self.states = [FileState(i, p, settings) for i, p in enumerate(files)]
        self.settings, self.parts_dir, self.progress = settings, parts_dir, progress
        self.streaming = StreamingMetrics(threshold=settings.threshold,
                                          neutral_band=settings.neutral_band)
        self.highlights = HighlightTracker(k=HIGHLIGHTS_PER_KIND, threshold=settings.threshold)
        self.sample = RowSample(settings.sample_rows, seed=settings.seed)
        self.domain = DomainSignal()
        self.insights: Any = None  # FileInsights of the run; False when files' columns differ
        self.insight_roles: tuple | None = None
        self.devices: Counter[str] = Counter()
        self.actor_pids: set[int] = set()
        self.nodes: set[str] = set()

    def add(self, kind: str, file_index: int, first_row: int, data: bytes) -> None:
        """Fold in one row of the dataset's output: a chunk summary, an end or an error marker."""
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

    def _fold(self, state: FileState) -> None:
        state.finish(self.parts_dir)
        self.streaming.merge(state.streaming)
        self.highlights.merge(state.highlights)
        self.sample.merge(state.sample)
        self.domain.merge(state.domain)
        self._fold_insights(state)
        # What the file's accumulators held now lives in the run's; keep only its counts.
        state.streaming = state.highlights = state.sample = None  # type: ignore[assignment]
        state.domain = None  # type: ignore[assignment]
        state.insights = None

    def _fold_insights(self, state: FileState) -> None:
        """The time/group/rating sections cover the run when its files share those columns;
        files that differ leave them out (the note says why)."""
        roles = (state.end or {}).get("roles")
        if state.insights is None or self.insights is False:
            return
        if self.insights is None:
            self.insights, self.insight_roles = state.insights, roles
        elif roles == self.insight_roles:
            self.insights.merge(state.insights)
        else:
            self.insights = False

    def close(self) -> None:
        """After the last summary: a file neither finished nor failed lost rows (never expected)."""
        for state in self.states:
            if not state.result.ok and not state.failed:
                state.fail(f"{state.path}: the cluster returned {state.result.rows} rows of this "
                           "file but not all of them; run it again", 1)
            if state.failed:
                remove_parts(self.parts_dir, state.index)


# ------------------------------------------------------------------------------ the report


def _read_part(path: str | Path, part_format: str, columns: list[str]):
    filesystem, inner = _filesystem(path) if is_uri(path) else (None, path)
    if part_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(inner, columns=columns, filesystem=filesystem).to_pandas()
    import pandas as pd

    with (filesystem.open_input_file(inner) if filesystem else open(inner, "rb")) as handle:
        return pd.read_csv(handle, usecols=columns, dtype=str, keep_default_na=False)


def sampled_rows(collector: Collector, settings: WriteSettings) -> list[dict[str, Any]]:
    """The report table's rows: the run's seeded sample, read back from the written parts."""
    wanted: dict[tuple[int, int], list[tuple[int, int]]] = {}
    firsts: dict[int, np.ndarray] = {}  # each file's chunk starts, sorted once
    for rank, row, label in collector.sample.rows():
        if rank not in firsts:
            firsts[rank] = np.sort(np.fromiter(collector.states[rank].chunks, dtype=np.int64))
        first = int(firsts[rank][int(np.searchsorted(firsts[rank], row, side="right")) - 1])
        wanted.setdefault((rank, first), []).append((row, label))
    # One read per part that holds sampled rows, a few at a time: on object storage each is a
    # round trip, and a big run's sample touches thousands of parts.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=SAMPLE_READERS) as pool:
        groups = pool.map(lambda item: _sampled_from_part(collector, settings, *item),
                          sorted(wanted.items()))
        return [row for group in groups for row in group]


def _sampled_from_part(collector: Collector, settings: WriteSettings, key: tuple[int, int],
                       rows: list[tuple[int, int]]) -> list[dict[str, Any]]:
    rank, first = key
    end = collector.states[rank].end or {}
    roles = end.get("part_columns") or {"text": end["part_text_column"]}
    columns = ["row", "sentiment", "score", "status", *roles.values()]
    part = join(collector.parts_dir, part_name(rank, first, settings.part_format))
    frame = _read_part(part, settings.part_format, list(dict.fromkeys(columns)))
    frame = frame.set_index(frame["row"].astype(np.int64))
    source = collector.states[rank].path
    return [_report_row(frame.loc[row], source, roles, label) for row, label in rows]


def _report_row(values: Any, source: str, roles: dict[str, str], label: int) -> dict[str, Any]:
    """One table row shaped as the local engine's (group and rating when the file has them)."""
    score = values["score"]
    score = None if values["status"] != STATUS_OK or score in ("", None) else float(score)
    ident = values[roles["id"]] if "id" in roles else None
    text = values[roles["text"]]
    row = {
        "row": int(values["row"]),
        "id": None if ident is None or ident == "" else str(ident),
        "text": ("" if text is None else str(text))[:REPORT_TEXT_LIMIT],
        "sentiment": str(values["sentiment"] or ""),
        "score": None if score is None or not np.isfinite(score) else round(score, 4),
        "status": str(values["status"]),
        "label": {1: "positive", 0: "negative"}.get(int(label)),
        SOURCE_COLUMN: source,
    }
    if "group" in roles:
        row["group"] = str(values[roles["group"]])
    if "rating" in roles:
        from review_scorer.io.labels import parse_ratings

        rating = parse_ratings([values[roles["rating"]]])[0]
        if np.isfinite(rating):
            row["rating"] = float(rating)
    return row


def run_summary(name: str, inputs: Sequence[str], collector: Collector, seconds: float,
                 notes: list[str]) -> FileResult:
    """The whole run as one FileResult-shaped summary, for the report's header and counts."""
    done = [s.result for s in collector.states if s.result.ok]
    total = FileResult(path=Path(str(inputs[0]) if len(inputs) == 1 else name), ok=True)
    for r in done:
        total.rows += r.rows
        total.scored += r.scored
        total.positive += r.positive
        total.neutral += r.neutral
        for status, n in r.not_scored.items():
            total.not_scored[status] = total.not_scored.get(status, 0) + n
    total.negative = total.scored - total.positive - total.neutral
    total.domain = collector.domain.to_dict()
    total.seconds = seconds
    total.text_column = ", ".join(dict.fromkeys(r.text_column for r in done if r.text_column))
    total.label_column = ", ".join(dict.fromkeys(r.label_column for r in done if r.label_column)) or None
    total.metrics = collector.streaming.result() if total.label_column else None
    # the files' own notes too, as the local report has them (named when there are several)
    total.notes = notes + [note if len(done) == 1 else f"{Path(str(r.path)).name}: {note}"
                           for r in done for note in r.notes]
    return total


def attach_attributions(rows: list[dict[str, Any]], highlight_rows: list[dict[str, Any]],
                        attributions: Sequence[Any]) -> dict[str, Any] | None:
    """Add word spans to the table and highlight rows (attributions in that order, table rows
    first) and return the drivers over the table rows, as the local report has them."""
    from review_scorer.explain.drivers import DriverAccumulator, TermMatcher, cleaned_if_whole, row_spans

    drivers = DriverAccumulator()
    drivers.update(a for a, row in zip(attributions, rows) if row["status"] == STATUS_OK)
    for row, attribution in zip([*rows, *highlight_rows], attributions):
        if attribution is not None:
            row["spans"] = row_spans(attribution)
    if not drivers.reviews:
        return None
    result = drivers.result(k=15)
    terms = [t["term"] for t in result["positive"] + result["negative"]]
    matcher = TermMatcher(terms)
    for row, attribution in zip(rows, attributions):
        row["terms"] = matcher(row["text"], cleaned=cleaned_if_whole(attribution))
    return result


def build_report_context(summary: FileResult, collector: Collector, *, model: SentimentModel,
                         device_name: str, settings: WriteSettings, rows: list[dict[str, Any]],
                         highlights: dict[str, list], drivers: dict | None = None,
                         full_paths: bool = False) -> dict[str, Any]:
    """The report context of a ray run: exact counts, metrics, histogram and highlights merged
    from every partition; the table a seeded sample, which the page says. Unless full_paths,
    input files are named by their names only (see score.score_report_context)."""
    if not full_paths:
        for row in [*rows, *(r for group in highlights.values() for r in group)]:
            for key in (SOURCE_COLUMN, "source"):
                if isinstance(row.get(key), str):
                    row[key] = _base_name(row[key]) if is_uri(row[key]) else Path(row[key]).name
    summary.notes.append(
        f"The review table shows a random sample of {len(rows):,} of {summary.rows:,} rows "
        f"(seed {settings.seed}); counts, metrics, the histogram and the highlights cover every "
        "row, and the predictions folder holds them all.")
    if collector.insights is False:
        summary.notes.append("The time, group and rating sections are left out: the input files "
                             "do not share their date, group and rating columns.")
    context = score_report_context(summary, model=model, device_name=device_name,
                                   threshold=settings.threshold,
                                   neutral_band=settings.neutral_band,
                                   histogram=collector.streaming.histogram(),
                                   highlights=highlights, rows=rows,
                                   max_rows=settings.sample_rows, full_paths=full_paths)
    if drivers:
        context["drivers"] = drivers
    if collector.insights not in (None, False):
        context.update(collector.insights.context())
    context["rows_sampled"] = True
    context["sample_seed"] = settings.seed
    context["engine"] = "ray"
    return context


def publish_report(context: dict[str, Any], report_path: str | Path, overwrite: bool) -> None:
    """Render the report and publish it atomically, as the local engine does (one upload for a
    URI)."""
    from review_scorer.io.publish import publish_together, write_temp_beside
    from review_scorer.report.render import build_report_html

    data = build_report_html(context).encode("utf-8", "replace")
    if is_uri(report_path):
        if _exists(report_path) and not overwrite:
            raise OutputError(f"{report_path} already exists; pass --overwrite to replace it")
        filesystem, inner = _filesystem(report_path)
        with filesystem.open_output_stream(inner) as sink:
            sink.write(data)
        return
    temp = write_temp_beside(Path(report_path), data)
    publish_together([(temp, Path(report_path))], overwrite=overwrite)
