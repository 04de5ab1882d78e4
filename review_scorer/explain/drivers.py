"""What drives the scores: one review's strongest words and highlight spans, a file's driver terms."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from review_scorer.explain.attribution import Attribution
from review_scorer.text.cleaning import clean_text
from review_scorer.text.vocabulary import OOV_ID


def top_terms(attribution: Attribution | None, k: int = 5) -> list[tuple[str, float]]:
    """The k words with the largest |weight| in one review, as (word, weight), strongest first.

    A word read several times gets the sum of its weights. Stop words ("the", "you") and
    punctuation are left out: summed over many occurrences they would crowd out the words a
    reader can act on (the highlights in the report still show them). Weights are in logit units, so they
    compare across reviews: +0.4 moved the log-odds of "positive" up by about 0.4 in any review.
    """
    if attribution is None or k <= 0 or not len(attribution.ids):
        return []
    keys = attribution.ids.astype(np.int64)
    unknown = np.flatnonzero(keys == OOV_ID)
    if len(unknown):  # unknown words share one id: tell them apart by their text
        codes: dict[str, int] = {}
        keys[unknown] = [-1 - codes.setdefault(attribution.tokens[i], len(codes))
                         for i in unknown.tolist()]
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    # bincount adds each term's weights in reading order, as a running float sum would.
    totals = np.bincount(inverse.ravel(), weights=attribution.weights.astype(np.float64))
    out: list[tuple[str, float]] = []
    # Strongest first; ties keep reading order (the first occurrence of each term).
    for i in np.lexsort((first, -np.abs(totals))).tolist():
        term = attribution.tokens[int(first[i])]
        if term not in STOP_WORDS and _is_word(term):
            out.append((term, float(totals[i])))
            if len(out) == k:
                break
    return out


def format_top_terms(attribution: Attribution | None, k: int = 5) -> str:
    """The predictions file's `top_words` value: "great +0.41; boring -0.33" ("" when none).

    Entries are "<word> <signed weight, 2 decimals>" joined by "; ", strongest |weight| first;
    words never hold spaces or semicolons, so the value splits back unambiguously. Weights are
    in logit units (see top_terms); words whose weight rounds to zero are left out.
    """
    return "; ".join(f"{term} {weight:+.2f}" for term, weight in top_terms(attribution, k)
                     if round(weight, 2) != 0)


def row_spans(attribution: Attribution | None, limit: int = 12) -> list[list]:
    """The report row's highlights: [[start, end, weight], ...] sorted by start.

    The `limit` tokens with the largest |weight|, character offsets into the row's original
    text, weights divided by the review's largest |weight| (so in [-1, 1], rounded to 3
    decimals). [] when the review has no spans (no words, or the text could not be aligned).
    """
    if attribution is None or attribution.starts is None or not len(attribution.weights):
        return []
    strength = np.abs(attribution.weights)
    scale = float(strength.max())
    if not scale > 0:
        return []
    if len(strength) > limit:
        # The `limit` strongest, ties to the earlier token: every token at least as strong as
        # the limit-th strongest, then a stable sort of those few.
        kth = np.partition(strength, len(strength) - limit)[len(strength) - limit]
        chosen = np.flatnonzero(strength >= kth)
        chosen = chosen[np.argsort(-strength[chosen], kind="stable")[:limit]]
    else:
        chosen = np.argsort(-strength, kind="stable")
    # In reading order; tokens sharing a start keep strongest first (the one kept below).
    chosen = chosen[np.argsort(attribution.starts[chosen], kind="stable")]
    out: list[list] = []
    weights = attribution.weights[chosen].astype(np.float64) / scale
    for start, end, weight in zip(attribution.starts[chosen].tolist(),
                                  attribution.ends[chosen].tolist(), weights.tolist()):
        if out and start < out[-1][1]:
            continue  # two tokens from one source character (e.g. "½"): highlight it once
        out.append([start, end, round(weight, 3)])
    return out


# ------------------------------------------------------------------------------ drivers


# Function words that say nothing about why a review leans one way. Negations are left out on
# purpose: "not", "no" and "never" are real drivers.
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has
have having he he's her here hers herself him himself his how i i'd i'll i'm i've if in into is it
it's its itself just let's me more most my myself of off on once only or other our ours ourselves
out over own same she she's should so some such than that that's the their theirs them themselves
then there there's these they they're this those through to too under until up was we we're were
what when where which while who whom why will with would you you're your yours yourself
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_PAIR_SHIFT = 1 << 24  # pair key = first id * 2^24 + second id (vocabularies stay below 16M ids)
_BLOCK_BITS = 12  # a block's review number sits in a key's low 12 bits, under the term key
_BLOCK = 1 << _BLOCK_BITS  # reviews per vectorised block: (2^48 pair key) << 12 fits in int64
MIN_DRIVER_REVIEWS = 3
MIN_DRIVER_SHARE = 0.005


def _per_term(keys: np.ndarray, review: np.ndarray, weights: np.ndarray):
    """(sorted distinct keys, summed weight, reviews holding the key) for one block.

    One sort of key << 12 | review groups each key's occurrences with those of one review
    next to each other: the weight sums over a key's run, and the reviews are the distinct
    (key, review) values within it.
    """
    combined = keys << _BLOCK_BITS | review
    order = np.argsort(combined)
    combined = combined[order]
    sorted_keys = combined >> _BLOCK_BITS
    if not len(combined):
        return sorted_keys, np.zeros(0, np.float64), np.zeros(0, np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    distinct_review = np.r_[True, combined[1:] != combined[:-1]].astype(np.int64)
    return (sorted_keys[starts], np.add.reduceat(weights[order], starts),
            np.add.reduceat(distinct_review, starts))


def _merge_sorted(keys, sums, counts, new_keys, new_sums, new_counts):
    """Add (key, sum, count) rows with sorted distinct keys into sorted distinct-key arrays
    (a binary search and one insertion pass: no re-sort of what is already held)."""
    at = np.searchsorted(keys, new_keys)
    found = at < len(keys)
    found[found] = keys[at[found]] == new_keys[found]
    sums, counts = sums.copy(), counts.copy()
    sums[at[found]] += new_sums[found]
    counts[at[found]] += new_counts[found]
    new = ~found
    return (np.insert(keys, at[new], new_keys[new]), np.insert(sums, at[new], new_sums[new]),
            np.insert(counts, at[new], new_counts[new]))


def _is_word(term: str) -> bool:
    return any(ch.isalnum() for ch in term)


class DriverAccumulator:
    """Streams attributions into per-term totals: which words and word pairs pushed reviews
    positive or negative across a whole file. Mergeable (partitions) and picklable.

    A term's weight in a review is the sum of its weights there (logit units); across reviews
    the accumulator keeps the sum and the number of reviews holding the term. Known-word pairs
    adjacent in the text the model read are the phrases. Unknown words count as words, not in
    phrases. Memory: dense arrays over the vocabulary for words; phrases and unknown words are
    kept exactly up to `max_terms` distinct entries, then those seen in only one review so far
    are dropped (they could only rank after many more reviews; results past that point are
    approximate and can depend on the order of merging).
    """

    def __init__(self, *, max_terms: int = 2_000_000):
        self.max_terms = max_terms
        self.reviews = 0
        self._word_sum = np.zeros(0, np.float64)
        self._word_count = np.zeros(0, np.int64)
        self._pair_keys = np.zeros(0, np.int64)
        self._pair_sum = np.zeros(0, np.float64)
        self._pair_count = np.zeros(0, np.int64)
        self._unknown: dict[str, list] = {}  # unknown word -> [sum, reviews]
        self._names: dict[int, str] = {}  # vocabulary id -> token, for the ids seen
        self._named = np.zeros(0, bool)  # the ids in _names, as a mask over ids
        self._word = np.zeros(0, bool)  # per id: named, and a word (not punctuation)
        self._stop = np.zeros(0, bool)  # per id: a stop word

    def update(self, attributions: Iterable[Attribution | None]) -> None:
        """Add one chunk's attributions (None entries, reviews without words, are skipped)."""
        kept = [a for a in attributions if a is not None and len(a.weights)]
        for start in range(0, len(kept), _BLOCK):
            self._update_block(kept[start : start + _BLOCK])

    def _update_block(self, block: list[Attribution]) -> None:
        self.reviews += len(block)
        lengths = np.fromiter((len(a.ids) for a in block), dtype=np.int64, count=len(block))
        review = np.repeat(np.arange(len(block), dtype=np.int64), lengths)
        offset = np.cumsum(lengths) - lengths  # where each review starts in the block's arrays
        ids = np.concatenate([a.ids for a in block]).astype(np.int64)
        weights = np.concatenate([a.weights for a in block]).astype(np.float64)
        positions = np.concatenate([a.positions for a in block]).astype(np.int64)

        def tokens_at(flat: np.ndarray) -> list[str]:  # the tokens at these block positions
            rows = review[flat]
            return [block[r].tokens[j] for r, j in zip(rows.tolist(), (flat - offset[rows]).tolist())]

        known = ids > OOV_ID
        self._grow(int(ids.max()) + 1)
        new = known & ~self._named[ids]
        if new.any():
            uniq, first = np.unique(ids[new], return_index=True)
            for i, name in zip(uniq.tolist(), tokens_at(np.flatnonzero(new)[first])):
                self._names[i] = name
                self._word[i], self._stop[i] = _is_word(name), name in STOP_WORDS
            self._named[uniq] = True
        # A word's total is the sum of all its weights; its count, the reviews holding it.
        self._word_sum += np.bincount(ids[known], weights[known], len(self._word_sum))
        held = np.sort(ids[known] << _BLOCK_BITS | review[known])
        # distinct (id, review); none at all when every word of the block is unknown
        held = held[np.r_[True, held[1:] != held[:-1]][: held.size]] >> _BLOCK_BITS
        self._word_count += np.bincount(held, minlength=len(self._word_count))
        unknown = np.flatnonzero(ids == OOV_ID)
        if len(unknown):
            self._add_unknown(review[unknown], tokens_at(unknown), weights[unknown])
        # Only pairs that could ever be listed: two words, not both stop words ("of the").
        pair = ((review[1:] == review[:-1]) & (positions[1:] == positions[:-1] + 1)
                & self._word[ids[1:]] & self._word[ids[:-1]]
                & ~(self._stop[ids[1:]] & self._stop[ids[:-1]]))
        keys = ids[:-1][pair] * _PAIR_SHIFT + ids[1:][pair]
        self._add_pairs(*_per_term(keys, review[1:][pair], (weights[:-1] + weights[1:])[pair]))

    def _grow(self, size: int) -> None:
        """Make the per-word arrays cover ids below `size`."""
        if size > len(self._word_sum):
            extra = size - len(self._word_sum)
            self._word_sum = np.pad(self._word_sum, (0, extra))
            self._word_count = np.pad(self._word_count, (0, extra))
            self._named = np.pad(self._named, (0, extra))
            self._word = np.pad(self._word, (0, extra))
            self._stop = np.pad(self._stop, (0, extra))

    def _add_unknown(self, review: np.ndarray, words: list[str], weights: np.ndarray) -> None:
        codes: dict[str, int] = {}
        code = np.fromiter((codes.setdefault(w, len(codes)) for w in words), dtype=np.int64,
                           count=len(words))
        keys, sums, counts = _per_term(code, review, weights)
        names = list(codes)
        for k, total, count in zip(keys.tolist(), sums.tolist(), counts.tolist()):
            entry = self._unknown.setdefault(names[k], [0.0, 0])
            entry[0] += total
            entry[1] += count
        if len(self._unknown) > self.max_terms:
            self._unknown = {w: e for w, e in self._unknown.items() if e[1] > 1}

    def _add_pairs(self, keys, sums, counts) -> None:
        self._pair_keys, self._pair_sum, self._pair_count = _merge_sorted(
            self._pair_keys, self._pair_sum, self._pair_count, keys, sums, counts)
        if len(self._pair_keys) > self.max_terms:
            keep = self._pair_count > 1
            self._pair_keys, self._pair_sum, self._pair_count = (
                self._pair_keys[keep], self._pair_sum[keep], self._pair_count[keep])

    def merge(self, other: DriverAccumulator) -> DriverAccumulator:
        """Add another accumulator's totals into this one (returns self)."""
        self.reviews += other.reviews
        self._names.update(other._names)
        self._grow(len(other._word_sum))
        self._named[: len(other._named)] |= other._named
        self._word[: len(other._word)] |= other._word
        self._stop[: len(other._stop)] |= other._stop
        self._word_sum[: len(other._word_sum)] += other._word_sum
        self._word_count[: len(other._word_count)] += other._word_count
        self._add_pairs(other._pair_keys, other._pair_sum, other._pair_count)
        for word, (weight, count) in other._unknown.items():
            entry = self._unknown.setdefault(word, [0.0, 0])
            entry[0] += weight
            entry[1] += count
        return self

    def min_reviews(self) -> int:
        """Reviews a term must appear in to be listed: max(3, 0.5% of the reviews explained)."""
        return max(MIN_DRIVER_REVIEWS, math.ceil(MIN_DRIVER_SHARE * self.reviews))

    def _candidates(self) -> Iterator[tuple[str, float, int]]:
        """(term, summed weight, reviews) for every term that passes the listing rules."""
        need = self.min_reviews()
        for i in np.flatnonzero(self._word_count >= need).tolist():
            name = self._names[i]
            if name not in STOP_WORDS and _is_word(name):
                yield name, float(self._word_sum[i]), int(self._word_count[i])
        for word, (total, count) in self._unknown.items():
            if count >= need and word not in STOP_WORDS and _is_word(word):
                yield word, total, count
        for j in np.flatnonzero(self._pair_count >= need).tolist():
            key = int(self._pair_keys[j])
            first, second = self._names[key // _PAIR_SHIFT], self._names[key % _PAIR_SHIFT]
            if _is_word(first) and _is_word(second) and not (first in STOP_WORDS and second in STOP_WORDS):
                yield f"{first} {second}", float(self._pair_sum[j]), int(self._pair_count[j])

    def result(self, k: int = 15) -> dict[str, Any]:
        """The top drivers: {"positive": [...], "negative": [...], "reviews_explained": n}.

        Each entry is {"term", "weight", "reviews"}: weight is the mean per-review weight (logit
        units) over the reviews holding the term. Terms are ranked by mean x sqrt(reviews), between
        the mean (which favours rare strong words, "7/10") and the total (which favours frequent
        mild ones, "film"); only terms held by at least min_reviews() reviews are listed, and stop
        words (alone, or as both words of a pair) and punctuation never are.
        """
        terms = [(term, total, count, total / math.sqrt(count))
                 for term, total, count in self._candidates()]
        positive = sorted((t for t in terms if t[1] > 0), key=lambda t: (-t[3], t[0]))[:k]
        negative = sorted((t for t in terms if t[1] < 0), key=lambda t: (t[3], t[0]))[:k]

        def entries(rows):
            return [{"term": term, "weight": round(total / count, 4), "reviews": count}
                    for term, total, count, _ in rows]

        return {"positive": entries(positive), "negative": entries(negative),
                "reviews_explained": self.reviews}


def cleaned_if_whole(attribution: Attribution | None) -> str | None:
    """clean_text of the review an attribution was made from, when the model read all of it
    (its tokens then are every token); None when it was truncated or there is none."""
    if attribution is None or not len(attribution.positions):
        return None
    if int(attribution.positions[-1]) != len(attribution.positions) - 1:
        return None  # positions rise from 0, so this is the only way to have skipped some
    return " ".join(attribution.tokens)


def terms_in_text(text: str | None, terms: Sequence[str], *, cleaned: str | None = None) -> list[int]:
    """Indices of the driver terms (words or "word word" pairs) that a review's text holds.

    For the report's driver filter: the rows kept for the page are matched against the final
    driver list with the same cleaning the model used, so "don't" or "Great" match as read.
    `cleaned` is clean_text(text), when the caller already has it. For many rows, TermMatcher
    does the same with the terms split once.
    """
    return TermMatcher(terms)(text, cleaned=cleaned)


class TermMatcher:
    """terms_in_text for one list of terms, split into words and pairs once."""

    def __init__(self, terms: Sequence[str]):
        self.words = [(i, t) for i, t in enumerate(terms) if " " not in t]
        self.pairs = [(i, t, *t.split(" ", 1)) for i, t in enumerate(terms) if " " in t]

    def __call__(self, text: str | None, *, cleaned: str | None = None) -> list[int]:
        if not isinstance(text, str) or not (self.words or self.pairs):
            return []
        cleaned = clean_text(text) if cleaned is None else cleaned
        present = set(cleaned.split())
        found = [i for i, term in self.words if term in present]
        padded = None
        for i, term, first, second in self.pairs:
            if first in present and second in present:
                # Tokens never hold a space, so " a b " inside the space-padded cleaned text is
                # exactly "tokens a and b next to each other".
                padded = f" {cleaned} " if padded is None else padded
                if f" {term} " in padded:
                    found.append(i)
        return sorted(found) if self.words and self.pairs else found
