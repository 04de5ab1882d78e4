"""Every input format in, one schema out: labeled reviews for training, review-file chunks for scoring."""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import logging
import math
import os
import re
import tarfile
import warnings
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from review_scorer.download import IMDB_URL, fetch_archive
from review_scorer.errors import InputError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
LABEL_HINT = "pos/neg, positive/negative, 1/0, true/false"
_LABEL_VALUES = {
    "pos": 1, "positive": 1, "1": 1, "true": 1,
    "neg": 0, "negative": 0, "0": 0, "false": 0,
    "": -1,
}  # fmt: skip

# Column names are compared after lowercasing and removing spaces, underscores, hyphens and dots,
# in this order of preference.
TEXT_COLUMN_NAMES = (
    "review", "reviewtext", "reviewbody", "reviewcontent", "reviews", "text", "comment",
    "comments", "content", "body", "description", "message", "feedback", "opinion", "remarks",
    "sentence", "tweet",
)  # fmt: skip
LABEL_COLUMN_NAMES = (
    "label", "labels", "sentiment", "polarity", "class", "target", "truelabel", "goldlabel",
    "groundtruth",
)  # fmt: skip
ID_COLUMN_NAMES = (
    "id", "reviewid", "recordid", "rowid", "docid", "documentid", "commentid", "responseid",
    "uid", "uuid", "identifier", "key",
)  # fmt: skip
SPLIT_COLUMN_NAMES = ("split",)

DELIMITED_SUFFIXES = (".csv", ".txt", ".tsv", ".tab")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
SUPPORTED_FORMATS = ".csv, .tsv, .tab, .txt (delimited text) or .xlsx, .xlsm (Excel workbook)"
ACLIMDB_LAYOUT = (
    "the aclImdb layout: train/pos, train/neg, test/pos, test/neg folders of <id>_<rating>.txt "
    "files (or a folder holding aclImdb/)"
)

_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_BYTES = 64 * 1024
_SCAN_BYTES = 1 << 20
_ACL_MEMBER_RE = re.compile(r"(?:^|/)(train|test)/(pos|neg)/([^/]+\.txt)$")
_ACL_NAME_RE = re.compile(r"^(\d+)_(\d+)\.txt$")
# Unlabeled reviews (train/unsup): never labeled rows; kept apart for unsupervised word vectors.
_ACL_UNSUP_RE = re.compile(r"(?:^|/)train/unsup/([^/]+\.txt)$")
# urls_pos.txt / urls_neg.txt: line N is the movie page of review id N. Reviews of one movie share
# names and plot words, so training keeps whole movies out of validation (the test set's movies
# are disjoint from train's too).
_ACL_URLS_RE = re.compile(r"(?:^|/)(train|test)/urls_(pos|neg)\.txt$")
_MOVIE_ID_RE = re.compile(r"/title/(tt\d+)")


