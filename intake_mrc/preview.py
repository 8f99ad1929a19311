"""Pictures of MRC files: a PNG that says what the data are, read with a bounded budget.

``preview(f)`` draws, by what the array is:

* a single image: the image;
* a stack of frames (a movie, a tilt series): the sum of the stack, or of an evenly strided
  sample of frames when the stack is larger than the read budget;
* a volume: its central slice (of the first volume of a volume stack);
* 4D-STEM (a scan of diffraction patterns): a virtual bright-field navigator beside the
  diffraction pattern at the scan's centre. The navigator is the DE acquisition's saved
  virtual image when there is one (nothing else read), else computed from all patterns when
  they fit the budget, else from a strided sample of scan positions.

Every picture has a scale bar in the axes' physical units (none where the spacing is unknown)
and a caption saying what was drawn and from what; ``Preview`` returns the same facts.
Reads go through ``MRCFile.to_dask`` slices, so only the frames drawn are fetched.

Needs ``pip install "intake-mrc[preview]"`` (matplotlib, matplotlib-scalebar). Figures are
drawn with the Agg canvas (no pyplot state, no display).
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .mrc import MRCFile

# Bytes of pixel data a preview may read (one frame is always allowed).
READ_BUDGET_NBYTES = 64 * 2**20
# Frames summed at most for a stack.
MAX_STACK_FRAMES = 16
# A thumbnail in _repr_html_ for remote files only when their data are this small.
SMALL_FILE_NBYTES = 16 * 2**20
# With a progress bar (the command line on a terminal), sampled frames are read in this many
# parts, so that the bar moves; without one, in a single read.
READ_GROUPS = 20
# A notebook thumbnail reads at most this much (a repr must answer quickly).
THUMBNAIL_BUDGET_NBYTES = 8 * 2**20

# A frame is drawn from at most this many pixels per inch of picture a side (panels are at
# most 7 inches tall): larger frames are read and drawn every n-th row and column.
DISPLAY_INCHES = 8
# PNG resolutions accepted (a figure of about 8 x 6 inches: 80 to 9,600 pixels wide).
MIN_DPI, MAX_DPI = 10, 1200

_LENGTH_TO_NM = {"nm": 1.0, "Å": 0.1, "A": 0.1, "pm": 1e-3, "um": 1e3, "µm": 1e3, "mm": 1e6}
_NAVIGATION_NAMES = ("y", "x")


@dataclass
class Preview:
    """What a preview shows: ``kind`` (image, stack sum, central slice, 4D-STEM), ``source``
    (what was read: all frames, a strided sample, a saved virtual image), ``caption`` (the
    text under the picture), ``frames_read``, the PNG ``path`` (None when not written) and
    ``pixel_stride`` (frames larger than the picture: every n-th row and column drawn, and
    read so when a frame is larger than the read budget)."""

    kind: str
    source: str
    caption: str
    frames_read: int
    path: str | None = None
    png: bytes = field(default=b"", repr=False)
    pixel_stride: int = 1  # every n-th row and column of a frame drawn


def _require_matplotlib() -> Any:
    try:
        import matplotlib  # noqa: F401
        import matplotlib_scalebar  # noqa: F401
    except ImportError:
        raise ImportError(
            "previews need matplotlib and matplotlib-scalebar: pip install 'intake-mrc[preview]'"
        ) from None


def _frame_nbytes(f: MRCFile) -> int:
    return int(np.dtype(f.dtype).itemsize * math.prod(f.shape[-2:]))


def _compute(array: Any) -> np.ndarray:
    return np.asarray(array.compute(scheduler="threads"))


def _take(f: MRCFile, key: tuple[Any, ...]) -> np.ndarray:
    """Frames selected on the navigation axes (slices with steps, index arrays; no ints),
    read straight from the ``FrameArray``: only those frames' bytes are fetched (a dask
    chunk would fetch its whole block before a fancy index)."""
    block = f.frame_array[key]
    if f.axis_permutation is not None:  # navigation axes never move; frame axes may
        block = block.transpose(f.axis_permutation)
    return block


def _pixel_stride(f: MRCFile, dpi: int) -> int:
    """Rows and columns skipped so that a frame is read at about the picture's resolution
    (a 12000 x 12000 image was read whole and drawn at full size: 12 GB, two minutes)."""
    layout = f.frame_array.layout
    return max(1, math.ceil(max(layout.ny, layout.nx) / (DISPLAY_INCHES * dpi)))


def _thinned(panel: tuple[Any, ...], limit: int) -> tuple[Any, ...]:
    """A panel drawn from at most ``limit`` pixels a side (every n-th row and column), its
    scale bar kept true: drawing a 12000 x 12000 image took 12 GB."""
    image, axis, label, log = panel
    step = max(1, math.ceil(max(image.shape, default=1) / limit))
    if step == 1:
        return panel
    return (image[::step, ::step], _strided_axis(axis, step), label, log)


def _strided_axis(axis: dict[str, Any], stride: int) -> dict[str, Any]:
    """The axis of every ``stride``-th pixel (its scale bar stays true)."""
    if stride == 1:
        return axis
    return {**axis, "scale": float(axis.get("scale") or 0) * stride}


def _take_counted(
    f: MRCFile,
    head: tuple[Any, ...],
    index: np.ndarray,
    tail: tuple[Any, ...],
    frames_each: int,
    progress: bool,
) -> np.ndarray:
    """``_take(f, head + (index,) + tail)``; with ``progress``, read in up to READ_GROUPS
    parts with a bar of the frames read (drawn on a terminal only), else in one read."""
    if not progress or len(index) < 2:
        return _take(f, head + (index,) + tail)
    from .progress import progress_bar

    parts = []
    groups = np.array_split(index, min(READ_GROUPS, len(index)))
    with progress_bar(
        total=len(index) * frames_each, desc="reading frames", unit=" frames", enabled=True
    ) as bar:
        for group in groups:
            parts.append(_take(f, head + (group,) + tail))
            bar.update(len(group) * frames_each)
    return np.concatenate(parts, axis=len(head))


def _contrast(image: np.ndarray, log: bool = False) -> tuple[np.ndarray, float, float]:
    """The image as floats (log1p for diffraction) and robust display limits."""
    values = np.abs(image) if np.iscomplexobj(image) else image
    values = values.astype(np.float64)
    if log:
        values = np.log1p(np.clip(values - np.nanmin(values), 0, None))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return values, 0.0, 1.0
    low, high = np.percentile(finite, [0.5, 99.5])
    if not high > low:
        low, high = float(finite.min()), float(finite.max())
        if not high > low:
            high = low + 1.0
    return values, float(low), float(high)


def _has_finite(image: np.ndarray) -> bool:
    """Whether any pixel is finite (an all-NaN or all-inf image draws as a blank square)."""
    return image.size == 0 or image.dtype.kind not in "fc" or bool(np.isfinite(image).any())


def _scale_bar(ax: Any, axis: dict[str, Any]) -> str | None:
    """A scale bar for an image whose columns follow ``axis``; the unit drawn, or None."""
    from matplotlib_scalebar.dimension import _Dimension
    from matplotlib_scalebar.scalebar import ScaleBar

    units, scale = axis.get("units"), float(axis.get("scale") or 0)
    if not units or not (math.isfinite(scale) and scale > 0):
        return None
    kwargs: dict[str, Any] = {"location": "lower right", "box_alpha": 0.6, "color": "black"}
    if units in _LENGTH_TO_NM:
        bar = ScaleBar(scale * _LENGTH_TO_NM[units], "nm", **kwargs)
    elif units in ("mrad", "rad"):
        angle = _Dimension("mrad")
        angle.add_units("µrad", 1e-3)
        angle.add_units("rad", 1e3)
        bar = ScaleBar(scale * (1e3 if units == "rad" else 1.0), "mrad", angle, **kwargs)
    elif units in ("1/nm", "nm^-1"):
        bar = ScaleBar(scale, "1/nm", "si-length-reciprocal", **kwargs)
    else:
        return None
    ax.add_artist(bar)
    return units


def _draw(
    panels: list[tuple[np.ndarray, dict[str, Any], str, bool]],
    title: str,
    caption: str,
    dpi: int,
) -> bytes:
    """PNG of one or two panels (image, column axis for the scale bar, panel title, log)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Panel height follows the tallest image's aspect, so wide scans leave no empty bands.
    aspect = max(p[0].shape[0] / max(1, p[0].shape[1]) for p in panels)
    width = 4.2 * len(panels)
    height = min(7.0, max(2.2, 4.2 * aspect)) + 1.1
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (image, column_axis, label, log) in zip(axes, panels, strict=True):
        flat = image.size > 0 and bool(np.all(image == image.flat[0]))
        if flat:
            # A constant image: mid-grey, and the value said, rather than a black square.
            value = image.flat[0]
            ax.imshow(np.zeros(image.shape), cmap="gray", vmin=-1, vmax=1)
            label += f" (constant: {value:g})" if np.isrealobj(image) else " (constant)"
        else:
            values, low, high = _contrast(image, log)
            ax.imshow(values, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
            if not _has_finite(image):
                label += " (no finite values)"
        # Text from the file (names, DE image names) is drawn as written: parse_math=False,
        # or '$...$' in a file name is mathtext (mangled, or a parse error and no picture).
        ax.set_title(label, fontsize=9, parse_math=False)
        ax.set_xticks([])
        ax.set_yticks([])
        if _scale_bar(ax, column_axis) is None:
            ax.set_xlabel("pixels (no physical scale known)", fontsize=8, parse_math=False)
    fig.suptitle(title, fontsize=10, parse_math=False)
    fig.supxlabel(caption, fontsize=8, wrap=True, parse_math=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _strided(n: int, k: int) -> np.ndarray:
    """``k`` evenly spaced indices in ``range(n)`` (all when n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


def _is_scan(f: MRCFile) -> bool:
    """A 2-D scan of diffraction patterns (4D-STEM): navigation y, x before the frame."""
    if f.ndim < 4:
        return False
    nav = [a["name"].rstrip("_") for a in f.axes[-4:-2]]
    return nav == list(_NAVIGATION_NAMES) or (
        f.axes[-1]["name"].startswith("k") and f.axes[-2]["name"].startswith("k")
    )


def _first_index_key(f: MRCFile, keep: int) -> tuple[Any, ...]:
    """Index 0 on the leading axes so that ``keep`` trailing axes remain."""
    return (0,) * (f.ndim - keep)


def _saved_virtual_image(f: MRCFile, scan_shape: tuple[int, int]) -> tuple[np.ndarray, str] | None:
    images = getattr(f, "virtual_images", None) or {}
    try:
        names = list(images)
    except Exception:  # noqa: BLE001 - discovery failures only mean: compute it instead
        return None
    for name in names:
        try:
            image = images[name]
            if tuple(image.shape[-2:]) != scan_shape or math.prod(image.shape) != math.prod(
                scan_shape
            ):
                continue
            return np.asarray(image.read()).reshape(scan_shape), name
        except Exception:  # noqa: BLE001 - an unreadable image: try the next, or compute
            continue
    return None


def _bright_field_mask(mean_pattern: np.ndarray) -> np.ndarray:
    """The bright disc: pixels above half the way from the median to the maximum of the
    mean pattern (all pixels when the pattern is flat)."""
    values = mean_pattern.astype(np.float64)
    low, high = float(np.median(values)), float(values.max())
    if not high > low:
        return np.ones(values.shape, dtype=bool)
    return values >= low + 0.5 * (high - low)


def _scan_preview(
    f: MRCFile, budget: int, stride: int = 1, progress: bool = False
) -> tuple[list, str, str, int]:
    lead = tuple(slice(0, 1) for _ in range(f.ndim - 4))  # first index of leading axes
    ny, nx = f.shape[-4:-2]
    frame_nbytes = _frame_nbytes(f)
    axes = f.axes[-4:]
    pixels = (slice(None, None, stride),) * 2
    cy, cx = ny // 2, nx // 2
    centre = None
    pattern_label = f"diffraction pattern at scan ({cy}, {cx}), log scale"
    saved = _saved_virtual_image(f, (ny, nx))
    frames_read = 0
    if saved is not None:
        navigator, name = saved
        source = f"navigator: the saved DE virtual image {name!r} (no patterns read for it)"
        nav_label = f"virtual image {name!r}"
    else:
        fit = max(1, budget // max(1, frame_nbytes))
        step = max(1, math.ceil(math.sqrt(ny * nx / fit)))
        rows = np.arange(0, ny, step)
        columns = slice(None, None, step)
        n_columns = len(range(0, nx, step))
        patterns = _take_counted(f, lead, rows, (columns,), n_columns, progress)
        patterns = patterns.reshape(patterns.shape[-4:])
        if cy % step == 0 and cx % step == 0:  # the sample holds the centre: not read again
            centre = patterns[cy // step, cx // step][pixels]
        patterns = patterns.astype(np.float64)
        frames_read += patterns.shape[0] * patterns.shape[1]
        mask = _bright_field_mask(patterns.mean(axis=(0, 1)))
        navigator = (patterns * mask).sum(axis=(-2, -1))
        if step == 1:
            source = f"navigator: virtual bright field computed from all {ny * nx} patterns"
        else:
            source = (
                "navigator: virtual bright field from a strided sample, every "
                f"{_ordinal(step)} scan position in y and x "
                f"({navigator.size} of {ny * nx} patterns)"
            )
        nav_label = "virtual bright field" + (
            f" (every {_ordinal(step)} position)" if step > 1 else ""
        )
        axes = [axes[0], _strided_axis(axes[1], step)] + list(axes[2:])
    if centre is None:
        centre = _take(f, lead + (slice(cy, cy + 1), slice(cx, cx + 1)) + pixels)
        centre = centre.reshape(centre.shape[-2:])
        frames_read += 1
    panels = [
        (navigator, axes[1], nav_label, False),
        (centre, _strided_axis(axes[3], stride), pattern_label, True),
    ]
    return panels, "4D-STEM", source, frames_read


def _volume_or_stack(
    f: MRCFile, budget: int, max_frames: int, stride: int = 1, progress: bool = False
) -> tuple[list, str, str, int]:
    arr = f.to_dask()
    lead = _first_index_key(f, 3)
    arr = arr[lead] if lead else arr
    n = arr.shape[0]
    stack_axis = f.axes[-3]
    column_axis = _strided_axis(f.axes[-1], stride)
    pixels = (slice(None, None, stride),) * 2
    volume = stack_axis["name"].rstrip("_") in ("z", "x", "y")
    if volume:
        centre = n // 2
        image = _compute(arr[(centre, *pixels)])
        where = f" of volume 0 of {f.shape[0]}" if lead else ""
        source = f"central slice {centre} of {n} along {stack_axis['name']}{where}"
        return [(image, column_axis, source, False)], "central slice", source, 1
    fit = max(1, budget // max(1, _frame_nbytes(f)))
    indices = _strided(n, min(max_frames, fit))
    first = tuple(slice(0, 1) for _ in range(f.ndim - 3))
    frames = _take_counted(f, first, indices, pixels, 1, progress)
    image = frames.reshape((-1,) + frames.shape[-2:]).astype(np.float64).sum(axis=0)
    if len(indices) == n:
        source = f"sum of all {n} frames"
    else:
        step = int(indices[1] - indices[0]) if len(indices) > 1 else n
        source = (
            f"sum of a strided sample: {len(indices)} of {n} frames (about every {_ordinal(step)})"
        )
    return [(image, column_axis, source, False)], "stack sum", source, len(indices)


def _check_arguments(budget: Any, max_frames: Any, dpi: Any) -> None:
    """A picture from at least one frame, a finite budget, a sane resolution (0 frames drew
    an all-zero "sum"; a huge dpi exhausts memory)."""
    if not (isinstance(max_frames, int | np.integer) and max_frames >= 1):
        raise ValueError(f"max_frames must be a whole number of at least 1, not {max_frames!r}")
    if not (isinstance(budget, int | float | np.number) and math.isfinite(budget)):
        raise ValueError(f"budget must be a finite number of bytes, not {budget!r}")
    if not (isinstance(dpi, int | np.integer) and MIN_DPI <= dpi <= MAX_DPI):
        raise ValueError(f"dpi must be a whole number from {MIN_DPI} to {MAX_DPI}, not {dpi!r}")


def render(
    f: MRCFile,
    *,
    budget: int = READ_BUDGET_NBYTES,
    max_frames: int = MAX_STACK_FRAMES,
    dpi: int = 100,
    progress: bool = False,
) -> Preview:
    """The preview of ``f`` as PNG bytes in ``Preview.png`` (nothing written). ``progress``
    draws a bar of the frames read on stderr when it is a terminal (the command line)."""
    _check_arguments(budget, max_frames, dpi)
    budget = int(budget)
    _require_matplotlib()
    stride = _pixel_stride(f, dpi)
    # A frame within the budget is read whole (one ranged read; every n-th row would be one
    # request per row) and thinned for drawing; a larger one is read every n-th row.
    read_stride = stride if _frame_nbytes(f) > budget else 1
    if f.ndim == 2:
        image = _compute(f.to_dask()[::read_stride, ::read_stride])
        panels: list = [(image, _strided_axis(f.axes[-1], read_stride), "image", False)]
        kind, source, frames_read = "image", "the whole image", 1
    elif _is_scan(f):
        panels, kind, source, frames_read = _scan_preview(f, budget, read_stride, progress)
    else:
        panels, kind, source, frames_read = _volume_or_stack(
            f, budget, max_frames, read_stride, progress
        )
    shape = " x ".join(str(n) for n in f.shape)
    dims = ", ".join(a["name"] for a in f.axes)
    title = f"{f.store.basename}  ({shape}: {dims}; {f.dtype})"
    caption = source if source.startswith(kind) else f"{kind}: {source}"
    sizes = [a for a in f.axes[-2:] if a.get("units")]
    if sizes:
        what = "pattern pixel" if kind == "4D-STEM" else "pixel"
        caption += f"; {what} " + " x ".join(f"{float(a['scale']):.4g} {a['units']}" for a in sizes)
    panels = [_thinned(panel, DISPLAY_INCHES * dpi) for panel in panels]
    if read_stride > 1:
        caption += f"; every {_ordinal(stride)} pixel of a frame read and drawn"
    elif stride > 1:
        caption += f"; every {_ordinal(stride)} pixel of a frame drawn (frames read whole)"
    blank = [label for image, _, label, _ in panels if not _has_finite(image)]
    if blank:
        caption += "; no finite values (NaN or infinite) in: " + ", ".join(blank)
    png = _draw(panels, title, caption, dpi)
    return Preview(kind, source, caption, frames_read, None, png, stride)


def preview(f: MRCFile, output: str | None = None, **kwargs: Any) -> Preview:
    """Draw ``f`` (see the module docstring) and write the PNG to ``output`` when given."""
    result = render(f, **kwargs)
    if output is not None:
        with open(output, "wb") as out:
            out.write(result.png)
        result.path = str(output)
    return result


def _is_local(f: MRCFile) -> bool:
    from .storage import LocalStore

    return isinstance(f.store, LocalStore)


def html_summary(f: MRCFile, thumbnail: bool | None = None) -> str:
    """A small HTML table (shape, dtype, voxel size, axes, DE summary) and, for local or
    small files when matplotlib is installed, an inline PNG thumbnail."""
    esc = html.escape
    rows = [
        ("file", esc(str(f.name))),
        ("shape", esc(" x ".join(str(n) for n in f.shape))),
        ("dtype", esc(str(f.dtype))),
        (
            "voxel size (Å)",
            esc(", ".join("?" if v is None else f"{v:.4g}" for v in f.voxel_size)),
        ),
        (
            "axes",
            "<br>".join(
                esc(
                    f"{a['name']}: {a['size']} x {float(a['scale']):.4g} {a['units'] or 'px'}"
                    + (" (navigation)" if a.get("navigate") else "")
                )
                for a in f.axes
            ),
        ),
    ]
    de = f.metadata.get("direct_electron")
    if de:
        summary = de.get("summary", {})
        items = list(summary.items())[:8]
        rows.append(("Direct Electron", "<br>".join(esc(f"{k}: {v}") for k, v in items)))
    table = "".join(
        f"<tr><th style='text-align:left'>{name}</th><td style='text-align:left'>{value}</td></tr>"
        for name, value in rows
    )
    picture = ""
    if thumbnail is None:
        data_nbytes = int(np.dtype(f.dtype).itemsize * math.prod(f.shape))
        thumbnail = _is_local(f) or data_nbytes <= SMALL_FILE_NBYTES
    if thumbnail:
        try:
            shown = render(f, dpi=60, budget=THUMBNAIL_BUDGET_NBYTES)
            encoded = base64.b64encode(shown.png).decode("ascii")
            picture = (
                f"<img src='data:image/png;base64,{encoded}' style='max-width:480px' "
                f"alt='{esc(shown.caption)}'><br><small>{esc(shown.caption)}</small>"
            )
        except Exception:  # noqa: BLE001 - a notebook repr must not raise
            picture = ""
    return (
        "<div><table><caption style='text-align:left'><b>MRCFile</b></caption>"
        f"{table}</table>{picture}</div>"
    )
