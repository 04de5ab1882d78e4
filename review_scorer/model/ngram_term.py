"""An NB-weighted n-gram regression of the training labels, added to long reviews' logits.

On long reviews a bag of word 1-3 grams weighted by naive-Bayes log-count ratios and fed to a
logistic regression (NB-LR; Wang & Manning 2012, "Baselines and bigrams") is as accurate as the
LSTM, and it errs on other reviews: on IMDB's movie-disjoint validation slice their sum is a
point above the network's own score and half a point above the regression's
(benchmarks/ngram_term.py). Johnson & Zhang 2015 and Mesnil et al. 2014 use
the same pairing. On short text the n-gram model is poor (it was fitted on whole IMDB reviews),
so it is only added to reviews with at least `min_words` known words:

    term(review) = sum of the weights of the distinct known 1-3 grams of the review + intercept
                   (0 below min_words known words)

The weights are the regression's coefficients times the NB ratios times the stage's weight,
folded into one number per n-gram; n-grams whose weight is under PRUNE_BELOW in size are left
out (two thirds of them; on the validation data that moved accuracy by under 0.1 points). The
n-grams are read from the word ids the network reads (unknown words skipped), so both engines
get them from ids they already make, and looked up in a small hash table (_KeyTable): on IMDB
reviews the term costs about 4 seconds per 100,000 on this 2-core CPU.

The term is linear in the n-grams present: explanations give each n-gram's weight
to the words its occurrences cover, and stay exact (token_weights; the intercept is the
baseline, like the network's empty review).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from review_scorer.model.ngram_head import FIRST_WORD_ID  # ids 0 (padding) and 1 (unknown)

NB_C = 4.0  # inverse L2 strength of the regression (the distillation teacher's NB-LR)
MIN_DF = 2  # n-grams in fewer training reviews than this are not kept
PRUNE_BELOW = 0.01  # folded weights smaller than this in size are dropped
NGRAM_SOURCE = ("NB-weighted logistic regression on binary word 1-3 grams of the model's "
                "vocabulary, fitted on the training labels (Wang & Manning 2012)")


def _ngram_keys(ids: np.ndarray, row: np.ndarray, vocab_size: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(key, row, index of its first word in the stream, words covered) of every 1-3 gram of a
    stream of known word ids with their rows (an n-gram never spans two rows; unknown words were
    dropped before, so n-grams bridge them).
    Keys: a word's id; vocab_size * (1 + a) + b for a pair; vocab_size * (vocab_size + 1) +
    (a * vocab_size + b) * vocab_size + c for a triple: three disjoint ranges of int64."""
    v = np.int64(vocab_size)
    ids = ids.astype(np.int64)
    start = np.arange(len(ids))
    pair = np.flatnonzero(row[1:] == row[:-1]) if len(ids) > 1 else np.zeros(0, np.int64)
    triple = np.flatnonzero(row[2:] == row[:-2]) if len(ids) > 2 else np.zeros(0, np.int64)
    keys = np.concatenate([ids, v * (1 + ids[pair]) + ids[pair + 1],
                           v * (v + 1) + (ids[triple] * v + ids[triple + 1]) * v + ids[triple + 2]])
    order = np.repeat(np.array([1, 2, 3], dtype=np.int64), [len(ids), len(pair), len(triple)])
    return (keys, np.concatenate([row, row[pair], row[triple]]),
            np.concatenate([start, pair, triple]), order)


