"""The vocabulary (a plain text file beside the model) and text -> ids: the one vectorising step."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from review_scorer.errors import ArtifactError
from review_scorer.text.cleaning import clean_text

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<unk>"
RESERVED_TOKENS = (PAD_TOKEN, OOV_TOKEN)
VOCAB_HEADER = "# review-scorer vocabulary v1"


class Vocabulary:
    """Token <-> id mapping built from training text. Id 0 is padding, id 1 is out-of-vocabulary.

    Saved as a plain UTF-8 text file (one token per line, line order = id), so a model directory
    needs no pickle and no custom Keras layer to turn text into ids.
    """

    def __init__(self, tokens: Sequence[str]):
        tokens = list(tokens)
        if tuple(tokens[:2]) != RESERVED_TOKENS:
            raise ValueError("a vocabulary starts with the padding and unknown tokens")
        self.tokens = tokens
        self._index = {tok: i for i, tok in enumerate(tokens)}
        if len(self._index) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(tuple(self.tokens))

    @classmethod
    def build(cls, cleaned_texts: Iterable[str], *, max_size: int, min_count: int = 1) -> Vocabulary:
        """Most frequent tokens first (ties broken alphabetically), at most max_size ids in all."""
        counts: Counter[str] = Counter()
        for cleaned in cleaned_texts:
            counts.update(cleaned.split())
        ranked = sorted(
            (tok for tok, n in counts.items() if n >= min_count and tok not in RESERVED_TOKENS),
            key=lambda tok: (-counts[tok], tok),
        )
        return cls([*RESERVED_TOKENS, *ranked[: max(0, max_size - len(RESERVED_TOKENS))]])

    def save(self, path: str | Path) -> None:
        Path(path).write_text(VOCAB_HEADER + "\n" + "\n".join(self.tokens) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: cannot read the vocabulary ({exc}); retrain the model") from None
        if not lines or lines[0] != VOCAB_HEADER:
            raise ArtifactError(f"{path}: not a review-scorer vocabulary file; retrain the model")
        tokens = lines[1:-1] if lines[-1] == "" else lines[1:]
        try:
            return cls(tokens)
        except ValueError as exc:
            raise ArtifactError(f"{path}: corrupt vocabulary ({exc}); retrain the model") from None

    def encode(self, cleaned: str) -> np.ndarray:
        """Ids of every token of one cleaned text (no truncation)."""
        return self.ids(cleaned.split())

    def ids(self, tokens: Sequence[str]) -> np.ndarray:
        """int32 ids of a list of cleaned tokens (OOV_ID for unknown ones)."""
        # map() with a repeated default runs dict.get without a Python frame per token.
        return np.fromiter(map(self._index.get, tokens, itertools.repeat(OOV_ID)), dtype=np.int32,
                           count=len(tokens))


def truncate(ids: np.ndarray, max_len: int, side: str) -> np.ndarray:
    """Cut a sequence to max_len ids.

    side "post" keeps the beginning, "pre" keeps the end, and "head_tail" keeps the first quarter
    and the last three quarters of the budget: reviews tend to open with context and close with
    the verdict (Sun et al., 2019, "How to Fine-Tune BERT for Text Classification?", found
    head+tail truncation best on IMDB).
    """
    n = len(ids)
    if n <= max_len:
        return ids
    if side == "post":
        return ids[:max_len]
    if side == "pre":
        return ids[n - max_len :]
    if side == "head_tail":
        head = max_len // 4
        return np.concatenate([ids[:head], ids[n - (max_len - head) :]])
    raise ValueError(f"unknown truncation side {side!r}")


def encode_cleaned(cleaned: str, vocab: Vocabulary, *, max_len: int, truncating: str) -> np.ndarray:
    """Ids of a cleaned text, truncated: the single vectorising step of training and scoring."""
    return truncate(vocab.encode(cleaned), max_len, truncating)


def encode_text(text: str | None, vocab: Vocabulary, *, max_len: int, truncating: str) -> np.ndarray:
    """Clean then encode one raw review (empty array when no word is left)."""
    return encode_cleaned(clean_text(text), vocab, max_len=max_len, truncating=truncating)


def texts_to_sequences(
    texts: Iterable[str | None], vocab: Vocabulary, *, max_len: int, truncating: str
) -> list[np.ndarray]:
    """Clean, encode and truncate raw texts: the exact path used by both training and scoring."""
    return [encode_text(t, vocab, max_len=max_len, truncating=truncating) for t in texts]
