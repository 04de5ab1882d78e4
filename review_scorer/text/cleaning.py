"""The one text pipeline shared by training and scoring: clean_text, Vocabulary, text -> ids."""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from review_scorer.errors import ArtifactError

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = "<pad>"
OOV_TOKEN = "<unk>"
RESERVED_TOKENS = (PAD_TOKEN, OOV_TOKEN)
VOCAB_HEADER = "# review-scorer vocabulary v1"

# Cleaning, in order (documented in the README; changing any step changes every model's input,
# so bump VOCAB_HEADER's version if you do):
#   1. HTML line breaks (<br>, <br />, <p>) and any other tag become a space.
#   2. HTML entities are decoded (&amp; -> &, &quot; -> ").
#   3. Unicode NFKC normalisation, then lowercase; typographic apostrophes become '.
#   4. Tokens are runs of letters/digits, optionally joined by inner apostrophes, so contractions
#      stay one token ("don't", "isn't", "director's"); "!" and "?" are kept as tokens of their
#      own because they carry sentiment; every other character is a separator.
#   5. Tokens are joined with single spaces (whitespace normalised).
# explain.token_offsets maps cleaned tokens back to the original text with these same three
# patterns; change them together (alignment falls back to no highlights, never wrong ones).
_TAG_RE = re.compile(r"<[^<>]{0,200}>")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_ASCII_APOSTROPHE = "`"  # the one ASCII key of _APOSTROPHES (clean_text's fast path)
_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")


def clean_text(text: str | None) -> str:
    """Return the cleaned form of one review: lowercase tokens separated by single spaces.

    Deterministic and idempotent: clean_text(clean_text(x)) == clean_text(x). Returns "" when
    nothing word-like is left (an empty, whitespace-only or markup-only review).
    """
    if not text:
        return ""
    text = html.unescape(_TAG_RE.sub(" ", text))
    if text.isascii():  # NFKC leaves ASCII alone; "`" is the only ASCII apostrophe variant
        text = text.lower().replace(_ASCII_APOSTROPHE, "'")
    else:
        text = unicodedata.normalize("NFKC", text).lower().translate(_APOSTROPHES)
    return " ".join(_TOKEN_RE.findall(text))


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
