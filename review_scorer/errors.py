"""Error types that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2


class ReviewScorerError(Exception):
    """Base class: a failure the user can act on. The message is one line, with what to do."""

    exit_code = EXIT_RUNTIME


class InputError(ReviewScorerError):
    """A bad input file, column, row or value (names the file/row/column and the fix)."""

    exit_code = EXIT_BAD_INPUT


class UsageError(ReviewScorerError):
    """A bad option value (a threshold outside (0, 1), a batch size below 1, ...)."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(ReviewScorerError):
    """A bad configuration file, key or value."""

    exit_code = EXIT_BAD_INPUT


class ArtifactError(ReviewScorerError):
    """A model directory that is missing, incomplete, corrupt or incompatible."""

    exit_code = EXIT_BAD_INPUT


class OutputError(ReviewScorerError):
    """An output that exists (without --overwrite) or cannot be written."""

    exit_code = EXIT_BAD_INPUT


class DownloadError(ReviewScorerError):
    """The dataset could not be fetched or failed its integrity check."""

    exit_code = EXIT_RUNTIME


class DeviceError(ReviewScorerError):
    """The requested compute device is not available."""

    exit_code = EXIT_BAD_INPUT
