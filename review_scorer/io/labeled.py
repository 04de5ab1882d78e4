"""Labeled reviews for training: the LabeledReviews schema and labeled review files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from review_scorer.errors import InputError
from review_scorer.io.columns import SPLIT_COLUMN_NAMES, ColumnRequest, find_by_name, resolve_column
from review_scorer.io.common import column_list, show
from review_scorer.io.labels import LABEL_HINT

SPLITS = ("train", "test")


@dataclass(frozen=True, eq=False)
class LabeledReviews:
    """Labeled reviews in a fixed order: raw text, label (1 pos / 0 neg) and split."""

    texts: list[str]
    labels: np.ndarray  # int8, 1 positive / 0 negative
    splits: np.ndarray  # <U5: "train" | "test"
    source: str
    fingerprint: str  # labeled_fingerprint(texts, labels, splits)
    skipped_empty: int = 0  # rows of the source skipped because their text was empty
    # Unlabeled texts that came with the data (aclImdb train/unsup). They never become rows;
    # training may use them to learn word vectors.
    unlabeled: list[str] = field(default_factory=list)
    # The movie each review is about ("" unknown), from aclImdb's urls files; None when the
    # source has no such information.
    groups: np.ndarray | None = None
    skipped_neutral: int = 0  # rows skipped because their star rating is in the middle

    def left_out_note(self, without_words: int = 0) -> str | None:
        """One line on the rows that did not become labeled reviews (None when none were left
        out); `without_words`: labeled texts that training found no word in."""
        parts = [f"{count:,} {what}" for count, what in (
            (self.skipped_empty, "with an empty text"),
            (without_words, "whose text has no words (only emoji, markup or punctuation)"),
            (self.skipped_neutral, "with a neutral (middle) star rating")) if count]
        return f"rows left out of training: {'; '.join(parts)}" if parts else None

    @classmethod
    def from_lists(
        cls,
        texts: Sequence[str],
        labels: Iterable[int],
        splits: Iterable[str] | None = None,
        *,
        source: str = "in memory",
        skipped_empty: int = 0,
        unlabeled: Sequence[str] | None = None,
        groups: Iterable[str] | None = None,
        skipped_neutral: int = 0,
    ) -> LabeledReviews:
        """Build from plain lists (splits default to "train") with its fingerprint."""
        texts = list(texts)
        n = len(texts)
        label_arr = np.asarray(list(labels), dtype=np.int8)
        split_arr = np.asarray(["train"] * n if splits is None else list(splits), dtype="<U5")
        group_arr = None if groups is None else np.asarray(list(groups), dtype=object)
        if not len(label_arr) == len(split_arr) == n:
            raise ValueError("texts, labels and splits must have the same length")
        if group_arr is not None and len(group_arr) != n:
            raise ValueError("groups must have one entry per text")
        if n and not np.isin(label_arr, (0, 1)).all():
            raise ValueError("labels must be 0 or 1")
        if n and not np.isin(split_arr, SPLITS).all():
            raise ValueError("splits must be 'train' or 'test'")
        return cls(texts=texts, labels=label_arr, splits=split_arr, source=source,
                   fingerprint=labeled_fingerprint(texts, label_arr, split_arr),
                   skipped_empty=skipped_empty, unlabeled=list(unlabeled or []),
                   groups=group_arr, skipped_neutral=skipped_neutral)

    def __len__(self) -> int:
        return len(self.texts)

    def split(self, name: str) -> LabeledReviews:
        """The rows of one split, "train" or "test" (possibly none), with their own fingerprint."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        index = np.flatnonzero(self.splits == name)
        texts = [self.texts[i] for i in index]
        return LabeledReviews(
            texts=texts, labels=self.labels[index], splits=self.splits[index], source=self.source,
            fingerprint=labeled_fingerprint(texts, self.labels[index], self.splits[index]),
            skipped_empty=self.skipped_empty, unlabeled=self.unlabeled,
            groups=None if self.groups is None else self.groups[index],
            skipped_neutral=self.skipped_neutral,
        )


def labeled_fingerprint(texts: Sequence[str], labels: Iterable[int], splits: Iterable[str]) -> str:
    """sha256 hex over (split, label, text) of every row, in order."""
    digest = hashlib.sha256(b"review-scorer labeled v1\n")
    for text, label, split in zip(texts, labels, splits, strict=True):
        raw = text.encode("utf-8", "surrogatepass")
        digest.update(f"{split}\t{int(label)}\t{len(raw)}\n".encode("ascii"))
        digest.update(raw)
    return digest.hexdigest()


