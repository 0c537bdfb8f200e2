# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Empty and relative paths, and absurd job counts, through the real modules (issue 12, item 6).

Over the local connection Ansible starts a module in the playbook's directory, where an operator keeps
site.yml, inventories and roles. These tests put the playbook in a directory full of files (``cwd``),
give the modules '' and relative paths, and check that the modules refuse before touching anything:
the working directory is byte-for-byte as it was.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import pwd
import shutil
import stat
import tempfile

import pytest

from helpers.ansible import run_module
from helpers.sandbox import connection_args

EXPECTED_CWD_MSG = "must be an absolute path, got 'relative' (a relative path would be resolved against the module's working directory)"


def tree(root):
    """relpath -> (type, mode, sha256) of everything below root, root itself included."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ['.'] + dirnames + filenames:
            path = os.path.normpath(os.path.join(dirpath, name))
            info = os.lstat(path)
            digest = None
            if stat.S_ISREG(info.st_mode):
                with open(path, 'rb') as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            found[os.path.relpath(path, root)] = (stat.S_IFMT(info.st_mode), stat.S_IMODE(info.st_mode), digest)
    return found


@pytest.fixture
def cwd(tmp_path):
    """A working directory holding files that must survive every module run started there."""
    work = tmp_path / 'work'
    (work / 'project' / 'data').mkdir(parents=True)
    for index in range(20):
        (work / 'project' / 'data' / ('file-%02d.txt' % index)).write_bytes(b'keep me %d\n' % index * 100)
    (work / 'notes.txt').write_text('an operator started ansible-playbook here\n')
    (work / 'site.yml').write_text('- hosts: all\n')
    os.chmod(str(tmp_path), 0o755)
    return str(work)


@pytest.fixture(scope='module')
def repository(sandbox, tmp_path_factory):
    """A real rdiff-backup repository of the session sandbox's data dir."""
    if not shutil.which('rdiff-backup'):
        pytest.skip('rdiff-backup is not installed')
    repo = str(tmp_path_factory.mktemp('paths-repo') / 'omero-data')
    made = run_module('datadir_backup', {'src': sandbox['datadir'], 'dest': repo, 'verify': False})
    assert made['changed'] and not made['failed'], made
    return repo


def _leftovers(cwd):
    """Anything a restore or backup would have made beside the working directory."""
    return sorted(name for name in os.listdir(os.path.dirname(cwd)) if name != 'work')


@pytest.mark.parametrize('dest', ['', 'relative'])
def test_datadir_restore_replaced_into_empty_or_relative_dest_is_refused_and_the_cwd_survives(repository, cwd, dest):
    before = tree(cwd)
    result = run_module('datadir_restore', {'src': repository, 'dest': dest, 'state': 'replaced', 'keep_replaced': False},
                        playbook_dir=cwd)
    # The files first: at 590aa7d dest '' swapped the working directory's contents for the backup.
    assert sorted(set(before) - set(tree(cwd))) == []
    assert tree(cwd) == before
    assert _leftovers(cwd) == []
    assert result['failed'] and not result['changed'], result
    if dest:
        assert result['msg'] == 'dest ' + EXPECTED_CWD_MSG
    else:
        assert result['msg'] == "dest is empty: give an absolute path (an empty path would mean the module's working directory)"


@pytest.mark.parametrize('src', ['', 'relative'])
def test_datadir_backup_of_empty_or_relative_src_is_refused(cwd, tmp_path, src):
    before = tree(cwd)
    repo = str(tmp_path / 'repo')
    result = run_module('datadir_backup', {'src': src, 'dest': repo, 'verify': False}, playbook_dir=cwd)
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('src is empty' if not src else 'src ' + EXPECTED_CWD_MSG)
    assert not os.path.lexists(repo)
    assert tree(cwd) == before


@pytest.mark.parametrize('dest', ['', 'store::relative', 'store::'])
def test_datadir_backup_to_empty_or_relative_repository_is_refused(sandbox, cwd, dest):
    before = tree(cwd)
    result = run_module('datadir_backup', {'src': sandbox['datadir'], 'dest': dest, 'verify': False}, playbook_dir=cwd)
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('dest ')
    assert tree(cwd) == before


@pytest.fixture
def site(sandbox):
    """A private OMERODIR copy the OMERO system user can reach (pytest's base directory is 0700)."""
    top = tempfile.mkdtemp(prefix='omero-paths-it-')
    os.chmod(top, 0o755)
    user = sandbox['omero_user']
    uid, gid = pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid
    omerodir = os.path.join(top, 'OMERO.server')
    shutil.copytree(os.path.join(sandbox['omerodir'], 'etc'), os.path.join(omerodir, 'etc'))
    for root, dirs, files in os.walk(omerodir):
        for name in [root] + [os.path.join(root, entry) for entry in files]:
            os.chown(name, uid, gid)
    yield {'top': top, 'omerodir': omerodir, 'omero_command': os.path.realpath(sandbox['omero_command']), 'user': user,
           'password': sandbox['postgres']['owner_password']}
    shutil.rmtree(top, ignore_errors=True)


def _files_holding(root, needle):
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, 'rb') as handle:
                if needle in handle.read():
                    found.append(path)
    return found


@pytest.mark.parametrize('dest', ['relative', ''])
def test_config_save_to_a_relative_dest_writes_nothing_anywhere(site, cwd, dest):
    before = tree(cwd)
    roots = (os.path.dirname(cwd), site['top'])
    # Only the server's own config.xml holds the password before the run.
    holding = dict((needle, [_files_holding(root, needle) for root in roots]) for needle in (site['password'].encode(), b'omero.db.pass'))
    assert holding[b'omero.db.pass'] == [[], [os.path.join(site['omerodir'], 'etc', 'grid', 'config.xml')]]
    result = run_module('config_save', {'dest': dest, 'omerodir': site['omerodir'], 'omero_command': site['omero_command'],
                                        'user': site['user']}, playbook_dir=cwd)
    # The files first: at 590aa7d dest 'relative' wrote the profile, omero.db.pass included, into the working directory.
    for needle, found in holding.items():
        assert [_files_holding(root, needle) for root in roots] == found
    assert tree(cwd) == before
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('dest is empty' if not dest else 'dest ' + EXPECTED_CWD_MSG)


def test_db_dump_with_ten_thousand_jobs_is_refused_before_any_connection(sandbox, tmp_path):
    dest = str(tmp_path / 'dumps')
    result = run_module('db_dump', dict(connection_args(sandbox), dest=dest, format='directory', jobs=10000))
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('jobs=10000 is more than %d (4 x the %d CPUs of this host)'
                                    % (4 * os.cpu_count(), os.cpu_count())), result['msg']
    assert not os.path.lexists(dest)


def test_db_restore_with_ten_thousand_jobs_is_refused(sandbox, tmp_path):
    src = str(tmp_path / 'dumps')
    os.mkdir(src)
    args = dict(connection_args(sandbox), src=src, db='omero_paths_never_created', jobs=10000)
    result = run_module('db_restore', args)
    assert result['failed'] and not result['changed'], result
    assert result['msg'].startswith('jobs=10000 is more than %d' % (4 * os.cpu_count())), result['msg']
    assert os.listdir(src) == []
