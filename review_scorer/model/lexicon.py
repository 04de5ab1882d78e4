"""A sentiment lexicon's score added to the network's logit, before the temperature.

The network learns its words from IMDB reviews, so a word movie reviewers rarely use to judge
("rude", "refund", "delicious"), and short text in general, is where it is weakest. A valence
lexicon written for all kinds of text carries that knowledge. The shipped recipe's last stage
adds, to the network's logit of every review,

    weight * lexicon_score(review)

where lexicon_score is the one model/ngram_head.py defines: the sum of the valences of the
review's known words (VADER's lexicon mapped onto the vocabulary; vaderSentiment, MIT, Hutto &
Gilbert 2014), a word within three words after a negator scaled by VADER's -0.74, divided by
the square root of the number of known words. So it counts most on short reviews and fades on
long ones, where the network is strong. The temperature is fitted afterwards, on the sum.

The term is linear in the words: explanations add each word's term to its share of the
network's logit, and stay exact. Added to the logit before the temperature, it is part of
what every later stage reads as "the network's score": calibration, the adapter's guard, its
class-mix shifts and its n-gram stack need nothing new (training/adapt.py adds it to every
candidate's scores). The weight is chosen on validation data (benchmarks/lexicon_weight.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from review_scorer.model.ngram_head import lexicon_scores, word_valences
from review_scorer.model.ngram_term import NgramTerm

LEXICON_FILE = "lexicon.npz"
LEXICON_SOURCE = "VADER valence lexicon (vaderSentiment {version}, MIT licence)"
EXTRA_NEGATORS = ("no",)  # VADER's NEGATE list leaves "no" out; words ending in "n't" count too


@functools.lru_cache(maxsize=1)
def vader_analyzer():
    """VADER's analyzer, built once: building it reads and parses its lexicon files."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexicon_arrays(tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """(valence per id, negator per id, source) for a vocabulary's tokens (id = position)."""
    from importlib.metadata import version

    from vaderSentiment.vaderSentiment import NEGATE

    lexicon = vader_analyzer().lexicon
    negate = set(NEGATE) | set(EXTRA_NEGATORS)
    valence = np.array([float(lexicon.get(t, 0.0)) for t in tokens])
    negator = np.array([t in negate or t.endswith("n't") for t in tokens])
    valence[:2] = 0.0  # padding and unknown
    negator[:2] = False
    return valence, negator, LEXICON_SOURCE.format(version=version("vaderSentiment"))


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
STAR_WORDS = ("star", "stars")
SCALES = (5.0, 10.0)  # "N/5", "N/10", "N out of 5", "N out of 10"
MIN_RATED = 50  # training reviews that state a rating, at least, for its weight to be fitted


@dataclass
class RatingWords:
    """The vocabulary ids a stated rating is read from: numbers 0-10 (digits and words), "star(s)",
    "out of", "minus"."""

    number: np.ndarray  # float64 [vocab_size]: the id's value, NaN when it is not a number
    star: np.ndarray  # bool [vocab_size]
    out_id: int  # -1 when the vocabulary lacks the word
    of_id: int
    minus_id: int
    no_id: int

    @classmethod
    def for_vocabulary(cls, tokens: Sequence[str]) -> RatingWords:
        values = {str(k): float(k) for k in range(11)} | {w: float(k) for k, w in enumerate(NUMBER_WORDS)}
        number = np.array([values.get(t, np.nan) for t in tokens])
        index = {t: i for i, t in enumerate(tokens)}
        return cls(number, np.array([t in STAR_WORDS for t in tokens]), index.get("out", -1),
                   index.get("of", -1), index.get("minus", -1), index.get("no", -1))

    def ratings(self, ids: np.ndarray) -> list[tuple[float, list[int]]]:
        """Each rating stated in one review's ids, on a 0..1 scale (bottom to top of its scale),
        with the token positions it was read from: "7/10" (ids 7, 10), "3 out of 10", "five
        stars", "4 out of 5 stars", "no stars", "minus five stars"."""
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        value = self.number[np.minimum(ids, len(self.number) - 1)]
        star = self.star[np.minimum(ids, len(self.star) - 1)]
        found, taken = [], -1
        for i in np.flatnonzero(~np.isnan(value) | (ids == self.no_id)).tolist():
            if i <= taken:
                continue
            a = value[i]
            said_no = bool(np.isnan(a))  # "no stars"
            scale, end = None, i
            if not said_no and i + 3 < n and ids[i + 1] == self.out_id \
                    and ids[i + 2] == self.of_id and value[i + 3] in SCALES:
                scale, end = value[i + 3], i + 3  # "3 out of 10"
            elif not said_no and i + 1 < n and value[i + 1] in SCALES and a <= value[i + 1]:
                scale, end = value[i + 1], i + 1  # "7/10", read as the ids 7 10
            if end + 1 < n and star[end + 1]:
                if scale is None and end + 2 < n and ids[end + 2] == self.of_id:
                    continue  # "the two stars of the film": actors, not a rating
                scale, end = scale or 5.0, end + 1  # "five stars", "4 out of 5 stars"
            if scale is None:
                continue
            r = 0.0 if said_no else float(np.clip((a - 1.0) / (scale - 1.0), 0.0, 1.0))
            if i > 0 and ids[i - 1] == self.minus_id:
                r, i = 0.0, i - 1
            found.append((r, list(range(i, end + 1))))
            taken = end
        return found

    def scores(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Each review's rating score: the mean over its stated ratings of 2r - 1 (in [-1, 1];
        0 when it states none)."""
        rows = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        out = np.zeros(len(rows))
        if not rows:
            return out
        flat = np.minimum(np.concatenate(rows), len(self.star) - 1)
        row_of = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
        # Every rating opens with a number (or "no") followed, in the same review, by a star
        # word, a scale of 5 or 10, or "out": only rows with such a pair are read word by word.
        opens = ~np.isnan(self.number[flat[:-1]]) | (flat[:-1] == self.no_id)
        follows = (self.star[flat[1:]] | np.isin(self.number[flat[1:]], SCALES)
                   | (flat[1:] == self.out_id))
        hit = np.flatnonzero(opens & follows & (row_of[1:] == row_of[:-1]))
        for k in np.unique(row_of[hit]).tolist():
            found = self.ratings(rows[k])
            if found:
                out[k] = float(np.mean([2 * r - 1 for r, _ in found]))
        return out


@dataclass
class LexiconTerm:
    """weight * lexicon score + rating_weight * rating score, added to the network's logit (raw,
    before the temperature)."""

    weight: float
    valence: np.ndarray  # float64 [vocab_size]: each word id's valence (0: none)
    negator: np.ndarray  # bool [vocab_size]: the ids that negate what follows
    source: str
    ratings: RatingWords | None = None
    rating_weight: float = 0.0
    ngrams: NgramTerm | None = None  # long reviews' n-gram regression (model/ngram_term.py)

    @classmethod
    def for_vocabulary(cls, tokens: Sequence[str], weight: float, *,
                       rating_weight: float = 0.0) -> LexiconTerm:
        valence, negator, source = lexicon_arrays(tokens)
        return cls(float(weight), valence, negator, source, RatingWords.for_vocabulary(tokens),
                   float(rating_weight))

    def rating_scores(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        if self.ratings is None:
            return np.zeros(len(sequences))
        return self.ratings.scores(sequences)

    def logits(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """What the term adds to each review's logit (a list of id arrays or right-padded rows)."""
        if not len(sequences):
            return np.zeros(0)
        out = self.weight * lexicon_scores(sequences, self.valence, self.negator)
        if self.rating_weight:
            out += self.rating_weight * self.rating_scores(sequences)
        if self.ngrams is not None:
            out += self.ngrams.logits(sequences)
        return out

    def apply(self, probabilities: np.ndarray, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """The network's probabilities with the term added to their logits."""
        from review_scorer.model.calibration import finite_logits

        z = finite_logits(np.asarray(probabilities, dtype=np.float64)) + self.logits(sequences)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def token_weights(self, ids: np.ndarray) -> np.ndarray:
        """Each token's term, in logit units: its own lexicon term, and its share of each stated
        rating's (split evenly over the rating's words and over the review's ratings)."""
        ids = np.asarray(ids)
        out = np.zeros(len(ids), dtype=np.float64)
        _, at, value = word_valences([ids], self.valence, self.negator)
        out[at] += self.weight * value
        found = self.ratings.ratings(ids) if self.rating_weight and self.ratings is not None else []
        for r, positions in found:
            out[positions] += self.rating_weight * (2 * r - 1) / len(found) / len(positions)
        if self.ngrams is not None:
            out += self.ngrams.token_weights(ids)
        return out.astype(np.float32)

    def save(self, path: str | Path) -> None:
        ratings = {} if self.ratings is None else {
            "rating_number": self.ratings.number, "rating_star": self.ratings.star,
            "rating_ids": np.array([self.ratings.out_id, self.ratings.of_id, self.ratings.minus_id,
                                    self.ratings.no_id], dtype=np.int64)}
        with open(path, "wb") as fh:
            np.savez_compressed(fh, weight=np.float64(self.weight), valence=self.valence,
                     negator=self.negator, source=np.array(self.source),
                     rating_weight=np.float64(self.rating_weight), **ratings,
                     **({} if self.ngrams is None else self.ngrams.arrays()))

    @classmethod
    def load(cls, path: str | Path, *, vocab_size: int) -> LexiconTerm:
        with np.load(path, allow_pickle=False) as data:
            ratings = None
            if "rating_number" in data.files:
                ratings = RatingWords(data["rating_number"].astype(np.float64),
                                      data["rating_star"].astype(bool),
                                      *map(int, data["rating_ids"]))
            term = cls(float(data["weight"]), data["valence"].astype(np.float64),
                       data["negator"].astype(bool), str(data["source"]), ratings,
                       float(data["rating_weight"]) if "rating_weight" in data.files else 0.0,
                       NgramTerm.from_arrays(data, vocab_size=vocab_size))
        consistent = (len(term.valence) == len(term.negator) == vocab_size
                      and np.all(np.isfinite(term.valence)) and np.isfinite(term.weight)
                      and np.isfinite(term.rating_weight))
        if ratings is not None:
            consistent = consistent and len(ratings.number) == len(ratings.star) == vocab_size \
                and all(-1 <= i < vocab_size for i in (ratings.out_id, ratings.of_id,
                                                       ratings.minus_id, ratings.no_id))
        if not consistent:
            raise ValueError("inconsistent lexicon term")
        return term

    def meta(self) -> dict:
        return {"weight": round(self.weight, 6), "lexicon": self.source,
                "words": int(np.count_nonzero(self.valence)),
                "negators": int(np.count_nonzero(self.negator)),
                "rating_weight": round(self.rating_weight, 6),
                **({} if self.ngrams is None else {"ngram_term": self.ngrams.meta()})}


def fit_rating_weight(sequences: Sequence[np.ndarray], labels: np.ndarray,
                      ratings: RatingWords) -> tuple[float, int]:
    """(the rating score's weight, how many reviews stated a rating): a logistic regression of
    the labels on the rating score alone, over the training reviews that state one (no
    intercept). What a stated rating by itself says; 0 with fewer than MIN_RATED such reviews."""
    from sklearn.linear_model import LogisticRegression

    scores = ratings.scores(sequences)
    stated = scores != 0
    y = np.asarray(labels)[stated]
    if stated.sum() < MIN_RATED or len(np.unique(y)) < 2:
        return 0.0, int(stated.sum())
    fit = LogisticRegression(C=1.0, fit_intercept=False).fit(scores[stated, None], y)
    return max(0.0, float(fit.coef_[0, 0])), int(stated.sum())
