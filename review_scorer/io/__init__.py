"""Every input format in, one schema out: labeled reviews for training, review chunks for scoring."""

from review_scorer.io.common import SUPPORTED_FORMATS
from review_scorer.io.labeled import SPLITS, LabeledReviews, labeled_fingerprint
from review_scorer.io.labels import LABEL_HINT
from review_scorer.io.reviews import ReviewChunk, ReviewFile, ReviewFileInfo, open_reviews
from review_scorer.io.training_data import load_labeled

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
