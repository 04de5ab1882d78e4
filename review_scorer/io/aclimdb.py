"""aclImdb data (Maas et al., 2011): an extracted folder or a tar archive, read in place."""

from __future__ import annotations

import logging
import os
import re
import tarfile
import zlib
from pathlib import Path

from review_scorer.errors import InputError
from review_scorer.io.common import one_line
from review_scorer.io.labeled import SPLITS, LabeledReviews

log = logging.getLogger(__name__)

ACLIMDB_LAYOUT = (
    "the aclImdb layout: train/pos, train/neg, test/pos, test/neg folders of <id>_<rating>.txt "
    "files (or a folder holding aclImdb/)"
)
_ACL_MEMBER_RE = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$")
_ACL_NAME_RE = re.compile(r"^(\d+)_(\d+)\.txt$")
# Unlabeled reviews (train/unsup): never labeled rows; kept apart for unsupervised word vectors.
_ACL_UNSUP_RE = re.compile(r"(?:^|/)train/unsup/([^/]+\.txt)$")
# urls_pos.txt / urls_neg.txt: line N is the movie page of review id N. Reviews of one movie share
# names and plot words, so training keeps whole movies out of validation (the test set's movies
# are disjoint from train's too).
_ACL_URLS_RE = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg)\.txt$")
_MOVIE_ID_RE = re.compile(r"/title/(tt\d+)")


def _acl_sort_key(filename: str) -> tuple[int, int, str]:
    match = _ACL_NAME_RE.match(filename)
    return (0, int(match.group(1)), filename) if match else (1, 0, filename)


def _build_acl(
    groups: dict[tuple[str, str], list[tuple[str, bytes]]], source: str,
    unsup: list[tuple[str, bytes]] | None = None,
    urls: dict[tuple[str, str], bytes] | None = None,
) -> LabeledReviews:
    """Order the (split, label dir) groups and decode; skip empty texts."""
    texts: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    movies: list[str] = []
    skipped = 0
    for split in SPLITS:
        for label_dir, label in (("neg", 0), ("pos", 1)):
            files = groups.get((split, label_dir), [])
            files.sort(key=lambda item: _acl_sort_key(item[0]))
            movie_of = _movie_ids((urls or {}).get((split, label_dir), b""))
            for filename, raw in files:
                text = raw.decode("utf-8", errors="replace")
                if not text.strip():
                    skipped += 1
                    continue
                texts.append(text)
                labels.append(label)
                splits.append(split)
                match = _ACL_NAME_RE.match(filename)
                number = int(match.group(1)) if match else -1
                movies.append(movie_of[number] if 0 <= number < len(movie_of) else "")
    unlabeled = []
    for _, raw in sorted(unsup or [], key=lambda item: _acl_sort_key(item[0])):
        text = raw.decode("utf-8", errors="replace")
        if text.strip():
            unlabeled.append(text)
    return LabeledReviews.from_lists(texts, labels, splits, source=source,
                                     skipped_empty=skipped, unlabeled=unlabeled,
                                     groups=movies if any(movies) else None)


def _movie_ids(raw: bytes) -> list[str]:
    """Line N of a urls file -> the movie id of review N (the IMDB title id when present)."""
    out = []
    for line in raw.decode("utf-8", errors="replace").splitlines():
        match = _MOVIE_ID_RE.search(line)
        out.append(match.group(1) if match else line.strip())
    return out


def _safe_member_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return not (name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name))


def load_aclimdb_archive(path: Path, source: str) -> LabeledReviews:
    """Read the labeled reviews of an aclImdb archive in one streaming pass (nothing extracted)."""
    groups: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    unsup: list[tuple[str, bytes]] = []
    urls: dict[tuple[str, str], bytes] = {}
    roots: set[str] = set()
    try:
        with tarfile.open(path, mode="r|*") as archive:
            for member in archive:
                # Only plain files count; links, devices and odd paths are never followed.
                if not member.isreg():
                    continue
                if not _safe_member_name(member.name):
                    log.warning("%s: skipped unsafe archive member %r", path, member.name)
                    continue
                name = member.name.replace("\\", "/")
                while name.startswith("./"):
                    name = name[2:]
                match = _ACL_MEMBER_RE.search(name)
                urls_match = None if match else _ACL_URLS_RE.search(name)
                if urls_match:
                    handle = archive.extractfile(member)
                    if handle is not None:
                        urls[(urls_match.group(1), urls_match.group(2))] = handle.read()
                    continue
                if not match:
                    unsup_match = _ACL_UNSUP_RE.search(name)
                    handle = archive.extractfile(member) if unsup_match else None
                    if unsup_match and handle is not None:
                        unsup.append((unsup_match.group(1), handle.read()))
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                roots.add(name[: match.start()])
                split, label_dir, filename = match.groups()
                groups.setdefault((split, label_dir), []).append((filename, handle.read()))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise InputError(
            f"{path}: cannot read the archive ({one_line(exc)}); it may be corrupt or truncated: "
            f"download it again or pass another --data path"
        ) from exc
    if len(roots) > 1:
        listed = ", ".join(repr(r or "(top level)") for r in sorted(roots))
        raise InputError(
            f"{path}: the archive holds more than one aclImdb tree ({listed}); keep one of them"
        )
    if not groups:
        raise InputError(f"{path}: no labeled reviews in this archive; expected {ACLIMDB_LAYOUT}")
    return _build_acl(groups, source, unsup, urls)


def load_aclimdb_dir(path: Path) -> LabeledReviews:
    """Read the labeled reviews of an extracted aclImdb folder (or a folder holding aclImdb/)."""
    root = path
    if not any((path / split).is_dir() for split in SPLITS) and (path / "aclImdb").is_dir():
        root = path / "aclImdb"
    groups: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
    for split in SPLITS:
        for label_dir in ("neg", "pos"):
            folder = root / split / label_dir
            if not folder.is_dir():
                continue
            files = []
            try:
                with os.scandir(folder) as entries:
                    for entry in entries:
                        if entry.name.endswith(".txt") and entry.is_file():
                            with open(entry.path, "rb") as fh:
                                files.append((entry.name, fh.read()))
            except OSError as exc:
                raise InputError(f"{folder}: cannot read ({one_line(exc)})") from exc
            if files:
                groups[(split, label_dir)] = files
    if not groups:
        raise InputError(f"{path}: no labeled reviews in this folder; expected {ACLIMDB_LAYOUT}")
    unsup = []
    unsup_dir = root / "train" / "unsup"
    if unsup_dir.is_dir():
        for entry in sorted(unsup_dir.glob("*.txt")):
            if entry.is_file() and not entry.is_symlink():
                unsup.append((entry.name, entry.read_bytes()))
    urls = {}
    for split in SPLITS:
        for label_dir in ("neg", "pos"):
            urls_file = root / split / f"urls_{label_dir}.txt"
            if urls_file.is_file() and not urls_file.is_symlink():
                urls[(split, label_dir)] = urls_file.read_bytes()
    return _build_acl(groups, f"aclImdb folder {root}", unsup, urls)
