# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.cleanse against sandboxes (real PostgreSQL, real data dir) with injected orphans."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import pwd
import sys
import time

import omero_sandbox
from helpers.ansible import collections_path, run_module
from helpers.locks import hold_lock
from helpers.sandbox import psycopg2_connect

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path  # noqa: E402

OLD = time.time() - 30 * 86400
OMERO_ADMIN_PASSWORD = 'fake-server-root-Pa55'


def _db_args(description, **extra):
    postgres = description['postgres']
    # Lock files in the sandbox, not in the host's /run/lock.
    args = dict(login_unix_socket=postgres['host'], port=postgres['port'], login_user=postgres['superuser'],
                login_password=postgres['superuser_password'], datadir=description['datadir'], lock_dir=description['root'])
    args.update(extra)
    return args


def _connect(description):
    conn = psycopg2_connect(description)  # the sandbox's socket, as its superuser
    conn.autocommit = True
    return conn


def _age_datadir(description, when=OLD):
    """Sandbox files are written now; a store being cleansed holds files older than min_age."""
    for root, dirs, files in os.walk(description['datadir']):
        for name in files:
            os.utime(os.path.join(root, name), (when, when), follow_symlinks=False)


def _datadir_state(datadir):
    state = {}
    for root, dirs, files in os.walk(datadir):
        for name in files:
            path = os.path.join(root, name)
            relpath = os.path.relpath(path, datadir)
            if os.path.islink(path):
                state[relpath] = 'link:' + os.readlink(path)
            else:
                with open(path, 'rb') as handle:
                    state[relpath] = hashlib.sha256(handle.read()).hexdigest()
    return state


def _assert_failed_and_untouched(result, before, datadir, reason):
    assert result['failed'], result
    assert not result['changed']
    assert reason in result['msg']
    assert result.get('removed', 0) == 0
    assert _datadir_state(datadir) == before


# ------------------------------------------------------------------ database backend

def test_check_mode_lists_exactly_the_injected_orphans_and_deletes_nothing(sandbox, tmp_path):
    before = _datadir_state(sandbox['datadir'])
    report = str(tmp_path / 'orphans.tsv')
    result = run_module('cleanse', _db_args(sandbox, min_age='0', report_file=report), check=True, diff=True)
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['changed']  # a real run would remove them
    assert sorted(result['listed']) == sorted(sandbox['orphans'])
    assert result['orphans'] == len(sandbox['orphans'])
    assert result['removed'] == 0
    assert sorted(result['kept_unknown_listed']) == sorted(sandbox['kept_unknown'])
    assert result['refused'] == [] and result['forced'] == []
    # Ids in the 999001-999999 band and above a million, and every pyramid companion form.
    listed = ' '.join(result['listed'])
    for fragment in ('Dir-999/999002', '.999998_pyramid.pyr_lock', 'Dir-001/Dir-000/.1000001_pyramid', '2345678',
                     '1002003005_pyramid'):
        assert fragment in listed
    assert set(result['diff']['before'].split()) == set(sandbox['orphans'])
    with open(report) as handle:
        lines = [line.split('\t') for line in handle.read().splitlines()]
    assert sorted(line[0] for line in lines) == sorted(sandbox['orphans'])
    assert {line[2] for line in lines} == {'would_remove'}
    # One COPY per table against omero's one query per 25 entries.
    assert result['queries'] <= 8
    assert _datadir_state(sandbox['datadir']) == before


def test_ids_read_in_chunks_equal_a_plain_select(sandbox):
    import sys
    from helpers.ansible import collections_path
    if collections_path() not in sys.path:
        sys.path.insert(0, collections_path())
    from ansible_collections.omero.backup.plugins.module_utils.cleanse import ids as cleanse_ids
    conn = _connect(sandbox)
    try:
        with conn.cursor() as cursor:
            cursor.execute('SELECT id FROM originalfile ORDER BY id')
            expected = [row[0] for row in cursor.fetchall()]
        conn.autocommit = False
        ids, queries = cleanse_ids.load_ids(conn, 'originalfile', chunk=7)
        assert list(ids) == expected
        assert queries == len(expected) // 7 + 1
        whole, queries = cleanse_ids.load_ids(conn, 'originalfile')
        assert list(whole) == expected and queries == 1
    finally:
        conn.rollback()
        conn.close()


