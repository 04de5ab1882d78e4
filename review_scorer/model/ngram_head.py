"""An n-gram model of a user's own labels, stacked on the network's calibrated logit.

Adapting to a few hundred labels (training/adapt.py) can add, beside the network, a logistic
regression on TF-IDF weighted word 1-2 grams of those labels, and a stacker that weighs the two:

    score = sigmoid(alpha * logit(network's calibrated score) + beta * ngram_logit
                    + gamma * lexicon_score + bias)

The n-grams are read from the word ids the network reads (the model's vocabulary, unknown words
left out), so both engines get them from the ids they already make and nothing about the text
path changes. On the development files this measured as well as n-grams of the file's own words
(benchmarks/adaptation_stack.py). The features follow scikit-learn's TfidfVectorizer with
sublinear_tf and smooth_idf: tf = 1 + ln(count), idf = ln((1 + n) / (1 + df)) + 1, each review's
vector L2-normalised over the n-grams the labels held; tests/test_ngram_head.py checks that.

The optional lexicon score is linear in the words, so explanations stay exact: the sum of the
valences of a review's known words (a valence lexicon mapped onto the vocabulary; the adapter
uses VADER's, training/stack.py), each word within NEGATION_WINDOW words after a negator scaled
by NEGATED_SCALE, divided by the square root of the number of known words. A sentiment word list
carries what a few hundred labels cannot: the polarity of words they never show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from review_scorer.model.calibration import finite_logits as _logit

NGRAM_C = 4.0  # inverse L2 strength of the n-gram regression (adaptation.py's TF-IDF+LR baseline)
FIRST_WORD_ID = 2  # ids 0 (padding) and 1 (unknown) carry no word
NEGATION_WINDOW = 3  # words after a negator whose valence it turns (VADER looks 3 words back)
NEGATED_SCALE = -0.74  # VADER's N_SCALAR (Hutto & Gilbert 2014, vaderSentiment 3.3.2)


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
    gamma: float = 0.0  # weight of the lexicon score (0 without a lexicon)
    valence: np.ndarray | None = None  # float64 [vocab_size]: each word id's valence (0: none)
    negator: np.ndarray | None = None  # bool [vocab_size]: the ids that negate what follows
    lexicon_source: str = ""

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
        return cls.fit_each_c(sequences, labels, vocab_size=vocab_size, weights=weights,
                              cs=(NGRAM_C,))[0]

    @classmethod
    def fit_each_c(cls, sequences: Sequence[np.ndarray], labels: np.ndarray, *, vocab_size: int,
                   weights: np.ndarray | None, cs: Sequence[float]) -> list[NgramHead]:
        """One regression per inverse L2 strength in `cs`, on one TF-IDF matrix built once."""
        from sklearn.linear_model import LogisticRegression

        keys = np.unique(np.concatenate([_keys(s, vocab_size) for s in sequences]
                                        + [np.zeros(0, np.int64)]))
        df = np.zeros(len(keys))
        for s in sequences:
            df[np.searchsorted(keys, np.unique(_keys(s, vocab_size)))] += 1
        idf = np.log((1.0 + len(sequences)) / (1.0 + df)) + 1.0
        x = _tfidf(sequences, vocab_size, keys, idf)
        heads = []
        for c in cs:
            fit = LogisticRegression(C=c, max_iter=2000).fit(x, labels, sample_weight=weights)
            heads.append(cls(vocab_size, keys, idf, fit.coef_[0].astype(np.float64),
                             float(fit.intercept_[0])))
        return heads

    # ------------------------------------------------------------------ scoring

    def lexicon_scores(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The lexicon score of each review (zeros without a lexicon)."""
        if self.valence is None:
            return np.zeros(len(sequences))
        return lexicon_scores(sequences, self.valence, self.negator)

    def stacked_logits(self, network_scores: np.ndarray, sequences: Sequence[np.ndarray]) -> np.ndarray:
        z = _logit(network_scores)
        out = self.alpha * z + self.beta * self.ngram_logits(sequences) + self.bias
        return out + self.gamma * self.lexicon_scores(sequences) if self.gamma else out

    def apply(self, network_scores: np.ndarray, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Final probabilities from the network's calibrated scores and the same reviews' ids."""
        out = 1.0 / (1.0 + np.exp(-self.stacked_logits(network_scores, sequences)))
        return out.astype(np.float32)

    def token_weights(self, ids: np.ndarray) -> np.ndarray:
        """Each token's share of beta * (ngram logit - intercept) + gamma * lexicon score, in
        logit units: every n-gram's contribution split evenly over the tokens its occurrences
        cover, and each word's own term of the lexicon score."""
        ids = np.asarray(ids)
        out = np.zeros(len(ids), dtype=np.float64)
        if self.gamma:
            _, at, value = word_valences([ids], self.valence, self.negator)
            out[at] += self.gamma * value
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
            lexicon = {} if self.valence is None else {
                "valence": self.valence, "negator": self.negator,
                "lexicon_source": np.array(self.lexicon_source)}
            np.savez(fh, vocab_size=np.int64(self.vocab_size), keys=self.keys, idf=self.idf,
                     coef=self.coef, scalars=np.array([self.intercept, self.alpha, self.beta,
                                                       self.bias, self.gamma], dtype=np.float64),
                     **lexicon)

    @classmethod
    def load(cls, path: str | Path) -> NgramHead:
        with np.load(path, allow_pickle=False) as data:
            scalars = data["scalars"]
            lexicon = {} if "valence" not in data.files else {
                "valence": data["valence"].astype(np.float64),
                "negator": data["negator"].astype(bool),
                "lexicon_source": str(data["lexicon_source"])}
            head = cls(data["vocab_size"].item(), data["keys"].astype(np.int64),
                       data["idf"].astype(np.float64), data["coef"].astype(np.float64),
                       *map(float, scalars), **lexicon)
        # Heads saved before the lexicon term have four scalars (no gamma).
        consistent = (len(head.keys) == len(head.idf) == len(head.coef) and len(scalars) in (4, 5)
                      and np.all(np.isfinite(head.coef)) and np.all(np.diff(head.keys) > 0))
        if head.valence is not None:
            consistent = consistent and len(head.valence) == len(head.negator) == head.vocab_size \
                and bool(np.all(np.isfinite(head.valence)))
        elif head.gamma:
            consistent = False
        if not consistent:
            raise ValueError("inconsistent n-gram head")
        return head

    def meta(self) -> dict:
        out = {"ngrams": len(self.keys), "network_weight": round(self.alpha, 6),
               "ngram_weight": round(self.beta, 6), "bias": round(self.bias, 6)}
        if self.gamma:
            out |= {"lexicon_weight": round(self.gamma, 6), "lexicon": self.lexicon_source,
                    "lexicon_words": int(np.count_nonzero(self.valence))}
        return out


def _known_terms(sequences: Sequence[np.ndarray], valence: np.ndarray, negator: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row, index in the concatenated batch, term of the lexicon score) of every known word of
    a batch of id sequences (a list of arrays or right-padded rows), and each row's start in
    that concatenation; computed for the whole batch at once."""
    rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.concatenate([np.zeros(0, np.int64), *rows])
    at = np.flatnonzero(ids >= FIRST_WORD_ID)
    row = np.repeat(np.arange(len(rows)), lengths)[at]
    ids = np.minimum(ids[at], len(valence) - 1)
    negators = negator[ids]
    # A word is negated when a negator stands among the NEGATION_WINDOW known words before it in
    # its own review (the window never reaches back into the previous row).
    seen = np.concatenate([[0], np.cumsum(negators)])
    j = np.arange(len(ids))
    first = np.searchsorted(row, row, side="left")
    negated = seen[j] - seen[np.maximum(j - NEGATION_WINDOW, first)] > 0
    value = np.where(negators, 0.0, valence[ids]) * np.where(negated, NEGATED_SCALE, 1.0)
    words = np.bincount(row, minlength=len(rows))
    return row, at, value / np.sqrt(np.maximum(words[row], 1)), np.cumsum(lengths) - lengths


def word_valences(sequences: Sequence[np.ndarray], valence: np.ndarray, negator: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, position in its row, term of the lexicon score) of every known word of a batch of id
    sequences (a list of arrays or right-padded rows), computed for the whole batch at once."""
    row, at, value, starts = _known_terms(sequences, valence, negator)
    return row, at - starts[row], value


def lexicon_scores(sequences: Sequence[np.ndarray], valence: np.ndarray,
                   negator: np.ndarray) -> np.ndarray:
    """Each review's lexicon score: its known words' terms summed."""
    row, _, value, _ = _known_terms(sequences, valence, negator)
    return np.bincount(row, weights=value, minlength=len(sequences)).astype(np.float64)


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
