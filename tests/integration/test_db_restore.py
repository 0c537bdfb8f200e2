# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.db_restore (and db_dump → db_restore round trips) on real PostgreSQL clusters.

Restore targets are a bare cluster (a fresh sandbox whose OMERO database and
owner role are dropped, like a new server) and scratch databases on the session
sandbox's cluster, dropped again after each test.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import secrets
import shutil
import subprocess
import sys

import psycopg2
import pytest

from helpers.ansible import collections_path, run_module
from helpers.locks import hold_lock
from helpers.sandbox import connection_args, psycopg2_connect, query

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils import db_dump, db_restore  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.engines import pg_dump_files, pg_dump_sql  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner  # noqa: E402


def restore_args(description, src, db, **extra):
    args = connection_args(description)
    # Lock files in the sandbox, not in the host's /run/lock (the default lock_dir has a unit test).
    args.update(src=str(src), db=db, lock_dir=description['root'])
    args.update(extra)
    return args


def direct_dump(sandbox, dest, fmt='custom'):
    params = dict(connection_args(sandbox), login_password=None, login_unix_socket=None, connect_timeout=10, dest=str(dest),
                  format=fmt, jobs=1, compress=None, globals=True, min_size=4096, server_stopped=False,
                  skip_if_newer_than=None, min_keep=1, keep=None, max_age=None, owner=None, group=None, pg_bindir=None)
    return db_dump.dump(params, subprocess_runner)


def pg_env(description):
    postgres = description['postgres']
    return dict(os.environ, PGHOST=postgres['host'], PGPORT=str(postgres['port']), PGUSER=postgres['superuser'])


def schema_of(description, db):
    """pg_dump --schema-only without the per-run \\restrict keys of recent minor releases."""
    out = subprocess.check_output(['pg_dump', '--schema-only', db], env=pg_env(description), universal_newlines=True)
    return [line for line in out.splitlines() if not line.startswith(('\\restrict', '\\unrestrict'))]


