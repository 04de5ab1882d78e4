"""Right-padded id batches, and batches of similar length so padding per batch stays small."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from review_scorer.text.vocabulary import PAD_ID


def pad_batch(sequences: Sequence[np.ndarray], length: int | None = None) -> np.ndarray:
    """Right-pad sequences with PAD_ID into an int32 matrix (the model masks the padding)."""
    width = length if length is not None else max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), max(width, 1)), PAD_ID, dtype=np.int32)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq[:width]
    return out


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, *, rng: np.random.Generator | None = None,
    pool_batches: int = 50,
) -> list[np.ndarray]:
    """Group row indices into batches of similar length so padding per batch stays small.

    Without rng (scoring): sort everything by length and cut. With rng (training): shuffle, sort
    within pools of pool_batches batches, cut, then shuffle the batch order, so batches stay
    random from epoch to epoch while each holds reviews of similar length.
    """
    lengths = np.asarray(lengths)
    n = len(lengths)
    if n == 0:
        return []
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    order = rng.permutation(n)
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, n, pool):
        part = order[start : start + pool]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]
