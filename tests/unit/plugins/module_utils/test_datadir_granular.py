# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of the granular restore that need no engine: what a requested path may be, the fileset's directory,
and the merge of a staging tree into dest (restore, skip, refuse, replace; check mode; names as bytes)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils.datadir.common import DatadirError
from ansible_collections.omero.backup.plugins.module_utils.datadir.granular import (
    Merge, _common_dir, _merge_into, outermost, relpath_bytes, shown)

ODD = b'caf\xe9\n.tif'


@pytest.mark.parametrize('text, expected', [
    ('ManagedRepository/user-1_2', b'ManagedRepository/user-1_2'),
    ('Files//Dir-001/./1000/', b'Files/Dir-001/1000'),
    (u'caf\udce9', b'caf\xe9'),
    (ODD, ODD),
])
def test_relpath_bytes_cleans(text, expected):
    assert relpath_bytes(text) == expected


@pytest.mark.parametrize('text, reason', [
    ('/etc/passwd', 'is absolute'),
    ('Files/../../etc', 'leaves the data dir'),
    ('..', 'leaves the data dir'),
    ('.', 'whole data dir'),
    ('', 'whole data dir'),
    ('.omero-backup-restore.abc.12345678/x', 'staging tree'),
])
def test_relpath_bytes_refuses(text, reason):
    with pytest.raises(DatadirError, match=reason):
        relpath_bytes(text)


def test_outermost_drops_paths_inside_another():
    assert outermost([b'Files/a', b'Files', b'Files2', b'Pixels/1', b'Pixels/1']) == [b'Files', b'Files2', b'Pixels/1']


def test_common_dir_of_a_fileset():
    assert _common_dir(['u_2/2023-03/01/09-00-00.000/']) == 'u_2/2023-03/01/09-00-00.000'
    assert _common_dir(['u_2/2023-03/01/09-00-00.000/a/', 'u_2/2023-03/01/09-00-00.000/b/c/']) == 'u_2/2023-03/01/09-00-00.000'
    assert _common_dir(['u_2/x/', 'u_3/y/']) == ''


def test_shown_names_b64_only_for_escaped_names():
    names_b64 = {}
    assert shown([b'plain', ODD], names_b64) == ['plain', 'caf\\xe9\\n.tif']
    assert list(names_b64) == ['caf\\xe9\\n.tif']


