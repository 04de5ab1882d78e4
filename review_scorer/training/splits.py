"""Train / validation / test splits: movie-disjoint for aclImdb, stratified otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from review_scorer.config import TrainConfig
from review_scorer.errors import InputError


@dataclass(frozen=True)
class Splits:
    """Row indices of each part of the labeled data, and how validation was held out."""

    fit: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_kind: str  # "movie-disjoint" | "stratified random"

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.fit), "validation": len(self.validation), "test": len(self.test)}


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): held_out takes `fraction` of each class, chosen by seed.

    scikit-learn's stratified split does the work when every class can give at least one row
    to each side; a class with a single row (tiny data) stays on the kept side, where
    scikit-learn would refuse the whole split.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    index = np.arange(len(labels))
    classes, counts = np.unique(labels, return_counts=True)
    splittable = classes[counts > 1]
    pool = index[np.isin(labels, splittable)]
    held = np.array([], dtype=np.int64)
    if len(pool) and len(splittable):
        n_held = max(len(splittable), round(len(pool) * fraction))
        n_held = min(n_held, len(pool) - len(splittable))
        if n_held >= len(splittable):
            _, held = train_test_split(pool, test_size=n_held, random_state=seed,
                                       stratify=labels[pool])
    held_out = np.sort(np.asarray(held, dtype=np.int64))
    return np.setdiff1d(index, held_out), held_out


def grouped_split(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int, *, tries: int = 50
) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices (kept, held_out) with whole groups (movies) held out, about `fraction` of rows.

    Whole movies are drawn in a seeded random order until the held-out part is large enough; a
    draw that leaves either side without both classes is redrawn (scikit-learn's
    GroupShuffleSplit has no such guarantee). None when no draw works (a handful of one-sided
    movies, say): the caller falls back to a stratified split.
    """
    labels = np.asarray(labels)
    unique, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sizes = np.bincount(inverse, minlength=len(unique))
    target = max(1, round(len(labels) * fraction))
    rng = np.random.default_rng(seed)
    for _ in range(tries):
        order = rng.permutation(len(unique))
        take = order[: int(np.searchsorted(np.cumsum(sizes[order]), target)) + 1]
        held_mask = np.isin(inverse, take)
        held, kept = np.flatnonzero(held_mask), np.flatnonzero(~held_mask)
        if len(np.unique(labels[held])) == 2 and len(np.unique(labels[kept])) == 2:
            return kept, held
    return None


def holdout_split(reviews, idx: np.ndarray, fraction: float, seed: int):
    """(kept indices, held-out indices, kind) carved from idx.

    Movie-disjoint when the data says which movie each review is about (IMDB's test movies are
    disjoint from train's, so a held-out part sharing movies with training overstates accuracy
    and favours memorising names); otherwise a stratified random slice.
    """
    labels = np.asarray(reviews.labels)[idx]
    groups = reviews.groups
    split = None
    if groups is not None and all(groups[idx]):
        split = grouped_split(labels, groups[idx], fraction, seed)
    kind = "movie-disjoint" if split is not None else "stratified random"
    if split is None:
        split = stratified_split(labels, fraction, seed)
    return idx[split[0]], idx[split[1]], kind


def stratified_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most `size` indices keeping the class balance, in their original order."""
    if size >= len(labels):
        return np.arange(len(labels))
    _, picked = stratified_split(labels, size / len(labels), seed)
    return picked


def make_splits(reviews, config: TrainConfig, *, limit: int | None = None) -> Splits:
    """Fit / validation / test indices of labeled reviews, each with both classes.

    Without a "test" split (a labeled file, or train-only data) a seeded slice is held out as
    the test set, movie-disjoint where movies are known.
    """
    labels = np.asarray(reviews.labels, dtype=np.int8)
    splits = np.asarray(reviews.splits).astype(str)
    train_idx = np.flatnonzero(splits == "train")
    test_idx = np.flatnonzero(splits == "test")
    if len(test_idx) == 0:
        train_idx, test_idx, _ = holdout_split(reviews, train_idx, config.test_fraction,
                                               config.seed + 1)
    if limit is not None:
        train_idx = train_idx[stratified_sample(labels[train_idx], limit, config.seed + 2)]
        test_idx = test_idx[stratified_sample(labels[test_idx], limit, config.seed + 3)]
    fit_idx, val_idx, kind = validation_split(reviews, train_idx, config)
    for part, idx in (("training", fit_idx), ("validation", val_idx), ("test", test_idx)):
        if len(idx) == 0 or len(np.unique(labels[idx])) < 2:
            raise InputError(
                f"{reviews.source}: the {part} split needs reviews of both classes "
                f"(it has {len(idx)}); use more labeled data or a larger --limit"
            )
    return Splits(fit_idx, val_idx, test_idx, kind)


def validation_split(reviews, train_idx: np.ndarray, config: TrainConfig):
    """(fit indices, validation indices, kind) carved from train_idx (see holdout_split)."""
    return holdout_split(reviews, train_idx, config.validation_fraction, config.seed)
