# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File names are bytes: a data dir holding names that are not UTF-8, hold a newline or blanks, or are UTF-8,
round-trips through datadir_backup + datadir_restore (real ansible, real rdiff-backup) byte for byte, locally
and to a backup host over ssh."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import stat
import subprocess

import pytest

from helpers.ansible import run_module
from helpers.tree import entry_content
from test_datadir_local import MARKER, excluded
# backup_host is a fixture: pytest uses it by its name.
from test_datadir_remote import backup_host, ssh_args  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.skipif(not shutil.which('rdiff-backup'), reason='rdiff-backup is not installed')

ODD = [b'caf\xe9', b'new\nline', b' lead', b'trail ', b'  ', 'caf\u00e9'.encode('utf-8'), '\u65e5\u672c'.encode('utf-8'),
       b'back\\slash', b'tab\there', b'cr\rx', b'a\xff\xfeb', b'\xed\xa0\x80']


def byte_snapshot(root, skip=()):
    """relpath (bytes) -> (type, mode, uid, gid, size, sha256 or link target (bytes)) of every entry below root."""
    root = os.fsencode(root)
    skip = set(os.fsencode(path) for path in skip)
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            relpath = os.path.relpath(full, root)
            if relpath in skip:
                continue
            info = os.lstat(full)
            found[relpath] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                              info.st_size if stat.S_ISREG(info.st_mode) else None, entry_content(full, info))
    return found


def odd_datadir(sandbox, root, odd_link_outside=False):
    """A copy of the sandbox's data dir with odd names: files, a directory holding files, and links."""
    datadir = os.path.join(root, 'OMERO-odd')
    subprocess.check_call(['cp', '-a', sandbox['datadir'], datadir])
    odd_dir = os.path.join(os.fsencode(datadir), b'ManagedRepository', b'odd \xe9\n dir')
    os.makedirs(odd_dir)
    for name in ODD:
        with open(os.path.join(odd_dir, name), 'wb') as handle:
            handle.write(b'content of %r\n' % name)
        with open(os.path.join(os.fsencode(datadir), b'Files', name), 'wb') as handle:
            handle.write(name * 100)
    os.makedirs(os.path.join(odd_dir, b'sub\xe9'))
    os.symlink(b'../caf\xe9', os.path.join(odd_dir, b'sub\xe9', b'link \xe9'))
    if odd_link_outside:
        # A link out of the data dir into a directory with an odd name, as an in-place import makes.
        outside = os.path.join(os.fsencode(root), b'in-place caf\xe9\nimports')
        os.makedirs(outside)
        os.symlink(os.path.join(outside, b'image.tif'), os.path.join(odd_dir, b'inplace'))
    return datadir


def expected_after_restore(datadir):
    return dict((path, entry) for path, entry in byte_snapshot(datadir).items() if not excluded(os.fsdecode(path)))


def test_datadir_round_trip_names_that_are_bytes(sandbox, tmp_path):
    datadir = odd_datadir(sandbox, str(tmp_path))
    expected = expected_after_restore(datadir)
    assert os.path.join(b'Files', b'caf\xe9') in expected and os.path.join(b'Files', b'new\nline') in expected
    repo = str(tmp_path / 'repo')

    made = run_module('datadir_backup', {'src': datadir, 'dest': repo})
    assert made['changed'] and not made['failed'], made
    assert made['verified'] is True

    dest = str(tmp_path / 'restored')
    restored = run_module('datadir_restore', {'src': repo, 'dest': dest})
    assert restored['changed'] and not restored['failed'], restored
    assert byte_snapshot(dest, skip=(MARKER,)) == expected

    again = run_module('datadir_restore', {'src': repo, 'dest': dest})
    assert not again['changed'] and not again['failed'], again


def test_datadir_backup_reports_link_targets_with_odd_names_escaped(sandbox, tmp_path):
    """Where in-place imports point is reported; a result cannot carry raw bytes, so the directory is escaped."""
    datadir = odd_datadir(sandbox, str(tmp_path), odd_link_outside=True)
    planned = run_module('datadir_backup', {'src': datadir, 'dest': str(tmp_path / 'repo')}, check=True)
    assert planned['changed'] and not planned['failed'], planned
    assert os.path.join(str(tmp_path), 'in-place caf\\xe9\\nimports') in planned['symlinks']['outside_dirs']
    assert any('in-place caf\\xe9\\nimports' in warning for warning in planned['warnings_list'])


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ('podman', 'ssh')), reason='needs podman and ssh')
def test_datadir_remote_round_trip_names_that_are_bytes(sandbox, backup_host, tmp_path):  # noqa: F811
    datadir = odd_datadir(sandbox, str(tmp_path))
    expected = expected_after_restore(datadir)
    repo = '%s::/backup/odd-names' % backup_host['address']
    made = run_module('datadir_backup', ssh_args(backup_host, src=datadir, dest=repo))
    assert made['changed'] and not made['failed'] and made['verified'] is True, made
    dest = str(tmp_path / 'restored')
    restored = run_module('datadir_restore', ssh_args(backup_host, src=repo, dest=dest))
    assert restored['changed'] and not restored['failed'], restored
    assert byte_snapshot(dest, skip=(MARKER,)) == expected
