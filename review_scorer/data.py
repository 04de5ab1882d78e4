"""Compatibility shim: the input readers moved to review_scorer.io (import from there)."""

from review_scorer.io import (
    LABEL_HINT,
    SPLITS,
    SUPPORTED_FORMATS,
    LabeledReviews,
    ReviewChunk,
    ReviewFile,
    ReviewFileInfo,
    labeled_fingerprint,
    load_labeled,
    open_reviews,
)

__all__ = [
    "LABEL_HINT",
    "SPLITS",
    "SUPPORTED_FORMATS",
    "LabeledReviews",
    "ReviewChunk",
    "ReviewFile",
    "ReviewFileInfo",
    "labeled_fingerprint",
    "load_labeled",
    "open_reviews",
]
