"""An n-gram model of a user's own labels, stacked on the network's calibrated logit.

Adapting to a few hundred labels (training/adapt.py) can add, beside the network, a logistic
regression on TF-IDF weighted word 1-2 grams of those labels, and a stacker that weighs the two:

    score = sigmoid(alpha * logit(network's calibrated score) + beta * ngram_logit + bias)

The n-grams are read from the word ids the network reads (the model's vocabulary, unknown words
left out), so both engines get them from the ids they already make and nothing about the text
path changes. On the development files this measured as well as n-grams of the file's own words
(benchmarks/adaptation_stack.py). The features follow scikit-learn's TfidfVectorizer with
sublinear_tf and smooth_idf: tf = 1 + ln(count), idf = ln((1 + n) / (1 + df)) + 1, each review's
vector L2-normalised over the n-grams the labels held; tests/test_ngram_head.py checks that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NGRAM_C = 4.0  # inverse L2 strength of the n-gram regression (adaptation.py's TF-IDF+LR baseline)
FIRST_WORD_ID = 2  # ids 0 (padding) and 1 (unknown) carry no word


def _keys(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """The int64 n-gram keys of one review: word ids, and vocab_size * (1 + a) + b for each pair
    of neighbouring known words (a, b)."""
    ids = np.asarray(ids, dtype=np.int64)
    ids = ids[ids >= FIRST_WORD_ID]
    pairs = vocab_size * (1 + ids[:-1]) + ids[1:]
    return np.concatenate([ids, pairs])


def _key_positions(ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Keys of one review with the token positions each occurrence covers (for explanations)."""
    ids = np.asarray(ids, dtype=np.int64)
    at = np.flatnonzero(ids >= FIRST_WORD_ID)
    known = ids[at]
    keys = np.concatenate([known, vocab_size * (1 + known[:-1]) + known[1:]])
    cover = [at[i:i + 1] for i in range(len(at))] + [at[i:i + 2] for i in range(len(at) - 1)]
    return keys, cover


