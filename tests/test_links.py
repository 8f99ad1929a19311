"""Symbolic links: the catalog glob leaves out links leading out of the folder scanned (the
rule of DE discovery, one function), and a file swapped for a link (or replaced) after
discovery or open is refused at read time, not read."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from dewriter import write_acquisition
from mrcwriter import write_mrc

import intake_mrc
from intake_mrc import ObjectChangedError
from intake_mrc.catalog import glob_catalog, list_files, write_catalog


@pytest.fixture
def shared(tmp_path):
    """A scanned folder holding links out of it (to a secret file, to a folder) and links
    inside it (to a file beside them, to a subfolder)."""
    folder = tmp_path / "shared"
    (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "private"
    outside.mkdir()
    write_mrc(outside / "secret.mrc", np.full((1, 3, 5), 7, np.float32))
    write_mrc(outside / "also_secret.mrc", np.full((1, 3, 5), 8, np.float32))
    write_mrc(folder / "kept.mrc", np.full((1, 3, 5), 1, np.float32))
    write_mrc(folder / "sub" / "below.mrc", np.full((1, 3, 5), 2, np.float32))
    (folder / "leak.mrc").symlink_to(outside / "secret.mrc")
    (folder / "relative_leak.mrc").symlink_to("../private/secret.mrc")
    (folder / "leakdir").symlink_to(outside)
    (folder / "inside.mrc").symlink_to(folder / "kept.mrc")
    (folder / "subdir").symlink_to(folder / "sub")
    return folder


def _names(urls: list[str], root) -> list[str]:
    return sorted(os.path.relpath(u, root) for u in urls)


def test_glob_leaves_out_links_leading_out_of_the_folder(shared):
    with pytest.warns(UserWarning) as record:
        urls, _ = list_files(str(shared))
    # (subdir is sub itself: walked once)
    assert _names(urls, shared) == ["inside.mrc", "kept.mrc", "sub/below.mrc"]
    warned = " ".join(str(w.message) for w in record)
    for link in ("leak.mrc", "relative_leak.mrc", "leakdir"):
        assert f"{shared}/{link}:" in warned, warned
    assert "follow_symlinks=True" in warned
    # A glob: the folder before the wildcard is the folder scanned.
    with pytest.warns(UserWarning, match="leak.mrc"):
        urls, _ = list_files(str(shared / "*.mrc"))
    assert _names(urls, shared) == ["inside.mrc", "kept.mrc"]
    # Opt in: the links are followed.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        urls, _ = list_files(str(shared), follow_symlinks=True)
    assert "leak.mrc" in _names(urls, shared)
    assert "leakdir/secret.mrc" in _names(urls, shared)


def test_info_file_listing_leaves_out_links_out_of_its_folder(tmp_path):
    acq = write_acquisition(tmp_path / "acq", scan=(5, 3), external_names=())
    outside = write_mrc(tmp_path / "secret.mrc", np.full((1, 3, 5), 9, np.float32))
    (leaked, _), (kept, _) = acq["virtual"].values()
    leaked.unlink()
    leaked.symlink_to(outside)  # a name the info file lists, leading out of the folder
    info = str(acq["paths"]["info"])
    with pytest.warns(UserWarning, match=leaked.name):
        urls, _ = list_files(info)
    assert str(kept) in urls and info in urls and str(leaked) not in urls


def test_catalogs_hold_no_entry_for_a_link_out(shared, tmp_path):
    with pytest.warns(UserWarning, match="leak"):
        cat = glob_catalog(str(shared))
    text = str(cat.to_dict())
    assert "kept.mrc" in text and "below.mrc" in text
    assert "leak" not in text and "secret" not in text
    for form in ("v2", "legacy"):
        path = tmp_path / f"c-{form}.yaml"
        with pytest.warns(UserWarning, match="leak"):
            write_catalog(str(shared), str(path), form=form)
        written = path.read_text()
        assert "kept.mrc" in written and "leak" not in written and "secret" not in written
    with pytest.warns(UserWarning, match="leak"):
        assert write_catalog(str(shared), str(tmp_path / "default.yaml")) == 3
    assert write_catalog(str(shared), str(tmp_path / "all.yaml"), follow_symlinks=True) == 7


def test_discovery_and_catalog_share_one_rule():
    from intake_mrc.storage import local

    assert local.LocalStore._inside_folder.__code__.co_names.count("resolves_inside") == 1
    import intake_mrc.catalog as catalog

    assert catalog.resolves_inside is local.resolves_inside


# -- a file swapped after discovery or open -------------------------------------------------


def test_image_swapped_for_a_link_after_discovery_is_not_read(tmp_path):
    acq = write_acquisition(tmp_path / "acq", scan=(5, 3), external_names=())
    outside = write_mrc(tmp_path / "secret.mrc", np.full((1, 3, 5), 9, np.float32))
    f = intake_mrc.open_mrc(acq["paths"]["movie"])
    name = next(iter(f.virtual_images))
    image = f.virtual_images[name]  # discovered: the folder's own file
    path = image.store.path
    expected = image.read()
    # Swapped for a link to a file elsewhere, after discovery and before the read.
    os.replace(path, str(tmp_path / "moved.mrc"))
    os.symlink(outside, path)
    with pytest.raises(ObjectChangedError, match="symbolic link") as info:
        image.read()
    assert os.path.basename(path) in str(info.value)
    with pytest.raises(ObjectChangedError):
        image.to_dask().compute()
    assert expected.max() != 9


def test_local_file_replaced_after_open_is_not_read(tmp_path):
    path = write_mrc(tmp_path / "a.mrc", np.arange(60, dtype=np.float32).reshape(4, 3, 5))
    f = intake_mrc.open_mrc(path)
    frames = f.to_dask(chunks=1)
    np.testing.assert_array_equal(frames[0].compute(), np.arange(15).reshape(3, 5))
    other = write_mrc(tmp_path / "b.mrc", np.full((4, 3, 5), 5, np.float32))
    os.replace(other, path)  # an atomic replacement: same name, another file
    with pytest.raises(ObjectChangedError, match="a.mrc"):
        frames[1].compute()
    with pytest.raises(ObjectChangedError):
        f.read()
    with pytest.raises(ObjectChangedError):
        f.memmap()
    np.testing.assert_array_equal(intake_mrc.open_mrc(path).read(), 5)
