# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directory descriptors checked against the identity a walk recorded (issue 12, item 8)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base import dirfs


def _identities(root, relpaths):
    return dict((relpath, dirfs.identity(os.lstat(os.path.join(root, relpath)))) for relpath in relpaths)


def test_chain_opens_recorded_directories_and_refuses_a_swapped_one(tmp_path):
    root = str(tmp_path / 'data')
    os.makedirs(os.path.join(root, 'Pixels/Dir-001/Dir-002'))
    outside = str(tmp_path / 'outside')
    os.makedirs(outside)
    expected = _identities(root, ['Pixels', 'Pixels/Dir-001', 'Pixels/Dir-001/Dir-002'])
    root_fd = dirfs.open_dir(root)
    try:
        with dirfs.DirChain(root_fd, expected=expected) as chain:
            fd = chain.open('Pixels/Dir-001/Dir-002')
            assert dirfs.identity(os.fstat(fd)) == expected['Pixels/Dir-001/Dir-002']
            # An open descriptor stays on the walked directory whatever happens to its name; the chain drops them here.
            assert chain.open('') == root_fd
            # A symlink in place of the walked directory: refused, never followed.
            os.rename(os.path.join(root, 'Pixels/Dir-001'), os.path.join(root, 'Pixels/aside'))
            os.symlink(outside, os.path.join(root, 'Pixels/Dir-001'))
            with pytest.raises(dirfs.DirChanged) as raised:
                chain.open('Pixels/Dir-001')
            assert raised.value.relpath == 'Pixels/Dir-001' and 'no longer a directory' in raised.value.why
            # Another real directory under the same name: refused by its identity.
            os.unlink(os.path.join(root, 'Pixels/Dir-001'))
            os.makedirs(os.path.join(root, 'Pixels/Dir-001/Dir-002'))
            with pytest.raises(dirfs.DirChanged, match='another directory'):
                chain.open('Pixels/Dir-001/Dir-002')
            # A directory the walk never saw is not trusted either.
            os.makedirs(os.path.join(root, 'Files'))
            with pytest.raises(dirfs.DirChanged, match='not seen by the walk'):
                chain.open('Files')
    finally:
        os.close(root_fd)


def test_publish_never_replaces(tmp_path):
    fd = dirfs.open_dir(str(tmp_path))
    try:
        (tmp_path / 'tmp').write_bytes(b'new')
        (tmp_path / 'final').write_bytes(b'old')
        with pytest.raises(OSError) as raised:
            dirfs.publish_no_replace(fd, 'tmp', 'final')
        assert raised.value.errno == errno.EEXIST
        assert (tmp_path / 'final').read_bytes() == b'old'
        os.unlink(str(tmp_path / 'final'))
        dirfs.publish_no_replace(fd, 'tmp', 'final')
        assert (tmp_path / 'final').read_bytes() == b'new' and not (tmp_path / 'tmp').exists()
    finally:
        os.close(fd)
