"""Scoring files: the per-chunk kernel and its summaries, and the engines that run it (local, ray)."""
