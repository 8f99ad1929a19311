"""Validation of an MRC header against MRC2014: pure checks over bytes, no I/O.

The checks are those of mrcfile's ``validate`` (map id, machine stamp, mode, sizes and cell,
axis mapping, volume-stack sections, labels, NVERSION, extended header type, data statistics,
file size), with two differences that follow our reader: modes 3 and 101 are valid (MRC2014
defines them), and zero NX/NY/NZ are problems (there are no data to read). Checks that need
the data (statistics) take the numbers computed elsewhere. docs/FORMAT.md section 1 lists the
fields. Every problem is one line of text.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .header import (
    HEADER_NBYTES,
    MAP_ID_OFFSET,
    MODES,
    DataLayout,
    detect_byte_order,
    detect_compression,
    has_map_id,
    header_dtype,
    header_fields,
    map_id,
)

KNOWN_EXTTYPS = ("CCP4", "MRCO", "SERI", "AGAR", "FEI1", "FEI2", "HDF5")
MRC2014_VERSIONS = (20140, 20141)


def looks_like_mrc(head: bytes) -> bool:
    """Whether the first bytes could be an MRC header at all: "MAP" at byte 208, or sizes
    and a mode that make sense in some byte order. A PNG or a text file is neither."""
    if len(head) < HEADER_NBYTES:
        return False
    if has_map_id(head):
        return True
    for order in "<>":
        raw = np.frombuffer(head[:HEADER_NBYTES], header_dtype(order))[0]
        if int(raw["mode"]) in MODES and min(int(raw[k]) for k in ("nx", "ny", "nz")) > 0:
            return True
    return False


def header_problems(head: bytes, file_size: int | None = None) -> list[str]:
    """The problems of a main header (the first bytes of a file, at least 1024), one string
    each; empty when the header is valid MRC2014. ``file_size`` (when known) adds the size
    check. A file that is not MRC at all gives one problem starting "not an MRC file"."""
    if len(head) < HEADER_NBYTES:
        if detect_compression(head):
            return ["compressed data: decompress before validating the header"]
        if has_map_id(head):
            return [f"truncated: {len(head)} bytes, shorter than the 1024-byte header"]
        return [f"not an MRC file: {len(head)} bytes, shorter than the 1024-byte header"]
    if not looks_like_mrc(head):
        kind = detect_compression(head)
        what = (
            f"{kind} data without an MRC file inside"
            if kind
            else f"no 'MAP ' id at byte {MAP_ID_OFFSET}"
        )
        return [f"not an MRC file: {what}, and no byte order gives a known mode and sizes"]
    problems: list[str] = []
    byte_order, _ = detect_byte_order(head, file_size)
    raw = np.frombuffer(head[:HEADER_NBYTES], header_dtype(byte_order))[0]
    f = header_fields(raw)

    if map_id(head) != b"MAP ":
        problems.append(
            f"map id at byte {MAP_ID_OFFSET} is {map_id(head)!r}, should be b'MAP '"
        )
    stamp = bytes(head[212:216])
    if not (stamp[0] == 0x44 and stamp[1] in (0x44, 0x41) or stamp[:2] == b"\x11\x11"):
        problems.append(
            f"machine stamp {stamp.hex(' ')} is not 44 44, 44 41 (little-endian) or 11 11 "
            f"(big-endian); read as {'little' if byte_order == '<' else 'big'}-endian"
        )
    mode = f["mode"]
    if mode not in MODES:
        problems.append(f"MODE {mode} is not an MRC2014 mode ({', '.join(map(str, MODES))})")
    for name in ("nx", "ny", "nz"):
        if f[name] <= 0:
            problems.append(f"{name.upper()} is {f[name]}, must be positive")
    for name in ("mx", "my", "mz", "ispg", "nlabl"):
        if f[name] < 0:
            problems.append(f"{name.upper()} is {f[name]}, must not be negative")
    for axis, value in zip("xyz", f["cella"], strict=True):
        if not math.isfinite(value):
            problems.append(f"cell size {axis} (CELLA) is {value}, must be a finite number")
        elif value < 0:
            problems.append(f"cell size {axis} (CELLA) is {value}, must not be negative")
    mapping = [f["mapc"], f["mapr"], f["maps"]]
    if sorted(mapping) != [1, 2, 3]:
        problems.append(f"axis mapping MAPC/MAPR/MAPS is {mapping}, should be 1, 2, 3 in any order")
    if 401 <= f["ispg"] <= 630 and (f["mz"] <= 0 or f["nz"] % f["mz"]):
        problems.append(
            f"volume stack (ISPG {f['ispg']}): NZ {f['nz']} is not a multiple of MZ {f['mz']}"
        )
    problems.extend(_label_problems(raw))
    if f["nversion"] not in MRC2014_VERSIONS:
        problems.append(f"NVERSION is {f['nversion']}, MRC2014 files declare 20140 or 20141")
    nsymbt = f["nsymbt"]
    if nsymbt < 0:
        problems.append(f"NSYMBT (extended header length) is negative: {nsymbt}")
    elif nsymbt > 0 and f["exttyp"] not in KNOWN_EXTTYPS:
        problems.append(
            f"extended header of {nsymbt} bytes but EXTTYP {f['exttyp']!r} is not one of "
            f"{', '.join(KNOWN_EXTTYPS)}"
        )
    sizes_known = mode in MODES and nsymbt >= 0 and min(f["nx"], f["ny"], f["nz"]) > 0
    if file_size is not None and sizes_known:
        expected = _expected_size(f, byte_order)
        if file_size < expected:
            problems.append(
                f"file is {file_size} bytes, the header needs {expected}: truncated, or the "
                "header is wrong"
            )
        elif file_size > expected:
            problems.append(
                f"file is {file_size} bytes, larger than the {expected} the header gives "
                f"({file_size - expected} bytes after the data)"
            )
    return problems


def _expected_size(fields: dict[str, Any], byte_order: str) -> int:
    layout = DataLayout(
        offset=HEADER_NBYTES + fields["nsymbt"],
        n_frames=max(fields["nz"], 0),
        ny=fields["ny"],
        nx=fields["nx"],
        mode=fields["mode"],
        byte_order=byte_order,
        out_dtype=np.dtype("u1"),
    )
    return layout.offset + layout.nbytes


def _label_problems(raw: np.ndarray) -> list[str]:
    problems = []
    filled = [bool(bytes(label).strip(b"\x00 ")) for label in raw["label"]]
    if False in filled and any(filled[filled.index(False) :]):
        problems.append("labels: empty labels between labels with text")
    if sum(filled) != int(raw["nlabl"]):
        problems.append(f"labels: NLABL is {int(raw['nlabl'])} but {sum(filled)} labels hold text")
    return problems


def statistics_problems(
    fields: dict[str, Any], minimum: float, maximum: float, mean: float, std: float
) -> list[str]:
    """mrcfile's rules: DMIN/DMAX must equal the data's when DMIN < DMAX; DMEAN must be
    within 1 % when DMEAN > min(DMIN, DMAX); RMS (the standard deviation) within 1 % when
    not negative. Other values mean "not computed" and are fine."""
    problems = []
    dmin, dmax, dmean, rms = (fields[k] for k in ("dmin", "dmax", "dmean", "rms"))
    if rms >= 0 and not np.isclose(std, rms, rtol=0.01):
        problems.append(f"statistics: RMS is {rms:g} in the header, {std:g} in the data")
    if dmin < dmax:
        if dmin != minimum:
            problems.append(f"statistics: DMIN is {dmin:g} in the header, {minimum:g} in the data")
        if dmax != maximum:
            problems.append(f"statistics: DMAX is {dmax:g} in the header, {maximum:g} in the data")
    if dmean > min(dmin, dmax) and not np.isclose(mean, dmean, rtol=0.01):
        problems.append(f"statistics: DMEAN is {dmean:g} in the header, {mean:g} in the data")
    return problems


__all__ = ["KNOWN_EXTTYPS", "header_problems", "looks_like_mrc", "statistics_problems"]
