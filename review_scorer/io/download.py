"""Fetch the IMDB archive (or another URL) into a local cache: resumable, size- and sha256-checked."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from review_scorer import __version__
from review_scorer.errors import DownloadError

log = logging.getLogger(__name__)

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# Published size and sha256 of the archive at IMDB_URL (the same values appear in the Hugging
# Face "imdb" dataset card and in several independent download scripts).
IMDB_SIZE = 84125825
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

CACHE_ENV = "REVIEW_SCORER_CACHE"
CACHE_APP_DIR = "review-scorer"
PART_SUFFIX = ".part"
MARKER_SUFFIX = ".sha256"

_CHUNK = 1 << 16
_OFFLINE_HINT = "check your connection, or pass --data PATH to a local copy of the archive"
_CONTENT_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")

ProgressFn = Callable[[int, "int | None"], None]


def default_cache_dir() -> Path:
    """Return the download cache folder: $REVIEW_SCORER_CACHE, else $XDG_CACHE_HOME/review-scorer,
    else ~/.cache/review-scorer. The folder is not created here."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / CACHE_APP_DIR
    return Path.home() / ".cache" / CACHE_APP_DIR


def archive_file_name(url: str) -> str:
    """Return the cache file name for a URL: the last path segment, made safe for a file name."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path).rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return name or "download"


def fetch_archive(
    url: str = IMDB_URL,
    *,
    cache_dir: Path | str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    progress: ProgressFn | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``url`` into the cache (once) and return the path of the complete, verified file.

    For IMDB_URL, ``sha256=None`` and ``size=None`` mean the published values; for any other URL
    they mean "not known" and only the server's Content-Length is checked. A complete cached file is
    reused without touching the network (its hash is checked once and remembered in a small
    ``<name>.sha256`` marker). A partial ``<name>.part`` left by an interrupted run is resumed with
    an HTTP Range request when the server supports it, else downloaded again from the start.
    ``progress(done_bytes, total_bytes_or_None)`` is called as bytes arrive.

    Raises DownloadError (one line, naming the URL) when offline, on an HTTP error, an interrupted
    transfer (the partial file is kept for the next run) or a size/checksum mismatch (the bad file
    is deleted).
    """
    if url == IMDB_URL:
        sha256 = sha256 or IMDB_SHA256
        size = size if size is not None else IMDB_SIZE
    sha256 = sha256.lower() if sha256 else None
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"cannot create the download cache folder {cache}: {exc.strerror or exc}; "
            f"set {CACHE_ENV} to a writable folder"
        ) from exc
    final = cache / archive_file_name(url)
    part = final.with_name(final.name + PART_SUFFIX)
    marker = final.with_name(final.name + MARKER_SUFFIX)

    if final.is_file() and _cached_file_ok(final, marker, sha256=sha256, size=size):
        log.info("using cached %s", final)
        return final

    _download_to_part(url, part, size=size, progress=progress, timeout=timeout)
    _verify_part(url, part, sha256=sha256, size=size)
    os.replace(part, final)
    if sha256:
        _write_marker(final, marker, sha256)
    log.info("downloaded %s to %s", url, final)
    return final


def _cached_file_ok(final: Path, marker: Path, *, sha256: str | None, size: int | None) -> bool:
    """True when the cached file is complete and (if a hash is known) verified; else remove it."""
    actual_size = final.stat().st_size
    if size is not None and actual_size != size:
        log.warning("cached %s has %d bytes, expected %d; downloading again", final, actual_size,
                    size)
        _remove(final, marker)
        return False
    if not sha256:
        return True
    if _read_marker(marker) == _marker_text(final, sha256):
        return True
    if sha256_file(final) == sha256:
        _write_marker(final, marker, sha256)
        return True
    log.warning("cached %s failed its checksum; downloading again", final)
    _remove(final, marker)
    return False