def write(path, data, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def tree(root):
    found = {}
    for directory, dirs, files in os.walk(os.fsencode(root)):
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, os.fsencode(root))
            if os.path.islink(path):
                found[rel] = ('link', os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ('dir',)
            else:
                with open(path, 'rb') as handle:
                    found[rel] = ('file', handle.read())
    return found


@pytest.fixture
def trees(tmp_path):
    staged, dest = str(tmp_path / 'staged'), str(tmp_path / 'dest')
    write(os.path.join(staged, 'Files', 'missing'), b'backup')
    write(os.path.join(staged, 'Files', 'same'), b'same')
    write(os.path.join(staged, 'Files', 'newer'), b'backup', mtime=1000)
    write(os.path.join(staged, 'Files', 'older'), b'backup', mtime=1000)
    write(os.path.join(staged, 'Files', 'clash', 'x'), b'backup')
    write(os.path.join(os.fsencode(staged), b'ManagedRepository', b'u_2', b'd', ODD), b'odd')
    write(os.path.join(staged, 'Pixels', 'linked', 'p'), b'backup')
    write(os.path.join(dest, 'Files', 'same'), b'same')
    write(os.path.join(dest, 'Files', 'newer'), b'changed', mtime=2000)
    write(os.path.join(dest, 'Files', 'older'), b'changed', mtime=10)
    write(os.path.join(dest, 'Files', 'clash'), b'a file where the backup has a directory')
    os.makedirs(os.path.join(dest, 'ManagedRepository'))
    os.makedirs(os.path.join(dest, 'Pixels'))
    os.symlink('/nonexistent-volume', os.path.join(dest, 'Pixels', 'linked'))
    return staged, dest


def test_merge_never(trees):
    staged, dest = trees
    merge = Merge('never', check_mode=False)
    _merge_into(staged, dest, merge, check_mode=False)
    assert sorted(merge.restored) == [b'Files/missing', b'ManagedRepository/u_2/d/' + ODD]
    assert merge.skipped == [b'Files/same'] and merge.replaced == []
    reasons = dict(merge.refused)
    assert sorted(reasons) == [b'Files/clash', b'Files/newer', b'Files/older', b'Pixels/linked']
    assert 'newer in dest' in reasons[b'Files/newer'] and 'overwrite=newer' in reasons[b'Files/older']
    assert 'dest has a file where the backup has a directory' == reasons[b'Files/clash']
    assert 'dest has a symlink where the backup has a directory' == reasons[b'Pixels/linked']
    # A missing directory moves in whole, counted with what it holds.
    assert merge.counts['directories'] == 2  # u_2 and d
    got = tree(dest)
    assert got[b'ManagedRepository/u_2/d/' + ODD] == ('file', b'odd') and got[b'Files/missing'] == ('file', b'backup')
    assert got[b'Files/newer'] == ('file', b'changed') and got[b'Files/older'] == ('file', b'changed')


def test_merge_newer_and_always(trees):
    staged, dest = trees
    merge = Merge('newer', check_mode=False)
    _merge_into(staged, dest, merge, check_mode=False)
    assert merge.replaced == [b'Files/older'] and tree(dest)[b'Files/older'] == ('file', b'backup')
    assert tree(dest)[b'Files/newer'] == ('file', b'changed')
    write(os.path.join(staged, 'Files', 'newer'), b'backup', mtime=1000)
    merge = Merge('always', check_mode=False)
    _merge_into(staged, dest, merge, check_mode=False)
    assert merge.replaced == [b'Files/newer'] and tree(dest)[b'Files/newer'] == ('file', b'backup')
    assert sorted(path for path, reason in merge.refused) == [b'Files/clash', b'Pixels/linked']


def test_merge_check_mode_changes_nothing(trees):
    staged, dest = trees
    before_dest, before_staged = tree(dest), tree(staged)
    merge = Merge('always', check_mode=True)
    _merge_into(staged, dest, merge, check_mode=True)
    assert tree(dest) == before_dest and tree(staged) == before_staged
    assert sorted(merge.replaced) == [b'Files/newer', b'Files/older'] and merge.counts['restored'] == 4


def test_merge_into_missing_dest_is_one_rename(trees, tmp_path):
    staged = trees[0]
    dest = str(tmp_path / 'scratch')
    merge = Merge('never', check_mode=False)
    _merge_into(staged, dest, merge, check_mode=False)
    assert not os.path.exists(staged) and merge.counts['restored'] == 7 and merge.refused == []
    assert tree(dest)[b'Files/clash/x'] == ('file', b'backup')


def test_report_caps_lists_and_keeps_counts():
    merge = Merge('never', check_mode=True)
    for index in range(1005):
        merge.note('restored', b'Files/%d' % index)
    merge.note('refused', ODD, 'differs')
    result = {}
    merge.report(result)
    assert len(result['restored']) == 1000 and result['counts']['restored'] == 1005 and result['truncated']
    assert result['refused'] == [{'path': 'caf\\xe9\\n.tif', 'reason': 'differs'}]
    assert 'caf\\xe9\\n.tif' in result['names_b64']


def test_merge_never_replaces_what_appeared_in_dest_meanwhile(trees, monkeypatch):
    """The server writes while the paths move in: a file that appears in dest between the look and the move
    stays, and is reported, instead of being replaced by a rename."""
    from ansible_collections.omero.backup.plugins.module_utils.datadir import granular
    staged, dest = trees
    real_lstat_at = granular.lstat_at

    def racing_lstat_at(dir_fd, name):
        found = real_lstat_at(dir_fd, name)
        if name == 'missing' and found is None:
            write(os.path.join(dest, 'Files', 'missing'), b'written by the server')
        return found

    monkeypatch.setattr(granular, 'lstat_at', racing_lstat_at)
    merge = Merge('never', check_mode=False)
    _merge_into(staged, dest, merge, check_mode=False)
    assert (b'Files/missing', 'appeared in dest during the restore') in merge.refused
    assert tree(dest)[b'Files/missing'] == ('file', b'written by the server')
