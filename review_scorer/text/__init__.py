"""Turning review text into ids: cleaning (with character offsets), the vocabulary, batching."""
