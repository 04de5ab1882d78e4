"""Leftovers of killed runs: hidden temp files and set-aside originals that are provably ours."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

# outputs.temp_name and the staging folders: ".<target name>.<pid>-<8 chars>.tmp|old"; names
# written before the pid was added have no "<pid>-" and count only when older than the run.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:(?P<pid>\d+)-)?[0-9a-z_]{8}\.(?P<kind>tmp|old)$")


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (or may: one of another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _stale(entry: Path, pid: str | None, since: float) -> bool:
    """Left by a run that no longer runs: its process is gone, or (an id reused after a restart,
    or a name without one) the entry is older than this run."""
    try:
        older = entry.lstat().st_mtime < since
    except OSError:
        return False
    if pid is None:
        return older
    if int(pid) == os.getpid():
        return older
    return not pid_alive(int(pid))


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            entry.unlink()


def clean_leftovers(targets: Iterable[Path], *, since: float) -> list[str]:
    """Remove temp files and folders that killed runs left beside `targets`, and put back an
    original such a run had set aside when nothing replaced it; one note per folder saying what
    was done (empty when nothing was found). Only our own name pattern is touched, and only
    when its process is gone (or the entry is older than this run)."""
    by_parent: dict[Path, set[str]] = {}
    for target in targets:
        by_parent.setdefault(Path(target).parent, set()).add(Path(target).name)
    notes = []
    for parent, names in by_parent.items():
        removed, restored = [], []
        try:
            entries = list(parent.iterdir())
        except OSError:
            continue
        for entry in sorted(entries):
            match = _LEFTOVER.match(entry.name)
            if not match or match["name"] not in names or not _stale(entry, match["pid"], since):
                continue
            target = parent / match["name"]
            if match["kind"] == "old" and not (target.exists() or target.is_symlink()):
                with contextlib.suppress(OSError):
                    os.rename(entry, target)
                    restored.append(target.name)
                    continue
            _remove(entry)
            removed.append(entry.name)
        if removed:
            notes.append(f"removed {len(removed)} temporary file(s) left in {parent} by a run that "
                         f"was killed: {', '.join(removed[:5])}{' ...' if len(removed) > 5 else ''}")
        if restored:
            notes.append(f"put back {', '.join(restored)} in {parent}: a run that was killed had "
                         "set it aside")
    return notes
