"""The ``intake-mrc`` command line: ``info`` (describe a file), ``validate`` (MRC2014 and our
checks), ``catalog`` (write a catalog of a folder, glob or bucket), ``refs`` (kerchunk references),
``preview`` (a PNG) and ``demo``.

Each command is two functions: ``add_NAME(subparsers)`` declares its arguments (every one
with help text) and sets ``run=`` to ``run_NAME(args) -> exit code``. ``COMMANDS`` lists the
``add_`` functions; a new command adds its own pair and one line there. Shared argument
groups: :func:`add_storage_options` and :func:`add_open_options` (every ``open_mrc`` option);
a command on one MRC file starts its parser with :func:`add_file_command` (URL, ``-o``,
storage options) and reads its options back with :func:`open_kwargs` (storage options
checked first).

Only argparse, json and sys are imported at start, so that ``--help`` and ``--version`` answer
at once; dask, fsspec and the readers are imported by the command that runs. Errors are one
line on stderr (``intake-mrc: error: ...``) and exit 1; usage errors (bad arguments, bad
``--storage-options``) exit 2, as argparse does. Progress bars appear on stderr only when it
is a terminal (``intake_mrc.progress``).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from typing import Any

from . import __version__


class UsageError(Exception):
    """A problem with the command line itself: reported like argparse's errors (exit 2)."""


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 entry``, ``2 entries``, ``0 files``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


# --- shared arguments ---------------------------------------------------------------------


def _json_object(text: str) -> dict[str, Any]:
    # The text itself is never echoed: it may hold credentials.
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            "expected an object such as '{\"anon\": true}'"
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object ({{...}}), got a JSON {type(value).__name__}"
        )
    return value


def add_storage_options(parser: argparse.ArgumentParser, extra_help: str = "") -> None:
    parser.add_argument(
        "--storage-options",
        type=_json_object,
        default={},
        metavar="JSON",
        help="fsspec storage options as a JSON object, e.g. '{\"anon\": true}' for a public "
        "bucket; credentials are better left to the environment" + extra_help,
    )


def check_storage_options(url: str, options: dict[str, Any]) -> None:
    """Unknown or wrongly typed storage options are a usage error, named before anything is
    read."""
    from .storage.options import unknown_storage_options, wrongly_typed_storage_options

    problems = unknown_storage_options(url, options) + wrongly_typed_storage_options(options)
    if problems:
        raise UsageError("--storage-options: " + "; ".join(problems))


def _navigation_shape(text: str) -> tuple[int, ...] | str:
    if text in ("auto", "none"):
        return text
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected X,Y (scan positions along x then y, e.g. 8,4) or 'auto', not {text!r}"
        ) from None
    if not shape or any(n <= 0 for n in shape):
        raise argparse.ArgumentTypeError(f"sizes must be positive, not {text!r}")
    return shape


def _chunks(text: str) -> Any:
    """dask chunks for the stack axes: 'auto', 10, '2,-1', or JSON ({"0": 4}, [2, -1])."""
    text = text.strip()
    if text == "auto":
        return "auto"
    try:
        if text.startswith(("{", "[")):
            value = json.loads(text)
            if isinstance(value, dict):
                return {int(k): v for k, v in value.items()}
            return tuple(value)
        if "," in text:
            return tuple("auto" if p.strip() == "auto" else int(p) for p in text.split(","))
        return int(text)
    except (ValueError, json.JSONDecodeError):
        raise argparse.ArgumentTypeError(
            f"expected 'auto', a number, numbers with commas (2,-1) or JSON, not {text!r}"
        ) from None