# --------------------------------------------------------------------------------------------
# Labeled data (training)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabeledReviews:
    """Labeled reviews in a fixed order: raw text, label (1 pos / 0 neg), split and star rating."""

    texts: list[str]
    labels: np.ndarray  # int8, 1 positive / 0 negative
    splits: np.ndarray  # <U5: "train" | "test"
    ratings: np.ndarray  # int16 star rating from aclImdb file names; -1 unknown
    source: str
    fingerprint: str  # labeled_fingerprint(texts, labels, splits)
    skipped_empty: int = 0  # rows of the source skipped because their text was empty
    # Unlabeled texts that came with the data (aclImdb train/unsup). They never become rows;
    # training may use them to learn word vectors.
    unlabeled: list[str] = field(default_factory=list)
    # The movie each review is about ("" unknown), from aclImdb's urls files; None when the
    # source has no such information.
    groups: np.ndarray | None = None

    @classmethod
    def from_lists(
        cls,
        texts: Sequence[str],
        labels: Iterable[int],
        splits: Iterable[str] | None = None,
        ratings: Iterable[int] | None = None,
        *,
        source: str = "in memory",
        skipped_empty: int = 0,
        unlabeled: Sequence[str] | None = None,
        groups: Iterable[str] | None = None,
    ) -> LabeledReviews:
        """Build from plain lists (splits default to "train", ratings to -1) with its fingerprint."""
        texts = list(texts)
        n = len(texts)
        label_arr = np.asarray(list(labels), dtype=np.int8)
        split_arr = np.asarray(["train"] * n if splits is None else list(splits), dtype="<U5")
        rating_arr = np.asarray([-1] * n if ratings is None else list(ratings), dtype=np.int16)
        group_arr = None if groups is None else np.asarray(list(groups), dtype=object)
        if not len(label_arr) == len(split_arr) == len(rating_arr) == n:
            raise ValueError("texts, labels, splits and ratings must have the same length")
        if group_arr is not None and len(group_arr) != n:
            raise ValueError("groups must have one entry per text")
        if n and not np.isin(label_arr, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        if n and not np.isin(split_arr, SPLITS).all():
            raise ValueError("splits must be 'train' or 'test'")
        return cls(
            texts=texts,
            labels=label_arr,
            splits=split_arr,
            ratings=rating_arr,
            source=source,
            fingerprint=labeled_fingerprint(texts, label_arr, split_arr),
            skipped_empty=skipped_empty,
            unlabeled=list(unlabeled or []),
            groups=group_arr,
        )

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, mask_or_indices: Any) -> LabeledReviews:
        """Rows selected by a boolean mask or integer indices (in that order), new fingerprint."""
        index = np.asarray(mask_or_indices)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"mask has shape {index.shape}, expected ({len(self)},)")
            index = np.flatnonzero(index)
        else:
            index = index.astype(np.int64, copy=False).reshape(-1)
        texts = [self.texts[i] for i in index]
        labels = self.labels[index]
        splits = self.splits[index]
        return LabeledReviews(
            texts=texts,
            labels=labels,
            splits=splits,
            ratings=self.ratings[index],
            source=self.source,
            fingerprint=labeled_fingerprint(texts, labels, splits),
            skipped_empty=self.skipped_empty,
            unlabeled=self.unlabeled,
            groups=None if self.groups is None else self.groups[index],
        )

    def split(self, name: str) -> LabeledReviews:
        """The rows of one split, "train" or "test" (possibly none)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        return self.subset(self.splits == name)


def labeled_fingerprint(texts: Sequence[str], labels: Iterable[int], splits: Iterable[str]) -> str:
    """sha256 hex over (split, label, text) of every row, in order."""
    digest = hashlib.sha256(b"review-scorer labeled v1\n")
    for text, label, split in zip(texts, labels, splits, strict=True):
        raw = text.encode("utf-8", "surrogatepass")
        digest.update(f"{split}\t{int(label)}\t{len(raw)}\n".encode("ascii"))
        digest.update(raw)
    return digest.hexdigest()


def load_labeled(
    source: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
    sheet: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> LabeledReviews:
    """Load labeled reviews for training.

    ``source`` is one of: the word "imdb" (download the IMDB archive into the cache, once; write
    ``./imdb`` for a local folder of that name); an http(s) URL of an aclImdb-style archive or a
    labeled file; a .tar.gz/.tgz/.tar archive in the aclImdb layout (read straight from the
    archive); a folder in the aclImdb layout; or a labeled CSV/TSV/XLSX file. ``progress`` is only
    used while downloading.

    aclImdb rows come in a fixed order: train before test, neg before pos, then by numeric file id;
    train/unsup is never read. In a labeled file, rows with an empty text are skipped and counted
    in ``skipped_empty``; without a split column every row is "train".
    """
    if isinstance(source, str) and source.strip().lower() == "imdb":
        path = fetch_archive(IMDB_URL, cache_dir=_opt_path(cache_dir), progress=progress)
        return _load_aclimdb_archive(path, f"IMDB archive {IMDB_URL} (cached at {path})")
    if isinstance(source, str) and re.match(r"(?i)https?://", source.strip()):
        url = source.strip()
        path = fetch_archive(url, cache_dir=_opt_path(cache_dir), progress=progress)
        if path.name.lower().endswith(DELIMITED_SUFFIXES + XLSX_SUFFIXES):
            return _load_labeled_file(path, text_column, label_column, split_column, sheet,
                                      f"labeled file {url} (cached at {path})")
        return _load_aclimdb_archive(path, f"aclImdb archive {url} (cached at {path})")

    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(
            f"{path}: no such file or folder; pass an aclImdb folder or .tar.gz archive, a labeled "
            f"CSV/TSV/XLSX file, or 'imdb' to download the IMDB dataset"
        )
    if path.is_dir():
        return _load_aclimdb_dir(path)
    lower = path.name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return _load_aclimdb_archive(path, f"aclImdb archive {path}")
    if lower.endswith(DELIMITED_SUFFIXES + XLSX_SUFFIXES):
        return _load_labeled_file(path, text_column, label_column, split_column, sheet, None)
    raise InputError(
        f"{path}: unsupported training data; pass an aclImdb folder or .tar.gz archive, or a "
        f"labeled {SUPPORTED_FORMATS} file"
    )


def _opt_path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None


def _acl_sort_key(filename: str) -> tuple[int, int, str]:
    match = _ACL_NAME_RE.match(filename)
    return (0, int(match.group(1)), filename) if match else (1, 0, filename)


def _acl_rating(filename: str) -> int:
    match = _ACL_NAME_RE.match(filename)
    return int(match.group(2)) if match else -1


def _build_acl(
    groups: dict[tuple[str, str], list[tuple[str, bytes]]], source: str,
    unsup: list[tuple[str, bytes]] | None = None,
    urls: dict[tuple[str, str], bytes] | None = None,
) -> LabeledReviews:
    """Order the (split, label dir) groups and decode; skip empty texts."""
    texts: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    ratings: list[int] = []
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
                ratings.append(_acl_rating(filename))
                match = _ACL_NAME_RE.match(filename)
                number = int(match.group(1)) if match else -1
                movies.append(movie_of[number] if 0 <= number < len(movie_of) else "")
    unlabeled = []
    for _, raw in sorted(unsup or [], key=lambda item: _acl_sort_key(item[0])):
        text = raw.decode("utf-8", errors="replace")
        if text.strip():
            unlabeled.append(text)
    return LabeledReviews.from_lists(texts, labels, splits, ratings, source=source,
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


def _load_aclimdb_archive(path: Path, source: str) -> LabeledReviews:
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
            f"{path}: cannot read the archive ({_one_line(exc)}); it may be corrupt or truncated: "
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


def _load_aclimdb_dir(path: Path) -> LabeledReviews:
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
                raise InputError(f"{folder}: cannot read ({_one_line(exc)})") from exc
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


def _load_labeled_file(
    path: Path,
    text_column: str | None,
    label_column: str | None,
    split_column: str | None,
    sheet: str | None,
    source: str | None,
) -> LabeledReviews:
    """Read a labeled CSV/TSV/XLSX file; every label must be valid, empty texts are skipped."""
    with _open_reviews(path, text_column=text_column, label_column=label_column,
                       id_column=None, sheet=sheet, chunk_rows=5000, strict_labels=True) as rf:
        info = rf.info
        if info.label_column is None:
            raise InputError(
                f"{path}: no label column found (columns: {_column_list(info.columns)}); name it "
                f"'label' or 'sentiment', or pass --label-column NAME"
            )
        exclude = {info.text_column, info.label_column}
        if split_column is not None:
            split_col: str | None = _resolve_column(path, info.columns, split_column,
                                                    "--split-column")
        else:
            split_col = _find_by_name(info.columns, SPLIT_COLUMN_NAMES, exclude)
        texts: list[str] = []
        labels: list[int] = []
        splits: list[str] = []
        skipped = 0
        for chunk in rf.chunks():
            assert chunk.labels is not None
            split_values = chunk.frame[split_col].tolist() if split_col else None
            for i, text in enumerate(chunk.texts):
                if text is None or not text.strip():
                    skipped += 1
                    continue
                row = int(chunk.rows[i])
                label = int(chunk.labels[i])
                if label < 0:
                    raise InputError(
                        f"{path}: row {row}: the label in column '{info.label_column}' is empty; "
                        f"fill it in ({LABEL_HINT}) or remove the row"
                    )
                split = "train"
                if split_values is not None:
                    split = split_values[i].strip().lower()
                    if split not in SPLITS:
                        raise InputError(
                            f"{path}: row {row}: split {_show(split_values[i])} in column "
                            f"'{split_col}' is not 'train' or 'test'; fix it or remove the row"
                        )
                texts.append(text)
                labels.append(label)
                splits.append(split)
    if not texts:
        raise InputError(f"{path}: no labeled reviews (every text is empty or there are no rows)")
    where = f" sheet '{info.sheet}'" if info.sheet else ""
    description = source or f"labeled file {path}{where}"
    description += f" (text column '{info.text_column}', labels '{info.label_column}')"
    return LabeledReviews.from_lists(texts, labels, splits, source=description,
                                     skipped_empty=skipped)


# --------------------------------------------------------------------------------------------
# Review files (scoring)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFileInfo:
    """What open_reviews found out about a review file."""

    path: Path
    format: str  # "csv" | "xlsx"
    delimiter: str | None  # None for xlsx
    encoding: str | None  # "utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1"; None for xlsx
    encoding_fallback: bool  # True when the file was not valid UTF-8 and was read as cp1252/latin-1
    sheet: str | None  # the sheet read (xlsx only)
    columns: tuple[str, ...]  # header names in file order (duplicates made unique: "name.1")
    text_column: str
    label_column: str | None
    id_column: str | None
    text_column_guessed: bool  # chosen by content, not by name


@dataclass
class ReviewChunk:
    """A run of consecutive rows of a review file."""

    frame: pd.DataFrame  # every original column, values as str ("" for empty cells), file order
    rows: np.ndarray  # int64, 1-based record number: the first data row after the header is 1
    texts: list[str | None]  # the text column; None for a missing cell ("" stays "")
    labels: np.ndarray | None  # int8 1/0, -1 for an empty label cell; None without a label column

    def __len__(self) -> int:
        return len(self.rows)


class ReviewFile:
    """An opened review file: ``info`` now, its rows in order through ``chunks()``.

    Use it as a context manager (or call ``close()``) to release the file if you stop early.
    """

    def __init__(
        self,
        info: ReviewFileInfo,
        first: pd.DataFrame,
        rest: Generator[pd.DataFrame, None, None],
        reopen: Callable[[], Generator[pd.DataFrame, None, None]],
    ):
        self.info = info
        self._opened: tuple[pd.DataFrame, Generator[pd.DataFrame, None, None]] | None = (
            first, rest)
        self._reopen = reopen

    def chunks(self) -> Iterator[ReviewChunk]:
        """Yield every row, in file order, in chunks (each call after the first re-reads the file).

        Raises InputError for a malformed row or a bad label value, naming the row.
        """
        if self._opened is not None:
            first, rest = self._opened
            self._opened = None
            return self._iter_chunks(itertools.chain([first], rest), rest)
        rest = self._reopen()
        return self._iter_chunks(rest, rest)

    def _iter_chunks(
        self, frames: Iterator[pd.DataFrame], rest: Generator[pd.DataFrame, None, None]
    ) -> Iterator[ReviewChunk]:
        info = self.info
        start = 1
        try:
            for raw in frames:
                if raw.empty:
                    continue
                rows = np.arange(start, start + len(raw), dtype=np.int64)
                start += len(raw)
                texts = [v if isinstance(v, str) else None for v in raw[info.text_column].tolist()]
                frame = raw
                if any(map(pd.api.types.is_object_dtype, raw.dtypes)):
                    # xlsx cells arrive as objects with None for empty: make them all str
                    frame = raw.fillna("").astype(str)
                labels = None
                if info.label_column is not None:
                    labels = _parse_labels(frame[info.label_column].tolist(), rows, info.path,
                                           info.label_column)
                yield ReviewChunk(frame=frame.reset_index(drop=True), rows=rows, texts=texts,
                                  labels=labels)
        finally:
            rest.close()

    def close(self) -> None:
        """Release the underlying file (only needed when chunks() was not read to the end)."""
        if self._opened is not None:
            self._opened[1].close()
            self._opened = None

    def __enter__(self) -> ReviewFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_reviews(
    path: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    id_column: str | None = None,
    sheet: str | None = None,
    chunk_rows: int = 5000,
) -> ReviewFile:
    """Open a CSV/TSV/XLSX file of reviews for scoring and work out its layout.

    Delimiter and encoding are detected (UTF-8, UTF-8 with BOM, UTF-16 with BOM, else cp1252 or
    latin-1 with ``encoding_fallback`` set). The text column is found by name (review, text,
    comment, ...) or, failing that, as the one clearly free-text column; label and id columns by
    name. An auto-detected label column whose first rows are not labels is ignored; a given one
    must hold valid labels. Rows are read lazily, ``chunk_rows`` at a time; every row is kept, in
    order, including empty ones (only all-empty rows at the very end of the file are dropped).

    Raises InputError for a missing, empty, binary, corrupt or unsupported file, an unknown
    column or sheet name, or when no column looks like review text.
    """
    return _open_reviews(Path(path), text_column=text_column, label_column=label_column,
                         id_column=id_column, sheet=sheet, chunk_rows=chunk_rows,
                         strict_labels=False)


def _open_reviews(
    path: Path,
    *,
    text_column: str | None,
    label_column: str | None,
    id_column: str | None,
    sheet: str | None,
    chunk_rows: int,
    strict_labels: bool,
) -> ReviewFile:
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder; pass a {SUPPORTED_FORMATS} file")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(
            f"{path}: old-style .xls workbooks are not supported; save it as .xlsx or CSV in Excel"
        )
    if suffix not in DELIMITED_SUFFIXES + XLSX_SUFFIXES:
        shown = f"'{suffix}' files are" if suffix else "files without an extension are"
        raise InputError(f"{path}: {shown} not supported; use {SUPPORTED_FORMATS}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_one_line(exc)})") from exc
    if size == 0:
        raise InputError(f"{path} is empty (0 bytes); it needs a header row and one review per row")

    frames: Generator[pd.DataFrame, None, None]
    if suffix in XLSX_SUFFIXES:
        workbook = _load_workbook(path)
        try:
            sheet_name = _pick_sheet(path, workbook, sheet)
        except BaseException:
            workbook.close()
            raise

        def reopen() -> Generator[pd.DataFrame, None, None]:
            return _iter_xlsx_frames(path, sheet_name, chunk_rows, _load_workbook(path))

        frames = _iter_xlsx_frames(path, sheet_name, chunk_rows, workbook)
        fmt, delimiter, encoding, fallback = "xlsx", None, None, False
    else:
        encoding, fallback, delimiter = _sniff_delimited(path)

        def reopen() -> Generator[pd.DataFrame, None, None]:
            return _iter_csv_frames(path, delimiter, encoding, chunk_rows)

        frames = reopen()
        fmt, sheet_name = "csv", None

    try:
        first = next(frames)
        info = _describe(path, first, fmt=fmt, delimiter=delimiter, encoding=encoding,
                         fallback=fallback, sheet=sheet_name, text_column=text_column,
                         label_column=label_column, id_column=id_column,
                         strict_labels=strict_labels)
    except BaseException:
        frames.close()
        raise
    return ReviewFile(info, first, frames, reopen)


def _describe(
    path: Path,
    first: pd.DataFrame,
    *,
    fmt: str,
    delimiter: str | None,
    encoding: str | None,
    fallback: bool,
    sheet: str | None,
    text_column: str | None,
    label_column: str | None,
    id_column: str | None,
    strict_labels: bool,
) -> ReviewFileInfo:
    """Pick the text, label and id columns from the header and the first chunk."""
    columns = tuple(str(c) for c in first.columns)
    text = _resolve_column(path, columns, text_column, "--text-column") if text_column else None
    label = _resolve_column(path, columns, label_column, "--label-column") if label_column else None
    ident = _resolve_column(path, columns, id_column, "--id-column") if id_column else None
    given = {c for c in (text, label, ident) if c}

    if label is None:
        label = _find_by_name(columns, LABEL_COLUMN_NAMES, given)
        if label is not None and not strict_labels and not _looks_like_labels(first[label]):
            log.info("%s: column '%s' does not hold pos/neg labels; not using it", path, label)
            label = None
    if ident is None:
        ident = _find_by_name(columns, ID_COLUMN_NAMES, given | {label})
    guessed = False
    if text is None:
        text = _find_by_name(columns, TEXT_COLUMN_NAMES, {label, ident})
    if text is None:
        text = _guess_text_column(path, first, [c for c in columns if c not in {label, ident}])
        guessed = True
        log.info("%s: using column '%s' as the review text (guessed from its content)", path,
                 text)
    if label == text:
        raise InputError(f"{path}: the text and label columns are both '{text}'; pass different "
                         f"--text-column and --label-column")
    return ReviewFileInfo(
        path=path, format=fmt, delimiter=delimiter, encoding=encoding, encoding_fallback=fallback,
        sheet=sheet, columns=columns, text_column=text, label_column=label, id_column=ident,
        text_column_guessed=guessed,
    )


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", str(name)).lower()


def _column_list(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns) if columns else "none"


def _resolve_column(path: Path, columns: Sequence[str], wanted: str, flag: str) -> str:
    """The column named ``wanted`` (exactly, else ignoring case/spaces/underscores, if unique)."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if _norm_name(c) == _norm_name(wanted)]
    if len(matches) == 1:
        return matches[0]
    raise InputError(
        f"{path}: no column {wanted!r} (from {flag}); the columns are: {_column_list(columns)}"
    )


