"""review-scorer: batch sentiment scoring of review files with an LSTM classifier."""

__version__ = "0.2.0"
__all__ = ["SentimentModel", "__version__"]


def __getattr__(name: str):
    # Lazy on purpose: `import review_scorer` (and so `review-scorer --help`) must not pull in
    # TensorFlow; it is imported only when a model is loaded or used.
    if name == "SentimentModel":
        from review_scorer.model.sentiment import SentimentModel

        return SentimentModel
    raise AttributeError(f"module 'review_scorer' has no attribute {name!r}")
