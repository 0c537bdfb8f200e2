# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults of the restic engine, each with real restic through the real datadir_backup module: kill -9 mid-backup,
a wrong password, a full repository filesystem, a corrupted pack, rclone's S3 server restarted mid-upload, and an
sftp repository on a podman store host that is stopped mid-run (after a round trip over the existing ssh trust).

One sandbox data dir with a bulk of incompressible files (so that a backup lasts long enough to be hit), one local
repository, one S3 server and one store container for the module."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import omero_sandbox
from helpers.ansible import VENV_BIN, ansible_env, collections_path, run_module, task_result
from helpers.podman import podman, ssh_host
from helpers.processes import cmdline, kill_tree, process_tree
from helpers.s3 import S3Server

HAVE_TOOLS = all(shutil.which(tool) for tool in ('restic', 'podman', 'ssh'))
pytestmark = pytest.mark.skipif(not HAVE_TOOLS, reason='needs restic, podman and ssh')

BULK_FILES = 16
BULK_SIZE = 2 * 1024 * 1024


def add_bulk(datadir, name, files=BULK_FILES, size=BULK_SIZE):
    """Incompressible, undeduplicable files under Files/<name>: what the next backup must upload."""
    bulk = os.path.join(datadir, 'Files', name)
    os.makedirs(bulk)
    for index in range(files):
        with open(os.path.join(bulk, '%03d' % index), 'wb') as handle:
            handle.write(os.urandom(size))
    return bulk


def private_file(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        handle.write(text + '\n')
    return path


def restic(repo, password_file, *args, **kwargs):
    """Raw restic on ``repo`` (for what the test observes, never for what it tests)."""
    env = dict(os.environ, RESTIC_PASSWORD_FILE=password_file, RESTIC_REPOSITORY=repo, **kwargs.pop('env', {}))
    return subprocess.run(['restic'] + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, **kwargs)


def snapshot_ids(repo, password_file, env=None):
    listed = restic(repo, password_file, 'snapshots', '--json', '--no-lock', env=env or {})
    assert listed.returncode == 0, listed.stderr
    return [snap['id'] for snap in json.loads(listed.stdout or '[]')]


def repository_files(path):
    """relpath -> (size, mtime_ns) of every file of a local repository."""
    found = {}
    for root, dirs, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(root, name))
            found[os.path.relpath(os.path.join(root, name), path)] = (info.st_size, info.st_mtime_ns)
    return found


