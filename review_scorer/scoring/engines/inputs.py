"""A partitioned run's inputs: the files its INPUT arguments name, and each file read into typed
chunks (PartChunk) by the package's own readers, local or at a URI."""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from review_scorer.errors import InputError
from review_scorer.io.common import one_line
from review_scorer.io.part_files import restore_uri
from review_scorer.scoring.kernel import (
    OUTPUT_COLUMNS,
    SOURCE_COLUMN,
    TOP_WORDS_COLUMN,
    ScoredChunk,
    file_columns,
    file_error,
    file_notes,
    keep_clashing_columns,
    open_review_file,
    rename_note,
)
from review_scorer.scoring.summaries import insight_roles

# A directory given as input contributes the files with these endings (a lone file of any
# supported kind can still be named directly).
DIRECTORY_SUFFIXES = (".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".parquet", ".xlsx", ".xlsm")
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


@dataclass
class PartChunk:
    """One chunk of one input file on its way through the Ray stages: read (`read`, the
    reader's io.ReviewChunk), encoded (`prepared`, `words`), scored (`scored`, the kernel's
    ScoredChunk, which replaces the other two), then written as a part file."""

    source: str  # the input file, as named in the run
    rename: dict[str, str]  # input columns renamed where they clash with ours (kernel rule)
    roles: tuple  # summaries.insight_roles of the file
    read: Any = None
    prepared: Any = None  # model.prepare's PreparedTexts
    words: tuple[int, int] = (0, 0)  # words read, of them unknown (the domain signal)
    scored: ScoredChunk | None = None
    device: str | None = None  # where it was scored, by which actor process on which node
    actor_pid: int | None = None
    actor_node: str | None = None


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
        with os.fdopen(handle, "wb") as out:  # first, so the handle is closed whatever fails
            try:
                filesystem, inner = pafs.FileSystem.from_uri(path)
                with filesystem.open_input_stream(inner) as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: cannot read ({one_line(exc)}); check the address "
                                 "and credentials") from exc
        yield local
    finally:
        with contextlib.suppress(OSError):
            os.unlink(local)


def read_file_chunks(path: str, options: Any) -> Iterator[tuple[str, int, Any]]:
    """(kind, first row, payload) for one file: a PartChunk per chunk read by the package's
    own reader, then an "end" marker with the file's layout and row count, or an "error" marker
    carrying the same one-line message and exit code the local engine records for that file."""
    try:
        yield from _read_chunks(path, options)
    except Exception as exc:  # one file's failure, expected or not, must not end the run
        error, exit_code = file_error(path, exc)
        yield KIND_ERROR, -1, {"error": error, "exit_code": exit_code}


def _read_chunks(path: str, options: Any) -> Iterator[tuple[str, int, Any]]:
    with _local_copy(path) as local, \
            contextlib.closing(open_review_file(local, options)) as review_file:
        info = review_file.info
        rename = keep_clashing_columns(info.columns,
                                       (SOURCE_COLUMN, *OUTPUT_COLUMNS, TOP_WORDS_COLUMN))
        roles = insight_roles(info)
        total = 0
        for chunk in review_file.chunks():
            chunk.values = None  # parts hold the text cells; the typed copy need not travel
            total += len(chunk.rows)
            yield KIND_CHUNK, int(chunk.rows[0]), PartChunk(path, rename, roles, read=chunk)
        part_columns = {role: rename.get(column, column) for role, column in (
            ("text", info.text_column), ("id", info.id_column), ("group", info.group_column),
            ("rating", info.rating_column)) if column}
        yield KIND_END, total + 1, {
            "rows": total, "columns": file_columns(info), "roles": roles,
            "notes": file_notes(review_file) + rename_note(rename), "part_columns": part_columns}
