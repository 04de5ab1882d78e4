"""The default model shipped with the package (model files only; see README)."""
