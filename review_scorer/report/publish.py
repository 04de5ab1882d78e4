"""Publishing a report: rendered to a temp file beside its target, then moved into place."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from review_scorer.errors import OutputError
from review_scorer.report.data import ScoreReport, TrainReport

logger = logging.getLogger(__name__)


def publish_report(report: ScoreReport | TrainReport, target: str | Path, *,
                   overwrite: bool = False, together: Sequence[tuple[Path, Path]] = ()
                   ) -> str | Path:
    """Render the report and publish it at `target` atomically: readers see the earlier file or
    the whole new one. Returns the target.

    `together`: other finished temp files, as (temp, target), published in the same step before
    the report, all or none (a file's predictions). A target that exists is replaced only with
    overwrite; a missing parent folder is created. Raises OutputError when a target exists (and
    overwrite is False), is a folder, or cannot be written; every temp file is removed on any
    failure. A URI target (s3://, gs://, file://; the ray engine's) is written in one upload,
    which the object store publishes whole.
    """
    from review_scorer.io.part_files import is_uri, upload_whole
    from review_scorer.io.publish import publish_together, remove_quietly, write_temp_beside
    from review_scorer.report import render

    try:
        if is_uri(target):
            if together:
                raise ValueError("a report at a URI is published alone")
            data = render.build_report_html(report).encode("utf-8", "replace")
            upload_whole(str(target), data, overwrite=overwrite)
            return target
        target = _ready_target(Path(target), overwrite)
        data = render.build_report_html(report).encode("utf-8", "replace")
        temp = write_temp_beside(target, data)
    except BaseException:
        for temp, _ in together:
            remove_quietly(temp)
        raise
    publish_together([*together, (temp, target)], overwrite=overwrite)
    logger.info("wrote report %s (%d bytes)", target, len(data))
    return target


def _ready_target(target: Path, overwrite: bool) -> Path:
    """The report's path once its folder exists; OutputError for a target that is a folder or
    exists without overwrite, or a folder that cannot be made."""
    from review_scorer.io.publish import check_output_target

    check_output_target(target, overwrite)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write the report ({exc.strerror or exc}); "
                          "choose a writable location") from None
    return target