def test_default_min_age_keeps_freshly_written_files(sandbox):
    result = run_module('cleanse', _db_args(sandbox), check=True)
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['orphans'] == 0 and result['listed'] == []
    assert result['kept_young'] == len(sandbox['orphans'])
    assert not result['changed']


def test_cleanse_removes_exactly_the_orphans_keeps_young_ones_and_is_idempotent(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=50, orphans=12, seed=3)
    datadir = description['datadir']
    _age_datadir(description)
    young = 'Files/Dir-555/555555'
    os.makedirs(os.path.join(datadir, 'Files/Dir-555'))
    with open(os.path.join(datadir, young), 'wb') as handle:
        handle.write(b'being written')
    before = _datadir_state(datadir)
    report = str(tmp_path / 'removed.tsv')
    result = run_module('cleanse', _db_args(description, report_file=report))
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['changed']
    assert result['removed'] == len(description['orphans'])
    assert result['kept_young'] == 1
    expected = dict(before)
    for relpath in description['orphans']:
        del expected[relpath]
    assert _datadir_state(datadir) == expected
    assert result['removed_bytes'] == result['orphan_bytes'] > 0
    # Only directories emptied by the cleanse went, and they are gone.
    assert result['empty_dirs_removed'] == result['empty_dirs']
    for root, dirs, files in os.walk(os.path.join(datadir, 'Pixels')):
        assert dirs or files, 'empty directory left behind: %s' % root
    with open(report) as handle:
        assert sorted(line.split('\t')[0] for line in handle.read().splitlines()) == sorted(description['orphans'])

    again = run_module('cleanse', _db_args(description))
    assert not again['failed'], again
    assert not again['changed']
    assert again['orphans'] == 0 and again['kept_young'] == 1


def test_quarantine_round_trip_restores_every_byte(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=50, orphans=8, seed=4)
    datadir = description['datadir']
    _age_datadir(description)
    before = _datadir_state(datadir)
    quarantine = str(tmp_path / 'quarantine')
    result = run_module('cleanse', _db_args(description, quarantine_dir=quarantine))
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['removed'] == len(description['orphans'])
    quarantined = _datadir_state(quarantine)
    # The orphans, and the journal that holds each one's completion record (the undo trusts nothing else).
    assert sorted(quarantined) == sorted(description['orphans'] + ['.omero-cleanse-journal'])
    # Undo: the module moves everything back under the same relative paths.
    undo = run_module('cleanse', _db_args(description, quarantine_dir=quarantine, state='restored'))
    assert not undo['failed'], (undo.get('msg'), undo.get('refused'), undo.get('errors'))
    assert undo['restored'] == len(description['orphans'])
    assert _datadir_state(datadir) == before


# ------------------------------------------------------------------ interlocks

def test_wrong_uuid_database_is_refused_and_force_overrides_it(sandbox_factory):
    description = sandbox_factory(objects=50, orphans=6, seed=5)
    _age_datadir(description)
    conn = _connect(description)
    with conn.cursor() as cursor:
        cursor.execute("UPDATE configuration SET value = '00000000-0000-4000-8000-000000000000' "
                       "WHERE name = 'omero.db.uuid'")
    conn.close()
    before = _datadir_state(description['datadir'])
    result = run_module('cleanse', _db_args(description))
    _assert_failed_and_untouched(result, before, description['datadir'], 'does not belong to this database')
    assert result['refused']
    forced = run_module('cleanse', _db_args(description, force=True), check=True)
    assert not forced['failed'], forced
    assert forced['forced'] and forced['orphans'] == len(description['orphans'])
    assert _datadir_state(description['datadir']) == before