@dataclass
class _Rows:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    skipped: int = 0
    neutral: int = 0
    unlabeled: list[str] = field(default_factory=list)


def load_labeled_file(path: Path, request: ColumnRequest, split_column: str | None,
                      sheet: str | None, source: str | None, *,
                      keep_unlabeled: bool = False) -> LabeledReviews:
    """Read a labeled review file; every label must be valid, empty texts and neutral star
    ratings are skipped (and counted). With ``keep_unlabeled``, a row whose label cell is empty
    goes to ``unlabeled`` instead of being an error (fine-tuning learns the file's class mix from
    them)."""
    from review_scorer.io.reviews import open_review_file

    with open_review_file(path, request, sheet=sheet, chunk_rows=5000,
                          strict_labels=True) as review_file:
        info = review_file.info
        if info.label_column is None and not info.label_from_rating:
            raise InputError(
                f"{path}: no label column found (columns: {column_list(info.columns)}); name it "
                f"'label' or 'sentiment', or pass --label-column NAME"
            )
        exclude = {info.text_column, info.label_column, info.rating_column}
        split_col = (resolve_column(path, info.columns, split_column, "--split-column")
                     if split_column else
                     next(iter(find_by_name(info.columns, SPLIT_COLUMN_NAMES, exclude)), None))
        rows = _Rows()
        for chunk in review_file.chunks():
            _add_chunk(path, info, chunk, split_col, rows, keep_unlabeled)
    if not rows.texts and rows.unlabeled:
        column = info.label_column or info.rating_column
        raise InputError(f"{path}: no row has a label in column '{column}' ({len(rows.unlabeled):,} "
                         f"rows without one); label some reviews ({LABEL_HINT}), at least 50 of each "
                         "class")
    if not rows.texts:
        raise InputError(f"{path}: no labeled reviews (every text is empty or there are no rows)")
    where = f" sheet '{info.sheet}'" if info.sheet else ""
    labels_from = info.label_column or f"ratings '{info.rating_column}'"
    description = (source or f"labeled file {path}{where}") + (
        f" (text column '{info.text_column}', labels {labels_from!s})")
    return LabeledReviews.from_lists(rows.texts, rows.labels, rows.splits, source=description,
                                     skipped_empty=rows.skipped, skipped_neutral=rows.neutral,
                                     unlabeled=rows.unlabeled)


def _add_chunk(path: Path, info, chunk, split_col: str | None, rows: _Rows,
               keep_unlabeled: bool = False) -> None:
    assert chunk.labels is not None
    split_values = chunk.frame[split_col].tolist() if split_col else None
    for i, text in enumerate(chunk.texts):
        if text is None or not text.strip():
            rows.skipped += 1
            continue
        row = int(chunk.rows[i])
        if chunk.neutral is not None and chunk.neutral[i]:
            rows.neutral += 1
            continue
        label = int(chunk.labels[i])
        if label < 0 and keep_unlabeled and _label_cell_empty(info, chunk, i):
            rows.unlabeled.append(text)
            continue
        if label < 0:
            raise _bad_label(path, info, chunk, i, row)
        split = "train"
        if split_values is not None:
            split = split_values[i].strip().lower()
            if split not in SPLITS:
                raise InputError(
                    f"{path}: row {row}: split {show(split_values[i])} in column "
                    f"'{split_col}' is not 'train' or 'test'; fix it or remove the row"
                )
        rows.texts.append(text)
        rows.labels.append(label)
        rows.splits.append(split)


def _label_cell_empty(info, chunk, i: int) -> bool:
    column = info.label_column or info.rating_column
    return not str(chunk.frame[column].iloc[i]).strip()


def _bad_label(path: Path, info, chunk, i: int, row: int) -> InputError:
    column = info.label_column or info.rating_column
    value = chunk.frame[column].iloc[i]
    if not value.strip():
        return InputError(f"{path}: row {row}: the label in column '{column}' is empty; fill it "
                          f"in ({LABEL_HINT}) or remove the row")
    if info.label_column is None:
        return InputError(f"{path}: row {row}: rating {show(value)} in column '{column}' is not "
                          f"a rating out of {info.rating_scale}; fix or remove it")
    return InputError(f"{path}: row {row}: label {show(value)} in column '{column}' is not one of "
                      f"{LABEL_HINT}; fix or remove it")
