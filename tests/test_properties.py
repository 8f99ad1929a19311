"""Property-based tests: mutated headers and DE info files raise only the documented
exceptions, and whatever opens reads exactly as mrcfile (the oracle) says."""

from __future__ import annotations

import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import yaml
from dewriter import info_text, write_acquisition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import MRCFormatError
from intake_mrc.directelectron.info import DEInfo, convert_value, parse_info

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
DATA = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5) * 37 - 1000

# Mutations aimed at the fields that matter, plus anywhere in the header.
FIELD_OFFSETS = [0, 4, 8, 12, 28, 32, 36, 40, 88, 92, 104, 152, 156, 208, 212]
mutation = st.tuples(
    st.one_of(st.sampled_from(FIELD_OFFSETS), st.integers(0, 1023)),
    st.one_of(
        st.binary(min_size=1, max_size=4),
        st.integers(-(2**31), 2**31 - 1).map(lambda v: int(v).to_bytes(4, "little", signed=True)),
    ),
)


def oracle(path: Path) -> np.ndarray | None:
    """mrcfile's data when it reads the file without complaint, else None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with mrcfile.open(path, permissive=False) as mrc:
                return None if mrc.data is None else mrc.data.copy()
    except Exception:  # noqa: BLE001 - mrcfile refuses: no oracle for this file
        return None


@SETTINGS
@given(mutations=st.lists(mutation, min_size=1, max_size=6), tail=st.integers(-200, 200))
def test_mutated_headers(tmp_path_factory, mutations, tail):
    folder = tmp_path_factory.mktemp("prop")
    raw = bytearray(write_mrc(folder / "base.mrc", DATA).read_bytes())
    for offset, value in mutations:
        raw[offset : offset + len(value)] = value
    raw = bytes(raw[: len(raw) + tail]) if tail < 0 else bytes(raw) + b"\0" * tail
    path = folder / "mutated.mrc"
    path.write_bytes(raw)
    try:
        f = intake_mrc.open_mrc(path)
        data = f.read()
        lazy = f.to_dask(chunks=1).compute(scheduler="sync")
    except MRCFormatError as error:
        assert "mutated.mrc" in str(error)
        return
    np.testing.assert_array_equal(lazy, data)
    expected = oracle(path)
    if (
        expected is not None
        and expected.shape == data.shape
        and expected.dtype.itemsize == data.dtype.itemsize
        and f.header["mode"] != 0
    ):
        np.testing.assert_array_equal(data, expected.astype(expected.dtype.newbyteorder("=")))
    elif expected is not None and f.header["mode"] == 0 and expected.shape == data.shape:
        np.testing.assert_array_equal(data.view(np.uint8), expected.view(np.uint8))


line = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda k, v: f"{k:<64}= {v}",
        st.text(max_size=40),
        st.one_of(st.text(max_size=30), st.integers().map(str), st.floats(allow_nan=True).map(str)),
    ),
)


@SETTINGS
@given(lines=st.lists(line, max_size=30), crlf=st.booleans())
def test_info_parser_properties(lines, crlf):
    text = ("\r\n" if crlf else "\n").join(lines)
    try:
        info = parse_info(text, "prop_info.txt")
    except intake_mrc.MetadataError as error:
        assert "prop_info.txt" in str(error)
        return
    assert isinstance(info, DEInfo) and info.raw
    for key, value in info.raw.items():
        assert key == key.strip() and value == value.strip() and key
        assert info.values[key] == convert_value(value)


SCAN_KEYS = [
    "Scan - Enable",
    "Scan - Type",
    "Scan - Size X",
    "Scan - Size Y",
    "Scan - ROI Enable",
    "Scan - ROI Size X",
    "Scan - ROI Size Y",
    "Scan - Repeats",
    "Frames Per Second",
    "Specimen Pixel Size X (nanometers)",
]
scan_value = st.one_of(
    st.sampled_from(
        [
            "Enable",
            "Disable",
            "Raster",
            "Random",
            "",
            "-1",
            "0",
            "1",
            "2",
            "3",
            "5",
            "15",
            "1e3",
            "nan",
        ]
    ),
    st.integers(-5, 40).map(str),
    st.text(max_size=8),
)


@SETTINGS
@given(changes=st.dictionaries(st.sampled_from(SCAN_KEYS), scan_value, max_size=5))
def test_mutated_info_files(tmp_path_factory, changes):
    folder = tmp_path_factory.mktemp("deprop")
    acq = write_acquisition(folder, scan=(5, 3), virtual_names=(), external_names=())
    values = parse_info(acq["paths"]["info"].read_text()).raw | changes
    acq["paths"]["info"].write_text(info_text(values))
    try:
        f = intake_mrc.open_mrc(acq["paths"]["movie"])
        data = f.to_dask().compute(scheduler="sync")
    except MRCFormatError as error:  # MetadataError is one
        assert "20250101_00001" in str(error)
        return
    # Whatever geometry the info file gives, it is a reshape of the 15 frames, in order
    # (custom scans need a CSV, which this acquisition has not, so they must fail above).
    assert f.metadata.get("scan", {}).get("kind", "movie") in ("raster", "movie")
    assert data.reshape(-1, 4, 6)[:, 0, 0].tolist() == list(range(15))


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_garbage_stamp_on_valid_data_reads_by_plausibility(tmp_path, byte_order):
    data = DATA.astype(DATA.dtype.newbyteorder(byte_order))
    path = write_mrc(tmp_path / "g.mrc", data)
    raw = bytearray(path.read_bytes())
    raw[212:216] = b"\x5a\x5a\x5a\x5a"
    path.write_bytes(bytes(raw))
    np.testing.assert_array_equal(intake_mrc.open_mrc(path).read(), DATA)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.floats(allow_nan=False)
)
documents = st.recursive(
    st.dictionaries(st.text(min_size=1, max_size=12), scalars, max_size=4),
    lambda inner: st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(inner, scalars, st.lists(scalars, max_size=4)),
        max_size=4,
    ),
    max_leaves=20,
)


@SETTINGS
@given(document=documents)
def test_catalog_yaml_reads_back_equal(document):
    from intake_mrc.yamlwriter import to_yaml

    assert yaml.safe_load(to_yaml(document)) == (document or None)