def test_older_dump_under_newer_store_is_refused(sandbox_factory):
    description = sandbox_factory(objects=60, orphans=6, seed=6)
    _age_datadir(description)
    conn = _connect(description)
    with conn.cursor() as cursor:
        # What an older dump lacks: the newest images (and their thumbnails).
        cursor.execute('DELETE FROM thumbnail WHERE pixels >= 1000000')
        cursor.execute('DELETE FROM pixels WHERE id >= 1000000')
        cursor.execute('SELECT max(id) FROM pixels')
        newest_kept = cursor.fetchone()[0]
    conn.close()
    assert newest_kept < 1000000
    before = _datadir_state(description['datadir'])
    result = run_module('cleanse', _db_args(description))
    _assert_failed_and_untouched(result, before, description['datadir'], 'older database dump')
    assert result['subdirectories']['Pixels']['above_max_id'] >= 2
    assert result['subdirectories']['Pixels']['db_max_id'] == newest_kept


def test_database_down_is_refused(sandbox_factory):
    description = sandbox_factory(objects=30, orphans=6, seed=7)
    _age_datadir(description)
    before = _datadir_state(description['datadir'])
    omero_sandbox.stop(description['root'])
    try:
        result = run_module('cleanse', _db_args(description, connect_timeout=3, force=True))
    finally:
        omero_sandbox.start(description['root'])
    _assert_failed_and_untouched(result, before, description['datadir'], 'unreachable')


def test_database_without_omero_tables_is_refused(sandbox):
    before = _datadir_state(sandbox['datadir'])
    result = run_module('cleanse', _db_args(sandbox, db='postgres', min_age='0', force=True))
    _assert_failed_and_untouched(result, before, sandbox['datadir'], 'not an OMERO database')


def test_a_held_data_dir_lock_refuses_the_cleanse_and_removes_nothing(sandbox_factory, tmp_path):
    description = sandbox_factory(objects=20, orphans=4, seed=8, omero_cli=False)
    datadir = description['datadir']
    _age_datadir(description)
    before = _datadir_state(datadir)
    # Held through a symlink to the data dir: the lock is keyed by the real path, as /OMERO on a mounted volume.
    link = tmp_path / 'OMERO'
    link.symlink_to(datadir)
    lock_dir = tmp_path / 'locks'
    lock_dir.mkdir()
    lock = datadir_lock_path(str(link), str(lock_dir))
    args = _db_args(description, min_age='0', lock_dir=str(lock_dir))
    holder = hold_lock(lock, 'cleanse (held by the test)')
    try:
        refused = run_module('cleanse', args)
        _assert_failed_and_untouched(refused, before, datadir, 'already running')
        assert 'pid %d' % holder.pid in refused['msg'] and 'Nothing was removed' in refused['msg']
        # Check mode takes no lock: it lists the orphans while the other run holds it.
        checked = run_module('cleanse', args, check=True)
        assert not checked['failed'], checked.get('msg')
        assert checked['orphans'] == len(description['orphans']) and checked['lock'] is None
    finally:
        holder.kill()
        holder.wait()
    assert _datadir_state(datadir) == before
    done = run_module('cleanse', args)
    assert not done['failed'], (done.get('msg'), done.get('refused'))
    assert done['removed'] == len(description['orphans']) and done['lock'] == lock


# ------------------------------------------------------------------ omero backend