@dataclass
class NgramHead:
    """The fitted n-gram regression and the stacker's three weights."""

    vocab_size: int
    keys: np.ndarray  # int64, sorted: the n-grams the labels held
    idf: np.ndarray  # float64, per key
    coef: np.ndarray  # float64, per key
    intercept: float
    alpha: float = 1.0  # weight of the network's calibrated logit
    beta: float = 0.0  # weight of the n-gram logit
    bias: float = 0.0

    # ------------------------------------------------------------------ features

    def _matrix(self, sequences: Sequence[np.ndarray]):
        """The L2-normalised sublinear TF-IDF matrix (csr) of the sequences over self.keys."""
        return _tfidf(sequences, self.vocab_size, self.keys, self.idf)

    def ngram_logits(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        if not len(sequences):
            return np.zeros(0)
        return np.asarray(self._matrix(sequences) @ self.coef).reshape(-1) + self.intercept

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray], labels: np.ndarray, *, vocab_size: int,
            weights: np.ndarray | None = None) -> NgramHead:
        """The n-gram regression on labeled id sequences (the stacker's weights left neutral)."""
        from sklearn.linear_model import LogisticRegression

        keys = np.unique(np.concatenate([_keys(s, vocab_size) for s in sequences]
                                        + [np.zeros(0, np.int64)]))
        df = np.zeros(len(keys))
        for s in sequences:
            df[np.searchsorted(keys, np.unique(_keys(s, vocab_size)))] += 1
        idf = np.log((1.0 + len(sequences)) / (1.0 + df)) + 1.0
        x = _tfidf(sequences, vocab_size, keys, idf)
        fit = LogisticRegression(C=NGRAM_C, max_iter=2000).fit(x, labels, sample_weight=weights)
        return cls(vocab_size, keys, idf, fit.coef_[0].astype(np.float64), float(fit.intercept_[0]))

    # ------------------------------------------------------------------ scoring

    def stacked_logits(self, network_scores: np.ndarray, sequences: Sequence[np.ndarray]) -> np.ndarray:
        z = _logit(network_scores)
        return self.alpha * z + self.beta * self.ngram_logits(sequences) + self.bias

    def apply(self, network_scores: np.ndarray, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Final probabilities from the network's calibrated scores and the same reviews' ids."""
        out = 1.0 / (1.0 + np.exp(-self.stacked_logits(network_scores, sequences)))
        return out.astype(np.float32)

    def token_weights(self, ids: np.ndarray) -> np.ndarray:
        """Each token's share of beta * (ngram logit - intercept), in logit units: every n-gram's
        contribution split evenly over the tokens its occurrences cover."""
        ids = np.asarray(ids)
        out = np.zeros(len(ids), dtype=np.float64)
        keys, cover = _key_positions(ids, self.vocab_size)
        if not len(keys):
            return out.astype(np.float32)
        value = self._matrix([ids]).toarray()[0]
        where = np.searchsorted(self.keys, keys)
        where = np.minimum(where, len(self.keys) - 1)
        known = self.keys[where] == keys
        occurrences = np.bincount(where[known], minlength=len(self.keys))
        for k, (slot, positions) in enumerate(zip(where, cover)):
            if not known[k]:
                continue
            share = self.beta * self.coef[slot] * value[slot] / occurrences[slot]
            out[positions] += share / len(positions)
        return out.astype(np.float32)

    # ------------------------------------------------------------------ files

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, vocab_size=np.int64(self.vocab_size), keys=self.keys, idf=self.idf,
                     coef=self.coef, scalars=np.array([self.intercept, self.alpha, self.beta,
                                                       self.bias], dtype=np.float64))

    @classmethod
    def load(cls, path: str | Path) -> NgramHead:
        with np.load(path, allow_pickle=False) as data:
            scalars = data["scalars"]
            head = cls(data["vocab_size"].item(), data["keys"].astype(np.int64),
                       data["idf"].astype(np.float64), data["coef"].astype(np.float64),
                       *map(float, scalars))
        if not (len(head.keys) == len(head.idf) == len(head.coef)) or len(scalars) != 4 \
                or not np.all(np.isfinite(head.coef)) or not np.all(np.diff(head.keys) > 0):
            raise ValueError("inconsistent n-gram head")
        return head

    def meta(self) -> dict:
        return {"ngrams": len(self.keys), "network_weight": round(self.alpha, 6),
                "ngram_weight": round(self.beta, 6), "bias": round(self.bias, 6)}


def _logit(p: np.ndarray) -> np.ndarray:
    """calibration.logits, kept finite (a score of exactly 0 or 1 would give an infinite logit)."""
    from review_scorer.model.calibration import logits

    return logits(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6))


def _tfidf(sequences: Sequence[np.ndarray], vocab_size: int, keys: np.ndarray, idf: np.ndarray):
    from scipy import sparse

    shape = (len(sequences), max(1, len(keys)))
    per_row = [_keys(s, vocab_size) for s in sequences]
    found = np.concatenate([np.zeros(0, np.int64), *per_row])
    if not len(found) or not len(keys):
        return sparse.csr_matrix(shape)
    row = np.repeat(np.arange(len(sequences), dtype=np.int64), [len(k) for k in per_row])
    slot = np.minimum(np.searchsorted(keys, found), len(keys) - 1)
    known = keys[slot] == found
    # Count each (row, n-gram) pair once for the whole batch, not row by row.
    pairs, counts = np.unique(row[known] * len(keys) + slot[known], return_counts=True)
    row, slot = pairs // len(keys), pairs % len(keys)
    v = (1.0 + np.log(counts)) * idf[slot]
    norm = np.sqrt(np.bincount(row, weights=v * v, minlength=len(sequences)))
    return sparse.csr_matrix((v / norm[row], (row, slot)), shape=shape)
