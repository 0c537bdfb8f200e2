# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_backup / datadir_restore to and from a backup host over ssh: a podman container running sshd and
rdiff-backup, reached with a real key and a pinned host key; this machine holds the data dir."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import shutil
import subprocess

import pytest

from helpers.ansible import run_module
from helpers.podman import podman, ssh_host
from test_datadir_local import MARKER, backed_up, hold_lock, lock_file_for, snapshot


HAVE_TOOLS = all(shutil.which(tool) for tool in ('podman', 'rdiff-backup', 'ssh'))
pytestmark = pytest.mark.skipif(not HAVE_TOOLS, reason='needs podman, ssh and rdiff-backup')


@pytest.fixture(scope='module')
def backup_host(tmp_path_factory):
    """A Debian 12 container with sshd and rdiff-backup; yields how to reach it. Removed afterwards."""
    with ssh_host('datadir', str(tmp_path_factory.mktemp('ssh'))) as host:
        podman('exec', host['name'], 'mkdir', '-p', '-m', '700', '/backup')
        probe = subprocess.run(['ssh', '-i', host['key'], '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=' + host['known_hosts'],
                                '-o', 'ConnectTimeout=3', 'root@' + host['address'], 'rdiff-backup', '--version'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        assert probe.returncode == 0, probe.stderr
        yield host


def ssh_args(host, **extra):
    args = {'ssh_user': 'root', 'ssh_key': host['key'],
            'ssh_options': ['UserKnownHostsFile=' + host['known_hosts'], 'StrictHostKeyChecking=yes']}
    args.update(extra)
    return args


def test_datadir_remote_round_trip(sandbox, backup_host, tmp_path):
    repo = '%s::/backup/omero-data' % backup_host['address']
    expected = backed_up(sandbox['datadir'])
    made = run_module('datadir_backup', ssh_args(backup_host, src=sandbox['datadir'], dest=repo, keep_increments_for='8W'))
    assert made['changed'] and not made['failed'] and made['verified'] is True, made
    assert made['dest'] == repo and '--remote-schema' in made['commands'][0]
    listing = podman('exec', backup_host['name'], 'ls', '/backup/omero-data/.omero/repository').stdout.split()
    assert listing == [sandbox['db_uuid']]

    dest = str(tmp_path / 'OMERO')
    restored = run_module('datadir_restore', ssh_args(backup_host, src=repo, dest=dest))
    assert restored['changed'] and not restored['failed'], restored
    assert restored['increment_time'] == made['increment_time']
    assert snapshot(dest, skip=(MARKER,)) == expected
    again = run_module('datadir_restore', ssh_args(backup_host, src=repo, dest=dest))
    assert not again['changed'] and not again['failed'], again


def test_datadir_remote_unreachable_host_fails_clearly(sandbox, backup_host, free_port):
    # Nothing listens on this port: ssh is refused at once, as with a backup host that is down.
    dest = '127.0.0.1::/backup/omero-data'
    failed = run_module('datadir_backup', ssh_args(backup_host, src=sandbox['datadir'], dest=dest, ssh_port=free_port))
    assert failed['failed'] and not failed['changed'], failed
    assert 'cannot reach 127.0.0.1::/backup' in failed['msg'] and 'Connection refused' in failed['msg']
    assert 'increment_time' not in failed and failed.get('verified') is None


def test_datadir_remote_wrong_key_fails_clearly(sandbox, backup_host, tmp_path):
    other_key = str(tmp_path / 'other')
    subprocess.check_call(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', other_key])
    dest = '%s::/backup/omero-data' % backup_host['address']
    failed = run_module('datadir_backup', ssh_args(backup_host, src=sandbox['datadir'], dest=dest, ssh_key=other_key))
    assert failed['failed'] and 'Permission denied' in failed['msg'], failed


def test_datadir_remote_concurrent_backup_refused(sandbox, backup_host):
    dest = '%s::/backup/concurrent' % backup_host['address']
    holder = hold_lock(lock_file_for(dest))
    try:
        refused = run_module('datadir_backup', ssh_args(backup_host, src=sandbox['datadir'], dest=dest))
    finally:
        holder.kill()
        holder.wait()
    assert refused['failed'] and 'already running' in refused['msg'], refused
    assert podman('exec', backup_host['name'], 'test', '-e', '/backup/concurrent', check=False).returncode == 1
