"""TensorFlow imported without its native start-up lines on stderr (the Python API's quiet)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading

TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
# What TensorFlow's C++ side writes while it starts: absl/TSL lines ("I0000 00:00:17... port.cc:
# 153] oneDNN custom operations are on...", "E0000 ... failed call to cuInit"), absl's notice
# that logging is not initialised, and the continuation line of the CPU-feature notice.
_NATIVE_LINE = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w.\-/]+:\d+\]"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)")
_lock = threading.Lock()


def quiet_tensorflow() -> None:
    """Import TensorFlow (once) so that its native start-up noise stays off stderr.

    Only when the user has not set TF_CPP_MIN_LOG_LEVEL: then it is set to 3 (TensorFlow's C++
    logging off, which also hides the "failed call to cuInit" error of a machine without a
    GPU), and what the import writes to file descriptor 2 is captured and written back without
    TensorFlow's native lines, so anything else (the user's own logging from another thread, a
    Python warning) still reaches stderr. With the variable set, nothing is changed.
    """
    if "tensorflow" in sys.modules:
        return
    with _lock:
        if "tensorflow" in sys.modules:
            return
        if TF_LOG_LEVEL_ENV in os.environ:
            return  # the user chose TensorFlow's logging: imported as it comes
        os.environ[TF_LOG_LEVEL_ENV] = "3"
        with _native_stderr_filtered():
            import tensorflow  # noqa: F401


@contextlib.contextmanager
def _native_stderr_filtered():
    """Capture file descriptor 2 for the block, then write back every line that is not one of
    TensorFlow's native log lines."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 at all: nothing to protect
        yield
        return
    capture = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    try:
        os.dup2(capture.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
        capture.close()
        kept = "".join(line for line in text.splitlines(keepends=True)
                       if not _NATIVE_LINE.match(line))
        if kept:
            with contextlib.suppress(OSError):
                os.write(2, kept.encode("utf-8", "replace"))
