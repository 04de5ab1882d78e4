"""clean_text, the one cleaning step of training and scoring, and its tokens' offsets in the original text."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

# Cleaning, in order (documented in the README; changing any step changes every model's input,
# so bump VOCAB_HEADER's version if you do):
#   1. HTML line breaks (<br>, <br />, <p>) and any other tag become a space.
#   2. HTML entities are decoded (&amp; -> &, &quot; -> ").
#   3. Unicode NFKC normalisation, then lowercase; typographic apostrophes become '.
#   4. Tokens are runs of letters/digits, optionally joined by inner apostrophes, so contractions
#      stay one token ("don't", "isn't", "director's"); "!" and "?" are kept as tokens of their
#      own because they carry sentiment; every other character is a separator.
#   5. Tokens are joined with single spaces (whitespace normalised).
# token_offsets (below) maps cleaned tokens back to the original text with these same three
# patterns; change them together (alignment falls back to no highlights, never wrong ones).
_TAG_RE = re.compile(r"<[^<>]{0,200}>")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_ASCII_APOSTROPHE = "`"  # the one ASCII key of _APOSTROPHES (clean_text's fast path)
_TOKEN_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")
_TOKEN_SPLIT_RE = re.compile(f"({_TOKEN_RE.pattern})")  # clean_text's tokens, captured
# Same pattern as CPython's html.unescape (Lib/html/__init__.py), so each match decodes exactly
# as it does inside clean_text.
_CHARREF_RE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)")


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


# ------------------------------------------------------------------------------ text -> spans


def _normalise_piece(piece: str) -> str:
    """The per-character steps of clean_text after entity decoding: NFKC, lowercase, apostrophes."""
    return unicodedata.normalize("NFKC", piece).lower().translate(_APOSTROPHES)


def _one_to_one(segment: str) -> str | None:
    """The normalised segment when every character maps to exactly one character, else None.

    An equal length alone does not say so: "E" + a combining accent (2 -> 1) and "\u00bd"
    (1 -> 3) can cancel out. NFKC leaves an already-normalised string alone, and lowercasing
    never maps a character to nothing, so those two checks do.
    """
    if segment.isascii():
        return segment.lower().replace(_ASCII_APOSTROPHE, "'")
    if not unicodedata.is_normalized("NFKC", segment):
        return None
    out = segment.lower()
    return out.translate(_APOSTROPHES) if len(out) == len(segment) else None


def _plain_pieces(text: str, start: int, end: int) -> Iterable[tuple[str, int, int, bool]]:
    """Normalised pieces of text[start:end] (no entities in it): (output, source start, source
    end, whether output character i comes from source character start + i)."""
    segment = text[start:end]
    out = _one_to_one(segment)
    if out is not None:
        yield out, start, end, True
        return
    # Not one to one (a ligature, a decomposed accent, a dotted capital I): normalise per base
    # character with its combining marks, so only those few characters map coarsely.
    i = 0
    while i < len(segment):
        j = i + 1
        while j < len(segment) and unicodedata.combining(segment[j]):
            j += 1
        out = _normalise_piece(segment[i:j])
        yield out, start + i, start + j, len(out) == 1 and j == i + 1
        i = j


def _normalised_pieces(text: str) -> list[tuple[str, int, int, bool]]:
    """clean_text's transformations before tokenising, as _plain_pieces' pieces."""
    # A tag becomes spaces of its own length: the same separator for the tokeniser, and 1:1.
    spaced = _TAG_RE.sub(_blank, text)
    pieces: list[tuple[str, int, int, bool]] = []
    pos = 0
    if "&" in spaced:
        for m in _CHARREF_RE.finditer(spaced):
            pieces.extend(_plain_pieces(spaced, pos, m.start()))
            decoded = html.unescape(m.group())
            if decoded == m.group():  # not an entity after all: plain text
                pieces.extend(_plain_pieces(spaced, m.start(), m.end()))
            else:  # the decoded characters all map to the whole entity
                pieces.append((_normalise_piece(decoded), m.start(), m.end(), False))
            pos = m.end()
    pieces.extend(_plain_pieces(spaced, pos, len(spaced)))
    return pieces


def _offsets_from_parts(parts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the tokens of one _TOKEN_SPLIT_RE.split result, in the split string.

    The split gives separator, token, separator, ...: offsets are running sums of the lengths
    (no Python work per token, which mattered next to the model's own time).
    """
    ends_at = np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)))
    return ends_at[0:-1:2], ends_at[1::2]


def _blank(match: re.Match) -> str:
    return " " * (match.end() - match.start())


def token_offsets(text: str, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Start and end offsets in `text` of each of its cleaned tokens, or None if they don't align.

    Replays clean_text with a record of where each output character came from, tokenises with
    the same regex and checks the tokens are exactly `tokens` (clean_text(text).split()).
    """
    pieces = _normalised_pieces(text)
    normalised = "".join(out for out, _, _, _ in pieces)
    parts = _TOKEN_SPLIT_RE.split(normalised)
    if parts[1::2] != list(tokens):
        return None
    starts, ends = _offsets_from_parts(parts)
    if len(pieces) == 1 and pieces[0][3]:  # one to one throughout
        return starts.astype(np.int32), ends.astype(np.int32)
    src_start = np.concatenate([
        np.arange(a, b) if exact else np.full(len(out), a) for out, a, b, exact in pieces
    ] or [np.zeros(0, np.int64)]).astype(np.int64)
    src_end = np.concatenate([
        np.arange(a + 1, b + 1) if exact else np.full(len(out), b) for out, a, b, exact in pieces
    ] or [np.zeros(0, np.int64)]).astype(np.int64)
    return src_start[starts].astype(np.int32), src_end[ends - 1].astype(np.int32)


def clean_and_align(text: str) -> tuple[list[str], tuple[np.ndarray, np.ndarray] | None]:
    """clean_text(text).split() and the tokens' (starts, ends) in `text` (None: not aligned).

    Most reviews hold no HTML entity, and NFKC, lowercasing and the apostrophe mapping turn
    each of their characters into one character (always so for ASCII, where NFKC changes
    nothing). Then clean_text's tokens are the tokeniser's matches in the normalised text with
    its tags blanked out to the same length (a tag is a separator either way), offsets carry
    over one to one, and one pass gives both the tokens and their offsets. Other text is
    cleaned by clean_text itself and aligned by token_offsets, which checks its replay against
    those tokens.
    """
    if "&" not in text:
        normalised = _one_to_one(_TAG_RE.sub(_blank, text) if "<" in text else text)
        if normalised is not None:
            parts = _TOKEN_SPLIT_RE.split(normalised)
            starts, ends = _offsets_from_parts(parts)
            return parts[1::2], (starts.astype(np.int32), ends.astype(np.int32))
    tokens = clean_text(text).split()
    return tokens, token_offsets(text, tokens)