def _known_stream(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(known ids, their rows, their positions in their rows, number of rows) of a batch (a list
    of id arrays or right-padded rows [batch, steps])."""
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        row, pos = np.nonzero(sequences >= FIRST_WORD_ID)
        return sequences[row, pos].astype(np.int64), row, pos, len(sequences)
    rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    flat = np.concatenate([np.zeros(0, np.int64), *rows])
    at = np.flatnonzero(flat >= FIRST_WORD_ID)
    row = np.repeat(np.arange(len(rows)), lengths)[at]
    starts = np.cumsum(lengths) - lengths
    return flat[at], row, at - starts[row], len(rows)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing's multiplier (Knuth)
BUCKET_BITS = 20  # 2**20 buckets of two slots each


class _KeyTable:
    """A hash table from n-gram keys to their weights: 2**BUCKET_BITS buckets of two slots,
    each slot a 16-bit fingerprint of its key and the key's weight. A key is looked for in its
    bucket's two slots (one cache line): one random read, where a binary search of the sorted
    keys costs some eighteen dependent ones. Another key has a 1 in 65,535 chance per filled
    slot of matching a fingerprint, so about 1 in 250,000 absent n-grams is read as present.
    A key that finds its bucket full (keys are placed by size of weight, the largest first), or
    a slot of its bucket holding its own fingerprint, is left out of the table; `dropped` counts
    them. With 263,415 n-grams, 3,416 were left out, all among the smallest weights; training
    keeps only what the table holds (fit), so the saved n-grams are exactly the ones scored."""

    def __init__(self, keys: np.ndarray, weights: np.ndarray):
        size = 2 << BUCKET_BITS
        self.fingerprint = np.zeros(size, dtype=np.uint16)  # 0: an empty slot
        self.weight = np.zeros(size, dtype=np.float32)
        self.key_index = np.full(size, -1, dtype=np.int64)
        order = np.argsort(-np.abs(weights), kind="stable")
        bucket, print_ = self._hash(keys[order])
        pending = np.arange(len(order))
        for side in (0, 1):
            slot = 2 * bucket[pending] + side
            twin = 2 * bucket[pending] + (1 - side)
            clash = self.fingerprint[twin] == print_[pending]
            free = (self.fingerprint[slot] == 0) & ~clash
            taken, first = np.unique(slot[free], return_index=True)
            placed = pending[np.flatnonzero(free)[first]]
            self.fingerprint[taken] = print_[placed]
            self.weight[taken] = weights[order[placed]]
            self.key_index[taken] = order[placed]
            pending = np.setdiff1d(pending, placed, assume_unique=True)
        # A key whose fingerprint its bucket already holds would be read as that key: not kept.
        self.dropped = len(pending)

    @staticmethod
    def _hash(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, nonzero 16-bit fingerprint) of each key (non-negative int64)."""
        with np.errstate(over="ignore"):
            h = keys.view(np.uint64) * _GOLDEN
        bucket = (h >> np.uint64(64 - BUCKET_BITS)).view(np.int64)
        fingerprint = ((h >> np.uint64(64 - BUCKET_BITS - 16)) & np.uint64(0xFFFF)).astype(np.uint16)
        return bucket, np.maximum(fingerprint, np.uint16(1))

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Each key's slot in the table, -1 when it is not there."""
        bucket, print_ = self._hash(np.ascontiguousarray(keys, dtype=np.int64))
        # A bucket's two 16-bit slots read as one little-endian 32-bit number: one gather.
        both = self.fingerprint.view("<u4")[bucket]
        first = (both & np.uint32(0xFFFF)) == print_
        second = (both >> np.uint32(16)) == print_
        return np.where(first | second, 2 * bucket + second, -1)


@dataclass
class NgramTerm:
    """Sorted n-gram keys, their folded weights, the intercept and the length gate."""

    vocab_size: int
    keys: np.ndarray  # int64, sorted
    weights: np.ndarray  # float32, per key
    intercept: float
    min_words: int
    source: str = NGRAM_SOURCE

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray], labels: np.ndarray, *, vocab_size: int,
            weight: float, min_words: int, seed: int = 0) -> NgramTerm | None:
        """The regression on labeled id sequences; None when they hold no n-gram seen in
        MIN_DF reviews or only one class."""
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        labels = np.asarray(labels).astype(int)
        ids, row, _, n = _known_stream(sequences)
        keys, krow, _, _ = _ngram_keys(ids, row, vocab_size)
        pairs = np.unique(np.stack([krow, keys], 1), axis=0)  # each review's distinct n-grams
        vocab, df = np.unique(pairs[:, 1], return_counts=True)
        vocab = vocab[df >= MIN_DF]
        if not len(vocab) or len(np.unique(labels)) < 2:
            return None
        slot = np.minimum(np.searchsorted(vocab, pairs[:, 1]), len(vocab) - 1)
        kept = vocab[slot] == pairs[:, 1]
        x = sparse.csr_matrix((np.ones(int(kept.sum()), np.float32), (pairs[kept, 0], slot[kept])),
                              shape=(n, len(vocab)))
        p = np.asarray(x[labels == 1].sum(0)).ravel() + 1.0
        q = np.asarray(x[labels == 0].sum(0)).ravel() + 1.0
        ratios = np.log((p / p.sum()) / (q / q.sum()))
        model = LogisticRegression(C=NB_C, max_iter=3000, solver="liblinear", dual=True,
                                   random_state=seed)
        model.fit(x.multiply(ratios).tocsr(), labels)
        folded = model.coef_[0] * ratios
        keep = np.flatnonzero(np.abs(folded) >= PRUNE_BELOW)
        weights = (weight * folded[keep]).astype(np.float32)
        # Only what the scoring table holds is kept, so the saved n-grams are what is scored.
        held = np.sort(_KeyTable(vocab[keep], weights).key_index)
        keep = keep[held[held >= 0]]
        return cls(int(vocab_size), vocab[keep], (weight * folded[keep]).astype(np.float32),
                   float(weight * model.intercept_[0]), int(min_words))

    # ------------------------------------------------------------------ scoring

    def _table(self) -> _KeyTable:
        """The hash table of self.keys, built on first use (again if the keys were replaced)."""
        cached = self.__dict__.get("_cached_table")
        if cached is None or cached[0] is not self.keys:
            cached = self.__dict__["_cached_table"] = (self.keys, _KeyTable(self.keys, self.weights))
        return cached[1]

    def _found(self, sequences: Sequence[np.ndarray], detail: bool = False):
        """(known words per row, and for every occurrence of a kept n-gram in a row with at
        least min_words known words: its row, its slot in the hash table, the index of its first word in
        the stream, the words it covers; then every known word's position in its row). Without
        `detail`, the last three are None."""
        ids, row, pos, n = _known_stream(sequences)
        words = np.bincount(row, minlength=n)
        gated = words[row] >= self.min_words
        if not gated.all():  # rows under the gate never reach the n-grams
            ids, row, pos = ids[gated], row[gated], pos[gated]
        if detail:
            keys, krow, start, order = _ngram_keys(ids, row, self.vocab_size)
            slot = self._table().find(keys)
            hit = np.flatnonzero(slot >= 0)
            return words, krow[hit], slot[hit], start[hit], order[hit], pos
        # Scoring needs the rows and slots only: every 1-3 gram of the stream is looked up,
        # those across two rows too (two per row, cheaper than leaving them out first), and
        # only then are hits across rows dropped.
        table, v = self._table(), np.int64(self.vocab_size)
        slot = [table.find(ids)]
        hit = [slot[0] >= 0]
        if len(ids) > 1:
            slot.append(table.find(v * (1 + ids[:-1]) + ids[1:]))
            hit.append((slot[-1] >= 0) & (row[1:] == row[:-1]))
        if len(ids) > 2:
            slot.append(table.find(v * (v + 1) + (ids[:-2] * v + ids[1:-1]) * v + ids[2:]))
            hit.append((slot[-1] >= 0) & (row[2:] == row[:-2]))
        rows = np.concatenate([row[:len(h)][h] for h in hit])
        return words, rows, np.concatenate([s[h] for s, h in zip(slot, hit)]), None, None, None

    def logits(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """What the term adds to each review's logit (0 below min_words known words)."""
        if not len(sequences):
            return np.zeros(0)
        words, row, slot, _, _, _ = self._found(sequences)
        # Binary features: each distinct n-gram counts once per review.
        table = self._table()
        size = np.int64(len(table.weight))
        pairs = np.sort(row * size + slot)  # np.unique's hashing is five times slower here
        pairs = pairs[np.concatenate([pairs[:1] >= 0, pairs[1:] != pairs[:-1]])]
        total = np.bincount(pairs // size, weights=table.weight[pairs % size].astype(np.float64),
                            minlength=len(words))
        return np.where(words >= self.min_words, total + self.intercept, 0.0)

    def token_weights(self, ids: np.ndarray) -> np.ndarray:
        """Each token's share of the term less its intercept, in logit units: every distinct
        n-gram's weight split evenly over its occurrences and over the words each covers."""
        ids = np.asarray(ids).reshape(-1)
        out = np.zeros(len(ids), dtype=np.float64)
        words, _, slot, start, order, pos = self._found([ids], detail=True)
        if not len(slot) or words[0] < self.min_words:
            return out.astype(np.float32)
        _, inverse, counts = np.unique(slot, return_inverse=True, return_counts=True)
        share = self._table().weight[slot].astype(np.float64) / counts[inverse] / order
        for k in range(3):  # the k-th word of each n-gram that has one
            has = order > k
            np.add.at(out, pos[start[has] + k], share[has])
        return out.astype(np.float32)

    # ------------------------------------------------------------------ files

    def arrays(self) -> dict[str, np.ndarray]:
        """What the lexicon file stores for the term (model/lexicon.py saves it)."""
        return {"ngram_keys": self.keys, "ngram_weights": self.weights,
                "ngram_scalars": np.array([self.intercept, self.min_words, self.vocab_size],
                                          dtype=np.float64),
                "ngram_source": np.array(self.source)}

    @classmethod
    def from_arrays(cls, data, *, vocab_size: int) -> NgramTerm | None:
        if "ngram_keys" not in data.files:
            return None
        scalars = data["ngram_scalars"].astype(np.float64)
        term = cls(int(scalars[2]), data["ngram_keys"].astype(np.int64),
                   data["ngram_weights"].astype(np.float32), float(scalars[0]), int(scalars[1]),
                   str(data["ngram_source"]))
        top = vocab_size * (vocab_size + 1) + vocab_size ** 3
        consistent = (len(scalars) == 3 and term.vocab_size == vocab_size
                      and len(term.keys) == len(term.weights) and np.isfinite(term.intercept)
                      and bool(np.all(np.isfinite(term.weights))) and term.min_words >= 0
                      and bool(np.all(np.diff(term.keys) > 0))
                      and (not len(term.keys) or (term.keys[0] >= FIRST_WORD_ID and term.keys[-1] < top)))
        if not consistent:
            raise ValueError("inconsistent n-gram term")
        return term

    def meta(self) -> dict:
        return {"source": self.source, "ngrams": len(self.keys), "min_words": self.min_words,
                "intercept": round(self.intercept, 6)}
