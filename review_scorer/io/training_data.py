"""load_labeled: one door for training data (IMDB download, URL, aclImdb archive/folder, file)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from review_scorer.errors import InputError
from review_scorer.io.aclimdb import load_aclimdb_archive, load_aclimdb_dir
from review_scorer.io.columns import ColumnRequest
from review_scorer.io.common import ARCHIVE_SUFFIXES, REVIEW_SUFFIXES, SUPPORTED_FORMATS
from review_scorer.io.download import IMDB_URL, fetch_archive
from review_scorer.io.labeled import LabeledReviews, load_labeled_file


def load_labeled(
    source: str | os.PathLike[str],
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    split_column: str | None = None,
    rating_column: str | None = None,
    sheet: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    keep_unlabeled: bool = False,
) -> LabeledReviews:
    """Load labeled reviews for training.

    ``source`` is one of: the word "imdb" (download the IMDB archive into the cache, once; write
    ``./imdb`` for a local folder of that name); an http(s) URL of an aclImdb-style archive or a
    labeled file; a .tar.gz/.tgz/.tar archive in the aclImdb layout (read straight from the
    archive); a folder in the aclImdb layout; or a labeled CSV/TSV/XLSX/JSONL/Parquet file (the
    labels from a label column, or from a star-rating column, whose middle ratings are skipped).
    ``progress`` is only used while downloading. ``keep_unlabeled``: in a labeled file, rows
    whose label cell is empty are kept as ``unlabeled`` texts instead of being an error.

    aclImdb rows come in a fixed order: train before test, neg before pos, then by numeric file id;
    train/unsup is never read. In a labeled file, rows with an empty text are skipped and counted
    in ``skipped_empty``; without a split column every row is "train".
    """
    request = ColumnRequest(text=text_column, label=label_column, rating=rating_column,
                            id="", date="", group="")
    if isinstance(source, str) and source.strip().lower() == "imdb":
        path = fetch_archive(IMDB_URL, cache_dir=_opt_path(cache_dir), progress=progress)
        return load_aclimdb_archive(path, f"IMDB archive {IMDB_URL} (cached at {path})")
    if isinstance(source, str) and re.match(r"(?i)https?://", source.strip()):
        url = source.strip()
        path = fetch_archive(url, cache_dir=_opt_path(cache_dir), progress=progress)
        if path.name.lower().endswith(REVIEW_SUFFIXES):
            return load_labeled_file(path, request, split_column, sheet,
                                     f"labeled file {url} (cached at {path})",
                                     keep_unlabeled=keep_unlabeled)
        return load_aclimdb_archive(path, f"aclImdb archive {url} (cached at {path})")

    path = Path(source).expanduser()
    if not path.exists():
        raise InputError(
            f"{path}: no such file or folder; pass an aclImdb folder or .tar.gz archive, a labeled "
            f"review file, or 'imdb' to download the IMDB dataset"
        )
    if path.is_dir():
        return load_aclimdb_dir(path)
    lower = path.name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        return load_aclimdb_archive(path, f"aclImdb archive {path}")
    if lower.endswith(REVIEW_SUFFIXES):
        return load_labeled_file(path, request, split_column, sheet, None,
                                 keep_unlabeled=keep_unlabeled)
    raise InputError(
        f"{path}: unsupported training data; pass an aclImdb folder or .tar.gz archive, or a "
        f"labeled {SUPPORTED_FORMATS} file"
    )


def _opt_path(value: str | os.PathLike[str] | None) -> Path | None:
    return Path(value) if value is not None else None
