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
# Below this many words read, the rate says too little to advise anything.
MIN_WORDS_JUDGED = 500
NEAR_HALF = 0.1  # a score within this of 0.5 counts as "near 0.5"
ADAPT_COMMAND = "review-scorer train --data labeled.csv"


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

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers for --json and the report (rates rounded to 4 places)."""
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {"words": self.words, "unknown_words": self.unknown_words,
                "unknown_rate": rounded(self.unknown_rate),
                "mean_confidence": rounded(self.mean_confidence),
                "near_half_share": rounded(self.near_half_share),
                "unknown_rate_limit": UNKNOWN_WORD_RATE_LIMIT,
                "note": out_of_domain_note(self)}


def out_of_domain_note(signal: DomainSignal) -> str | None:
    """The advice for a file that looks unlike the model's training text, or None."""
    rate = signal.unknown_rate
    if rate is None or signal.words < MIN_WORDS_JUDGED or rate <= UNKNOWN_WORD_RATE_LIMIT:
        return None
    return (f"this file looks unlike the text the model was trained on: {rate:.1%} of its words "
            f"are unknown to the model (above {UNKNOWN_WORD_RATE_LIMIT:.0%}), so expect lower "
            f"accuracy; a few hundred labelled reviews of your own adapt it "
            f"({ADAPT_COMMAND})")
