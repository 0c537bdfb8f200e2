# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.db_dump against the sandbox's real PostgreSQL 15 with the real pg_dump, pg_restore and pg_dumpall.

A dump is held in place (not slowed down) by a transaction that keeps an ACCESS
EXCLUSIVE lock on eventlog: pg_dump waits for its ACCESS SHARE lock there, which
gives a deterministic window to kill it, start a second dump or read
/proc/*/cmdline while it runs.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time

from helpers.ansible import VENV_BIN, ansible_env, collections_path, run_module
from helpers.sandbox import connection_args, psycopg2_connect, query

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils import db_dump  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils import dumps  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file, subprocess_runner  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.locking import ExclusiveLock  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import verify_manifest_files  # noqa: E402


def _files(directory):
    return sorted(os.listdir(str(directory)))


def children_of(pid):
    """Every descendant of pid, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as handle:
                    parents[int(entry)] = int(handle.read().rsplit(')', 1)[1].split()[1])
            except (IOError, OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current:
                found.append(child)
                frontier.append(child)
    return found


def process_name(pid):
    try:
        with open('/proc/%d/comm' % pid) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def wait_gone(pid, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not os.path.exists('/proc/%d' % pid) or process_name(pid) is None:
            return
        with open('/proc/%d/stat' % pid) as handle:
            if handle.read().rsplit(')', 1)[1].split()[0] == 'Z':
                return
        time.sleep(0.1)
    raise AssertionError('process %d survived kill -9' % pid)


def dump_args(sandbox, dest, via='socket', **extra):
    args = connection_args(sandbox, via=via)
    args['dest'] = str(dest)
    args.update(extra)
    return args


def direct_dump(sandbox, dest):
    """A complete dump made straight through module_utils (setup for the fault tests)."""
    params = dict(connection_args(sandbox), login_password=None, login_unix_socket=None, connect_timeout=10, dest=str(dest),
                  format='custom', jobs=1, compress=None, globals=True, min_size=4096, server_stopped=False,
                  skip_if_newer_than=None, min_keep=1, keep=None, max_age=None, owner=None, group=None, pg_bindir=None)
    return db_dump.dump(params, subprocess_runner)


def assert_intact(result):
    """The dump and every file of its manifest are still there and match."""
    with open(result['manifest']) as handle:
        record = json.load(handle)
    assert record['complete'] is True
    assert verify_manifest_files(os.path.dirname(result['path']), record['files']) == []


@contextlib.contextmanager
def eventlog_locked(sandbox):
    conn = psycopg2_connect(sandbox)
    try:
        with conn.cursor() as cursor:
            cursor.execute('LOCK TABLE eventlog IN ACCESS EXCLUSIVE MODE')
        yield
    finally:
        conn.rollback()
        conn.close()


def wait_for_blocked_pg_dump(sandbox, proc=None, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = query(sandbox, "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                     (sandbox['postgres']['dbname'],))
        if rows:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError('the dump ended before pg_dump blocked:\n%s' % (proc.communicate()[0][-3000:],))
        time.sleep(0.2)
    raise AssertionError('pg_dump never waited on the eventlog lock')


def start_module(name, args, workdir):
    """ansible-playbook running omero.backup.<name> in the background, in a process group of its own."""
    play = [{'name': 'background', 'hosts': 'localhost', 'connection': 'local', 'gather_facts': False,
             'tasks': [{'name': 'module under test', 'omero.backup.' + name: args}]}]
    playbook = os.path.join(str(workdir), 'play-%s.yml' % secrets.token_hex(4))
    fd = os.open(playbook, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(play, handle)
    return subprocess.Popen([os.path.join(VENV_BIN, 'ansible-playbook'), '-i', 'localhost,', playbook], env=ansible_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            start_new_session=True, cwd=str(workdir))


def finish_module(proc, timeout=300):
    out = proc.communicate(timeout=timeout)[0]
    parsed = json.loads(out[out.index('{'):])
    for play in parsed['plays']:
        for task in play['tasks']:
            if task['task']['name'] == 'module under test':
                result = task['hosts']['localhost']
                result.setdefault('failed', False)
                return result, out
    raise AssertionError('no module result in:\n' + out[-3000:])


class CmdlineSampler(threading.Thread):
    """Reads every /proc/*/cmdline until stopped; remembers any that holds the secret."""

    def __init__(self, secret):
        super(CmdlineSampler, self).__init__()
        self.secret = secret.encode()
        self.stop_event = threading.Event()
        self.leaks = []
        self.samples = 0
        self.saw = set()

    def run(self):
        while not self.stop_event.is_set():
            for pid in os.listdir('/proc'):
                if not pid.isdigit():
                    continue
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        cmdline = handle.read()
                except (IOError, OSError):
                    continue
                name = os.path.basename(cmdline.split(b'\0', 1)[0]).decode('utf-8', 'replace')
                if name in ('pg_dump', 'pg_dumpall', 'pg_restore', 'ansible-playbook'):
                    self.saw.add(name)
                if self.secret in cmdline:
                    self.leaks.append(cmdline.replace(b'\0', b' ').decode('utf-8', 'replace'))
            self.samples += 1
            time.sleep(0.02)

    def stop(self):
        self.stop_event.set()
        self.join()


def test_dump_is_private_verified_and_described_and_skip_is_idempotent(sandbox, tmp_path):
    dest = tmp_path / 'database'
    result = run_module('db_dump', dump_args(sandbox, dest, server_stopped=True))
    assert not result['failed'], result.get('msg')
    assert result['changed'] and not result['skipped_dump']
    path = result['path']
    assert os.path.dirname(path) == str(dest)
    assert dumps.parse_dump_name(os.path.basename(path))[::2] == ('omero', 'custom')
    assert stat.S_IMODE(os.stat(str(dest)).st_mode) == 0o700
    for name in (path, result['manifest'], result['globals_path']):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    assert not [name for name in _files(dest) if name.startswith(TEMP_PREFIX)]
    assert result['sha256'] == sha256_file(path) and result['size'] == os.path.getsize(path)
    assert result['verify_seconds'] >= 0 and result['versions']['client'].startswith('15.')

    with open(result['manifest']) as handle:
        text = handle.read()
    record = json.loads(text)
    assert list(record)[-1] == 'complete' and record['complete'] is True
    assert record['omero'] == {'schema_version': sandbox['schema']['version'], 'schema_patch': sandbox['schema']['patch'],
                               'db_uuid': sandbox['db_uuid']}
    assert record['server_stopped'] is True and record['database_owner'] == 'omero'
    assert [entry['path'] for entry in record['files']] == [os.path.basename(path), os.path.basename(result['globals_path'])]
    assert_intact(result)
    with open(result['globals_path']) as handle:
        roles = handle.read()
    assert 'CREATE ROLE omero;' in roles and 'SCRAM-SHA-256$' in roles  # superuser login: hashes kept

    again = run_module('db_dump', dump_args(sandbox, dest, skip_if_newer_than='1h'))
    assert not again['failed'], again.get('msg')
    assert again['changed'] is False and again['skipped_dump'] is True
    assert again['path'] == path and again['sha256'] == result['sha256'] and again['globals_path'] == result['globals_path']
    assert len([name for name in _files(dest) if dumps.parse_dump_name(name)]) == 1


def test_check_mode_writes_nothing_and_zstd_is_refused_on_a_15_client(sandbox, tmp_path):
    dest = tmp_path / 'database'
    result = run_module('db_dump', dump_args(sandbox, dest, format='directory', jobs=2), check=True)
    assert not result['failed'], result.get('msg')
    assert result['changed'] is True and result['dest_created'] is True
    assert result['path'].startswith(str(dest) + '/omero.') and result['path'].endswith('.pg_dump.d')
    assert result['database_bytes'] > 0 and result['free_bytes'] > 0
    assert result['omero']['db_uuid'] == sandbox['db_uuid']
    assert _files(tmp_path) == []

    refused = run_module('db_dump', dump_args(sandbox, dest, compress='zstd:3'))
    assert refused['failed']
    assert 'needs a PostgreSQL 16 or newer pg_dump; this client is 15' in refused['msg']
    assert _files(tmp_path) == []


def test_kill_9_during_dump_leaves_no_complete_dump_and_releases_the_lock(sandbox, tmp_path):
    dest = tmp_path / 'database'
    previous = direct_dump(sandbox, dest)
    before = _files(dest)
    with eventlog_locked(sandbox):
        proc = start_module('db_dump', dump_args(sandbox, dest), tmp_path)
        try:
            wait_for_blocked_pg_dump(sandbox, proc)
            temporaries = [name for name in _files(dest) if name.startswith(TEMP_PREFIX)]
            assert temporaries, 'pg_dump should be writing under a temporary name'
            # The lock file names its holder: the module's own process, which ansible starts in a session of its own.
            with open(str(dest / '.omero-backup.lock')) as handle:
                module_pid = int(handle.read().split()[1].rstrip(','))
            victims = [module_pid] + children_of(module_pid)
            assert any(process_name(pid) == 'pg_dump' for pid in victims)
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    for pid in victims:
        wait_gone(pid)
    after = _files(dest)
    assert [name for name in after if dumps.parse_dump_name(name)] == [os.path.basename(previous['path'])]
    assert [name for name in after if name.endswith('.manifest.json')] == [os.path.basename(previous['manifest'])]
    assert set(after) - set(before) <= set(temporaries)
    assert_intact(previous)
    with ExclusiveLock(str(dest), 'test'):
        pass  # flock died with the killed module

    retry = run_module('db_dump', dump_args(sandbox, dest))
    assert not retry['failed'], retry.get('msg')
    assert retry['changed'] and set(os.path.join(str(dest), name) for name in temporaries) <= set(retry['pruned'])
    assert not [name for name in _files(dest) if name.startswith(TEMP_PREFIX)]
    assert_intact(previous)


def test_second_concurrent_dump_is_refused_and_the_password_never_reaches_a_command_line(sandbox, tmp_path):
    dest = tmp_path / 'database'
    os.mkdir(str(dest), 0o700)
    password = sandbox['postgres']['superuser_password']
    sampler = CmdlineSampler(password)
    sampler.start()
    try:
        with eventlog_locked(sandbox):
            first = start_module('db_dump', dump_args(sandbox, dest, via='tcp'), tmp_path)
            wait_for_blocked_pg_dump(sandbox, first)
            second = run_module('db_dump', dump_args(sandbox, dest, via='tcp'))
        first_result, first_output = finish_module(first)
    finally:
        sampler.stop()
    assert second['failed']
    assert 'already running' in second['msg'] and 'db_dump' in second['msg']
    assert not first_result['failed'], first_result.get('msg')
    assert first_result['changed']
    assert_intact(first_result)
    assert 'pg_dump' in sampler.saw and sampler.samples > 10
    assert sampler.leaks == []
    assert password not in first_output and password not in json.dumps(second)


def test_wrong_password_is_a_clear_error_and_the_password_appears_nowhere(sandbox, tmp_path):
    dest = tmp_path / 'database'
    wrong = 'wrong-' + secrets.token_hex(8)
    args = dump_args(sandbox, dest, via='tcp')
    args['login_password'] = wrong
    sampler = CmdlineSampler(wrong)
    sampler.start()
    try:
        result = run_module('db_dump', args)
    finally:
        sampler.stop()
    assert result['failed']
    assert 'password authentication failed for user "postgres"' in result['msg']
    assert wrong not in json.dumps(result)
    assert sampler.leaks == [] and sampler.samples > 10
    assert [name for name in _files(dest) if dumps.parse_dump_name(name)] == []


def test_disk_full_fails_clearly_without_partial_files_and_keeps_older_dumps(sandbox, tmp_path):
    mount_point = tmp_path / 'small'
    mount_point.mkdir()
    subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', str(mount_point)])
    try:
        dest = mount_point / 'database'
        previous = direct_dump(sandbox, dest)
        stats = os.statvfs(str(mount_point))
        with open(str(mount_point / 'filler'), 'wb') as handle:
            handle.write(b'\0' * (stats.f_bavail * stats.f_frsize - 8192))
        before = _files(dest)
        result = run_module('db_dump', dump_args(sandbox, dest))
        assert result['failed']
        assert 'No space left on device' in result['msg']
        assert _files(dest) == before
        assert_intact(previous)
    finally:
        subprocess.call(['umount', str(mount_point)])