def _find_by_name(
    columns: Sequence[str], names: Sequence[str], exclude: set[str | None]
) -> str | None:
    normalized = [(c, _norm_name(c)) for c in columns if c not in exclude]
    for wanted in names:
        for column, norm in normalized:
            if norm == wanted:
                return column
    return None


def _is_number(value: str) -> bool:
    try:
        float(value.replace(",", ""))
    except ValueError:
        return False
    return True


def _guess_text_column(path: Path, first: pd.DataFrame, candidates: Sequence[str]) -> str:
    """The one column that clearly holds free text (long, wordy, not numeric) in the first rows."""
    scored: list[tuple[float, str]] = []
    for column in candidates:
        values = [v for v in first[column].tolist() if isinstance(v, str) and v.strip()]
        if not values:
            continue
        if sum(_is_number(v) for v in values) > 0.2 * len(values):
            continue
        mean_len = sum(len(v) for v in values) / len(values)
        mean_words = sum(len(v.split()) for v in values) / len(values)
        only_column = len(first.columns) == 1
        if only_column or (mean_words >= 2.0 and mean_len >= 8.0):
            scored.append((mean_len, column))
    scored.sort(key=lambda item: -item[0])
    if len(scored) == 1 or (len(scored) > 1 and scored[0][0] >= 1.5 * scored[1][0]):
        return scored[0][1]
    if len(scored) > 1:
        raise InputError(
            f"{path}: columns {scored[0][1]!r} and {scored[1][1]!r} both look like review text; "
            f"pass --text-column NAME"
        )
    raise InputError(
        f"{path}: cannot tell which column holds the review text (columns: "
        f"{_column_list(list(first.columns))}); pass --text-column NAME"
    )


