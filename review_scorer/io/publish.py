"""Safe output writing: a temporary name beside the target, fsync, then an atomic rename."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from review_scorer.errors import OutputError

logger = logging.getLogger(__name__)

_TEMP_ATTEMPTS = 20


def _exists_error(path: Path) -> OutputError:
    return OutputError(f"{path} already exists; pass --overwrite to replace it")


def _parent_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def directory_error(path: Path, exc: OSError) -> OutputError:
    """Explain why no file could be created next to `path`, naming the directory."""
    parent = _parent_of(path)
    if isinstance(exc, FileNotFoundError):
        reason = f"directory {parent} does not exist; create it or choose another output folder"
    elif isinstance(exc, NotADirectoryError):
        reason = f"{parent} is not a directory; choose another output folder"
    elif isinstance(exc, PermissionError):
        reason = f"no permission to write in directory {parent}; choose another output folder"
    else:
        reason = f"directory {parent}: {exc.strerror or exc}; choose another output folder"
    return OutputError(f"cannot write {path}: {reason}")


def write_error(path: Path, exc: OSError) -> OutputError:
    detail = exc.strerror or str(exc) or type(exc).__name__
    return OutputError(f"cannot write {path}: {detail}; check free space and permissions")


# The hidden temp name of an output adds this much to its name (temp_name: a dot, the pid up to
# 7 digits, 8 hex digits and ".tmp"), and most file systems allow 255 bytes a name.
_TEMP_EXTRA = len(".." + "9" * 7 + "-" + "0" * 8 + ".tmp")
NAME_MAX = 255


def check_output_target(path: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output path that is a folder or exists without overwrite,
    or whose name (with its temp file's additions) is longer than a file system allows."""
    size = len(path.name.encode("utf-8", "surrogateescape"))
    if size + _TEMP_EXTRA > NAME_MAX:
        raise OutputError(f"{path.name[:40]}...: the output's name would be {size} bytes, longer "
                          f"than a file name may be ({NAME_MAX - _TEMP_EXTRA} here, with room for "
                          "its temporary copy); rename the input file to something shorter")
    if path.is_dir():
        raise OutputError(f"{path} is a directory; move it away or choose another --out-dir")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise _exists_error(path)


def temp_name(name: str, kind: str) -> str:
    """The hidden name of a temp file ("tmp") or set-aside original ("old") of `name`; it holds
    this process's id, so a later run can tell the leftovers of a killed one (io.leftovers)."""
    return f".{name}.{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def create_temp(path: Path) -> tuple[int, Path]:
    """Create an empty hidden temp file beside `path`; return its descriptor and path.

    os.open with mode 0o666 lets the umask decide the final permissions, as for any new file
    (tempfile.mkstemp would leave the published file readable by its owner only).
    """
    parent = _parent_of(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(_TEMP_ATTEMPTS):
        candidate = parent / temp_name(path.name, "tmp")
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not find a free temporary name in {parent}")


def remove_quietly(path: Path | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # best effort: the original error matters more
        logger.warning("could not remove temporary file %s: %s", path, exc)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def publish_temp(temp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished temp file onto `path`, refusing to clobber it unless `overwrite`."""
    if overwrite:
        os.replace(temp, path)
    else:
        # A hard link fails if the target appeared since the start, so a file that someone
        # else created meanwhile is never replaced silently.
        try:
            os.link(temp, path)
        except FileExistsError:
            raise _exists_error(path) from None
        except OSError:
            # Filesystems without hard links: check, then rename.
            if path.exists() or path.is_symlink():
                raise _exists_error(path) from None
            os.replace(temp, path)
        else:
            os.unlink(temp)
    _fsync_directory(_parent_of(path))


def write_temp_beside(path: Path, data: bytes) -> Path:
    """Write data, synced, to a new hidden temp file in path's folder; return the temp path.

    The caller publishes it (publish_together) or removes it.
    """
    try:
        fd, temp = create_temp(path)
    except OSError as exc:
        raise directory_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        remove_quietly(temp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from exc
        raise
    return temp


def publish_together(pairs: list[tuple[Path, Path]], *, overwrite: bool) -> None:
    """Move finished temp files onto their targets as one step: all of them, or none.

    Existing targets (with overwrite) are first set aside under hidden names; if any move fails,
    or the run is interrupted meanwhile, the new files are removed and the old ones put back,
    so a failed run never loses what was there before. Temp files left unpublished are removed.
    """
    published: list[tuple[Path, Path | None]] = []  # (target, its previous file set aside)
    current: list[Path | None] = [None]  # the backup of the target being published right now
    try:
        for temp, target in pairs:
            check_output_target(target, overwrite)
            if overwrite and (target.exists() or target.is_symlink()):
                current[0] = _set_aside(target)
            try:
                publish_temp(temp, target, overwrite=False)
            except BaseException:
                if current[0] is not None and not (target.exists() or target.is_symlink()):
                    os.rename(current[0], target)
                current[0] = None
                raise
            published.append((target, current[0]))
            current[0] = None
    except BaseException as exc:
        for target, backup in reversed(published):
            _restore(target, backup)
        for temp, _ in pairs:
            remove_quietly(temp)
        if isinstance(exc, OSError):
            raise write_error(pairs[len(published)][1], exc) from exc
        raise
    for _, backup in published:
        remove_quietly(backup)


def _set_aside(target: Path) -> Path:
    parent = _parent_of(target)
    for _ in range(_TEMP_ATTEMPTS):
        backup = parent / temp_name(target.name, "old")
        if not (backup.exists() or backup.is_symlink()):
            os.rename(target, backup)
            return backup
    raise FileExistsError(f"could not find a free backup name in {parent}")


def _restore(target: Path, backup: Path | None) -> None:
    """Undo one publish step: remove the new file and put the old one back."""
    with contextlib.suppress(OSError):
        os.unlink(target)
    if backup is not None:
        with contextlib.suppress(OSError):
            os.rename(backup, target)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write `data` to `path` through a temp file in the same folder, then rename it into place.

    Readers see either the old file or the complete new one. Raises OutputError when the file
    exists and `overwrite` is false, or when the folder is missing or unwritable. The temp file
    is removed on any failure, KeyboardInterrupt included. Returns the path written.
    """
    target = Path(path)
    check_output_target(target, overwrite)
    temp = write_temp_beside(target, data)
    try:
        publish_temp(temp, target, overwrite)  # one file: os.replace swaps it atomically
    except BaseException as exc:
        remove_quietly(temp)
        if isinstance(exc, OSError):
            raise write_error(target, exc) from exc
        raise
    return target


def ensure_output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder (with parents) if needed and check that files can be made in it.

    Raises OutputError when it cannot be created, is not a folder, or is not writable.
    """
    directory = Path(path)
    if directory.is_symlink() and not directory.exists():
        raise OutputError(f"{directory} is a symbolic link to a missing folder "
                          f"({os.readlink(directory)}); fix the link or choose another output folder")
    if directory.exists() and not directory.is_dir():
        raise OutputError(
            f"{directory} exists and is not a directory; choose another output folder"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise OutputError(
            f"cannot create output folder {directory}: {detail}; choose another output folder"
        ) from exc
    try:
        fd, probe = create_temp(directory / "write-check")
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise OutputError(
            f"output folder {directory} is not writable ({detail}); choose another output folder"
        ) from exc
    os.close(fd)
    remove_quietly(probe)
    return directory


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
