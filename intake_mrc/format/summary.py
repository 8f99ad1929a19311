"""What a catalog index shows of an MRC file, from its first bytes only: shape, dtype, mode,
voxel size and extended header type.

Pure functions over bytes, no I/O (the catalog index fetches the bytes). They reuse the
main-header parser and the extended-header decoder, so a catalog says what ``open_mrc``
would: the same shape rule, the same dtype decision, the same voxel size (FEI records fill
in what the cell leaves unknown).
"""

from __future__ import annotations

import bz2
import zlib
from typing import Any

from ..errors import MRCFormatError
from .extended import OLD_FEI_NBYTES, decode_extended_header, fei_pixel_size_m
from .header import HEADER_NBYTES, detect_compression, has_map_id, parse_main_header

# Enough for the main header and the first FEI1/FEI2 (768/888 bytes) or old-FEI (128 bytes)
# record, which is all a summary needs: one small range request per file.
SUMMARY_HEAD_NBYTES = HEADER_NBYTES + 4096


def decompress_prefix(head: bytes, compression: str, source: str | None = None) -> bytes:
    """The first decompressed bytes of a gzip or bzip2 file, from its first bytes only.

    gzip streams decompress from any prefix; bzip2 gives nothing before a whole block
    (up to 900 kB) has arrived, so a short bzip2 prefix raises ``MRCFormatError``."""
    try:
        if compression == "gzip":
            out = zlib.decompressobj(wbits=31).decompress(head, SUMMARY_HEAD_NBYTES)
        else:
            out = bz2.BZ2Decompressor().decompress(head, SUMMARY_HEAD_NBYTES)
    except (OSError, EOFError, zlib.error, ValueError) as error:
        raise MRCFormatError(
            f"{compression} data cannot be decompressed: {error}", source
        ) from None
    if len(out) < HEADER_NBYTES:
        raise MRCFormatError(
            f"the first {len(head)} bytes of this {compression} file decompress to "
            f"{len(out)} bytes, short of the 1024-byte header (bzip2 needs a whole block)",
            source,
            "header",
        )
    return out


def summarize_head(
    head: bytes,
    source: str | None = None,
    file_size: int | None = None,
    default_unsigned_bytes: bool = False,
) -> dict[str, Any]:
    """Catalog fields of an MRC file from its first bytes (and its size when listed).

    Raises ``MRCFormatError`` (or a subclass) for what ``open_mrc`` would refuse."""
    compression = detect_compression(head)
    if compression and not has_map_id(head):
        head = decompress_prefix(head, compression, source)
        file_size = None  # the listed size is the compressed one
    header = parse_main_header(
        head, source, file_size, default_unsigned_bytes=default_unsigned_bytes
    )
    nsymbt = header.extended_nbytes
    raw = head[HEADER_NBYTES : HEADER_NBYTES + nsymbt]
    exttyp = header.fields["exttyp"]
    if len(raw) < nsymbt and exttyp.strip() == "" and nsymbt in OLD_FEI_NBYTES:
        # The old FEI layout is known by its total length; only the first record is used,
        # so the part not fetched is padded rather than read.
        raw = raw.ljust(nsymbt, b"\x00")
    # One section: the summary uses the first record only (pixel size).
    extended = decode_extended_header(raw, exttyp, header.byte_order, 1) if nsymbt else None
    x, y, z = header.voxel_size
    fei_x, fei_y = fei_pixel_size_m(extended)
    if x is None and fei_x is not None:
        x = fei_x * 1e10
    if y is None and fei_y is not None:
        y = fei_y * 1e10
    return {
        "shape": list(header.shape),
        "dtype": str(header.layout.out_dtype),
        "mode": header.layout.mode,
        "voxel_size_angstrom": [x, y, z],
        "extended_header_type": None if extended is None else extended.kind,
        "compression": compression,
    }
