"""Write MRC files for tests with mrcfile (the independent writer), plus raw numpy bytes for
the modes mrcfile cannot write (3: complex int16, 101: 4-bit)."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np

FEI2_RECORD_NBYTES = 888


def write_mrc(
    path: Path,
    data: np.ndarray,
    voxel_size=None,
    ispg=None,
    mz=None,
    header: dict | None = None,
    extended: np.ndarray | bytes | None = None,
    exttyp: bytes | None = None,
) -> Path:
    """Write ``data`` (any mrcfile dtype, either byte order) and set header fields."""
    with mrcfile.new(str(path), overwrite=True) as mrc:
        mrc.set_data(data)
        if extended is not None:
            mrc.set_extended_header(
                extended
                if isinstance(extended, np.ndarray)
                else np.frombuffer(extended, dtype="V1")
            )
        if exttyp is not None:
            mrc.header.exttyp = exttyp
        if ispg is not None:
            mrc.header.ispg = ispg
        if mz is not None:
            mrc.header.mz = mz
        if voxel_size is not None:
            mrc.voxel_size = voxel_size
        for key, value in (header or {}).items():
            mrc.header[key] = value
    return path


def write_raw_mode(
    path: Path, mode: int, shape: tuple[int, int, int], payload: bytes, byte_order: str = "<"
) -> Path:
    """A header from mrcfile for ``shape`` with MODE forced, followed by raw ``payload``."""
    nz, ny, nx = shape
    write_mrc(path, np.zeros((nz, ny, nx), dtype=np.dtype("i2").newbyteorder(byte_order)))
    with mrcfile.open(str(path), mode="r+", permissive=True) as mrc:
        header = mrc.header.copy()
    header.mode = mode
    raw = header.tobytes()
    Path(path).write_bytes(raw + payload)
    return path


def fei2_records(
    n: int,
    pixel_size_m: float = 1.5e-10,
    byte_order: str = "<",
    record_nbytes: int = FEI2_RECORD_NBYTES,
) -> np.ndarray:
    """``n`` FEI2 records from mrcfile's own layout, padded to ``record_nbytes``."""
    dtype = mrcfile.dtypes.get_ext_header_dtype(b"FEI2", byte_order)
    records = np.zeros(n, dtype=dtype)
    records["Metadata size"] = record_nbytes
    records["Metadata version"] = 2
    records["Pixel size X"] = pixel_size_m
    records["Pixel size Y"] = pixel_size_m
    records["HT"] = 300e3
    records["Dose"] = np.arange(n) * 1e20
    records["Scan size right"] = 7
    if record_nbytes == dtype.itemsize:
        return records
    padded = np.zeros(n, dtype=[("rec", dtype), ("pad", f"V{record_nbytes - dtype.itemsize}")])
    padded["rec"] = records
    return padded