def _download_to_part(
    url: str, part: Path, *, size: int | None, progress: ProgressFn | None, timeout: float
) -> None:
    """Bring ``part`` to the full length of the resource, resuming when possible."""
    have = part.stat().st_size if part.is_file() else 0
    if size is not None and have > size:
        _remove(part)
        have = 0
    if size is not None and have == size:
        # A previous run got every byte but stopped before verifying; nothing left to fetch.
        return

    response = _open(url, start=have, timeout=timeout) if have else None
    total: int | None = None
    if response is not None:
        if response.status == 206:
            total = _resume_total(response, have)
            if total is None:
                # The server answered a different range than asked: start over cleanly.
                response.close()
                response = None
        else:
            have = 0  # the server ignored Range (200): the body is the whole file
            total = _content_length(response)
    if response is None:
        have = 0
        _remove(part)
        response = _open(url, start=0, timeout=timeout)
        total = _content_length(response)
    with response:
        if total is not None and size is not None and total != size:
            raise DownloadError(
                f"cannot download {url}: the server offers {total} bytes but {size} were "
                f"expected; check the URL, or pass --data PATH to a local copy of the archive"
            )
        expected_total = total if total is not None else size
        _stream(url, response, part, have=have, total=expected_total, progress=progress)


def _open(url: str, *, start: int, timeout: float) -> http.client.HTTPResponse | None:
    """Send the GET (with a Range header when resuming); None when a resume gets a 416 answer."""
    headers = {"User-Agent": f"review-scorer/{__version__}", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start:
            return None
        raise DownloadError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; check the URL, or pass "
            f"--data PATH to a local copy of the archive"
        ) from exc
    except urllib.error.URLError as exc:
        raise DownloadError(
            f"cannot download {url}: {_reason(exc.reason)}; {_OFFLINE_HINT}"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"cannot download {url}: {_reason(exc)}; {_OFFLINE_HINT}") from exc


def _resume_total(response: http.client.HTTPResponse, have: int) -> int | None:
    """Full length from a 206 answer that continues exactly at ``have``; None if it does not."""
    match = _CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != have:
        return None
    if match.group(3) != "*":
        return int(match.group(3))
    length = _content_length(response)
    return have + length if length is not None else None


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stream(
    url: str,
    response: http.client.HTTPResponse,
    part: Path,
    *,
    have: int,
    total: int | None,
    progress: ProgressFn | None,
) -> None:
    done = have
    if progress:
        progress(done, total)
    try:
        with open(part, "ab" if have else "wb") as out:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"download of {url} was interrupted after {done} of {total or '?'} bytes "
            f"({_reason(exc)}); run the command again to resume, or pass --data PATH to a local "
            f"copy of the archive"
        ) from exc
    if total is not None and done < total:
        raise DownloadError(
            f"download of {url} was interrupted after {done} of {total} bytes (the connection "
            f"closed early); run the command again to resume, or pass --data PATH to a local copy "
            f"of the archive"
        )


def _verify_part(url: str, part: Path, *, sha256: str | None, size: int | None) -> None:
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        _remove(part)
        raise DownloadError(
            f"download of {url} has {actual_size} bytes but {size} were expected; the bad file "
            f"was deleted; run the command again, or pass --data PATH to a local copy"
        )
    if sha256:
        actual = sha256_file(part)
        if actual != sha256:
            _remove(part)
            raise DownloadError(
                f"download of {url} failed its checksum (sha256 {actual[:16]}..., expected "
                f"{sha256[:16]}...); the bad file was deleted; run the command again, or pass "
                f"--data PATH to a local copy"
            )


def sha256_file(path: Path) -> str:
    """Return the sha256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _marker_text(final: Path, sha256: str) -> str:
    # Size and mtime tie the marker to this exact file, so a replaced file is hashed again.
    st = final.stat()
    return f"{sha256} {st.st_size} {st.st_mtime_ns}\n"


def _read_marker(marker: Path) -> str | None:
    try:
        return marker.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _write_marker(final: Path, marker: Path, sha256: str) -> None:
    with contextlib.suppress(OSError):  # the marker only saves time; never fail over it
        marker.write_text(_marker_text(final, sha256), encoding="ascii")


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _reason(exc: object) -> str:
    """A short one-line reason from a socket/URL error."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