def table_checksums(description, db):
    tables = [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                                      dbname=db)]
    sums = {}
    for table in tables:
        sums[table] = query(description, "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                                         "FROM public.%s t" % table, dbname=db)[0]
    return sums


def database_comment(description, db):
    rows = query(description, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (db,))
    return rows[0][0] if rows else None


def exists(description, kind, name):
    sql = {'database': 'SELECT 1 FROM pg_database WHERE datname = %s', 'role': 'SELECT 1 FROM pg_roles WHERE rolname = %s'}
    return bool(query(description, sql[kind], (name,)))


def analyze_state(description, db):
    """(tables never analyzed, tables, tables with planner statistics in pg_stats) of the public schema."""
    return query(description, "SELECT count(*) FILTER (WHERE last_analyze IS NULL), count(*), "
                              "(SELECT count(DISTINCT tablename) FROM pg_stats WHERE schemaname = 'public') "
                              "FROM pg_stat_user_tables WHERE schemaname = 'public'", dbname=db)[0]


def assert_identical(source, source_db, target, target_db):
    assert schema_of(target, target_db) == schema_of(source, source_db)
    source_sums = table_checksums(source, source_db)
    assert len(source_sums) >= 8 and source_sums['originalfile'][0] > 0
    assert table_checksums(target, target_db) == source_sums


@pytest.fixture
def scratch(sandbox):
    """Names of databases and roles on the session cluster to drop after the test."""
    made = {'databases': [], 'roles': []}
    yield made
    conn = psycopg2_connect(sandbox, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for db in made['databases']:
                cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
            for role in made['roles']:
                cursor.execute('DROP ROLE IF EXISTS "%s"' % role)
    finally:
        conn.close()


@pytest.fixture
def bare_cluster(sandbox_factory):
    """A fresh cluster without the OMERO database and its owner role, as on a new server."""
    description = sandbox_factory(objects=1, orphans=0, omero_cli=False)
    conn = psycopg2_connect(description, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute('DROP DATABASE omero')
            cursor.execute('DROP ROLE omero')
    finally:
        conn.close()
    return description


def test_custom_round_trip_with_jobs_into_a_bare_cluster_creates_the_owner(sandbox, bare_cluster, tmp_path):
    dest = tmp_path / 'database'
    dumped = run_module('db_dump', dict(connection_args(sandbox), dest=str(dest)))
    assert not dumped['failed'], dumped.get('msg')
    owner_password = 'owner-' + secrets.token_hex(8)
    args = restore_args(bare_cluster, dest, 'omero', owner='omero', owner_password=owner_password, jobs=2,
                        expected_schema=sandbox['schema']['version'])
    restored = run_module('db_restore', args, diff=True)
    assert not restored['failed'], restored.get('msg')
    assert restored['changed'] and restored['created'] == {'role': True, 'database': True} and not restored['replaced']
    assert restored['restored_from'] == dumped['path'] and restored['sha256'] == dumped['sha256']
    assert restored['db_uuid'] == sandbox['db_uuid'] and restored['schema_version'] == sandbox['schema']['version']
    assert restored['row_counts']['pixels'] == sandbox['counts']['db_rows']['pixels']
    assert 'role: absent' in restored['diff']['before'] and 'database: absent' in restored['diff']['before']
    assert owner_password not in json.dumps(restored)
    assert_identical(sandbox, 'omero', bare_cluster, 'omero')
    # ANALYZE ran (default): every table has planner statistics, and the comment no longer says it is pending.
    assert restored['analyzed'] is True and restored['analyze_duration'] >= 0
    never, tables, with_stats = analyze_state(bare_cluster, 'omero')
    assert never == 0 and with_stats == tables >= 8
    assert database_comment(bare_cluster, 'omero').startswith('omero.backup restored sha256=%s from ' % dumped['sha256'])
    owner = query(bare_cluster, "SELECT r.rolsuper, r.rolcreatedb, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding) "
                                "FROM pg_roles r, pg_database d WHERE r.rolname = 'omero' AND d.datname = 'omero'")[0]
    assert owner == (False, False, 'omero', 'UTF8')
    # The password given for the new role is the one that logs in (over TCP, scram).
    conn = psycopg2.connect(host='127.0.0.1', port=bare_cluster['postgres']['port'], user='omero', password=owner_password,
                            dbname='omero')
    conn.close()

    again = run_module('db_restore', args)
    assert not again['failed'], again.get('msg')
    assert again['changed'] is False and 'already holds' in again['msg']


def test_directory_round_trip_refuses_non_empty_target_and_replaces_on_request(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_dir')
    dest = tmp_path / 'database'
    dumped = run_module('db_dump', dict(connection_args(sandbox), dest=str(dest), format='directory', jobs=2))
    assert not dumped['failed'], dumped.get('msg')
    assert os.path.isdir(dumped['path']) and dumped['path'].endswith('.pg_dump.d')
    assert dumped['size'] == sum(os.path.getsize(os.path.join(dumped['path'], name)) for name in os.listdir(dumped['path']))
    restored = run_module('db_restore', restore_args(sandbox, dumped['manifest'], 'restored_dir', jobs=2, analyze=False))
    assert not restored['failed'], restored.get('msg')
    assert restored['changed'] and restored['created'] == {'role': False, 'database': True}
    assert restored['format'] == 'directory'
    assert restored['analyzed'] is False and 'analyze_duration' not in restored
    assert database_comment(sandbox, 'restored_dir').endswith(pg_dump_sql.COMMENT_ANALYZE_PENDING)
    assert analyze_state(sandbox, 'restored_dir')[0] == analyze_state(sandbox, 'restored_dir')[1]
    assert_identical(sandbox, 'omero', sandbox, 'restored_dir')

    other = direct_dump(sandbox, tmp_path / 'other')
    comment = database_comment(sandbox, 'restored_dir')
    refused = run_module('db_restore', restore_args(sandbox, other['path'], 'restored_dir'))
    assert refused['failed'] and 'is not empty' in refused['msg'] and 'state=replaced' in refused['msg']
    assert database_comment(sandbox, 'restored_dir') == comment

    replaced = run_module('db_restore', restore_args(sandbox, other['path'], 'restored_dir', state='replaced'), diff=True)
    assert not replaced['failed'], replaced.get('msg')
    assert replaced['replaced'] is True and replaced['changed']
    assert 'restored from sha256=%s' % dumped['sha256'] in replaced['diff']['before']
    assert 'restored from sha256=%s' % other['sha256'] in replaced['diff']['after']
    assert database_comment(sandbox, 'restored_dir').startswith('omero.backup restored sha256=%s ' % other['sha256'])
    assert replaced['analyzed'] is True and analyze_state(sandbox, 'restored_dir')[0] == 0
    assert_identical(sandbox, 'omero', sandbox, 'restored_dir')


def test_check_mode_changes_nothing_and_a_schema_mismatch_is_refused(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_check')
    scratch['roles'].append('omero_check_owner')
    dumped = direct_dump(sandbox, tmp_path / 'database')
    args = restore_args(sandbox, dumped['path'], 'restored_check', owner='omero_check_owner', owner_password='pw-check')
    checked = run_module('db_restore', args, check=True, diff=True)
    assert not checked['failed'], checked.get('msg')
    assert checked['changed'] is True and checked['created'] == {'role': True, 'database': True}
    assert 'would create role omero_check_owner' in checked['msg']
    assert checked['diff']['before'] != checked['diff']['after']
    assert not exists(sandbox, 'database', 'restored_check') and not exists(sandbox, 'role', 'omero_check_owner')

    mismatch = run_module('db_restore', dict(args, expected_schema='OMERO5.3'))
    assert mismatch['failed'] and 'not the expected OMERO5.3' in mismatch['msg']
    assert not exists(sandbox, 'database', 'restored_check') and not exists(sandbox, 'role', 'omero_check_owner')


def test_truncated_and_bit_flipped_dumps_fail_verification_and_leave_the_target_untouched(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_bad')
    good = direct_dump(sandbox, tmp_path / 'good')
    damaged = {}
    for kind in ('truncated', 'flipped'):
        directory = tmp_path / kind
        directory.mkdir()
        for path in (good['path'], good['manifest']):
            shutil.copy(path, str(directory))
        copy = str(directory / os.path.basename(good['path']))
        with open(copy, 'r+b') as handle:
            if kind == 'truncated':
                # Cut in the table data at the archive's end: the table of contents stays readable, so only the
                # manifest (or, without it, pg_restore midway) finds the damage; pg_restore --list does not.
                handle.truncate(os.path.getsize(copy) - 300)
            else:
                # A flip in compressed table data (the archive's end); one in the table of contents' plain SQL
                # text passes any read-through and is caught only by the manifest's sha256, as below.
                handle.seek(os.path.getsize(copy) - 300)
                byte = handle.read(1)
                handle.seek(-1, os.SEEK_CUR)
                handle.write(bytes([byte[0] ^ 0x10]))
        damaged[kind] = copy
        # The read-through db_dump runs before publishing catches both (pg_restore --list would not).
        with pytest.raises(db_dump.DbDumpError, match='failed its read-through'):
            pg_dump_files.read_through(subprocess_runner, {}, copy, 'custom')
        refused = run_module('db_restore', restore_args(sandbox, copy, 'restored_bad'))
        assert refused['failed'] and 'does not match its manifest' in refused['msg'], refused.get('msg')
        assert not exists(sandbox, 'database', 'restored_bad')

    # Without the manifest check, pg_restore --exit-on-error stops and the database says it is not restored.
    forced = run_module('db_restore', restore_args(sandbox, damaged['truncated'], 'restored_bad', verify=False))
    assert forced['failed'] and 'marked as not restored' in forced['msg']
    assert database_comment(sandbox, 'restored_bad').startswith('omero.backup restore NOT COMPLETE')


def test_analyze_left_pending_runs_alone_on_the_next_run_and_a_missing_vacuumdb_is_refused_first(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_analyze')
    dumped = direct_dump(sandbox, tmp_path / 'database')
    args = restore_args(sandbox, dumped['path'], 'restored_analyze')
    # A pg_bindir with the real pg_restore and no vacuumdb: refused before anything is created.
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    (bindir / 'pg_restore').symlink_to(os.path.join(sandbox['postgres']['bindir'], 'pg_restore'))
    refused = run_module('db_restore', dict(args, pg_bindir=str(bindir)))
    assert refused['failed'] and 'vacuumdb not found in pg_bindir' in refused['msg'] and 'analyze=false' in refused['msg']
    assert not exists(sandbox, 'database', 'restored_analyze')

    pending = run_module('db_restore', dict(args, pg_bindir=str(bindir), analyze=False))
    assert not pending['failed'], pending.get('msg')
    assert pending['analyzed'] is False and 'analyze_duration' not in pending
    assert database_comment(sandbox, 'restored_analyze').endswith(pg_dump_sql.COMMENT_ANALYZE_PENDING)
    never, tables, with_stats = analyze_state(sandbox, 'restored_analyze')
    assert never == tables >= 8 and with_stats == 0

    checked = run_module('db_restore', args, check=True, diff=True)
    assert not checked['failed'], checked.get('msg')
    assert checked['changed'] is True and checked['analyzed'] is True and 'would ANALYZE' in checked['msg']
    assert 'ANALYZE pending' in checked['diff']['before'] and 'ANALYZE pending' not in checked['diff']['after']
    assert analyze_state(sandbox, 'restored_analyze')[0] == tables

    analyzed = run_module('db_restore', dict(args, jobs=2))
    assert not analyzed['failed'], analyzed.get('msg')
    assert analyzed['changed'] is True and analyzed['analyzed'] is True and analyzed['analyze_duration'] >= 0
    assert analyzed['created'] == {'role': False, 'database': False} and 'without planner statistics' in analyzed['msg']
    assert analyze_state(sandbox, 'restored_analyze') == (0, tables, tables)
    pixels = query(sandbox, "SELECT reltuples::bigint FROM pg_class WHERE oid = 'public.pixels'::regclass", dbname='restored_analyze')
    assert pixels[0][0] == sandbox['counts']['db_rows']['pixels']
    assert not database_comment(sandbox, 'restored_analyze').endswith(pg_dump_sql.COMMENT_ANALYZE_PENDING)
    assert_identical(sandbox, 'omero', sandbox, 'restored_analyze')

    again = run_module('db_restore', args)
    assert not again['failed'] and again['changed'] is False and again['analyzed'] is False


def test_a_held_lock_refuses_a_second_restore_and_changes_nothing(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_locked')
    scratch['roles'].append('omero_locked_owner')
    dumped = direct_dump(sandbox, tmp_path / 'database')
    args = restore_args(sandbox, dumped['path'], 'restored_locked', owner='omero_locked_owner', lock_dir=str(tmp_path))
    lock = db_restore.database_lock_path(args, 'restored_locked', str(tmp_path))
    holder = hold_lock(lock, 'db_restore (held by the test)')
    try:
        refused = run_module('db_restore', args)
        assert refused['failed'] and 'already running' in refused['msg'] and 'pid %d' % holder.pid in refused['msg']
        assert 'Nothing was changed' in refused['msg'] and not refused.get('changed')
        assert not exists(sandbox, 'database', 'restored_locked') and not exists(sandbox, 'role', 'omero_locked_owner')
        # Check mode takes no lock.
        checked = run_module('db_restore', args, check=True)
        assert not checked['failed'] and checked['changed'] and 'would create role omero_locked_owner' in checked['msg']
    finally:
        holder.kill()
        holder.wait()
    restored = run_module('db_restore', args)
    assert not restored['failed'], restored.get('msg')
    assert restored['lock'] == lock and restored['created'] == {'role': True, 'database': True}


def test_owner_from_roles_file_gives_the_new_owner_the_dumped_password_and_nothing_else(sandbox, scratch, tmp_path):
    scratch['databases'].append('restored_roles')
    scratch['roles'].append('omero_roles_owner')
    superuser_hash = query(sandbox, "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
    dumped = direct_dump(sandbox, tmp_path / 'database')
    args = restore_args(sandbox, dumped['path'], 'restored_roles', owner='omero_roles_owner', owner_from_roles_file=True)
    checked = run_module('db_restore', args, check=True)
    assert not checked['failed'] and 'create role omero_roles_owner (password: roles file)' in checked['msg']
    assert checked['owner_password_source'] == 'roles_file'
    restored = run_module('db_restore', args)
    assert not restored['failed'], restored.get('msg')
    assert restored['created']['role'] and restored['owner_password_source'] == 'roles_file'
    # The SCRAM verifier db_dump saved for the dump's owner (omero) logs the new owner in with omero's password.
    postgres = sandbox['postgres']
    conn = psycopg2.connect(host=postgres['tcp_host'], port=postgres['port'], user='omero_roles_owner',
                            password=postgres['owner_password'], dbname='restored_roles')
    conn.close()
    attributes = query(sandbox, "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                                "WHERE rolname = 'omero_roles_owner'")[0]
    assert attributes == (False, False, False, True)
    # No other role of the file was replayed.
    assert query(sandbox, "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'") == superuser_hash