FAKE_OMERO = r'''#!%(python)s
"""FAKE omero: the real omero-py cleanse client code, talking to a stand-in for OMERO.server.

No OMERO.server can run here, so the server part (login, sessions, the query
service) is answered from the sandbox database; walking, printing and
unlinking are omero-py's own omero.util.cleanse.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, 'state.json')) as handle:
    STATE = json.load(handle)
TABLES = {'Pixels': 'pixels', 'OriginalFile': 'originalfile', 'Thumbnail': 'thumbnail'}


def log(**entry):
    with open(os.path.join(HERE, 'calls.log'), 'a') as handle:
        handle.write(json.dumps(entry) + '\n')


args = sys.argv[1:]
login = {}
while args and args[0] in ('-s', '-p', '-u', '-w', '-k'):
    login[args[0]] = args[1]
    args = args[2:]
log(argv=sys.argv[1:], uid=os.getuid(), password_in_env=os.environ.get('OMERO_PASSWORD') == STATE['password'],
    sessiondir=os.environ.get('OMERO_SESSIONDIR'))
session_file = os.path.join(os.environ.get('OMERO_SESSIONDIR', '/nonexistent'), 'session')

if args[:2] == ['sessions', 'login']:
    if os.environ.get('OMERO_PASSWORD') != STATE['password'] or login.get('-u') != 'root':
        sys.stderr.write('Error: Login failed\n')
        sys.exit(1)
    with open(session_file, 'w') as handle:
        handle.write('logged in')
    print('Created session for root@%%s:%%s. Idle timeout: 10 min. Current group: system' %% (login['-s'], login['-p']))
    sys.exit(0)
if not os.path.exists(session_file):
    sys.stderr.write('No session: log in first\n')
    sys.exit(1)
if args[:2] == ['sessions', 'timeout']:
    sys.exit(0)
if args[:2] == ['sessions', 'logout']:
    os.unlink(session_file)
    sys.exit(0)
if args[:2] != ['admin', 'cleanse']:
    sys.stderr.write('fake omero does not know %%s\n' %% args)
    sys.exit(2)

args = args[2:]
dry_run = '--dry-run' in args
subdirectory = args[args.index('--subdirectory') + 1] if '--subdirectory' in args else None
data_dir = args[-1]

import psycopg2  # noqa: E402
import omero  # noqa: E402
import omero.rtypes  # noqa: E402
from omero.util.cleanse import cleanse  # noqa: E402

conn = psycopg2.connect(**STATE['db'])


class Stub(object):
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class QueryService(object):
    def projection(self, query, parameters, context):
        object_type = query.split(' from ')[1].split(' ')[0]
        ids = [value.val for value in parameters.map['ids'].val]
        with conn.cursor() as cursor:
            cursor.execute('SELECT id FROM %%s WHERE id = ANY(%%%%s)' %% TABLES[object_type], (ids,))
            return [[omero.rtypes.rlong(row[0])] for row in cursor.fetchall()]


class ServiceFactory(object):
    def getAdminService(self):
        return Stub(getEventContext=lambda: Stub(isAdmin=True))

    def getQueryService(self):
        return QueryService()

    def getConfigService(self):
        return Stub(getVersion=lambda: '5.6.12')


class Client(object):
    sf = ServiceFactory()

    def getImplicitContext(self):
        return Stub(put=lambda key, value: None)

    def getManagedRepository(self, description=False):
        return None, None


cleanse(data_dir=data_dir, client=Client(), dry_run=dry_run, subdirectory=subdirectory)
'''


def _install_fake_omero(description):
    directory = os.path.join(description['root'], 'fake-omero')
    os.makedirs(directory)
    os.chmod(directory, 0o755)
    python = os.path.join(os.environ.get('OMERO_BACKUP_VENV', '/var/cache/omero-backup/venv'), 'bin', 'python')
    command = os.path.join(directory, 'omero')
    with open(command, 'w') as handle:
        handle.write(FAKE_OMERO % {'python': python})
    os.chmod(command, 0o755)
    postgres = description['postgres']
    state = {'password': OMERO_ADMIN_PASSWORD,
             'db': {'host': postgres['host'], 'port': postgres['port'], 'user': postgres['superuser'],
                    'password': postgres['superuser_password'], 'dbname': postgres['dbname']}}
    with open(os.path.join(directory, 'state.json'), 'w') as handle:
        json.dump(state, handle)
    calls = os.path.join(directory, 'calls.log')
    open(calls, 'w').close()
    os.chmod(calls, 0o666)
    return command, calls


