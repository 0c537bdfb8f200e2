# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic engine through the data dir steps (backup_datadir, restore_datadir) with real restic 0.14: a local
repository, an S3 repository on rclone's S3 server and a rest: repository on rclone's restic server (loopback).

No OMERO sandbox is needed: the data dir here is a small tree with a repo_uuid and odd names. Each restic command
runs through a runner that reads the live process's /proc/<pid>/cmdline, so no secret on argv is checked on the
real processes, not on a log.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from helpers.ansible import collections_path
from helpers.podman import podman, ssh_host
from helpers.s3 import RestServer, S3Server
from helpers.tree import snapshot

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import DatadirError  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import restore_datadir  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATADIR, EngineError, engine_for  # noqa: E402

PASSWORD = 'restic-test-password-7f3a9c'
UUID = '6a1f2e3d-0000-4000-8000-00000000beef'
ODD = [b'caf\xe9', b'new\nline', b' lead', b'trail ', b'a\xff\xfeb', b'back\\slash', 'caf\u00e9'.encode('utf-8')]
TIMINGS = {}


class CmdlineRunner(object):
    """Runs each command for real and records the argv the kernel shows for the live process."""

    def __init__(self, prefix=()):
        self.seen = []
        self.prefix = list(prefix)

    def __call__(self, argv, env=None, data=None, cwd=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(self.prefix + list(argv), cwd=cwd, env=full_env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with open('/proc/%d/cmdline' % proc.pid, 'rb') as handle:
                self.seen.append(handle.read())
        except OSError:
            pass
        out, err = proc.communicate(data.encode('utf-8') if data else None)
        return proc.returncode, out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')

    def assert_no_secret(self, *secrets):
        assert self.seen
        for line in self.seen:
            for secret in secrets:
                assert secret.encode('utf-8') not in line, line


def make_datadir(root):
    datadir = os.path.join(root, 'OMERO')
    base = os.fsencode(datadir)
    os.makedirs(os.path.join(datadir, '.omero', 'repository', UUID))
    with open(os.path.join(datadir, '.omero', 'repository', UUID, 'repo_uuid'), 'w') as handle:
        handle.write(UUID + '\n')
    os.makedirs(os.path.join(datadir, '.omero', 'repository', UUID, 'sub'))
    open(os.path.join(datadir, '.omero', 'repository', UUID, 'sub', '.lock'), 'w').close()
    for top in ('BioFormatsCache', 'FullText', 'Pixels'):
        os.makedirs(os.path.join(datadir, top))
        with open(os.path.join(datadir, top, 'data'), 'w') as handle:
            handle.write(top * 100)
    odd_dir = os.path.join(base, b'ManagedRepository', b'odd \xe9\n dir')
    os.makedirs(odd_dir)
    for name in ODD:
        with open(os.path.join(odd_dir, name), 'wb') as handle:
            handle.write(b'content of %r\n' % name)
    os.symlink(b'../caf\xe9', os.path.join(odd_dir, b'link \xe9'))
    os.chmod(os.path.join(odd_dir, b'caf\xe9'), 0o640)
    return datadir


def byte_tree(root, lossy_links=False):
    """snapshot() of a tree, by bytes names, without what the default exclusions and a restore's marker leave out;
    ``lossy_links``: link targets as restic 0.14 gives them back (each byte that is not UTF-8 as U+FFFD)."""
    entries = snapshot(os.fsencode(root))
    tree = {}
    for rel, value in entries.items():
        if rel.startswith(b'BioFormatsCache') or rel.endswith(b'/.lock') or rel == b'.omero/omero-backup-restored.json':
            continue
        if lossy_links and stat.S_ISLNK(value[0]):
            value = (value[0], value[1], value[2].decode('utf-8', 'replace').encode('utf-8')) + value[3:]
        tree[rel] = value
    return tree


@pytest.fixture(scope='module')
def area(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('restic'))
    os.chmod(root, 0o755)
    password_file = os.path.join(root, 'password')
    with open(password_file, 'w') as handle:
        handle.write(PASSWORD + '\n')
    os.chmod(password_file, 0o600)
    setdir = os.path.join(root, 'sets', 'set-1')
    os.makedirs(setdir)
    with open(os.path.join(setdir, 'omero.pg_dump'), 'w') as handle:
        handle.write('dump with session ids\n')
    started = time.time()
    yield {'root': root, 'datadir': make_datadir(root), 'password_file': password_file,
           'dump': os.path.join(setdir, 'omero.pg_dump'), 'state': os.path.join(root, 'state')}
    TIMINGS['module'] = round(time.time() - started, 1)
    print('\nrestic engine tests: %s' % json.dumps(TIMINGS, sort_keys=True))


def params(area, repo, **more):
    values = dict(engine='restic', src=area['datadir'], dest=repo, password_file=area['password_file'],
                  verify=False, verify_state_dir=area['state'])
    values.update(more)
    return values


def restore_params(area, repo, dest, **more):
    values = dict(engine='restic', src=repo, dest=dest, password_file=area['password_file'])
    values.update(more)
    return values


def snapshots(repo, env=None):
    full_env = dict(os.environ, RESTIC_PASSWORD=PASSWORD, **(env or {}))
    out = subprocess.run(['restic', '-r', repo, '--no-lock', '--json', 'snapshots'], env=full_env, check=True,
                         stdout=subprocess.PIPE).stdout
    return json.loads(out or b'[]') or []


def test_restic_local_round_trip_odd_names_excludes_set_tag_no_secret_on_argv(area):
    started = time.time()
    repo = os.path.join(area['root'], 'repo-local')
    runner = CmdlineRunner()
    made = backup_datadir(params(area, repo, label='set-1', extra=[area['dump']], verify=True), runner)
    assert made['changed'] and made['repository_initialized'] and made['verified'] is True
    assert len(made['snapshot_id']) == 64 and made['snapshot_id'].startswith(made['snapshot_short_id'])
    assert made['verify']['ok'] and made['verify']['subset'] is None
    snaps = snapshots(repo)
    assert [snap['tags'] for snap in snaps] == [['set-1']] and snaps[0]['id'] == made['snapshot_id']
    assert sorted(snaps[0]['paths']) == sorted([area['dump'], area['datadir']])
    assert made['symlinks']['targets_not_utf8'] == 1
    assert any('stores such targets lossily' in warning for warning in made['warnings'])

    dest = os.path.join(area['root'], 'restored')
    restored = restore_datadir(restore_params(area, repo, dest, at='set-1'), runner)
    assert restored['changed'] and restored['repository_uuids'] == [UUID]
    assert byte_tree(dest) == byte_tree(area['datadir'], lossy_links=True)
    assert not os.path.exists(os.path.join(dest, 'BioFormatsCache'))
    assert not os.path.exists(os.path.join(dest, '.omero', 'repository', UUID, 'sub', '.lock'))
    # The set's dump rides in the snapshot but never lands in the data dir.
    assert not os.path.exists(os.path.join(dest, area['dump'].strip('/').split('/')[0]))
    again = restore_datadir(restore_params(area, repo, dest, at=made['snapshot_short_id']), runner)
    assert not again['changed']

    engine = engine_for(DATADIR, 'restic', runner, password_file=area['password_file'])
    location = engine.parse_repository(repo, 'src')
    point = engine.select(engine.list(location), 'set-1')
    scratch = os.path.join(area['root'], 'scratch')
    os.makedirs(scratch)
    assert not engine.restore_paths(location, point, scratch, [area['dump']]).problems
    with open(os.path.join(scratch, area['dump'].lstrip('/'))) as handle:
        assert handle.read() == 'dump with session ids\n'
    runner.assert_no_secret(PASSWORD)
    TIMINGS['local_round_trip'] = round(time.time() - started, 1)


def test_restic_check_mode_changes_nothing_and_says_it_would_initialise(area):
    started = time.time()
    repo = os.path.join(area['root'], 'repo-new')
    runner = CmdlineRunner()
    planned = backup_datadir(params(area, repo, label='set-x', extra=[area['dump']], verify=True, keep_last=1),
                             runner, check_mode=True)
    assert planned['changed'] and planned['repository_initialized']
    assert 'initialised first' in planned['msg']
    assert ['restic', '-r', repo, 'init'] in planned['commands']
    assert not os.path.exists(repo) and not os.path.exists(area['state'])
    # Only version was run: nothing that writes.
    assert all(b'\x00init\x00' not in line and b'\x00backup\x00' not in line for line in runner.seen)

    existing = os.path.join(area['root'], 'repo-local')
    before = snapshots(existing)
    planned = backup_datadir(params(area, existing, keep_last=1), runner, check_mode=True)
    assert planned['changed'] and 'repository_initialized' not in planned
    assert snapshots(existing) == before
    assert planned['pruned'] == []  # one snapshot, keep_last 1: nothing would go
    TIMINGS['check_mode'] = round(time.time() - started, 1)


def test_restic_retention_rotating_verify_and_a_corrupted_pack(area):
    started = time.time()
    repo = os.path.join(area['root'], 'repo-retention')
    changing = os.path.join(area['datadir'], 'Pixels', 'changing')
    ids = []
    for number in range(3):
        with open(changing, 'w') as handle:
            handle.write('run %d\n' % number * 2000)
        made = backup_datadir(params(area, repo, label='set-%d' % number, keep_last=2), CmdlineRunner())
        ids.append(made['snapshot_id'])
    assert [snap['id'] for snap in snapshots(repo)] == ids[-2:]
    assert len(made['pruned']) == 1 and made['increments'] == 2
    # Check mode lists what a stricter policy would forget (restic forget --dry-run) and forgets nothing.
    planned = backup_datadir(params(area, repo, keep_last=1), CmdlineRunner(), check_mode=True)
    assert len(planned['pruned']) == 1 and [snap['id'] for snap in snapshots(repo)] == ids[-2:]
    os.unlink(changing)

    engine = engine_for(DATADIR, 'restic', CmdlineRunner(), password_file=area['password_file'],
                        verify_read_data='rotating', verify_rotation=3, verify_state_dir=area['state'])
    location = engine.parse_repository(repo, 'dest')
    parts = [engine.verify(location) for _round in range(3)]
    assert [outcome.details['subset'] for outcome in parts] == ['1/3', '2/3', '3/3']
    assert all(outcome.ok for outcome in parts)
    total = parts[0].details['packs_total']
    assert sum(outcome.details['packs_read'] for outcome in parts) == total > 0
    TIMINGS['rotation_packs_read'] = [outcome.details['packs_read'] for outcome in parts]
    state_files = os.listdir(area['state'])
    assert len(state_files) == 1
    state_path = os.path.join(area['state'], state_files[0])
    assert stat.S_IMODE(os.stat(state_path).st_mode) == 0o600 and stat.S_IMODE(os.stat(area['state']).st_mode) == 0o700
    with open(state_path) as handle:
        assert json.load(handle)['next_part'] == 1
    TIMINGS['retention_rotation'] = round(time.time() - started, 1)

    # A damaged pack: the verify of the next backup fails and names it; the backup after that still works.
    started = time.time()
    packs = sorted(os.path.join(dirpath, name) for dirpath, dirnames, names in os.walk(os.path.join(repo, 'data'))
                   for name in names)
    biggest = max(packs, key=os.path.getsize)
    os.chmod(biggest, 0o644)
    with open(biggest, 'r+b') as handle:
        handle.seek(40)
        handle.write(b'\0garbage\0')
    with pytest.raises(DatadirError) as failed:
        backup_datadir(params(area, repo, verify=True, verify_read_data='all'), CmdlineRunner())
    result = failed.value.result
    assert result['verified'] is False and 'verify of %s failed' % repo in str(failed.value)
    assert result['verify']['damaged_packs'] == [os.path.basename(biggest)]
    made = backup_datadir(params(area, repo), CmdlineRunner())
    assert made['changed'] and len(snapshots(repo)) == 4
    TIMINGS['corrupted_pack'] = round(time.time() - started, 1)


def hold_restic_lock(repo, hostname=None):
    """A restic process that holds a (shared) repository lock until its stdin closes; ``hostname``: in its own
    UTS namespace under that name, as a process of another host would."""
    argv = ['restic', '-r', repo, 'backup', '--stdin', '--stdin-filename', 'held']
    if hostname:
        argv = ['unshare', '--uts', 'sh', '-c', 'hostname "$0" && exec "$@"', hostname] + argv
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, RESTIC_PASSWORD=PASSWORD))
    deadline = time.time() + 20
    while not os.listdir(os.path.join(repo, 'locks')):
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    return proc