class Started(object):
    """A module run through ansible-playbook in the background, to be hit mid-run."""

    def __init__(self, module, args, env=None):
        self.workdir = tempfile.mkdtemp(prefix='omero-backup-fault-')
        playbook = os.path.join(self.workdir, 'run.yml')
        fd = os.open(playbook, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the args may hold keys
        with os.fdopen(fd, 'w') as handle:
            handle.write('- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n'
                         '    - name: module under test\n      omero.backup.%s: %s\n' % (module, json.dumps(args)))
        self.started = time.time()
        self.proc = subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', playbook],
                                     cwd=self.workdir, env=ansible_env(env), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, universal_newlines=True)

    def restic_running(self, repo_spec):
        """Whether a ``restic backup`` on ``repo_spec`` runs below this run now."""
        wanted = repo_spec.encode()
        return any(b'\0backup\0' in cmdline(pid) and wanted in cmdline(pid) for pid in process_tree(self.proc.pid))

    def wait_for(self, condition, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            if condition():
                return True
            time.sleep(0.02)
        return False

    def kill(self):
        killed = kill_tree(self.proc.pid)
        self.proc.wait()
        for pid in killed:
            while os.path.exists('/proc/%d' % pid) and not _zombie(pid):
                time.sleep(0.05)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def result(self, timeout=300):
        out, err = self.proc.communicate(timeout=timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)
        parsed = json.loads(out[out.index('{'):])
        found = task_result({'plays': parsed.get('plays', []), 'stdout': out, 'stderr': err}, 'module under test')
        found.setdefault('failed', False)
        found['seconds'] = round(time.time() - self.started, 1)
        return found


class Stepping(threading.Thread):
    """The data dir backup step (what datadir_backup wraps) in this process, with a real runner, in a thread: for
    the faults that hit the repository's server, not the module's process."""

    def __init__(self, args):
        super(Stepping, self).__init__(name='restic-fault-backup')
        self.args = args
        self.result = None
        self.message = None
        self.started = time.time()
        self.seconds = None

    def run(self):
        path = collections_path()
        if path not in sys.path:
            sys.path.insert(0, path)
        from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
        from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
        from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir
        try:
            self.result = backup_datadir(self.args, subprocess_runner)
        except OperationFailed as exc:
            self.result, self.message = exc.result, str(exc)
        finally:
            self.seconds = round(time.time() - self.started, 1)

    def restic_running(self, repo_spec):
        """Whether a ``restic backup`` on ``repo_spec`` runs below this process now."""
        wanted = repo_spec.encode()
        return any(b'\0backup\0' in cmdline(pid) and wanted in cmdline(pid) for pid in process_tree(os.getpid()))

    def wait_for(self, condition, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline and self.is_alive():
            if condition():
                return True
            time.sleep(0.02)
        return False

    def outcome(self, timeout=300):
        self.join(timeout)
        assert not self.is_alive(), 'the backup step still runs after %d s' % timeout
        print('backup step: %.1f s%s' % (self.seconds, ' (failed: %s)' % self.message if self.message else ''))
        return self.result, self.message


def step_backup(args):
    run = Stepping(args)
    run.start()
    return run.outcome()


def _zombie(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return True


@pytest.fixture(scope='module')
def store(tmp_path_factory):
    """A sandbox data dir with a bulk to upload, a password file and a local repository with one backup."""
    root = str(tmp_path_factory.mktemp('faults'))
    description = omero_sandbox.build(os.path.join(root, 'sandbox'), objects=30, orphans=6, seed=15)
    try:
        datadir = description['datadir']
        add_bulk(datadir, 'bulk-0')
        password_file = private_file(os.path.join(root, 'restic-password'), 'fault test password')
        repo = os.path.join(root, 'repo')
        made, message = step_backup(backup_args(datadir, repo, password_file))
        assert message is None and made['changed'] and made['verified'], message
        yield {'datadir': datadir, 'repo': repo, 'password_file': password_file, 'root': root, 'bulks': [1]}
    finally:
        omero_sandbox.destroy(os.path.join(root, 'sandbox'))


def backup_args(datadir, repo, password_file, **extra):
    args = {'engine': 'restic', 'src': datadir, 'dest': repo, 'password_file': password_file}
    args.update(extra)
    return args


def timed_module(name, args, **kwargs):
    started = time.time()
    result = run_module(name, args, **kwargs)
    print('%s: %.1f s%s' % (name, time.time() - started, ' (failed: %s)' % result.get('msg') if result.get('failed') else ''))
    return result


def new_bulk(store):
    """A fresh bulk in the data dir: the next backup has tens of MB to upload."""
    number = store['bulks'][-1]
    store['bulks'].append(number + 1)
    return add_bulk(store['datadir'], 'bulk-%d' % number)


def test_restic_fault_wrong_password(store):
    before = repository_files(store['repo'])
    wrong = private_file(os.path.join(store['root'], 'wrong-password'), 'not the password')
    failed = timed_module('datadir_backup', backup_args(store['datadir'], store['repo'], wrong))
    assert failed['failed'] and not failed['changed'], failed
    assert 'wrong repository password' in failed['msg'] and 'not the password' not in json.dumps(failed), failed
    assert repository_files(store['repo']) == before, 'a run with the wrong password wrote to the repository'


def test_restic_fault_kill9_mid_backup(store):
    before = snapshot_ids(store['repo'], store['password_file'])
    new_bulk(store)
    packs_before = set(repository_files(os.path.join(store['repo'], 'data')))
    run = Started('datadir_backup', backup_args(store['datadir'], store['repo'], store['password_file']))
    uploading = run.wait_for(lambda: run.restic_running(store['repo'])
                             and len(set(repository_files(os.path.join(store['repo'], 'data'))) - packs_before) >= 2)
    run.kill()
    assert uploading, 'the backup ended before it could be killed mid-upload: make the bulk larger'
    assert snapshot_ids(store['repo'], store['password_file']) == before, 'a killed backup left a snapshot'
    stale = os.listdir(os.path.join(store['repo'], 'locks'))
    assert len(stale) == 1, stale

    # restic's backup shares its lock: the next backup runs beside the killed run's lock. Its verify (restic check)
    # needs the repository alone; the engine removes a lock only when its holder is gone and it is older than
    # lock_lease (30 minutes by default), so a retry at once is refused, saying why.
    at_once, message = step_backup(backup_args(store['datadir'], store['repo'], store['password_file']))
    if message:
        assert 'lock_lease' in message and 'younger than the lease' in message, message
    later, message = step_backup(backup_args(store['datadir'], store['repo'], store['password_file'], lock_lease='1s'))
    assert message is None and later['changed'] and later['verified'], message
    assert [lock['id'] for lock in later.get('removed_locks') or at_once.get('removed_locks')] == stale
    assert os.listdir(os.path.join(store['repo'], 'locks')) == []
    print('snapshots: %d before, %d after the killed run and two backups'
          % (len(before), len(snapshot_ids(store['repo'], store['password_file']))))
    checked = restic(store['repo'], store['password_file'], 'check')
    assert checked.returncode == 0, checked.stderr


def test_restic_fault_corrupted_pack(store, tmp_path):
    repo = str(tmp_path / 'repo')
    shutil.copytree(store['repo'], repo)
    packs = sorted(repository_files(os.path.join(repo, 'data')).items(), key=lambda item: -item[1][0])
    damaged = os.path.join(repo, 'data', packs[0][0])
    os.chmod(damaged, 0o600)
    with open(damaged, 'r+b') as handle:
        handle.seek(packs[0][1][0] // 2)
        chunk = handle.read(16)
        handle.seek(packs[0][1][0] // 2)
        handle.write(bytes(byte ^ 0xff for byte in chunk))
    failed = timed_module('datadir_backup', backup_args(store['datadir'], repo, store['password_file'], verify_read_data='all'))
    assert failed['failed'] and failed['verified'] is False, failed
    assert os.path.basename(damaged) in failed['verify']['damaged_packs'], failed['verify']
    # The next backup works (it does not heal the pack: restic re-uses the blobs its index lists).
    again, message = step_backup(backup_args(store['datadir'], repo, store['password_file']))
    assert message is None and again['changed'] and again['verified'], message


@pytest.mark.skipif(os.geteuid() != 0, reason='mounts a tmpfs')
def test_restic_fault_full_repository_filesystem(store, tmp_path):
    mount = str(tmp_path / 'small')
    os.mkdir(mount)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=12m,mode=0700', 'tmpfs', mount], check=True)
    try:
        repo = os.path.join(mount, 'repo')
        failed = timed_module('datadir_backup', backup_args(store['datadir'], repo, store['password_file']))
        assert failed['failed'] and not failed.get('snapshot_id'), failed
        assert 'no space left on device' in failed['msg'], failed['msg']
        assert snapshot_ids(repo, store['password_file']) == []
        # The operator makes room (here: a larger filesystem); the next backup works and the repository is sound.
        subprocess.run(['mount', '-o', 'remount,size=512m', mount], check=True)
        again, message = step_backup(backup_args(store['datadir'], repo, store['password_file']))
        assert message is None and again['changed'] and again['verified'], message
        assert len(snapshot_ids(repo, store['password_file'])) == 1
    finally:
        subprocess.run(['umount', mount], check=False)


@pytest.fixture(scope='module')
def s3(tmp_path_factory):
    with S3Server(str(tmp_path_factory.mktemp('s3'))) as server:
        yield server


def test_restic_fault_s3_server_restarted_mid_upload(store, s3):
    repo = s3.repository('faults')
    keys = {'s3_access_key_id': s3.access_key, 's3_secret_access_key': s3.secret_key}
    data = s3.object_path('faults/data')
    run = Stepping(backup_args(store['datadir'], repo, store['password_file'], **keys))
    run.start()
    uploading = run.wait_for(lambda: os.path.isdir(data) and sum(len(entry[2]) for entry in os.walk(data)) >= 2)
    if uploading:
        s3.restart()
    hit, message = run.outcome()
    assert uploading, 'the backup ended before the S3 server could be restarted mid-upload: %s' % message
    # restic retries a request that failed: the backup either got through or failed saying why.
    assert (message and 'restic' in message) or (hit['changed'] and hit['verified']), (hit, message)
    again, message = step_backup(backup_args(store['datadir'], repo, store['password_file'], **keys))
    assert message is None and again['changed'] and again['verified'], message
    checked = restic(repo, store['password_file'], 'check', '--read-data', env=s3.env)
    assert checked.returncode == 0, checked.stderr


@pytest.fixture(scope='module')
def store_host(tmp_path_factory):
    """The podman store host (sshd, restic's sftp needs only sftp-server there)."""
    with ssh_host('restic', str(tmp_path_factory.mktemp('ssh'))) as host:
        podman('exec', host['name'], 'mkdir', '-p', '-m', '700', '/backup')
        yield host


def sftp_args(store, host, **extra):
    args = backup_args(store['datadir'], 'sftp:%s:/backup/restic' % host['address'], store['password_file'],
                       ssh_user='root', ssh_key=host['key'],
                       ssh_options=['UserKnownHostsFile=' + host['known_hosts'], 'StrictHostKeyChecking=yes'])
    args.update(extra)
    return args


def test_restic_sftp_repository_round_trip(store, store_host, tmp_path):
    args = sftp_args(store, store_host)
    made, message = step_backup(args)
    assert message is None and made['changed'] and made['verified'], message
    assert made['dest'] == args['dest'] and made['repository_initialized']
    assert podman('exec', store_host['name'], 'test', '-f', '/backup/restic/config').returncode == 0
    scratch = str(tmp_path / 'scratch')
    restore = dict((name, args[name]) for name in ('engine', 'password_file', 'ssh_user', 'ssh_key', 'ssh_options'))
    restore.update(src=args['dest'], dest=scratch, paths=['Files/bulk-0/000', '.omero'])
    restored = timed_module('datadir_restore_paths', restore)
    assert restored['changed'] and not restored['failed'], restored
    with open(os.path.join(store['datadir'], 'Files', 'bulk-0', '000'), 'rb') as one, \
            open(os.path.join(scratch, 'Files', 'bulk-0', '000'), 'rb') as two:
        assert one.read() == two.read()


def remote_packs(host):
    listed = podman('exec', host['name'], 'sh', '-c', 'find /backup/restic/data -type f | wc -l', check=False)
    return int(listed.stdout.strip() or 0)


def test_restic_fault_store_host_stopped_mid_run(store, store_host):
    new_bulk(store)
    args = sftp_args(store, store_host)
    packs_before = remote_packs(store_host)
    run = Stepping(args)
    run.start()
    # Into the upload: past the repository's opening (ssh login, key derivation), new packs on the store.
    running = run.wait_for(lambda: run.restic_running(args['dest']) and remote_packs(store_host) > packs_before)
    podman('stop', '-t', '0', store_host['name'])
    hit, message = run.outcome()
    assert running and message and not hit['changed'], (hit, message)
    assert 'no snapshot made' in message and 'connection lost' in message, message

    # The host comes back (podman may give it another address): sshd again, the pinned key under the new address.
    podman('start', store_host['name'])
    podman('exec', store_host['name'], '/usr/sbin/sshd')
    address = podman('inspect', '-f', '{{.NetworkSettings.IPAddress}}', store_host['name']).stdout.strip()
    host_key = podman('exec', store_host['name'], 'cat', '/etc/ssh/ssh_host_ed25519_key.pub').stdout.split()
    with open(store_host['known_hosts'], 'w') as handle:
        handle.write('%s %s %s\n' % (address, host_key[0], host_key[1]))
    store_host['address'] = address
    again, message = step_backup(sftp_args(store, store_host, lock_lease='1s'))
    assert message is None and again['changed'] and again['verified'], message
