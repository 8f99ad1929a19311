"""Small inputs cannot cost large memory, and wrong arguments fail clearly.

Memory bounds are measured in a child process: how far its peak RSS rises over the
operation, after warming up (imports, a small read of the same kind), so the numbers are
about the operation, not about the interpreter (Linux: /proc/self/status). Every bound is
far below what the unbounded code allocated (the numbers in issue 8) and far above what the
bounded code needs, so a loaded machine does not make them flaky."""

from __future__ import annotations

import bz2
import gzip
import json
import pickle
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from dewriter import info_text, write_acquisition
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import MetadataError, MRCFormatError, TruncatedFileError
from intake_mrc.array import PaddedFrameTable
from intake_mrc.directelectron.scan import MAX_FILL_FACTOR, parse_scan_coordinates
from intake_mrc.format.writer import encode_mrc

MiB = 2**20
TESTS = Path(__file__).resolve().parent


def peak_rss_delta(warm: str, body: str) -> dict:
    """Run ``warm`` then ``body`` in a fresh interpreter; the child reports by how many bytes
    its peak RSS rose above its RSS at the start of ``body``, and ``body``'s ``result``.

    The peak is the kernel's VmHWM, reset before ``body`` (``/proc/self/clear_refs``): a
    child's ``ru_maxrss`` starts at its parent's peak (it is carried over fork and exec), so
    it would measure the test runner instead of the child."""
    script = textwrap.dedent(
        """
        import json, re, sys
        sys.path.insert(0, {tests!r})
        def status(key):
            with open("/proc/self/status") as f:
                return int(re.search(key + r":\\s+(\\d+) kB", f.read()).group(1)) * 1024
        result = None
        {warm}
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak (VmHWM) starts again from the current RSS
        before = status("VmRSS")
        try:
        {body}
        except Exception as error:
            result = {{"error": type(error).__name__, "message": str(error)}}
        print(json.dumps({{"delta": status("VmHWM") - before, "result": result}}))
        """
    ).format(
        tests=str(TESTS),
        warm=textwrap.dedent(warm).strip(),
        body=textwrap.indent(textwrap.dedent(body).strip(), "    "),
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- raster padding --------------------------------------------------------------------------


def warm_padding(folder: Path) -> str:
    """Warm-up code: open and read a small padded scan (imports everything a padded open
    and read use), and fail one padding (the error path too)."""
    small = write_acquisition(
        folder / "warm", scan=(4, 4), n_frames=13, virtual_names=(), external_names=()
    )
    huge = tiny_movie_with_huge_scan(folder / "warm-huge", scan=5000)
    return f"""
import intake_mrc
intake_mrc.open_mrc({str(small["paths"]["movie"])!r}, partial_scan="pad").to_dask().compute()
try:
    intake_mrc.open_mrc({str(huge["paths"]["movie"])!r}, partial_scan="pad")
except intake_mrc.MetadataError:
    pass
"""


def tiny_movie_with_huge_scan(folder: Path, scan: int = 30000) -> dict:
    """A 2 KiB movie (4 frames of 8 x 16 uint16) whose info file claims a scan x scan grid."""
    return write_acquisition(
        folder,
        scan=(scan, scan),
        frame=(16, 8),
        n_frames=4,
        virtual_names=(),
        external_names=(),
    )


def test_padding_a_huge_scan_is_refused_without_allocating(tmp_path):
    acq = tiny_movie_with_huge_scan(tmp_path)
    assert acq["paths"]["movie"].stat().st_size < 2200
    out = peak_rss_delta(
        warm_padding(tmp_path),
        f"""
        intake_mrc.open_mrc({str(acq["paths"]["movie"])!r}, partial_scan="pad")
        """,
    )
    # Unbounded, this allocated a 6.7 GiB frame table before failing or succeeding.
    assert out["delta"] < 64 * MiB, out
    assert out["result"]["error"] == "MetadataError"
    message = out["result"]["message"]
    assert "_info.txt" in message  # the file that claims the scan
    assert "30000 x 30000" in message and "900000000 positions" in message
    assert "4 frames" in message and "MAX_FILL_FACTOR" in message


def test_padding_error_in_process_names_file_and_field(tmp_path):
    acq = tiny_movie_with_huge_scan(tmp_path, scan=3000)
    with pytest.raises(MetadataError, match="9000000 positions") as info:
        intake_mrc.open_mrc(acq["paths"]["movie"], partial_scan="pad")
    assert info.value.field == "Scan - Size X/Y"
    assert str(info.value).startswith(str(acq["paths"]["info"]))


def test_padding_is_lazy_and_reads_match(tmp_path):
    # 2,000,000 frames of 1 pixel on a 1500 x 1500 grid: 2.25 million positions, padded by
    # 250,000. An eager table would be 18 MB; the lazy one holds two numbers.
    n = 2_000_000
    folder = tmp_path / "acq"
    folder.mkdir()
    movie = folder / "20250101_00001_movie.mrc"
    write_mrc(movie, (np.arange(n, dtype=np.uint32) % 251).astype(np.uint8).reshape(n, 1, 1))
    values = {"Dataset Name": "20250101_00001", "Scan - Enable": "Enable"}
    values |= {"Scan - Type": "Raster", "Scan - Size X": 1500, "Scan - Size Y": 1500}
    (folder / "20250101_00001_info.txt").write_text(info_text(values))
    out = peak_rss_delta(
        warm_padding(tmp_path),
        f"""
        f = intake_mrc.open_mrc({str(movie)!r}, partial_scan="pad")
        result = [repr(f.frame_array.frame_table), list(f.shape)]
        """,
    )
    assert out["result"] == [
        "PaddedFrameTable(shape=(1500, 1500), n_frames=2000000)",
        [1500, 1500, 1, 1],
    ]
    assert out["delta"] < 8 * MiB, out
    f = intake_mrc.open_mrc(movie, partial_scan="pad")
    assert isinstance(f.frame_array.frame_table, PaddedFrameTable)
    table = np.asarray(f.frame_array.frame_table)  # materialized only when asked for
    assert table.shape == (1500, 1500) and table[1333, 499] == n - 1
    assert (table.ravel()[n:] == -1).all() and (table.ravel()[:n] == np.arange(n)).all()
    expected = np.zeros(1500 * 1500, dtype=np.uint8)
    expected[:n] = np.arange(n) % 251
    expected = expected.reshape(1500, 1500, 1, 1)
    np.testing.assert_array_equal(f.to_dask(chunks=(700, 300)).compute(), expected)
    np.testing.assert_array_equal(f.read(), expected)
    np.testing.assert_array_equal(f.to_dask()[1499, ::7].compute(), expected[1499, ::7])


def test_padding_within_the_fill_factor_is_allowed(tmp_path):
    # Frames of 64 x 128 uint16 (16 KiB) on a 40 x 40 grid: 1600 positions, 25 MiB of output,
    # over SMALL_GRID_NBYTES; so the grid may hold at most MAX_FILL_FACTOR times the frames.
    def movie(name: str, n_frames: int) -> Path:
        acq = write_acquisition(
            tmp_path / name,
            scan=(40, 40),
            frame=(64, 128),
            n_frames=n_frames,
            virtual_names=(),
            external_names=(),
        )
        return acq["paths"]["movie"]

    enough = 1600 // MAX_FILL_FACTOR
    f = intake_mrc.open_mrc(movie("ok", enough), partial_scan="pad")
    assert f.shape == (40, 40, 128, 64)
    assert f.to_dask()[39, 39].compute().max() == 0
    assert f.to_dask()[(enough - 1) // 40, (enough - 1) % 40, 0, 0].compute() == enough - 1
    with pytest.raises(MetadataError, match=f"1600 positions\\) for {enough - 1} frames"):
        intake_mrc.open_mrc(movie("short", enough - 1), partial_scan="pad")


# -- scan-coordinate CSVs ----------------------------------------------------------------


def write_random_scan(folder: Path, side: int) -> dict:
    """A Random scan of side x side positions (a permutation), 1-pixel frames."""
    n = side * side
    folder.mkdir(parents=True, exist_ok=True)
    movie = folder / "20250101_00001_movie.mrc"
    write_mrc(movie, np.zeros((n, 1, 1), dtype=np.uint8))
    values = {"Dataset Name": "20250101_00001", "Scan - Enable": "Enable"}
    values |= {"Scan - Type": "Random", "Scan - Size X": side, "Scan - Size Y": side}
    (folder / "20250101_00001_info.txt").write_text(info_text(values))
    perm = np.random.default_rng(0).permutation(n)
    text = "\n".join(map("{},{}".format, (perm % side).tolist(), (perm // side).tolist()))
    csv = folder / "20250101_00001_scan_coordinates.csv"
    csv.write_text(text + "\n")
    return {"movie": movie, "csv": csv, "perm": perm}


def test_large_csv_streams_in_bounded_memory(tmp_path):
    side = 1024  # 1,048,576 positions, a 9.6 MB CSV
    scan = write_random_scan(tmp_path / "big", side)
    small = write_random_scan(tmp_path / "small", 16)
    out = peak_rss_delta(
        f"""
        import intake_mrc
        intake_mrc.open_mrc({str(small["movie"])!r}).to_dask()[:2].compute()
        """,
        f"""
        f = intake_mrc.open_mrc({str(scan["movie"])!r})
        result = list(f.shape)
        """,
    )
    assert out["result"] == [side, side, 1, 1], out
    # Unbounded this took about 220 bytes per position (3.7 GB for 4096 x 4096); streamed,
    # about 25 (measured). The bound is per position of the grid.
    per_position = out["delta"] / side**2
    assert per_position < 64, out
    f = intake_mrc.open_mrc(scan["movie"])
    table = np.asarray(f.frame_array.frame_table)
    perm = scan["perm"]
    assert (table.ravel()[perm] == np.arange(side * side)).all()


def test_csv_streamed_in_small_blocks_matches_whole():
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 1000, size=(500, 2))
    text = "".join(f"{x}, {y},7\r\n" if i % 3 else f"{x},{y}\n\n" for i, (x, y) in enumerate(rows))
    data = text.encode()
    whole = parse_scan_coordinates(text, "c.csv")
    np.testing.assert_array_equal(whole, rows)
    for size in (1, 7, 64):
        blocks = (data[i : i + size] for i in range(0, len(data), size))
        np.testing.assert_array_equal(parse_scan_coordinates(blocks, "c.csv"), rows)
    bad = data + b"3,oops\n"
    line = text.count("\n") + 1
    with pytest.raises(MetadataError, match=f"line {line}: expected integer"):
        parse_scan_coordinates((bad[i : i + 5] for i in range(0, len(bad), 5)), "c.csv")


@pytest.mark.parametrize(
    "value", ["99999999999999999999999999999", "9223372036854775808", "2147483648"]
)
def test_huge_csv_coordinate_names_file_and_line(tmp_path, value):
    acq = write_acquisition(
        tmp_path, scan=(4, 3), scan_type="Random", coordinates=np.array([[0, 0], [1, 1]])
    )
    acq["paths"]["csv"].write_text(f"0,0\n\n1,{value}\n")
    with pytest.raises(MetadataError, match="line 3: coordinate too large") as info:
        intake_mrc.open_mrc(acq["paths"]["movie"])
    assert str(info.value).startswith(str(acq["paths"]["csv"]))
    assert info.value.field == "csv"


def test_sparse_csv_grid_is_bounded(tmp_path):
    # Two frames whose positions span 6000 x 6000: a 36-million-position table for two
    # frames is refused, naming the CSV.
    coords = np.array([[0, 0], [5999, 5999]])
    acq = write_acquisition(
        tmp_path,
        scan=(6000, 6000),
        scan_type="Random",
        coordinates=coords,
        virtual_names=(),
        external_names=(),
    )
    with pytest.raises(MetadataError, match="36000000 positions") as info:
        intake_mrc.open_mrc(acq["paths"]["movie"])
    assert "scan_coordinates.csv" in str(info.value)


# -- navigation_shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,cause",
    [
        ((3, 2.9), "2.9"),
        ((3.0, 2), "3.0"),
        ((-2, -3), "-2 is not a positive size"),
        ((0, 6), "0 is not a positive size"),
        ((True, 6), "True"),
        ((np.float64(3), 2), "3.0"),
        ("6,1", "'6,1'"),
        (6, "6"),
        (("3", 2), "'3'"),
    ],
)
@pytest.mark.parametrize("de", [False, True])
def test_bad_navigation_shape_is_a_clear_error(tmp_path, shape, cause, de):
    if de:
        path = write_acquisition(tmp_path, scan=(3, 2), virtual_names=(), external_names=())[
            "paths"
        ]["movie"]
    else:
        path = write_mrc(tmp_path / "stack.mrc", np.zeros((6, 4, 5), np.float32))
    with pytest.raises(MRCFormatError) as info:
        intake_mrc.open_mrc(path, navigation_shape=shape)
    assert type(info.value) is MRCFormatError
    assert info.value.field == "navigation_shape"
    assert str(info.value).startswith(str(path))
    assert cause in str(info.value)


@pytest.mark.parametrize("shape", [(3, 2), [3, 2], (np.int64(3), np.int32(2)), np.array([3, 2])])
def test_integer_navigation_shapes_are_accepted(tmp_path, shape):
    path = write_mrc(tmp_path / "stack.mrc", np.zeros((6, 4, 5), np.float32))
    assert intake_mrc.open_mrc(path, navigation_shape=shape).shape == (2, 3, 4, 5)


# -- compressed maps -------------------------------------------------------------------------


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from crc(A), crc(B) and len(B) (zlib's crc32_combine: appending
    len(B) zero bytes is a linear map over GF(2), applied by repeated squaring)."""
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # one zero bit
    even = [_gf2_times(odd, v) for v in odd]  # two
    odd = [_gf2_times(even, v) for v in even]  # four
    while len2:
        even = [_gf2_times(odd, v) for v in odd]
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_times(even, v) for v in even]
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
    return crc1 ^ crc2


def gzip_bomb(path: Path, head: bytes, zeros_mib: int) -> Path:
    """A valid gzip file: ``head`` then ``zeros_mib`` MiB of zeros, written in well under a
    second: one fully flushed deflate segment of 1 MiB of zeros, repeated (a full flush makes
    segments independent), with the true CRC-32 (combined, not computed over the zeros) and
    size in the trailer."""
    zeros = bytes(2**20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    segment = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    last = deflate.flush(zlib.Z_FINISH)
    crc = zlib.crc32(head)
    zeros_crc, zeros_len, remaining = zlib.crc32(zeros), len(zeros), zeros_mib
    while remaining:  # binary expansion of zeros_mib: crc of 1, 2, 4, ... MiB of zeros
        if remaining & 1:
            crc = crc32_combine(crc, zeros_crc, zeros_len)
        zeros_crc = crc32_combine(zeros_crc, zeros_crc, zeros_len)
        zeros_len *= 2
        remaining >>= 1
    size = len(head) + zeros_mib * 2**20
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first)
        for _ in range(zeros_mib):
            out.write(segment)
        out.write(last + struct.pack("<II", crc, size % 2**32))
    return path


def test_gzip_bomb_helper_is_a_valid_gzip_file(tmp_path):
    for mib in (1, 3, 6):
        path = gzip_bomb(tmp_path / "b.gz", b"head", mib)
        assert gzip.decompress(path.read_bytes()) == b"head" + bytes(mib * 2**20)


def test_gzip_bomb_decompresses_only_what_the_header_declares(tmp_path):
    # A 4 x 4 float32 image, then 1 GiB of zeros: about 1 MB of gzip.
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    bomb = gzip_bomb(tmp_path / "bomb.mrc.gz", encode_mrc(image), 1024)
    assert bomb.stat().st_size < 2 * MiB
    small = tmp_path / "small.mrc.gz"
    small.write_bytes(gzip.compress(encode_mrc(image)))
    out = peak_rss_delta(
        f"""
        import intake_mrc
        small = intake_mrc.open_mrc({str(small)!r})
        small.read(), small.to_dask().compute()
        """,
        f"""
        import time
        start = time.monotonic()
        f = intake_mrc.open_mrc({str(bomb)!r})
        data = f.read()
        result = [data.tolist(), f.to_dask().compute().tolist(), time.monotonic() - start]
        """,
    )
    assert out["result"][0] == image.tolist() and out["result"][1] == image.tolist(), out
    # Unbounded, this decompressed (and held) the whole GiB.
    assert out["delta"] < 32 * MiB, out
    assert out["result"][2] < 10, out


def test_compressed_declared_size_beyond_the_stream_is_truncated(tmp_path):
    # The header declares 4096 frames of 4096 x 4096 float32 (256 GiB); the stream holds
    # 4 MiB, more than the first read. Nothing is allocated for what is not there.
    header = encode_mrc(np.zeros((8, 8), np.float32))
    lying = struct.pack("<iii", 4096, 4096, 4096) + header[12:] + bytes(4 * MiB)
    path = tmp_path / "lying.mrc.gz"
    path.write_bytes(gzip.compress(lying))
    small = tmp_path / "small.mrc.gz"
    small.write_bytes(gzip.compress(header))
    out = peak_rss_delta(
        f"""
        import intake_mrc
        intake_mrc.open_mrc({str(small)!r}).to_dask().compute()
        """,
        f"""
        f = intake_mrc.open_mrc({str(path)!r})
        try:
            f.to_dask()[0].compute()
        except intake_mrc.TruncatedFileError as error:
            result = ["chunk", str(error)]
        f.read()
        """,
    )
    assert out["result"]["error"] == "TruncatedFileError", out
    assert "lying.mrc.gz" in out["result"]["message"] and "NZ=4096" in out["result"]["message"]
    assert out["delta"] < 32 * MiB, out
    with pytest.raises(TruncatedFileError) as info:
        intake_mrc.open_mrc(path).to_dask()[1].compute()
    assert "lying.mrc.gz" in str(info.value)


@pytest.mark.parametrize("compression", ["gzip", "bz2"])
def test_compressed_reads_in_small_steps_match(tmp_path, monkeypatch, compression):
    import intake_mrc.storage.compressed as compressed

    monkeypatch.setattr(compressed, "OUTPUT_STEP_NBYTES", 1000)
    monkeypatch.setattr(compressed, "COMPRESSED_BLOCK_NBYTES", 333)
    data = (np.arange(40 * 30 * 20) % 251).astype(np.float32).reshape(40, 30, 20)
    raw = encode_mrc(data)
    pack = gzip.compress if compression == "gzip" else bz2.compress
    # Several members / streams in a row, then padding: one file for gzip and bzip2 tools.
    cut = [0, 1500, 30000, len(raw)]
    path = tmp_path / "stack.mrc.gz"
    path.write_bytes(
        b"".join(pack(raw[a:b]) for a, b in zip(cut[:-1], cut[1:], strict=True)) + b"\0" * 10
    )
    f = intake_mrc.open_mrc(path)
    dask_array = f.to_dask(chunks=7)
    np.testing.assert_array_equal(dask_array[35:].compute(), data[35:])  # late chunk first
    np.testing.assert_array_equal(dask_array.compute(), data)
    np.testing.assert_array_equal(f.read(), data)
    clone = pickle.loads(pickle.dumps(f.store))
    assert clone.head(4) == raw[:4] and clone.size() == len(raw)


def test_compressed_garbage_and_cut_streams_are_clear_errors(tmp_path):
    raw = encode_mrc(np.ones((3, 5, 6), np.float32))
    cut = tmp_path / "cut.mrc.gz"
    cut.write_bytes(gzip.compress(raw)[:-40])  # the stream ends inside its data
    with pytest.raises(TruncatedFileError) as info:
        intake_mrc.open_mrc(cut).read()
    assert "cut.mrc.gz" in str(info.value)
    garbage = tmp_path / "garbage.mrc.bz2"
    garbage.write_bytes(b"BZh9" + b"\x31\x41\x59\x26\x53\x59" + bytes(range(256)) * 8)
    with pytest.raises(MRCFormatError, match="cannot decompress") as info:
        intake_mrc.open_mrc(garbage)
    assert "garbage.mrc.bz2" in str(info.value)


# -- symbolic links in the acquisition folder ---------------------------------------------


def test_discovery_does_not_follow_links_out_of_the_folder(tmp_path):
    acq = write_acquisition(tmp_path / "acq", scan=(5, 3), virtual_names=(), external_names=())
    folder = acq["paths"]["movie"].parent
    stem = acq["stem"]
    outside = tmp_path / "private"
    outside.mkdir()
    secret = write_mrc(outside / "secret.mrc", np.full((1, 3, 5), 7, np.float32))
    (outside / "info.txt").write_text(info_text({"Scan - Enable": "Disable"}))
    (outside / "coords.csv").write_text("0,0\n")
    # Links out of the folder: as a virtual and an external image, and a link to a folder.
    (folder / f"{stem}_0_Leak_sum.mrc").symlink_to(secret)
    (folder / f"{stem}_ext1_Leak.mrc").symlink_to(secret)
    (folder / f"{stem}_1_Dir_sum.mrc").symlink_to(outside)
    # Links inside the folder (a file beside it, one in a subfolder) are followed.
    inside = write_mrc(folder / "kept.mrc", np.full((1, 3, 5), 3, np.float32))
    (folder / "sub").mkdir()
    below = write_mrc(folder / "sub" / "below.mrc", np.full((1, 3, 5), 4, np.float32))
    (folder / f"{stem}_2_Inside_sum.mrc").symlink_to(inside)
    (folder / f"{stem}_3_Below_sum.mrc").symlink_to(below)
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert list(f.virtual_images) == ["Inside", "Below"]
    assert list(f.external_images) == []
    assert f.virtual_images["Inside"].read().max() == 3
    assert f.virtual_images["Below"].read().shape == (3, 5)
    with open(acq["paths"]["movie"], "rb") as movie:  # the same rules for a file object
        assert list(intake_mrc.open_mrc(movie).virtual_images) == ["Inside", "Below"]

    # A folder of links to an acquisition stored elsewhere: the movie's own (resolved)
    # folder counts as the acquisition folder, so its info file and images are read.
    links = tmp_path / "links"
    links.mkdir()
    for path in (acq["paths"]["movie"], acq["paths"]["info"], inside):
        (links / path.name).symlink_to(path)
    (links / f"{stem}_2_Inside_sum.mrc").symlink_to(inside)
    (links / f"{stem}_0_Leak_sum.mrc").symlink_to(secret)
    h = intake_mrc.open_mrc(links / acq["paths"]["movie"].name)
    assert h.shape == (3, 5, 4, 6) and list(h.virtual_images) == ["Inside"]

    # The info file as a link out of the folder: not read, and the note says why.
    acq["paths"]["info"].unlink()
    acq["paths"]["info"].symlink_to(outside / "info.txt")
    g = intake_mrc.open_mrc(acq["paths"]["movie"])
    assert g.shape == (15, 4, 6)  # a plain stack: the linked info file was not used
    assert any("symbolic link" in note for note in g.notes), g.notes


def test_scan_csv_link_out_of_the_folder_is_a_clear_error(tmp_path):
    coords = np.array([[0, 0], [1, 1]])
    acq = write_acquisition(
        tmp_path / "acq",
        scan=(2, 2),
        scan_type="Random",
        coordinates=coords,
        virtual_names=(),
        external_names=(),
    )
    outside = tmp_path / "coords.csv"
    outside.write_text("0,0\n1,1\n")
    acq["paths"]["csv"].unlink()
    acq["paths"]["csv"].symlink_to(outside)
    with pytest.raises(MetadataError, match="symbolic link") as info:
        intake_mrc.open_mrc(acq["paths"]["movie"])
    assert "scan_coordinates.csv" in str(info.value)
    assert str(info.value).startswith(str(acq["paths"]["info"]))
    # Given explicitly, the user's file is read wherever it is.
    assert intake_mrc.open_mrc(acq["paths"]["movie"], scan_file=outside).shape == (2, 2, 4, 6)