def kill_holder(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_restic_stale_lock_removed_only_when_old_and_its_holder_is_gone(area):
    """Through the engine's check (it takes an exclusive lock, so any other lock stops it), then one step run."""
    started = time.time()
    repo = os.path.join(area['root'], 'repo-local')
    locks = os.path.join(repo, 'locks')

    def engine(lease):
        built = engine_for(DATADIR, 'restic', CmdlineRunner(), password_file=area['password_file'], lock_lease=lease)
        return built, built.parse_repository(repo, 'dest')

    live = hold_restic_lock(repo)
    try:
        checker, location = engine(0)
        with pytest.raises(EngineError, match='is still running on this host') as refused:
            checker.verify(location)
        assert 'PID %d on' % live.pid in str(refused.value)
        assert refused.value.details['repository_locks'][0]['pid'] == live.pid
    finally:
        kill_holder(live)
    # Dead now, but younger than the lease: it stays.
    checker, location = engine(1800)
    with pytest.raises(EngineError, match='younger than the lease'):
        checker.verify(location)
    assert os.listdir(locks)
    made = backup_datadir(params(area, repo, lock_lease='0', verify=True), CmdlineRunner())
    assert made['verified'] and [lock['pid'] for lock in made['removed_locks']] == [live.pid]
    assert not os.listdir(locks)

    other = hold_restic_lock(repo, hostname='another-host')
    kill_holder(other)
    checker, location = engine(0)
    with pytest.raises(EngineError, match='held from another host \\(another-host\\)'):
        checker.verify(location)
    assert os.listdir(locks)
    for name in os.listdir(locks):
        os.unlink(os.path.join(locks, name))
    TIMINGS['locks'] = round(time.time() - started, 1)


def test_restic_incomplete_snapshot_is_no_backup_and_the_next_one_works(area):
    """Exit 3 (a file restic cannot read): restic runs as nobody here, root reads everything."""
    started = time.time()
    root = tempfile.mkdtemp(prefix='omero-backup-restic-nobody-')
    try:
        os.chmod(root, 0o755)
        src = os.path.join(root, 'OMERO')
        shutil.copytree(area['datadir'], src, symlinks=True)
        unreadable = os.path.join(src, 'Pixels', 'unreadable')
        with open(unreadable, 'w') as handle:
            handle.write('x')
        os.makedirs(os.path.join(root, 'cache'))
        subprocess.run(['chown', '-R', '65534:65534', root], check=True)
        os.chmod(unreadable, 0o000)
        runner = CmdlineRunner(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'env',
                                'XDG_CACHE_HOME=%s' % os.path.join(root, 'cache')])
        repo = os.path.join(root, 'repo')
        args = dict(engine='restic', src=src, dest=repo, password=PASSWORD, verify=False, label='set-n')
        with pytest.raises(DatadirError, match='is incomplete: restic could not read 1 file') as failed:
            backup_datadir(dict(args), runner)
        assert unreadable in str(failed.value) and 'does not count as a backup' in str(failed.value)
        assert snapshots(repo) == []
        os.chmod(unreadable, 0o644)
        made = backup_datadir(dict(args), runner)
        assert made['changed'] and [snap['id'] for snap in snapshots(repo)] == [made['snapshot_id']]
        runner.assert_no_secret(PASSWORD)
    finally:
        shutil.rmtree(root)
    TIMINGS['incomplete'] = round(time.time() - started, 1)