def _label_of(value: object) -> int | None:
    """1, 0, -1 (empty) or None (not a label)."""
    key = value.strip().lower() if isinstance(value, str) else ""
    label = _LABEL_VALUES.get(key)
    if label is not None:
        return label
    try:
        number = float(key)
    except ValueError:
        return None
    if number in (0.0, 1.0):
        return int(number)
    return None


def _looks_like_labels(values: pd.Series) -> bool:
    """True when every cell is a label or empty (a column with no values yet counts as labels)."""
    return all(_label_of(v) is not None for v in values.tolist())


def _parse_labels(values: list[object], rows: np.ndarray, path: Path, column: str) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int8)
    for i, value in enumerate(values):
        label = _label_of(value)
        if label is None:
            raise InputError(
                f"{path}: row {int(rows[i])}: label {_show(value)} in column '{column}' is not one "
                f"of {LABEL_HINT}; fix or remove it"
            )
        out[i] = label
    return out


def _show(value: object, limit: int = 60) -> str:
    text = str(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return repr(text)


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# ---- delimited text -------------------------------------------------------------------------


def _sniff_delimited(path: Path) -> tuple[str, bool, str]:
    """(encoding, encoding_fallback, delimiter) of a delimited text file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            complete = not fh.read(1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({_one_line(exc)})") from exc
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding, fallback = "utf-16", False
    elif b"\x00" in head:
        hint = " (it looks like an Excel workbook: give it the .xlsx extension)" if head.startswith(
            b"PK\x03\x04") else ""
        raise InputError(f"{path}: this is a binary file, not delimited text{hint}; pass a "
                         f"{SUPPORTED_FORMATS} file")
    elif head.startswith(codecs.BOM_UTF8):
        encoding, fallback = "utf-8-sig", False
    elif _decodes(path, "utf-8"):
        encoding, fallback = "utf-8", False
    elif _decodes(path, "cp1252"):
        encoding, fallback = "cp1252", True
    else:
        encoding, fallback = "latin-1", True
    if fallback:
        log.info("%s is not valid UTF-8; reading it as %s", path, encoding)
    sample = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=complete)
    sample = sample.lstrip("\ufeff")
    if path.suffix.lower() in (".tsv", ".tab"):
        return encoding, fallback, "\t"
    return encoding, fallback, _choose_delimiter(sample, complete)


def _decodes(path: Path, encoding: str) -> bool:
    """True when the whole file decodes in ``encoding`` (read in blocks; memory stays flat)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_SCAN_BYTES):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _choose_delimiter(sample: str, complete: bool) -> str:
    """The delimiter under which the header has several fields and the rows agree with it.

    Parsing the sample with each candidate (quotes respected, so multi-line fields are fine) is
    more reliable here than csv.Sniffer, which works line by line and is thrown off by long reviews.
    """
    best: tuple[tuple[bool, float, int], str] | None = None
    for delimiter in _DELIMITERS:
        try:
            records = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter,
                                      quotechar='"', doublequote=True, strict=False))
        except csv.Error:
            continue
        if not complete and len(records) > 1:
            records = records[:-1]  # the sample may end inside the last record
        records = [r for r in records if r]
        if not records:
            continue
        width = len(records[0])
        body = records[1:]
        agree = sum(len(r) == width for r in body) / len(body) if body else 1.0
        # A delimiter that splits the header wins (a malformed row then fails loudly instead of
        # the file being read as one column); among those, the one the rows agree with.
        key = (width > 1, agree, width)
        if best is None or key > best[0]:
            best = (key, delimiter)
    return best[1] if best else ","


