"""Word vectors learned from the training and unlabeled reviews (PPMI + truncated SVD), no download."""

# The LSTM's embedding layer starts from these instead of random numbers. With only 25k labeled
# reviews a randomly initialised embedding learns movie-specific words (names, titles) as sentiment
# cues and generalises poorly to the test set's different movies; vectors learned from word
# co-occurrence over the 75k train + unlabeled reviews already place "dull" near "boring" and
# "superb" near "brilliant". The method is the count-based one of Levy, Goldberg and Dagan (2015),
# "Improving Distributional Similarity with Lessons Learned from Word Embeddings": positive PMI
# with context-distribution smoothing (alpha 0.75), factorised by SVD with the singular values
# split evenly between words and contexts (U * sqrt(S)).

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from review_scorer.text.vocabulary import OOV_ID, PAD_ID

FIRST_WORD_ID = 2


def cooccurrence_matrix(sequences: Iterable[np.ndarray], vocab_size: int, *, window: int):
    """Symmetric word-word counts within `window` tokens, each pair weighted 1/distance."""
    import scipy.sparse as sp

    gap = np.zeros(window, dtype=np.int32)  # padding ids between reviews: no pair spans two reviews
    parts = []
    for seq in sequences:
        parts.append(np.asarray(seq, dtype=np.int32))
        parts.append(gap)
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
    counts = sp.csr_matrix((vocab_size, vocab_size), dtype=np.float64)
    for distance in range(1, window + 1):
        left, right = stream[:-distance], stream[distance:]
        keep = (left >= FIRST_WORD_ID) & (right >= FIRST_WORD_ID)
        weights = np.full(int(keep.sum()), 1.0 / distance)
        counts = counts + sp.coo_matrix(
            (weights, (left[keep], right[keep])), shape=(vocab_size, vocab_size)
        ).tocsr()
    return counts + counts.T


def ppmi_svd_embeddings(
    sequences: Iterable[np.ndarray], vocab_size: int, dim: int, *, window: int = 5,
    alpha: float = 0.75, seed: int = 0,
) -> np.ndarray:
    """A (vocab_size, dim) float32 matrix of unit-length word vectors; padding row all zeros.

    Words that never co-occur keep a zero vector (the model learns them from scratch); the
    out-of-vocabulary row is the mean word vector, the best guess for an unknown word.
    """
    import scipy.sparse as sp
    from sklearn.utils.extmath import randomized_svd

    counts = cooccurrence_matrix(sequences, vocab_size, window=window).tocoo()
    out = np.zeros((vocab_size, dim), dtype=np.float32)
    if counts.nnz == 0:
        return out
    total = counts.data.sum()
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context = word_totals**alpha
    context /= context.sum()
    pmi = (np.log(counts.data) - np.log(total) - np.log(word_totals[counts.row] / total)
           - np.log(context[counts.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (counts.row[keep], counts.col[keep])), shape=counts.shape)
    k = min(dim, min(ppmi.shape) - 1)
    u, s, _ = randomized_svd(ppmi, n_components=k, n_iter=5, random_state=seed)
    vectors = u * np.sqrt(s)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    out[:, :k] = vectors
    out[PAD_ID] = 0.0
    used = np.linalg.norm(out[FIRST_WORD_ID:], axis=1) > 0
    if used.any():
        out[OOV_ID] = out[FIRST_WORD_ID:][used].mean(axis=0)
    return out