def test_restic_s3_and_rest_repositories_round_trip_keys_only_in_the_environment(area, tmp_path):
    started = time.time()
    runner = CmdlineRunner()
    with S3Server(str(tmp_path / 's3')) as s3:
        repo = s3.repository('omero')
        keys = dict(s3_access_key_id=s3.access_key, s3_secret_access_key=s3.secret_key)
        made = backup_datadir(params(area, repo, label='set-s3', extra=[area['dump']], keep_last=1, verify=True,
                                     verify_read_data='10%', **keys), runner)
        assert made['repository_initialized'] and made['verified'] and made['verify']['subset'] == '10%'
        assert os.path.isfile(s3.object_path('omero/config'))
        dest = str(tmp_path / 'from-s3')
        credentials = str(tmp_path / 's3-credentials')
        with open(credentials, 'w') as handle:
            handle.write('[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' % (s3.access_key, s3.secret_key))
        os.chmod(credentials, 0o600)
        restore_datadir(restore_params(area, repo, dest, at='set-s3', s3_credentials_file=credentials), runner)
        assert byte_tree(dest) == byte_tree(area['datadir'], lossy_links=True)
        with pytest.raises(DatadirError, match='s3_access_key_id and s3_secret_access_key, or s3_credentials_file'):
            backup_datadir(params(area, repo), runner)
        runner.assert_no_secret(PASSWORD, s3.secret_key, s3.access_key)
    TIMINGS['s3'] = round(time.time() - started, 1)
    started = time.time()
    with RestServer(str(tmp_path / 'rest')) as rest:
        repo = rest.repository('omero')
        made = backup_datadir(params(area, repo, label='set-rest'), runner)
        dest = str(tmp_path / 'from-rest')
        restore_datadir(restore_params(area, repo, dest, at=made['snapshot_id']), runner)
        assert byte_tree(dest) == byte_tree(area['datadir'], lossy_links=True)
    TIMINGS['rest'] = round(time.time() - started, 1)


