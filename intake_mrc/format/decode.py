"""Stored bytes -> output arrays: byte swapping, complex int16, 4-bit unpacking and IMOD's
shifted signed bytes.

Pure functions over numpy buffers. Input is a whole number of stored rows, as read from a
file; output rows are ``nx`` pixels of the layout's output dtype in native byte order.
"""

from __future__ import annotations

import numpy as np

from .header import DataLayout


def decode_rows(raw: np.ndarray, layout: DataLayout) -> np.ndarray:
    """Decode a uint8 buffer of whole stored rows into an (n_rows, nx) array.

    Returns a view of ``raw`` when no conversion is needed, so callers can hand out the
    buffer they filled without a copy.
    """
    n_rows = raw.size // layout.row_nbytes
    if layout.mode == 101:
        packed = raw.reshape(n_rows, layout.row_nbytes)
        out = np.empty((n_rows, 2 * layout.row_nbytes), dtype=np.uint8)
        # Low nibble first: pixel 2k is the low half of byte k.
        np.bitwise_and(packed, 0x0F, out=out[:, 0::2])
        np.right_shift(packed, 4, out=out[:, 1::2])
        return out[:, : layout.nx]
    if layout.shift_bytes:
        # int8 + 128 as uint8 is a flip of the top bit: in place when the buffer is writable.
        raw = raw.view(np.uint8)
        if raw.flags.writeable:
            np.bitwise_xor(raw, 0x80, out=raw)
        else:
            raw = np.bitwise_xor(raw, 0x80)
        return raw.reshape(n_rows, layout.nx)
    stored = raw.view(layout.stored_dtype)
    if layout.mode == 3:
        pairs = stored.reshape(n_rows, layout.nx, 2)
        out = np.empty((n_rows, layout.nx), dtype=np.complex64)
        out.real = pairs[..., 0]
        out.imag = pairs[..., 1]
        return out
    if not layout.stored_dtype.isnative and layout.stored_dtype.itemsize > 1:
        # Swap in place: the buffer is ours, and this avoids a second full-size array.
        stored = stored.byteswap(inplace=True).view(layout.stored_dtype.newbyteorder("="))
    return stored.view(layout.out_dtype).reshape(n_rows, layout.nx)
