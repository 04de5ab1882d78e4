"""Part files of a partitioned run (the ray engine's predictions) and where they live: a local
folder or a URI (s3://, gs://, file://) through pyarrow, staged and published with the report."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from review_scorer.errors import OutputError
from review_scorer.io.common import one_line

PART_FORMATS = ("parquet", "csv")
PART_SUFFIX = {"parquet": ".parquet", "csv": ".csv"}
PREDICTIONS_DIR_SUFFIX = ".predictions"


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


def is_uri(path: Any) -> bool:
    """True for a filesystem URI (s3://, gs://, file://...), which pyarrow reads and writes."""
    return isinstance(path, str) and "://" in path


def join(base: str | Path, name: str) -> str | Path:
    """`name` inside the folder `base`, a local path or a URI."""
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else Path(base) / name


def part_name(file_index: int, first_row: int, part_format: str) -> str:
    """The part file of one chunk: fixed by (file, first row), so a retried chunk overwrites its
    own part instead of adding a second copy."""
    return f"part-{file_index:06d}-{first_row:012d}{PART_SUFFIX[part_format]}"


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


def read_part(path: str | Path, part_format: str, columns: list[str]):
    filesystem, inner = _filesystem(path) if is_uri(path) else (None, path)
    if part_format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(inner, columns=columns, filesystem=filesystem).to_pandas()
    import pandas as pd

    with (filesystem.open_input_file(inner) if filesystem else open(inner, "rb")) as handle:
        return pd.read_csv(handle, usecols=columns, dtype=str, keep_default_na=False)


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


def prepare_outputs(out_dir: str | Path, name: str, options: Any,
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
    backup = join(_parent(final), temp_name(base_name(final), "old"))
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


def base_name(path: str | Path) -> str:
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


def upload_whole(uri: str, data: bytes, *, overwrite: bool) -> None:
    """Write one object at a URI in one upload (the object store publishes it whole on close),
    refusing one that exists unless overwrite."""
    if _exists(uri) and not overwrite:
        raise OutputError(f"{uri} already exists; pass --overwrite to replace it")
    filesystem, inner = _filesystem(uri)
    with filesystem.open_output_stream(inner) as sink:
        sink.write(data)
