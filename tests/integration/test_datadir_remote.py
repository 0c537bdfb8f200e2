# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_backup / datadir_restore to and from a backup host over ssh: a podman container running sshd and
rdiff-backup, reached with a real key and a pinned host key; this machine holds the data dir."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import subprocess
import time
import uuid

import pytest

from helpers.ansible import REPO_ROOT, run_module
from test_datadir_local import MARKER, backed_up, hold_lock, lock_file_for, snapshot

CONTAINERS_CONF = os.path.join(REPO_ROOT, 'tests', 'podman', 'containers.conf')
BUILD_IMAGE = os.path.join(REPO_ROOT, 'scripts', 'build_image.sh')

HAVE_TOOLS = all(shutil.which(tool) for tool in ('podman', 'rdiff-backup', 'ssh'))
pytestmark = pytest.mark.skipif(not HAVE_TOOLS, reason='needs podman, ssh and rdiff-backup')


def podman(*args, **kwargs):
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get('CONTAINERS_CONF', CONTAINERS_CONF))
    return subprocess.run(['podman'] + list(args), env=env, check=kwargs.pop('check', True), universal_newlines=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.fixture(scope='module')
def backup_host(tmp_path_factory):
    """A Debian 12 container with sshd and rdiff-backup; yields how to reach it. Removed afterwards."""
    env = dict(os.environ, CONTAINERS_CONF=os.environ.get('CONTAINERS_CONF', CONTAINERS_CONF))
    image = subprocess.run([BUILD_IMAGE], env=env, check=True, universal_newlines=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE).stdout.strip().splitlines()[-1]
    keys = tmp_path_factory.mktemp('ssh')
    key = str(keys / 'id_ed25519')
    subprocess.check_call(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'omero-backup-test', '-f', key])
    name = 'omero-backup-test-datadir-%s' % uuid.uuid4().hex[:8]
    podman('run', '-d', '--name', name, image, '/bin/sleep', 'infinity')
    try:
        with open(key + '.pub') as handle:
            podman('exec', '-i', name, 'sh', '-c',
                   'ssh-keygen -A >/dev/null && mkdir -p -m 700 /root/.ssh /backup && '
                   'cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys && /usr/sbin/sshd',
                   input=handle.read())
        address = podman('inspect', '-f', '{{.NetworkSettings.IPAddress}}', name).stdout.strip()
        # Pin the container's host key: StrictHostKeyChecking stays on, as in production.
        host_key = podman('exec', name, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub').stdout.split()
        known_hosts = str(keys / 'known_hosts')
        with open(known_hosts, 'w') as handle:
            handle.write('%s %s %s\n' % (address, host_key[0], host_key[1]))
        deadline = time.time() + 20
        while True:
            probe = subprocess.run(['ssh', '-i', key, '-o', 'BatchMode=yes', '-o', 'UserKnownHostsFile=' + known_hosts,
                                    '-o', 'ConnectTimeout=3', 'root@' + address, 'rdiff-backup', '--version'],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
            if probe.returncode == 0 or time.time() > deadline:
                assert probe.returncode == 0, probe.stderr
                break
            time.sleep(0.3)
        yield {'name': name, 'address': address, 'key': key, 'known_hosts': known_hosts}
    finally:
        podman('rm', '-f', '-t', '0', name, check=False)


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
