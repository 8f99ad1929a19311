"""The ``intake-mrc`` command line: ``info`` (describe a file), ``catalog`` (write a catalog
of a folder, glob or bucket) and ``demo``. Errors are one line on stderr and a non-zero
exit, no traceback."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .api import open_mrc


def _info(args: argparse.Namespace) -> dict[str, Any]:
    f = open_mrc(args.url, storage_options=json.loads(args.storage_options or "{}"))
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
    print(
        f"  chunks {tuple(len(c) for c in info['chunks'])} blocks, "
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
        size = f"{ext['records']} records" if "records" in ext else f"{ext['bytes']} bytes"
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


def _catalog(args: argparse.Namespace) -> None:
    from .catalog import write_catalog

    options = json.loads(args.storage_options or "{}")
    n = write_catalog(
        args.url, args.output, options, form=args.form, progress=True, relative=args.relative
    )
    print(f"wrote {n} entries to {args.output}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intake-mrc", description="Read MRC files and write intake catalogs of them."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="describe an MRC file (header, shape, chunks)")
    info.add_argument("url")
    info.add_argument("--storage-options", help="fsspec storage options as JSON")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    catalog = sub.add_parser("catalog", help="write an intake catalog of a folder, glob or bucket")
    catalog.add_argument("url", help="folder, glob, s3:// prefix, or a DE info file (HTTP)")
    catalog.add_argument("-o", "--output", required=True, help="catalog YAML to write")
    catalog.add_argument(
        "--form",
        choices=["v2", "legacy"],
        default="v2",
        help="intake 2 ('version: 2') or legacy ('sources:') YAML",
    )
    catalog.add_argument(
        "--storage-options",
        help="fsspec storage options as JSON (credentials are used for listing and never written)",
    )
    catalog.add_argument(
        "--relative", action="store_true", help="write local paths relative to the catalog's folder"
    )
    demo = sub.add_parser("demo", help="run the self-contained demo (local S3 server)")
    demo.add_argument("--output-dir", default="demo-output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "catalog":
            _catalog(args)
        elif args.command == "demo":
            from .demo import run

            run(args.output_dir)
        elif args.command == "info":
            info = _info(args)
            if args.json:
                print(json.dumps(info, default=str, indent=1))
            else:
                _print_info(info)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - one line, no traceback, for any failure
        print(f"intake-mrc: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