def _iter_csv_frames(
    path: Path, delimiter: str, encoding: str, chunk_rows: int
) -> Generator[pd.DataFrame, None, None]:
    """DataFrames of str (no NaN), chunk_rows rows each; at least one frame (maybe empty)."""
    try:
        with warnings.catch_warnings():
            # A first row longer than the header would otherwise lose its extra fields silently.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(
                path, sep=delimiter, encoding=encoding, header=0, dtype=str,
                keep_default_na=False, na_filter=False, skip_blank_lines=False, index_col=False,
                quotechar='"', doublequote=True, engine="c", chunksize=chunk_rows,
            )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{path}: no header row; the first line must name the columns") from exc
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error) as exc:
        raise _malformed(path, exc) from exc
    with reader:
        previous: pd.DataFrame | None = None
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", pd.errors.ParserWarning)
                    frame = next(reader)
            except StopIteration:
                break
            except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error) as exc:
                raise _malformed(path, exc) from exc
            if previous is not None:
                yield previous
            previous = frame
    if previous is None:
        return
    yield _drop_trailing_empty(previous)


def _malformed(path: Path, exc: BaseException) -> InputError:
    reason = _one_line(exc).replace("Error tokenizing data. C error: ", "")
    if "Length of header" in reason:
        reason = "the first row has more fields than the header"
    return InputError(
        f"{path}: malformed delimited text ({reason}); check the quoting and the number of "
        f"fields on that line"
    )


