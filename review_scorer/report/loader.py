"""Where the report templates are: the checkout's templates/ folder, or review_scorer.templates installed."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

TEMPLATES_PACKAGE = "review_scorer.templates"
_CHECKOUT = Path(__file__).resolve().parents[2]


def template_root() -> Any:
    """The templates folder, as a path or an importlib.resources Traversable.

    A wheel carries the repository's top-level templates/ as the package review_scorer.templates
    (pyproject.toml maps it). A source checkout, run in place or installed editable, has it beside
    review_scorer/; that is looked at first, so a checkout never renders another install's copy.
    """
    checkout = _CHECKOUT / "templates"
    if (_CHECKOUT / "pyproject.toml").is_file() and (checkout / "base.html").is_file():
        return checkout
    return importlib.resources.files(TEMPLATES_PACKAGE)


def template_loader() -> Any:
    """A jinja2 loader reading template_root(), whether it is a folder or inside an archive."""
    import jinja2

    root = template_root()

    def load(name: str) -> tuple[str, str, Any] | None:
        source = root.joinpath(*name.split("/"))
        if not source.is_file():
            return None
        return source.read_text(encoding="utf-8"), str(source), lambda: True

    return jinja2.FunctionLoader(load)
