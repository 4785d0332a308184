"""The IDX file format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimension sizes, then the data in C order, big-endian.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from harness.data.base import DataError

__all__ = ["encode_idx", "parse_idx", "read_idx_gz"]

# type byte → element dtype (big-endian where it matters), from the format description
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_HEADER = 4


def parse_idx(data: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into an array in native byte order.

    Raises :class:`DataError` naming ``source`` for a bad magic number, an unknown type byte or a
    payload whose length disagrees with the header.
    """
    if len(data) < _HEADER or data[0] != 0 or data[1] != 0:
        raise DataError(f"{source}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{source}: unknown IDX element type 0x{type_code:02x}")
    header_end = _HEADER + 4 * ndim
    if len(data) < header_end:
        raise DataError(f"{source}: IDX header truncated ({len(data)} bytes)")
    shape = struct.unpack(f">{ndim}I", data[_HEADER:header_end])
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_end != expected:
        raise DataError(
            f"{source}: IDX payload has {len(data) - header_end} bytes, header {shape} "
            f"with {dtype.itemsize}-byte elements needs {expected}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_end).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def encode_idx(arr: np.ndarray) -> bytes:
    """The IDX bytes of ``arr`` (the inverse of :func:`parse_idx`; used to write test files)."""
    for code, dtype in _IDX_DTYPES.items():
        if dtype.newbyteorder("=") == arr.dtype.newbyteorder("="):
            header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            return header + np.ascontiguousarray(arr, dtype=dtype).tobytes()
    raise ValueError(f"encode_idx: dtype {arr.dtype} has no IDX type code")


def read_idx_gz(path: Path) -> np.ndarray:
    """Read a gzipped IDX file; a corrupt archive raises :class:`DataError` naming the file."""
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt gzip archive ({exc})") from exc
    return parse_idx(data, source=str(path))
