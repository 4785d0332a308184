"""Data files on disk: SHA-256 verification and the opt-in download.

Nothing here touches the network unless a caller asks for a download; a downloaded file is
written under a temporary name and only renamed into place once its checksum matches, so an
interrupted or tampered download never reaches the loader.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from harness.data.base import DataError

__all__ = [
    "DOWNLOAD_TIMEOUT_S",
    "ChecksumError",
    "DownloadError",
    "FilesMissingError",
    "download_file",
    "sha256_file",
    "verify_sha256",
]

#: Seconds before a download attempt gives up (per connection and per read).
DOWNLOAD_TIMEOUT_S = 10.0
_CHUNK = 1 << 20


class FilesMissingError(DataError):
    """The files a dataset needs are not in the data directory (the message says which, where)."""


class ChecksumError(DataError):
    """A data file's SHA-256 differs from the expected one: the file is corrupt or not the original."""


class DownloadError(DataError):
    """Every mirror of a file failed."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` naming the file, the expected and the actual hash."""
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(
            f"checksum mismatch for {path}: expected SHA-256 {expected}, got {actual}; "
            f"the file is corrupt or not the official one. Delete it and put the original there."
        )


def download_file(urls: Sequence[str], dest: Path, expected_sha256: str) -> None:
    """Fetch ``dest`` from the first mirror that answers and verify it before renaming it into place.

    Raises :class:`DownloadError` listing each mirror's failure, or :class:`ChecksumError` when a
    mirror served different bytes.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            ):
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
            actual = sha256_file(tmp)
            if actual != expected_sha256.lower():
                raise ChecksumError(
                    f"checksum mismatch for {dest.name} downloaded from {url}: expected SHA-256 "
                    f"{expected_sha256}, got {actual}; the download was discarded."
                )
            os.replace(tmp, dest)
            return
        except OSError as exc:  # URLError, timeouts and refused connections are all OSErrors
            failures.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(f"could not download {dest.name}: " + "; ".join(failures))