def _drop_trailing_empty(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop all-empty rows at the end (blank lines after the last record)."""
    if frame.empty:
        return frame
    filled = frame.fillna("").astype(str).to_numpy()
    nonempty = np.flatnonzero((filled != "").any(axis=1))
    keep = int(nonempty[-1]) + 1 if len(nonempty) else 0
    return frame.iloc[:keep] if keep < len(frame) else frame


# ---- xlsx -----------------------------------------------------------------------------------


def _load_workbook(path: Path) -> Any:
    import openpyxl  # only XLSX input needs it

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl reports damage in many exception types
        raise InputError(
            f"{path}: not a readable .xlsx workbook ({_one_line(exc)}); save it again from Excel "
            f"as .xlsx, or export it as CSV"
        ) from exc


def _pick_sheet(path: Path, workbook: Any, sheet: str | None) -> str:
    """The sheet to read: ``sheet`` (by name) or the first worksheet."""
    names = [ws.title for ws in workbook.worksheets]
    if not names:
        raise InputError(f"{path}: the workbook has no worksheets")
    if sheet is None:
        return names[0]
    if sheet in names:
        return sheet
    folded = [n for n in names if n.strip().lower() == sheet.strip().lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(
        f"{path}: no sheet {sheet!r}; the sheets are: {_column_list(names)}; pass one of them "
        f"with --sheet"
    )


def _cell_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _unique_names(names: Sequence[str | None]) -> list[str]:
    """Header names as text: blanks become 'Unnamed: i', repeats 'name.1', 'name.2' (as pandas)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        base = name if name not in (None, "") else f"Unnamed: {i}"
        assert base is not None
        candidate, n = base, 0
        while candidate in seen:
            n += 1
            candidate = f"{base}.{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def _iter_xlsx_frames(
    path: Path, sheet: str, chunk_rows: int, workbook: Any
) -> Generator[pd.DataFrame, None, None]:
    """DataFrames (object dtype, None for empty cells) of one sheet, chunk_rows rows each; at
    least one frame (maybe empty). Closes the workbook when done."""
    try:
        rows = workbook[sheet].iter_rows(values_only=True)
        header: list[str | None] | None = None
        for cells in rows:
            values = [_cell_text(v) for v in cells]
            if any(v not in (None, "") for v in values):
                header = values
                break
        if header is None:
            raise InputError(f"{path}: sheet '{sheet}' is empty; it needs a header row and one "
                             f"review per row")
        while header and header[-1] in (None, ""):
            header.pop()
        columns = _unique_names(header)
        width = len(columns)
        batch: list[list[str | None]] = []
        blank_run: list[list[str | None]] = []
        yielded = False
        for cells in rows:
            values = [_cell_text(v) for v in itertools.islice(cells, width)]
            values.extend([None] * (width - len(values)))
            if all(v in (None, "") for v in values):
                blank_run.append(values)  # kept only if a non-empty row follows
                continue
            batch.extend(blank_run)
            blank_run.clear()
            batch.append(values)
            while len(batch) >= chunk_rows:
                yield pd.DataFrame(batch[:chunk_rows], columns=columns, dtype=object)
                del batch[:chunk_rows]
                yielded = True
        if batch or not yielded:
            yield pd.DataFrame(batch, columns=columns, dtype=object)
    except InputError:
        raise
    except (OSError, zlib.error, KeyError, ValueError) as exc:
        raise InputError(f"{path}: cannot read sheet '{sheet}' ({_one_line(exc)}); the workbook "
                         f"may be damaged: save it again from Excel or export it as CSV") from exc
    finally:
        with contextlib.suppress(Exception):
            workbook.close()
