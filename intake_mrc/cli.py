"""The ``intake-mrc`` command line: ``info`` (and, from the catalog work, ``catalog`` and
``demo``). Errors are one line on stderr and a non-zero exit, no traceback."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .api import open_mrc


def _info(args: argparse.Namespace) -> dict[str, Any]:
    f = open_mrc(args.url, storage_options=json.loads(args.storage_options or "{}"))
    arr = f.to_dask()
    return {
        "file": f.name,
        "shape": list(f.shape),
        "dtype": str(f.dtype),
        "chunks": [list(c) for c in arr.chunks],
        "voxel_size_angstrom": list(f.voxel_size),
        "axes": f.axes,
        "extended_header_type": f.extended_header_type,
        "header": f.header,
        "metadata": f.metadata,
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
    if info["extended_header_type"]:
        print(f"  extended header: {info['extended_header_type']}")
    for note in info["metadata"].get("mrc", {}).get("notes", []):
        print(f"  note: {note}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intake-mrc", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="describe an MRC file (header, shape, chunks)")
    info.add_argument("url")
    info.add_argument("--storage-options", help="fsspec storage options as JSON")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "info":
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
