# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_restore logic that needs no database: finding the dump, verifying it, the role password verifier, the lock and
the ANALYZE command."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os

import pytest

from ansible_collections.omero.backup.plugins.module_utils import db_restore
from ansible_collections.omero.backup.plugins.module_utils.engines import pg_dump_files, pg_dump_sql, pg_restore
from ansible_collections.omero.backup.plugins.module_utils import dumps
from ansible_collections.omero.backup.plugins.module_utils.base import locking
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file, subprocess_runner
from ansible_collections.omero.backup.plugins.module_utils.db_restore import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import write_manifest
from helpers.locks import hold_lock

SECRET = 'restore-Pa55-word'


def _dump(dest, stamp, complete=True, content=b'PGDMP fake archive'):
    path = os.path.join(str(dest), dumps.dump_name('omero', stamp, 'custom'))
    with open(path, 'wb') as handle:
        handle.write(content)
    record = {'sha256': sha256_file(path), 'database_owner': 'omero', 'omero': {'schema_version': 'OMERO5.4'},
              'files': [{'path': os.path.basename(path), 'size': len(content), 'sha256': sha256_file(path)}]}
    write_manifest(path + '.manifest.json', record, complete=complete)
    return path


def test_directory_source_takes_the_newest_complete_dump(tmp_path):
    older = _dump(tmp_path, '2026-11-20T000000Z')
    _dump(tmp_path, '2026-11-25T000000Z', complete=False)
    path, fmt, manifest = pg_dump_files.resolve_source(str(tmp_path), 'omero')
    assert (path, fmt, manifest) == (older, 'custom', older + '.manifest.json')


