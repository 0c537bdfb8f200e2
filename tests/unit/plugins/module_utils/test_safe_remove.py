# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""safe_remove: a tree is removed through directory descriptors and never through a symlink."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import dirfs
from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import open_dir_nofollow, remove_tree_at


def _remove(parent, name):
    fd = open_dir_nofollow(parent)
    try:
        return remove_tree_at(fd, name)
    finally:
        os.close(fd)


def test_removes_a_deep_tree_with_odd_names_and_counts_it(tmp_path):
    top = os.path.join(os.fsencode(str(tmp_path)), b'leftover')
    path = top
    for depth in range(60):
        path = os.path.join(path, b'd\xe9 %d\n' % depth)
    os.makedirs(path)
    for name in (b'caf\xe9', b' lead', b'new\nline'):
        with open(os.path.join(path, name), 'wb') as handle:
            handle.write(b'12345')
    report = _remove(str(tmp_path), 'leftover')
    assert report.complete and report.files == 3 and report.bytes == 15 and report.dirs == 61
    assert os.listdir(str(tmp_path)) == []


def test_symlinks_inside_are_removed_not_followed(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious').write_bytes(b'keep me')
    tree = tmp_path / 'tree'
    (tree / 'sub').mkdir(parents=True)
    os.symlink(str(outside), str(tree / 'sub' / 'link-to-dir'))
    os.symlink(str(outside / 'precious'), str(tree / 'link-to-file'))
    report = _remove(str(tmp_path), 'tree')
    assert report.complete and not tree.exists()
    assert (outside / 'precious').read_bytes() == b'keep me'


def test_top_symlink_is_unlinked_and_its_target_kept(tmp_path):
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious').write_bytes(b'keep me')
    os.symlink(str(outside), str(tmp_path / 'leftover'))
    report = _remove(str(tmp_path), 'leftover')
    assert report.complete and report.files == 1 and not os.path.lexists(str(tmp_path / 'leftover'))
    assert (outside / 'precious').read_bytes() == b'keep me'


def test_directory_swapped_for_a_symlink_is_not_followed(tmp_path, monkeypatch):
    """A local user replaces a directory by a symlink between the look (lstat) and the open: the open refuses."""
    outside = tmp_path / 'outside'
    outside.mkdir()
    (outside / 'precious').write_bytes(b'keep me')
    tree = tmp_path / 'tree'
    (tree / 'victim').mkdir(parents=True)
    (tree / 'victim' / 'file').write_bytes(b'x')
    real_open = dirfs._open_checked

    def swap_then_open(parent_fd, name, seen):
        if name == 'victim':
            os.rename(str(tree / 'victim'), str(tmp_path / 'moved-away'))
            os.symlink(str(outside), str(tree / 'victim'))
        return real_open(parent_fd, name, seen)

    monkeypatch.setattr(dirfs, '_open_checked', swap_then_open)
    report = _remove(str(tmp_path), 'tree')
    assert not report.complete
    assert [path for path, why in report.errors if 'not followed' in why] == ['tree/victim']
    assert (outside / 'precious').read_bytes() == b'keep me'


def test_directory_swapped_for_another_directory_is_refused(tmp_path, monkeypatch):
    tree = tmp_path / 'tree'
    (tree / 'victim').mkdir(parents=True)
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'precious').write_bytes(b'keep me')
    real_open = dirfs._open_checked

    def swap_then_open(parent_fd, name, seen):
        if name == 'victim':
            os.rmdir(str(tree / 'victim'))
            os.rename(str(other), str(tree / 'victim'))
        return real_open(parent_fd, name, seen)

    monkeypatch.setattr(dirfs, '_open_checked', swap_then_open)
    report = _remove(str(tmp_path), 'tree')
    assert not report.complete and (tree / 'victim' / 'precious').read_bytes() == b'keep me'


def test_missing_name_is_nothing_to_do(tmp_path):
    report = _remove(str(tmp_path), 'absent')
    assert report.complete and report.files == report.dirs == 0


def test_parent_must_not_be_a_symlink(tmp_path):
    (tmp_path / 'real').mkdir()
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'link'))
    with pytest.raises(OSError):
        open_dir_nofollow(str(tmp_path / 'link'))
