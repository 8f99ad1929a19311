"""Previews: the right picture for each kind of data, a scale bar in physical units, reads
bounded by the budget (counted at the HTTP server), captions that say what was read, and the
notebook summary."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import MRCFILE_TESTS, RSCIIO
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc.cli import main as cli_main

pytest.importorskip("matplotlib")
pytest.importorskip("matplotlib_scalebar")

from intake_mrc import preview as preview_module  # noqa: E402

DE_MOVIE = RSCIIO / "20241021_00405_movie.mrc"
PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG)
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_single_image_volume_and_shared_files(tmp_path):
    shown = intake_mrc.open_mrc(RSCIIO / "HAADFscan.mrc").preview(str(tmp_path / "h.png"))
    assert shown.kind == "image" and shown.frames_read == 1
    assert "5.679 nm" in shown.caption
    assert (tmp_path / "h.png").read_bytes().startswith(PNG)
    shown = intake_mrc.open_mrc(MRCFILE_TESTS / "EMD-3197.map").preview()
    assert shown.kind == "central slice" and "central slice 10 of 20 along z" in shown.caption
    assert shown.path is None and _png_size(shown.png)[0] > 100


def test_stack_sum_is_a_strided_sample_beyond_max_frames(tmp_path):
    data = np.zeros((40, 6, 8), dtype=np.float32)
    path = write_mrc(tmp_path / "s.mrc", data, ispg=0)
    f = intake_mrc.open_mrc(path)
    shown = f.preview(max_frames=16)
    assert shown.kind == "stack sum" and shown.frames_read == 16
    assert "16 of 40 frames" in shown.caption
    assert f.preview(max_frames=100).source == "sum of all 40 frames"


def test_4d_stem_uses_the_saved_virtual_image_and_reads_one_pattern():
    f = intake_mrc.open_mrc(DE_MOVIE)
    shown = f.preview()
    assert shown.kind == "4D-STEM" and "saved DE virtual image" in shown.source
    assert shown.frames_read == 1  # the pattern shown; the navigator was not computed


def test_4d_stem_navigator_computed_from_all_or_a_strided_sample():
    f = intake_mrc.open_mrc(DE_MOVIE, virtual_images=[])  # no saved image to use
    panels, kind, source, frames_read = preview_module._scan_preview(f, 2**20)
    # Frame k holds the value k everywhere (32 pixels): the bright field is k * 32.
    np.testing.assert_array_equal(panels[0][0], np.arange(32).reshape(4, 8) * 32)
    # The pattern shown (scan (2, 4): frame 20) is taken from those read, not read again.
    assert frames_read == 32 and "all 32 patterns" in source
    np.testing.assert_array_equal(panels[1][0], np.full((4, 8), 20))
    panels, _, source, frames_read = preview_module._scan_preview(f, 64 * 8)  # 8 patterns
    assert "strided sample, every 2nd" in source and frames_read == 8  # (2, 4) on the grid
    np.testing.assert_array_equal(panels[1][0], np.full((4, 8), 20))
    third, _, source, frames_read = preview_module._scan_preview(f, 64 * 6)  # 6 patterns
    assert "every 3rd" in source and frames_read == 6 + 1  # (2, 4) is not: read alone
    np.testing.assert_array_equal(third[1][0], np.full((4, 8), 20))
    np.testing.assert_array_equal(panels[0][0], np.arange(32).reshape(4, 8)[::2, ::2] * 32)
    assert panels[0][1]["scale"] == pytest.approx(2 * f.axes[1]["scale"])  # scale bar too


def test_reads_stay_within_the_budget(tmp_path, http_upload, http_server):
    frames = np.ones((64, 32, 32), dtype=np.float32)  # 4 KiB a frame, 256 KiB in all
    path = write_mrc(tmp_path / "big stack.mrc", frames, ispg=0)
    (url,) = http_upload(path, prefix="preview")
    f = intake_mrc.open_mrc(url)
    before = http_server.bytes_requested()
    shown = f.preview(budget=8 * 4096, max_frames=16)
    read = http_server.bytes_requested() - before
    assert shown.frames_read == 8 and "8 of 64 frames" in shown.caption
    assert read <= 8 * 4096 + 4096, read  # the sampled frames, not the stack


def test_scale_bar_units():
    from matplotlib.figure import Figure

    ax = Figure().subplots()
    assert preview_module._scale_bar(ax, {"scale": 0.5, "units": "nm"}) == "nm"
    assert preview_module._scale_bar(ax, {"scale": 0.1, "units": "mrad"}) == "mrad"
    assert preview_module._scale_bar(ax, {"scale": 1.0, "units": None}) is None
    assert preview_module._scale_bar(ax, {"scale": 0.5, "units": "s"}) is None


def test_repr_html_escapes_names_and_inlines_a_thumbnail_when_local(tmp_path):
    path = write_mrc(
        tmp_path / "<img src=x onerror=1>.mrc", np.arange(12, dtype=np.float32).reshape(3, 4)
    )
    text = intake_mrc.open_mrc(path)._repr_html_()
    assert "&lt;img src=x onerror=1&gt;.mrc" in text and "<img src=x" not in text
    assert "<td" in text and "float32" in text and "data:image/png;base64," in text
    de = intake_mrc.open_mrc(DE_MOVIE)._repr_html_()
    assert "Direct Electron" in de


def test_repr_html_has_no_thumbnail_for_large_remote_files(tmp_path, http_upload, monkeypatch):
    path = write_mrc(tmp_path / "r.mrc", np.zeros((2, 4, 4), dtype=np.float32))
    (url,) = http_upload(path, prefix="preview-html")
    f = intake_mrc.open_mrc(url)
    assert "data:image/png" in f._repr_html_()  # small: drawn
    monkeypatch.setattr(preview_module, "SMALL_FILE_NBYTES", 16)
    text = f._repr_html_()
    assert "data:image/png" not in text and "<table>" in text


def test_cli_preview(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert cli_main(["preview", str(DE_MOVIE), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "saved DE virtual image" in printed
    width, height = _png_size(out.read_bytes())
    assert width > height  # navigator beside the pattern


@pytest.mark.parametrize("name", ["a$^$b.mrc", "x$\\undefined{$y.mrc", "cost $5 and $6.mrc"])
def test_names_with_dollar_signs_are_drawn_as_written(tmp_path, monkeypatch, name):
    # matplotlib reads '$...$' as mathtext: a file name must be drawn as text, never parsed
    # (a parse error lost the picture and the notebook thumbnail; others drew a mangled name).
    path = write_mrc(tmp_path / name, np.arange(12, dtype=np.float32).reshape(3, 4))
    f = intake_mrc.open_mrc(path)
    assert f.preview().png.startswith(PNG)
    assert "data:image/png;base64," in f._repr_html_()
    from matplotlib.figure import Figure

    titles = []
    suptitle = Figure.suptitle

    def spy(self, text, **kwargs):  # records what is drawn; drawing is matplotlib's own
        titles.append((text, kwargs.get("parse_math", True)))
        return suptitle(self, text, **kwargs)

    monkeypatch.setattr(Figure, "suptitle", spy)
    f.preview()
    assert titles and titles[0][0].startswith(name) and titles[0][1] is False


def test_all_nan_image_says_so(tmp_path):
    path = write_mrc(tmp_path / "nan.mrc", np.full((4, 5), np.nan, dtype=np.float32))
    shown = intake_mrc.open_mrc(path).preview()
    assert "no finite values" in shown.caption
    path = write_mrc(tmp_path / "ok.mrc", np.ones((4, 5), dtype=np.float32))
    assert "no finite values" not in intake_mrc.open_mrc(path).preview().caption


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_frames": 0}, "max_frames"),
        ({"max_frames": -1}, "max_frames"),
        ({"budget": float("nan")}, "budget"),
        ({"dpi": 0}, "dpi"),
    ],
)
def test_preview_arguments_are_checked(tmp_path, kwargs, message):
    # max_frames=0 drew an all-zero "sum of 0 of 40 frames"; -1 was a numpy error.
    path = write_mrc(tmp_path / "s.mrc", np.ones((40, 6, 8), dtype=np.float32), ispg=0)
    with pytest.raises(ValueError, match=message):
        intake_mrc.open_mrc(path).preview(**kwargs)


@pytest.mark.parametrize(
    "option",
    [
        ["--max-frames", "0"],
        ["--max-frames", "-1"],
        ["--budget-mib", "nan"],
        ["--budget-mib", "inf"],
        ["--budget-mib", "0"],
        ["--dpi", "0"],
        ["--dpi", "100000"],
    ],
)
def test_cli_preview_bad_numbers_are_usage_errors(tmp_path, capsys, option):
    path = write_mrc(tmp_path / "s.mrc", np.ones((4, 6, 8), dtype=np.float32), ispg=0)
    with pytest.raises(SystemExit) as exit_:
        cli_main(["preview", str(path), "-o", str(tmp_path / "p.png"), *option])
    assert exit_.value.code == 2
    assert f"argument {option[0]}" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


def test_large_frames_are_drawn_from_every_kth_row_and_column(tmp_path, http_upload, http_server):
    # A 1200 x 1200 image drawn 160 pixels wide (dpi 20): every 8th row and column is drawn
    # (a 576 MB image took 130 s and 12 GB of memory to preview, notebook repr too). Within
    # the read budget the frame is one ranged read; beyond it, only every 8th row is read.
    image = np.arange(1200 * 1200, dtype=np.float32).reshape(1200, 1200)
    path = write_mrc(tmp_path / "wide.mrc", image, voxel_size=2.0)
    (url,) = http_upload(path, prefix="preview-stride")
    f = intake_mrc.open_mrc(url)
    http_server.requests.clear()
    shown = f.preview(dpi=20)
    gets = [r for r in http_server.requests if r[0] == "GET"]
    assert shown.pixel_stride == 8 and "every 8th pixel of a frame drawn" in shown.caption
    assert len(gets) == 1, gets  # the whole frame, in one read
    http_server.requests.clear()
    shown = f.preview(dpi=20, budget=2**20)  # the 5.8 MB frame is over the budget
    assert "every 8th pixel of a frame read and drawn" in shown.caption
    read = http_server.bytes_requested()
    assert read <= 150 * 1200 * 4 + 2**17, read  # 150 rows (+ the header), not 5.8 MB
    local = intake_mrc.open_mrc(path)
    assert local.preview(dpi=100).pixel_stride == 2  # 800 pixels at dpi 100
    assert local.preview(dpi=200).pixel_stride == 1  # 1600 pixels: all drawn
    stack = write_mrc(tmp_path / "s.mrc", np.ones((3, 1200, 1200), np.float32), ispg=0)
    assert "every 8th pixel" in intake_mrc.open_mrc(stack).preview(dpi=20).caption
    volume = write_mrc(tmp_path / "v.mrc", np.ones((3, 1200, 1200), np.float32))
    assert intake_mrc.open_mrc(volume).preview(dpi=20, budget=2**20).pixel_stride == 8
