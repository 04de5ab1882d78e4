"""Out-of-domain check: how unlike the model's training text a scored file looks.

While a file is scored, DomainSignal counts the words the model read and how many of them its
vocabulary does not know (id OOV_ID), plus how sure the scores are. It is a few numbers that
add up, so partitions scored apart (the Ray engine) merge into the same result as one pass.
``out_of_domain_note`` turns the counts into the one-line advice the CLI and the report show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from review_scorer.text.vocabulary import OOV_ID

# A file whose words are more than this share unknown to the model's vocabulary gets the note.
# Chosen in benchmarks/domain_shift.py (benchmarks/RESULTS.md, "Out-of-domain signal"): the
# shipped model's IMDB test reviews read 3.3% (no sample of 200 reviews over 4.2%), the airline
# tweets 12.9% and the fine-food reviews 6.9% (every sample over the limit), the clothing
# reviews, the mildest shift, 5.2% (82% of samples over it).
UNKNOWN_WORD_RATE_LIMIT = 0.05
# A model that records its own training text's rate (models trained or adapted since this
# was added) flags a file past this multiple of that rate, and never below the limit above:
# the shipped choice's own ratio (5% against IMDB's 3.3%). An adapted model keeps its starting
# model's vocabulary, so the file it was adapted on reads far above 5% unknown (airline tweets
# 12.9%), and only a file well past that is unlike its training text.
UNKNOWN_RATE_MARGIN = 1.5
# Below this many words read, the rate says too little to advise anything.
MIN_WORDS_JUDGED = 500
NEAR_HALF = 0.1  # a score within this of 0.5 counts as "near 0.5"
ADAPT_COMMAND = "review-scorer train --data labeled.csv"


@dataclass(frozen=True)
class DomainReference:
    """What the scored file is compared with: the unknown-word rate of the model's own training
    text (None when the model did not record it) and what that text was."""

    unknown_rate: float | None = None
    text: str = "the text the model was trained on"
    known: bool = True  # False: an adapted model of before the rate was recorded; no note

    @classmethod
    def from_meta(cls, meta: dict | None) -> DomainReference:
        """The reference a model directory's meta.json gives (see unknown_rate_meta)."""
        meta = meta or {}
        recorded = meta.get("unknown_word_rate")
        if isinstance(recorded, dict) and isinstance(recorded.get("rate"), (int, float)):
            return cls(float(recorded["rate"]), str(recorded.get("text") or cls.text))
        if meta.get("adaptation"):
            return cls(known=False)
        return cls()

    @property
    def limit(self) -> float:
        if self.unknown_rate is None:
            return UNKNOWN_WORD_RATE_LIMIT
        return max(UNKNOWN_WORD_RATE_LIMIT, UNKNOWN_RATE_MARGIN * self.unknown_rate)


def unknown_rate_meta(sequences: Sequence[np.ndarray], text: str) -> dict[str, Any] | None:
    """meta.json's record of a model's own training text: the share of its words (held-out
    ones, or the adaptation file's) that the model's vocabulary does not know."""
    words, unknown = count_words(sequences)
    return {"rate": round(unknown / words, 5), "words": words, "text": text} if words else None


def count_words(sequences: Sequence[np.ndarray]) -> tuple[int, int]:
    """(words read, of them unknown) over id sequences (SentimentModel.encode / prepare)."""
    if not len(sequences):
        return 0, 0
    ids = np.concatenate([np.asarray(s).reshape(-1) for s in sequences])
    return int(ids.size), int(np.count_nonzero(ids == OOV_ID))


@dataclass
class DomainSignal:
    """Mergeable counts: words read, unknown words, and the scored rows' confidence."""

    words: int = 0
    unknown_words: int = 0
    scored: int = 0
    confidence_sum: float = 0.0  # sum of |2 * score - 1| over scored rows
    near_half: int = 0  # scored rows with |score - 0.5| < NEAR_HALF

    def update(self, scores: Any, scored: Any, *, words: int = 0, unknown_words: int = 0) -> None:
        """Add one chunk: its scores, which rows were scored, and its word counts."""
        mask = np.asarray(scored, dtype=bool).reshape(-1)
        values = np.asarray(scores, dtype=np.float64).reshape(-1)[mask]
        self.words += int(words)
        self.unknown_words += int(unknown_words)
        self.scored += int(values.size)
        self.confidence_sum += float(np.abs(2.0 * values - 1.0).sum())
        self.near_half += int(np.count_nonzero(np.abs(values - 0.5) < NEAR_HALF))

    def merge(self, other: DomainSignal) -> DomainSignal:
        """Add another partition's counts; returns self."""
        if not isinstance(other, DomainSignal):
            raise TypeError(f"cannot merge {type(other).__name__} into DomainSignal")
        self.words += other.words
        self.unknown_words += other.unknown_words
        self.scored += other.scored
        self.confidence_sum += other.confidence_sum
        self.near_half += other.near_half
        return self

    @property
    def unknown_rate(self) -> float | None:
        return self.unknown_words / self.words if self.words else None

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.scored if self.scored else None

    @property
    def near_half_share(self) -> float | None:
        return self.near_half / self.scored if self.scored else None

    def to_dict(self, reference: DomainReference | None = None) -> dict[str, Any]:
        """Plain numbers for --json and the report (rates rounded to 4 places), judged against
        the scoring model's reference (DomainReference.from_meta(model.meta))."""
        reference = reference or DomainReference()

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {"words": self.words, "unknown_words": self.unknown_words,
                "unknown_rate": rounded(self.unknown_rate),
                "mean_confidence": rounded(self.mean_confidence),
                "near_half_share": rounded(self.near_half_share),
                "unknown_rate_limit": rounded(reference.limit) if reference.known else None,
                "model_unknown_rate": rounded(reference.unknown_rate),
                "note": out_of_domain_note(self, reference)}


def out_of_domain_note(signal: DomainSignal, reference: DomainReference | None = None) -> str | None:
    """The advice for a file that looks unlike the model's training text, or None."""
    reference = reference or DomainReference()
    rate, limit = signal.unknown_rate, reference.limit
    if (not reference.known or rate is None or signal.words < MIN_WORDS_JUDGED
            or rate <= limit):
        return None
    against = (f"(above {limit:.1%})" if reference.unknown_rate is None else
               f"against {reference.unknown_rate:.1%} of theirs (the limit is {limit:.1%})")
    return (f"this file looks unlike {reference.text}: {rate:.1%} of its words are unknown to "
            f"the model {against}, so expect lower accuracy; a few hundred labelled reviews of "
            f"this file adapt it ({ADAPT_COMMAND})")