def test_manifest_source_names_its_dump(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    assert pg_dump_files.resolve_source(dump + '.manifest.json')[0] == dump


def test_directory_without_complete_dump_is_refused(tmp_path):
    _dump(tmp_path, '2026-11-25T000000Z', complete=False)
    with pytest.raises(DbRestoreError, match='no complete dump in .*found 1 dump'):
        pg_dump_files.resolve_source(str(tmp_path), 'omero')


def test_verified_dump_returns_its_recorded_sha256(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    record, digest = pg_dump_files.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)
    assert digest == sha256_file(dump) and record['complete'] is True


def test_damaged_dump_is_refused(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z')
    with open(dump, 'r+b') as handle:
        handle.seek(3)
        handle.write(b'X')
    with pytest.raises(DbRestoreError, match='does not match its manifest.*sha256'):
        pg_dump_files.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)


def test_incomplete_or_missing_manifest_is_refused_unless_verify_false(tmp_path):
    dump = _dump(tmp_path, '2026-11-20T000000Z', complete=False)
    with pytest.raises(DbRestoreError, match='does not say complete'):
        pg_dump_files.verify_source(dump, 'custom', dump + '.manifest.json', verify=True)
    os.unlink(dump + '.manifest.json')
    with pytest.raises(DbRestoreError, match='has no manifest'):
        pg_dump_files.verify_source(dump, 'custom', None, verify=True)
    record, digest = pg_dump_files.verify_source(dump, 'custom', None, verify=False)
    assert record == {} and digest == sha256_file(dump)


def test_scram_verifier_matches_rfc7677_construction():
    salt = b'0123456789abcdef'
    verifier = pg_dump_sql.scram_sha256('pencil', salt=salt)
    method, rest = verifier.split('$', 1)
    iterations_salt, keys = rest.split('$')
    iterations, salt_b64 = iterations_salt.split(':')
    stored_b64, server_b64 = keys.split(':')
    assert method == 'SCRAM-SHA-256' and iterations == '4096' and base64.b64decode(salt_b64) == salt
    salted = hashlib.pbkdf2_hmac('sha256', b'pencil', salt, 4096)
    assert base64.b64decode(stored_b64) == hashlib.sha256(hmac.new(salted, b'Client Key', hashlib.sha256).digest()).digest()
    assert base64.b64decode(server_b64) == hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    assert 'pencil' not in verifier


# ------------------------------------------------------------------ lock

def _conn_params(**overrides):
    params = dict(login_host=None, login_unix_socket=None, port=5432, login_user='postgres', login_password=None,
                  connect_timeout=1)
    params.update(overrides)
    return params


def test_lock_is_keyed_by_host_port_and_database(tmp_path):
    sockets = tmp_path / 'sock'
    sockets.mkdir()
    (tmp_path / 'link').symlink_to(sockets)
    base = db_restore.database_lock_path(_conn_params(login_unix_socket=str(sockets)), 'omero', str(tmp_path))
    assert os.path.dirname(base) == str(tmp_path) and os.path.basename(base).startswith('omero-backup-database-')
    # The same socket directory by another name, and a host name in another case, are the same target.
    assert db_restore.database_lock_path(_conn_params(login_unix_socket=str(tmp_path / 'link')), 'omero', str(tmp_path)) == base
    assert (db_restore.database_lock_path(_conn_params(login_host='DB.example.org'), 'omero', str(tmp_path))
            == db_restore.database_lock_path(_conn_params(login_host='db.example.org'), 'omero', str(tmp_path)))
    others = [db_restore.database_lock_path(_conn_params(login_unix_socket=str(sockets), port=5433), 'omero', str(tmp_path)),
              db_restore.database_lock_path(_conn_params(login_unix_socket=str(sockets)), 'omero2', str(tmp_path)),
              db_restore.database_lock_path(_conn_params(login_host='db.example.org'), 'omero', str(tmp_path))]
    assert len(set(others + [base])) == 4


def test_lock_dir_defaults_to_the_private_lock_directory():
    path = db_restore.database_lock_path(_conn_params(), 'omero')
    assert os.path.dirname(path) == locking.default_lock_dir()


def test_a_held_lock_refuses_before_the_dump_is_even_read(tmp_path):
    params = dict(_conn_params(login_unix_socket=str(tmp_path)), src=str(tmp_path / 'no-such-dump'), db='omero',
                  owner='omero', lock_dir=str(tmp_path))
    holder = hold_lock(db_restore.database_lock_path(params, 'omero', str(tmp_path)), 'db_restore held by a test')
    try:
        with pytest.raises(DbRestoreError) as error:
            db_restore.restore(params, subprocess_runner)
        message = str(error.value)
        assert 'already running' in message and 'pid %d' % holder.pid in message and 'Nothing was changed' in message
        # Check mode takes no lock: it goes on, and stops at the missing dump.
        with pytest.raises(DbRestoreError, match='does not exist'):
            db_restore.restore(params, subprocess_runner, check_mode=True)
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(DbRestoreError, match='does not exist'):
        db_restore.restore(params, subprocess_runner)


def test_a_missing_lock_dir_is_explained(tmp_path):
    params = dict(_conn_params(), src=str(tmp_path), db='omero', owner='omero', lock_dir=str(tmp_path / 'missing'))
    with pytest.raises(DbRestoreError, match='cannot take the lock .*Check that the lock directory exists.*Nothing was changed'):
        db_restore.restore(params, subprocess_runner)


# ------------------------------------------------------------------ ANALYZE

def test_analyze_runs_vacuumdb_with_the_password_only_in_the_environment():
    calls = []

    def runner(argv, env=None, data=None, cwd=None):
        calls.append((argv, env))
        return 0, '', 'WARNING:  permission denied to analyze "pixels", skipping it\nsome other line\n'
    params = _conn_params(login_host='db.example.org', login_password=SECRET, pg_bindir='/usr/lib/postgresql/15/bin')
    seconds, warnings = pg_restore.analyze(params, runner, 'omero', jobs=3)
    argv, env = calls[0]
    assert argv == ['/usr/lib/postgresql/15/bin/vacuumdb', '--no-password', '--analyze-only', '--quiet', '--jobs', '3']
    assert SECRET not in ' '.join(argv)
    assert env['PGPASSWORD'] == SECRET and env['PGDATABASE'] == 'omero' and env['PGHOST'] == 'db.example.org'
    assert seconds >= 0 and warnings == ['WARNING:  permission denied to analyze "pixels", skipping it']
    pg_restore.analyze(params, runner, 'omero', jobs=1)
    assert '--jobs' not in calls[1][0]


def test_analyze_failure_is_explained_without_the_password():
    def runner(argv, env=None, data=None, cwd=None):
        return 1, '', 'vacuumdb: error: connection failed: password %s rejected' % SECRET
    with pytest.raises(OmeroBackupError) as error:
        pg_restore.analyze(_conn_params(login_password=SECRET), runner, 'omero', jobs=1)
    assert 'vacuumdb --analyze-only failed (rc 1)' in str(error.value) and SECRET not in str(error.value)


# ------------------------------------------------------------------ owner password from the roles file

# As pg_dumpall --roles-only 15 writes it (the first verifier is a real one).
OMERO_SCRAM = ('SCRAM-SHA-256$4096:tn4LE17wZ25izAYJDVoLbA==$gf+8SC1Vlh+mN8IVSfKBO212zxvaiQ+4rUzmylveqMM='
               ':XSiVr3i5Dfqy0chSHQ7rcygNla6SWpRuPsu8z++7Fa8=')
ROLES_FILE = '''--
-- PostgreSQL database cluster dump
--

SET default_transaction_read_only = off;

CREATE ROLE omero;
ALTER ROLE omero WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD '%(scram)s';
CREATE ROLE "Omero ""lab""";
ALTER ROLE "Omero ""lab""" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS PASSWORD 'md50123456789abcdef0123456789abcdef';
CREATE ROLE nopass;
ALTER ROLE nopass WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:va2x$bjrE:mNqN';
''' % {'scram': OMERO_SCRAM}


def test_roles_file_gives_only_the_named_roles_stored_verifier(tmp_path):
    path = tmp_path / 'omero.roles.sql'
    path.write_text(ROLES_FILE)
    assert pg_dump_sql.roles_file_verifier(str(path), 'omero') == OMERO_SCRAM
    assert pg_dump_sql.roles_file_verifier(str(path), 'Omero "lab"') == 'md50123456789abcdef0123456789abcdef'
    assert pg_dump_sql.roles_file_verifier(str(path), 'nopass') is None
    assert pg_dump_sql.roles_file_verifier(str(path), 'absent') is None


def test_md5_verifier_of_another_role_name_is_not_used(tmp_path):
    (tmp_path / 'omero.roles.sql').write_text(ROLES_FILE)
    record = {'globals_path': 'omero.roles.sql', 'database_owner': 'Omero "lab"'}
    result = {'warnings': []}
    dump = str(tmp_path / 'omero.pg_dump')
    assert pg_dump_sql.owner_verifier_from_roles_file(dump, record, 'Omero "lab"', result).startswith('md5')
    assert pg_dump_sql.owner_verifier_from_roles_file(dump, record, 'omero2', result) is None
    assert 'created without a password' in result['warnings'][0]


def test_a_failed_analyze_after_the_restore_reports_the_change_and_how_to_retry():
    def runner(argv, env=None, data=None, cwd=None):
        return 1, '', 'vacuumdb: error: could not connect'
    result = {'changed': True, 'msg': 'restored omero.pg_dump into omero', 'diff': {}, 'warnings': [], 'analyzed': True}
    with pytest.raises(DbRestoreError) as error:
        # The admin connection is only used after a successful ANALYZE (to clear the pending mark).
        pg_restore.run_analyze(_conn_params(), runner, None, 'omero', 1, 'omero.backup restored ...', result)
    assert 'restored omero.pg_dump into omero, but ANALYZE failed' in str(error.value)
    assert 'Run the task again' in str(error.value)
    # What the module hands to fail_json next to msg.
    assert error.value.result['changed'] is True and error.value.result['analyzed'] is False
    assert 'msg' not in error.value.result and 'diff' not in error.value.result
