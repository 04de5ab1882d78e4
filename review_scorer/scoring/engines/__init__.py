"""Where scored chunks are computed: in this process (local, the default) or on a Ray cluster."""

from __future__ import annotations

from typing import Any

from review_scorer.errors import EXIT_BAD_INPUT, EXIT_RUNTIME, ReviewScorerError


class EngineError(ReviewScorerError):
    """A cluster that cannot be reached or that failed while scoring (a runtime failure)."""

    exit_code = EXIT_RUNTIME


class EngineUnavailableError(EngineError):
    """The engine asked for is not installed (like --device gpu without a GPU: a usage error)."""

    exit_code = EXIT_BAD_INPUT


def score_with_ray(inputs: Any, **kwargs: Any) -> Any:
    """Score files on Ray; see review_scorer.scoring.engines.ray.score_with_ray for the arguments.

    Raises EngineUnavailableError, naming the extra to install, when Ray is missing.
    """
    try:
        from review_scorer.scoring.engines import ray as ray_engine
    except ImportError as exc:
        missing = getattr(exc, "name", None) or ""
        if missing.split(".")[0] not in ("ray", "pyarrow"):
            raise
        raise EngineUnavailableError(
            f"--engine ray needs Ray Data, which is not installed ({missing} is missing); "
            'install it with: pip install "review-scorer[ray]"') from None
    return ray_engine.score_with_ray(inputs, **kwargs)