def _read_calls(calls):
    with open(calls) as handle:
        return [json.loads(line) for line in handle]


def test_omero_backend_with_fake_omero_server(sandbox_factory):
    description = sandbox_factory(objects=50, orphans=12, seed=8)
    datadir = description['datadir']
    _age_datadir(description)
    command, calls = _install_fake_omero(description)
    # One `admin cleanse` per phase (no --subdirectory, ManagedRepository included): each fake run imports omero-py,
    # which is slow; the per-subdirectory argv is unit-tested.
    args = _db_args(description, backend='omero', omero_command=command, omerodir=description['omerodir'],
                    user=description['omero_user'], omero_password=OMERO_ADMIN_PASSWORD, omero_host='127.0.0.1',
                    managed_repository_empty_dirs=True)
    before = _datadir_state(datadir)

    dry = run_module('cleanse', args, check=True)
    assert not dry['failed'], dry
    assert sorted(dry['listed']) == sorted(description['orphans'])
    assert dry['removed'] == 0 and dry['changed']
    assert _datadir_state(datadir) == before

    result = run_module('cleanse', args)
    assert not result['failed'], (result.get('msg'), result.get('refused'))
    assert result['removed'] == len(description['orphans'])
    assert result['removed_bytes'] == result['orphan_bytes'] > 0
    expected = dict(before)
    for relpath in description['orphans']:
        del expected[relpath]
    assert _datadir_state(datadir) == expected

    entries = _read_calls(calls)
    commands = [' '.join(entry['argv'][6:8]) for entry in entries]
    assert commands[0] == 'sessions login' and commands[1] == 'sessions timeout' and commands[-1] == 'sessions logout'
    # check mode: one dry run; real run: a dry run to decide, then the cleanse itself
    assert [entry['argv'][8:] for entry in entries if entry['argv'][6:8] == ['admin', 'cleanse']] == [
        ['--dry-run', datadir], ['--dry-run', datadir], [datadir]]
    omero_uid = pwd.getpwnam(description['omero_user']).pw_uid
    for entry in entries:
        assert entry['uid'] == omero_uid  # run as the OMERO system user, never root
        assert entry['password_in_env']
        assert OMERO_ADMIN_PASSWORD not in ' '.join(entry['argv'])
        assert entry['argv'][:6] == ['-s', '127.0.0.1', '-p', '4064', '-u', 'root']
    # The private session directories are gone.
    assert not any(os.path.exists(entry['sessiondir']) for entry in entries)


def test_omero_backend_refuses_young_orphans_with_fake_omero_server(sandbox_factory):
    description = sandbox_factory(objects=30, orphans=6, seed=9)
    command, calls = _install_fake_omero(description)
    before = _datadir_state(description['datadir'])
    args = _db_args(description, backend='omero', omero_command=command, omerodir=description['omerodir'],
                    user=description['omero_user'], omero_password=OMERO_ADMIN_PASSWORD, force=True,
                    managed_repository_empty_dirs=True)
    result = run_module('cleanse', args)
    _assert_failed_and_untouched(result, before, description['datadir'], 'younger than min_age')
    assert not any(entry['argv'][6:8] == ['admin', 'cleanse'] and '--dry-run' not in entry['argv']
                   for entry in _read_calls(calls))


def test_omero_backend_rejects_quarantine(sandbox):
    quarantine = os.path.join(sandbox['root'], 'never-made')
    result = run_module('cleanse', _db_args(sandbox, backend='omero', quarantine_dir=quarantine), check=True)
    assert result['failed'] and 'quarantine_dir needs backend database' in result['msg']
    assert not os.path.exists(quarantine)