def check_output(output: str, url: str) -> None:
    """Our outputs (PNG, references, catalogs) never replace MRC data: ``-o`` naming the
    input file, or an existing file that is MRC (the 'MAP ' id, or an MRC name), is a usage
    error before any work (`preview movie.mrc -o movie.mrc` replaced the data with a PNG)."""
    import os

    if not os.path.isfile(output):
        return
    from .catalog import is_mrc_name
    from .format.header import MAP_ID_END, has_map_id

    same = os.path.isfile(url) and os.path.samefile(output, url)
    with open(output, "rb") as existing:
        head = existing.read(MAP_ID_END)
    if same or has_map_id(head) or is_mrc_name(os.path.basename(output)):
        what = "is the input MRC file" if same else "is an MRC file"
        raise UsageError(f"-o {output} {what}; choose another name for the output")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not (value > 0 and value != float("inf")):  # NaN fails the first test
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text!r}")
    return value


def _dpi(text: str) -> int:
    from .preview import MAX_DPI, MIN_DPI  # numpy only; matplotlib is imported when drawing

    value = _positive_int(text)
    if not MIN_DPI <= value <= MAX_DPI:
        raise argparse.ArgumentTypeError(f"must be from {MIN_DPI} to {MAX_DPI}, not {value}")
    return value


def _optional_url(text: str) -> str | None:
    return None if text == "none" else text


def add_open_options(parser: argparse.ArgumentParser) -> None:
    """Every ``open_mrc`` argument as an option (read back by :func:`open_kwargs`)."""
    group = parser.add_argument_group("how to open the file (open_mrc's arguments)")
    group.add_argument(
        "--navigation-shape",
        type=_navigation_shape,
        default=None,
        metavar="X,Y",
        help="reshape a stack of diffraction patterns to this scan (x then y, RosettaSciIO's "
        "order), or 'auto' to take it from the FEI scan size; DE movies take it from the "
        "info file",
    )
    group.add_argument(
        "--chunks",
        type=_chunks,
        default="auto",
        metavar="CHUNKS",
        help="dask chunks along the stack axes: 'auto' (default), frames per chunk (10), one "
        "per axis (2,-1) or JSON; frames are never split",
    )
    group.add_argument(
        "--mmap-mode",
        choices=["c", "r", "r+", "none"],
        default="c",
        help="memory-map local files: c (copy-on-write, default), r, r+ (writes go to the "
        "file) or none (positioned reads)",
    )
    group.add_argument(
        "--signed-bytes",
        choices=["auto", "signed", "unsigned"],
        default="auto",
        help="mode 0: int8 or uint8; 'auto' follows IMOD's flags and DE movies",
    )
    group.add_argument(
        "--axis-order",
        choices=["file", "xyz"],
        default="file",
        help="'file' keeps the stored order (as mrcfile); 'xyz' presents z, y, x",
    )
    group.add_argument(
        "--metadata-file",
        type=_optional_url,
        default="auto",
        metavar="PATH|URL",
        help="Direct Electron _info.txt: a path or URL, 'auto' (next to a *_movie.mrc, the "
        "default) or 'none'",
    )
    group.add_argument(
        "--virtual-image",
        action="append",
        metavar="[NAME=]PATH",
        help="a DE virtual detector image (repeatable); replaces discovery",
    )
    group.add_argument(
        "--external-image",
        action="append",
        metavar="[NAME=]PATH",
        help="a DE external detector image (repeatable); replaces discovery",
    )
    group.add_argument(
        "--scan-file",
        type=_optional_url,
        default="auto",
        metavar="PATH|URL",
        help="scan-coordinates CSV of a DE Random or XY-file scan: a path or URL, 'auto' "
        "(next to the movie, the default) or 'none'",
    )
    group.add_argument(
        "--partial-scan",
        choices=["error", "pad"],
        default="error",
        help="an interrupted DE raster scan: 'error' (default) or 'pad' with zeros",
    )


def _images(values: list[str] | None) -> Any:
    """``NAME=PATH`` pairs give a dict, bare paths a list (a ``=`` after a ``/`` or ``:`` is
    part of the path, e.g. a query string)."""
    if not values:
        return None
    pairs = [value.partition("=") for value in values]
    named = [bool(sep) and "/" not in name and ":" not in name for name, sep, _ in pairs]
    if all(named):
        return {name: path for name, _, path in pairs}
    if any(named):
        raise UsageError("give every --virtual-image/--external-image as NAME=PATH, or none")
    return list(values)


