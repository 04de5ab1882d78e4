"""review-scorer: batch sentiment scoring of review files with an LSTM classifier."""

__version__ = "0.1.0"