def test_restic_password_file_readable_by_others_is_refused_before_anything_runs(area, tmp_path):
    loose = str(tmp_path / 'loose')
    with open(loose, 'w') as handle:
        handle.write(PASSWORD)
    os.chmod(loose, 0o644)
    runner = CmdlineRunner()
    with pytest.raises(DatadirError, match='has mode 0644: a secret must be readable by its owner only'):
        backup_datadir(params(area, str(tmp_path / 'repo'), password_file=loose), runner)
    assert all(b'\x00backup\x00' not in line and b'\x00init\x00' not in line for line in runner.seen)
    with pytest.raises(DatadirError, match='wrong repository password'):
        restore_datadir(restore_params(area, os.path.join(area['root'], 'repo-local'), str(tmp_path / 'r'),
                                       password_file=None, password='not-the-password'), runner)


@pytest.mark.skipif(not all(shutil.which(tool) for tool in ('podman', 'ssh')), reason='needs podman and ssh')
def test_restic_sftp_repository_on_a_store_host_over_the_ssh_options(area, tmp_path):
    """The store host is a podman container with sshd (its sftp server; restic is not needed there)."""
    started = time.time()
    runner = CmdlineRunner()
    with ssh_host('restic', str(tmp_path)) as host:
        TIMINGS['sftp_host_start'] = round(time.time() - started, 1)
        ssh = dict(ssh_user='root', ssh_key=host['key'],
                   ssh_options=['UserKnownHostsFile=' + host['known_hosts'], 'StrictHostKeyChecking=yes'])
        repo = 'sftp:%s:/backup/restic' % host['address']
        made = backup_datadir(params(area, repo, label='set-sftp', extra=[area['dump']], **ssh), runner)
        assert made['repository_initialized'] and made['snapshot_id']
        assert podman('exec', host['name'], 'test', '-f', '/backup/restic/config', check=False).returncode == 0
        dest = str(tmp_path / 'from-sftp')
        restore_datadir(dict(restore_params(area, repo, dest, at='set-sftp'), **ssh), runner)
        assert byte_tree(dest) == byte_tree(area['datadir'], lossy_links=True)
        sftp_commands = [argv for argv in made['commands'] if any(part.startswith('sftp.command=') for part in argv)]
        assert sftp_commands and 'BatchMode=yes' in ' '.join(sftp_commands[0])
        runner.assert_no_secret(PASSWORD)
    TIMINGS['sftp'] = round(time.time() - started, 1)
