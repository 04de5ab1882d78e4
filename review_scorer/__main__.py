"""Entry point for ``python -m review_scorer``."""

from review_scorer.cli import main

if __name__ == "__main__":
    main()