def open_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``open_mrc`` keyword arguments from :func:`add_file_command`'s and
    :func:`add_open_options`' options; unknown storage options are a usage error here, before
    anything is read."""
    check_storage_options(args.url, args.storage_options)
    navigation = args.navigation_shape
    return {
        "storage_options": args.storage_options,
        "navigation_shape": None if navigation == "none" else navigation,
        "chunks": args.chunks,
        "mmap_mode": None if args.mmap_mode == "none" else args.mmap_mode,
        "signed_bytes": args.signed_bytes,
        "axis_order": args.axis_order,
        "metadata_file": args.metadata_file,
        "virtual_images": _images(args.virtual_image),
        "external_images": _images(args.external_image),
        "scan_file": args.scan_file,
        "partial_scan": args.partial_scan,
    }


def add_file_command(
    sub: Any,
    name: str,
    run: Callable[[argparse.Namespace], int],
    *,
    summary: str,
    description: str,
    output_help: str | None = None,
    storage_help: str = "",
) -> argparse.ArgumentParser:
    """The parser of a command on one MRC file: the file's URL, ``-o/--output`` when the
    command writes a file (``output_help``), then ``--storage-options``. The command adds its
    own options, then :func:`add_open_options`, and reads them with :func:`open_kwargs`."""
    parser = sub.add_parser(name, help=summary, description=description)
    parser.add_argument("url", help="path or fsspec URL (s3://, https://, ...) of the MRC file")
    if output_help is not None:
        parser.add_argument("-o", "--output", required=True, help=output_help)
    add_storage_options(parser, storage_help)
    parser.set_defaults(run=run)
    return parser


# --- info ---------------------------------------------------------------------------------


def add_info(sub: Any) -> None:
    parser = add_file_command(
        sub,
        "info",
        run_info,
        summary="describe an MRC file (header, shape, chunks, axes, DE metadata)",
        description="Describe an MRC file: reads the header and extended header only.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    add_open_options(parser)


def run_info(args: argparse.Namespace) -> int:
    kwargs = open_kwargs(args)
    # Every URL shown (the file, its info file, virtual images, notes) without credentials.
    from .literal import map_strings

    info = map_strings(describe(args.url, **kwargs), redact_text)
    if args.json:
        print(json.dumps(info, default=str, indent=1))
    else:
        _print_info(info)
    return 0


def describe(url: Any, **kwargs: Any) -> dict[str, Any]:
    """What ``intake-mrc info`` shows, as a JSON-ready dict."""
    from .api import open_mrc

    f = open_mrc(url, **kwargs)
    arr = f.to_dask()
    extended: dict[str, Any] | None = None
    if f.extended_header_type is not None:
        extended = {"type": f.extended_header_type}
        if isinstance(f.extended_header, bytes):
            extended["bytes"] = len(f.extended_header)
        else:
            from .format.extended import record_summary

            extended["records"] = len(f.extended_header)
            if len(f.extended_header):
                first = record_summary(f.extended_header[0])
                extended["first_record"] = {
                    k: v for k, v in first.items() if v not in (0, 0.0, "", False)
                }
    de = f.metadata.get("direct_electron")
    return {
        "file": f.name,
        "shape": list(f.shape),
        "dtype": str(f.dtype),
        "chunks": [list(c) for c in arr.chunks],
        "voxel_size_angstrom": list(f.voxel_size),
        "axes": f.axes,
        "extended_header": extended,
        "header": f.header,
        "direct_electron": None
        if de is None
        else {"info_file": de["info_file"], "summary": de["summary"], "notes": de["notes"]},
        "scan": f.metadata.get("scan"),
        "virtual_images": dict(getattr(f.virtual_images, "sources", {})),
        "external_images": dict(getattr(f.external_images, "sources", {})),
        "notes": f.notes,
    }


def _print_info(info: dict[str, Any]) -> None:
    print(f"{info['file']}")
    print(f"  shape {tuple(info['shape'])}  dtype {info['dtype']}")
    n_blocks = 1
    for c in info["chunks"]:
        n_blocks *= len(c)
    print(
        f"  chunks {tuple(len(c) for c in info['chunks'])} ({plural(n_blocks, 'block')}), "
        f"first block {tuple(c[0] for c in info['chunks'])}"
    )
    print(f"  voxel size (Å) {tuple(info['voxel_size_angstrom'])}")
    for axis in info["axes"]:
        units = axis["units"] or ""
        print(
            f"  axis {axis['name']:>6}: {axis['size']:>6} x {axis['scale']:g} {units}"
            f"{'  (navigation)' if axis['navigate'] else ''}"
        )
    h = info["header"]
    print(
        f"  mode {h['mode']}  ispg {h['ispg']}  nsymbt {h['nsymbt']}  exttyp {h['exttyp']!r}"
        f"  nversion {h['nversion']}  axes order {h['mapc']},{h['mapr']},{h['maps']}"
    )
    ext = info["extended_header"]
    if ext:
        size = (
            plural(ext["records"], "record") if "records" in ext else plural(ext["bytes"], "byte")
        )
        print(f"  extended header: {ext['type']}, {size}")
        for key, value in list(ext.get("first_record", {}).items())[:12]:
            print(f"    {key}: {value}")
    de = info["direct_electron"]
    if de:
        print(f"  Direct Electron info: {de['info_file']}")
        for key, value in de["summary"].items():
            print(f"    {key}: {value}")
    if info["scan"]:
        print(
            f"  scan: {info['scan']['kind']}, navigation {tuple(info['scan']['navigation_shape'])}"
        )
    for label, images in (
        ("virtual", info["virtual_images"]),
        ("external", info["external_images"]),
    ):
        for name, source in images.items():
            print(f"  {label} image {name!r}: {source}")
    for note in info["notes"] + (info["scan"] or {}).get("notes", []):
        print(f"  note: {note}")


# --- validate -----------------------------------------------------------------------------


def add_validate(sub: Any) -> None:
    parser = sub.add_parser(
        "validate",
        help="check files against MRC2014 (mrcfile's checks and ours); exit 1 on problems",
        description="Check MRC files: mrcfile's MRC2014 checks (map id, machine stamp, mode, "
        "sizes, cell, axis mapping, labels, version, extended header type, statistics, file "
        "size) and ours (extended header records, DE metadata). One line per problem on "
        "stdout, 'FILE: problem'; exit 0 when every file is clean, 1 otherwise. Remote files "
        "are checked from their header alone.",
    )
    parser.add_argument("urls", nargs="+", metavar="URL", help="paths or fsspec URLs to check")
    add_storage_options(parser)
    parser.add_argument(
        "--statistics",
        choices=["auto", "always", "never"],
        default="auto",
        help="compare DMIN/DMAX/DMEAN/RMS with the data: 'auto' for local files only (reads "
        "them whole), 'always' (remote too: downloads the data), 'never'",
    )
    parser.set_defaults(run=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from .errors import StorageError
    from .storage.urls import redact_url
    from .validation import validate

    for url in args.urls:
        check_storage_options(url, args.storage_options)
    n_problems = n_bad = 0
    for url in args.urls:
        name = redact_url(str(url))
        try:
            problems = validate(url, args.storage_options, args.statistics)
        except (OSError, StorageError) as error:
            problems = [f"cannot read: {_one_line(error, name)}"]
        for problem in problems:
            print(f"{name}: {problem}")
        n_problems += len(problems)
        n_bad += bool(problems)
    print(
        f"checked {plural(len(args.urls), 'file')}: "
        + (f"{plural(n_problems, 'problem')} in {plural(n_bad, 'file')}" if n_bad else "valid"),
        file=sys.stderr,
    )
    return 1 if n_bad else 0


def _one_line(error: BaseException, name: str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[len(name) + 2 :] if text.startswith(name + ": ") else text


# --- catalog ------------------------------------------------------------------------------


def add_catalog(sub: Any) -> None:
    parser = sub.add_parser(
        "catalog",
        help="write an intake catalog of a folder, glob or bucket",
        description="List a folder, glob or bucket prefix once and write an intake catalog "
        "with one entry per Direct Electron acquisition or MRC file.",
    )
    parser.add_argument("url", help="folder, glob, s3:// prefix, or a DE info file (HTTP)")
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        help="catalog file to write: YAML, or an SQLite index (searchable, opens at once) "
        "when the name ends in .sqlite, .sqlite3 or .db",
    )
    parser.add_argument(
        "--form",
        choices=["v2", "legacy"],
        default="v2",
        help="intake 2 ('version: 2', default) or legacy ('sources:') YAML",
    )
    add_storage_options(parser, " (used for listing; credentials are never written to the catalog)")
    parser.add_argument(
        "--relative", action="store_true", help="write local paths relative to the catalog's folder"
    )
    parser.add_argument(
        "--headers",
        action="store_true",
        help="read every header and DE info file (concurrently) and put shape, dtype, voxel "
        "size and the DE scan size, frame rate, date and detectors into the entries",
    )
    parser.add_argument(
        "--index",
        action="store_true",
        help="write the entries to an SQLite index beside OUTPUT (same name, .sqlite) and "
        "OUTPUT as a small YAML whose entry 'index' opens it lazily: opens in milliseconds "
        "with intake.open_catalog at any size (--form picks the YAML's form)",
    )
    parser.set_defaults(run=run_catalog)


def run_catalog(args: argparse.Namespace) -> int:
    from .catalog import write_catalog

    check_storage_options(args.url, args.storage_options)
    check_output(args.output, args.url)
    n = write_catalog(
        args.url,
        args.output,
        args.storage_options,
        form=args.form,
        progress=True,
        relative=args.relative,
        empty_ok=False,
        headers=args.headers,
        index=args.index,
    )
    print(f"wrote {plural(n, 'entry', 'entries')} to {redact_text(args.output)}")
    return 0


# --- refs ---------------------------------------------------------------------------------


def add_refs(sub: Any) -> None:
    parser = add_file_command(
        sub,
        "refs",
        run_refs,
        summary="write kerchunk references: the file as a zarr store, no bytes copied",
        description="Write kerchunk version-1 references of an MRC file: zarr metadata plus "
        "[url, offset, length] per chunk of whole frames. Read them with fsspec's "
        "reference:// filesystem and zarr or xarray; intake_mrc is not needed there.",
        output_help="JSON file to write (a folder with --parquet)",
        storage_help=" (for reading the header; never written to the references)",
    )
    parser.add_argument(
        "--frames-per-chunk",
        type=_positive_int,
        default=None,
        metavar="N",
        help="whole frames per zarr chunk; must tile the stack (default: up to 64 MiB)",
    )
    parser.add_argument(
        "--zarr-format",
        type=int,
        choices=[2, 3],
        default=2,
        help="zarr metadata: 2 (.zarray, default) or 3 (zarr.json)",
    )
    parser.add_argument(
        "--target-url",
        metavar="URL",
        help="URL written into the references instead of the file's own (a public mirror); "
        "no credentials",
    )
    parser.add_argument(
        "--parquet",
        action="store_true",
        help="write kerchunk's parquet form (a folder; advised above 100,000 chunks; needs "
        "intake-mrc[references])",
    )
    add_open_options(parser)


def run_refs(args: argparse.Namespace) -> int:
    from .references import PARQUET_ADVISED_CHUNKS, n_chunks, references_for, write_references

    check_output(args.output, args.url)
    if args.parquet and args.zarr_format != 2:
        raise UsageError(
            "--parquet writes kerchunk's parquet form, which holds zarr v2 metadata only: "
            "use --zarr-format 2 (the default) with --parquet"
        )
    kwargs = open_kwargs(args)
    refs = references_for(
        args.url,
        kwargs.pop("storage_options"),
        args.frames_per_chunk,
        url=args.target_url,
        zarr_format=args.zarr_format,
        **kwargs,
    )
    count = n_chunks(refs)
    write_references(refs, args.output, parquet=args.parquet)
    print(f"wrote {plural(count, 'chunk reference')} to {args.output}")
    if count > PARQUET_ADVISED_CHUNKS and not args.parquet:
        print(f"note: {count} chunks; --parquet reads faster at this size", file=sys.stderr)
    return 0


# --- preview ------------------------------------------------------------------------------


def add_preview(sub: Any) -> None:
    parser = add_file_command(
        sub,
        "preview",
        run_preview,
        summary="draw a PNG of an MRC file (image, stack sum, central slice, 4D-STEM navigator)",
        description="Draw a picture of an MRC file with a scale bar: an image, the sum of a "
        "stack (a strided sample when large), a volume's central slice, or a 4D-STEM "
        "virtual bright field beside a diffraction pattern. Reads at most --budget-mib of "
        "pixel data; the caption says what was read. Needs intake-mrc[preview].",
        output_help="PNG file to write",
    )
    parser.add_argument(
        "--budget-mib",
        type=_positive_float,
        default=64,
        metavar="MIB",
        help="pixel data a picture may read, in MiB (default 64; one frame always)",
    )
    parser.add_argument(
        "--max-frames",
        type=_positive_int,
        default=16,
        metavar="N",
        help="frames summed at most for a stack (an even stride beyond; default 16)",
    )
    parser.add_argument(
        "--dpi", type=_dpi, default=100, help="PNG resolution (default 100; 10 to 1200)"
    )
    add_open_options(parser)


def run_preview(args: argparse.Namespace) -> int:
    from .api import open_mrc
    from .preview import preview

    check_output(args.output, args.url)
    f = open_mrc(args.url, **open_kwargs(args))
    shown = preview(
        f,
        args.output,
        budget=int(args.budget_mib * 2**20),
        max_frames=args.max_frames,
        dpi=args.dpi,
        progress=True,
    )
    print(f"wrote {args.output}: {shown.caption}")
    return 0


# --- demo ---------------------------------------------------------------------------------


def add_demo(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the self-contained demo (an S3 server on 127.0.0.1; no credentials needed)",
        description="Write sample MRC and DE files, serve them from an S3 server on "
        "127.0.0.1, write a catalog by glob and read every entry through intake.",
    )
    parser.add_argument(
        "--output-dir",
        default="demo-output",
        help="folder for the sample files and the catalog (default: demo-output)",
    )
    parser.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from .demo import run

    run(args.output_dir)
    return 0


# --- the parser and main ------------------------------------------------------------------

# One line per command; each add_ function sets its run function.
COMMANDS: list[Callable[[Any], None]] = [
    add_info,
    add_validate,
    add_catalog,
    add_refs,
    add_preview,
    add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intake-mrc",
        description="Read MRC electron-microscopy files (local, S3, HTTP) and write intake "
        "catalogs of them.",
        epilog="Run 'intake-mrc COMMAND --help' for a command's options.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="show the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def redact_text(text: str) -> str:
    """Every URL in ``text`` without user, password and query string (what we print)."""
    from .credentials import redact_text as redact

    return redact(text)


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """A warning as one line on stderr (what was left out of a catalog), no source line."""
    print(f"intake-mrc: warning: {redact_text(str(message))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args) or 0)
    except UsageError as error:
        print(f"intake-mrc {args.command}: error: {redact_text(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `intake-mrc info ... | head`
        return 0
    except Exception as error:  # noqa: BLE001 - one line, no traceback, for any failure
        message = redact_text(" ".join(str(error).split())) or type(error).__name__
        print(f"intake-mrc: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
