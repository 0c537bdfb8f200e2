# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_restore that cannot lose the database it replaces, trusts only the set record's sha256, runs no code of a
restored database as superuser, and drops databases (state=absent). On the session sandbox's real cluster.

Each test restores into scratch databases named ``restored_safety_*`` and drops them (and any temporary or
replaced database made for them) afterwards.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers.ansible import collections_path, run_module
from helpers.sandbox import connection_args, psycopg2_connect, query

if collections_path() not in sys.path:
    sys.path.insert(0, collections_path())

from ansible_collections.omero.backup.plugins.module_utils import db_dump  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file, subprocess_runner  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import read_manifest, write_manifest  # noqa: E402

PREFIX = 'restored_safety_'


def restore_args(description, src, db, **extra):
    args = connection_args(description)
    args.update(db=db, lock_dir=description['root'])
    if src is not None:
        args['src'] = str(src)
    args.update(extra)
    return args


def direct_dump(sandbox, dest, fmt='custom', db=None):
    params = dict(connection_args(sandbox), login_password=None, login_unix_socket=None, connect_timeout=10, dest=str(dest),
                  format=fmt, jobs=1, compress=None, globals=False, min_size=0, server_stopped=False,
                  skip_if_newer_than=None, min_keep=1, keep=None, max_age=None, owner=None, group=None, pg_bindir=None)
    if db:
        params['db'] = db
    return db_dump.dump(params, subprocess_runner)


def databases(description, like=PREFIX + '%'):
    return [row[0] for row in query(description, 'SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1', (like,))]


def comment_of(description, db):
    rows = query(description, "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (db,))
    return rows[0][0] if rows else None


def fingerprint(description, db):
    """Every public table's row count and content digest, and the database comment: equal means untouched."""
    tables = [row[0] for row in query(description, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                                      dbname=db)]
    sums = {}
    for table in tables:
        sums[table] = tuple(query(description, "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                                               "FROM public.%s t" % table, dbname=db)[0])
    return {'tables': sums, 'comment': comment_of(description, db)}


def rewrite_manifest(path, **changes):
    """Make the manifest beside ``path`` match its (changed) dump again, as whoever can write there can."""
    manifest = path + '.manifest.json'
    record = read_manifest(manifest)
    digest = sha256_file(path)
    record.update(sha256=digest, size=os.path.getsize(path),
                  files=[{'path': os.path.basename(path), 'size': os.path.getsize(path), 'sha256': digest}])
    for key, value in changes.items():
        if isinstance(value, dict):
            record.setdefault(key, {}).update(value)
        else:
            record[key] = value
    write_manifest(manifest, record, complete=True)
    return digest


def copy_dump(dumped, directory):
    os.makedirs(str(directory))
    for path in (dumped['path'], dumped['manifest']):
        shutil.copy(path, str(directory))
    return os.path.join(str(directory), os.path.basename(dumped['path']))


@pytest.fixture
def scratch(sandbox):
    """Drops every restored_safety_* database (with the temporary and replaced ones made for them) afterwards."""
    yield
    conn = psycopg2_connect(sandbox, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for db in databases(sandbox):
                cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
    finally:
        conn.close()


@pytest.fixture
def restored(sandbox, scratch, tmp_path):
    """A scratch database holding a restore of the sandbox (the one state=replaced is asked to replace)."""
    def make(db):
        dumped = direct_dump(sandbox, tmp_path / ('first-' + db))
        result = run_module('db_restore', restore_args(sandbox, dumped['path'], db))
        assert not result['failed'], result.get('msg')
        return dumped
    return make


def assert_no_side_databases(sandbox, db):
    assert list(databases(sandbox, db + '_omero_backup_%')) == []


# ------------------------------------------------------------------ item 5: the old database survives every failure

def test_replace_with_a_dump_of_a_newer_pg_dump_is_refused_before_anything_is_dropped(sandbox, restored, tmp_path):
    db = PREFIX + 'newer'
    restored(db)
    before = fingerprint(sandbox, db)
    dumped = direct_dump(sandbox, tmp_path / 'source')

    # Archive version 1.16 in the header (PostgreSQL 17's pg_dump), a manifest that matches it byte for byte.
    forged = copy_dump(dumped, tmp_path / 'forged')
    with open(forged, 'r+b') as handle:
        assert handle.read(8)[:5] == b'PGDMP'
        handle.seek(5)
        handle.write(bytes([1, 16, 0]))
    rewrite_manifest(forged)
    refused = run_module('db_restore', restore_args(sandbox, forged, db, state='replaced'))
    assert refused['failed'] and 'cannot read' in refused['msg'] and '1.16.0' in refused['msg'], refused.get('msg')
    assert 'Nothing was changed' in refused['msg']
    assert fingerprint(sandbox, db) == before
    assert_no_side_databases(sandbox, db)

    # The manifest says pg_dump 17: refused by version, before pg_restore is even asked.
    rewrite_manifest(forged, postgres={'client_version': '17.2'})
    refused = run_module('db_restore', restore_args(sandbox, forged, db, state='replaced'))
    assert refused['failed'] and 'pg_dump 17.2' in refused['msg'] and 'newer than this pg_restore' in refused['msg']
    assert fingerprint(sandbox, db) == before
    assert_no_side_databases(sandbox, db)


def test_replace_whose_pg_restore_fails_midway_keeps_the_old_database(sandbox, restored, tmp_path):
    db = PREFIX + 'midway'
    restored(db)
    before = fingerprint(sandbox, db)
    dumped = direct_dump(sandbox, tmp_path / 'source')
    truncated = copy_dump(dumped, tmp_path / 'truncated')
    with open(truncated, 'r+b') as handle:
        # In the table data at the end: the header and table of contents still read (pg_restore --list passes).
        handle.truncate(os.path.getsize(truncated) - 300)
    rewrite_manifest(truncated)
    assert subprocess.call(['pg_restore', '--list', truncated], stdout=subprocess.DEVNULL) == 0

    refused = run_module('db_restore', restore_args(sandbox, truncated, db, state='replaced'))
    assert refused['failed'] and 'pg_restore failed' in refused['msg'], refused.get('msg')
    assert 'temporary database was dropped and %s is untouched' % db in refused['msg'] and not refused.get('changed')
    assert fingerprint(sandbox, db) == before
    assert_no_side_databases(sandbox, db)


def test_replace_swaps_under_a_temporary_name_keeps_on_request_and_is_idempotent(sandbox, restored, tmp_path):
    db = PREFIX + 'swap'
    first = restored(db)
    second = direct_dump(sandbox, tmp_path / 'second')
    assert second['sha256'] != first['sha256']
    conn = psycopg2_connect(sandbox, dbname=db)  # a session on the old database, as a forgotten client's
    try:
        replaced = run_module('db_restore', restore_args(sandbox, second['path'], db, state='replaced', keep_replaced=True),
                              diff=True)
    finally:
        conn.close()
    assert not replaced['failed'], replaced.get('msg')
    assert replaced['changed'] and replaced['replaced'] is True and replaced['created']['database'] is True
    assert replaced['temporary_database'].startswith(db + '_omero_backup_new_') and len(replaced['temporary_database']) <= 63
    kept = replaced['replaced_kept_as']
    assert kept.startswith(db + '_omero_backup_old_')
    assert comment_of(sandbox, db).startswith('omero.backup restored sha256=%s ' % second['sha256'])
    assert comment_of(sandbox, kept).startswith('omero.backup replaced database "%s" (kept, keep_replaced=true) ' % db)
    assert 'sha256=%s' % first['sha256'] in comment_of(sandbox, kept)
    assert databases(sandbox, db + '_omero_backup_new_%') == []
    space = replaced['space']
    assert space['old_database_bytes'] > 0 and space['estimate_from'] == 'manifest'
    assert space['restore_bytes_estimate'] == second['database_bytes']
    assert space['peak_bytes'] == space['old_database_bytes'] + space['restore_bytes_estimate']
    assert space['checked'] is True and space['free_bytes'] > 0 and space['tablespace'] == 'pg_default'
    assert replaced['analyzed'] is True and replaced['analyze_duration'] >= 0
    assert replaced['row_counts']['pixels'] == sandbox['counts']['db_rows']['pixels']
    assert 'restored from sha256=%s' % second['sha256'] in replaced['diff']['after']
    assert fingerprint(sandbox, kept)['tables'] == fingerprint(sandbox, db)['tables']

    again = run_module('db_restore', restore_args(sandbox, second['path'], db, state='replaced'))
    assert not again['failed'] and again['changed'] is False and 'already holds' in again['msg']
    assert again['leftovers_dropped'] == []
    # The kept database carries the collection's comment: state=absent drops it without force.
    dropped = run_module('db_restore', restore_args(sandbox, None, kept, state='absent'))
    assert not dropped['failed'] and dropped['changed'] and dropped['dropped'], dropped.get('msg')

    # Without keep_replaced, the replaced database is dropped after the swap.
    third = run_module('db_restore', restore_args(sandbox, first['path'], db, state='replaced'))
    assert not third['failed'] and third['replaced'] and third['replaced_kept_as'] is None, third.get('msg')
    assert comment_of(sandbox, db).startswith('omero.backup restored sha256=%s ' % first['sha256'])
    assert_no_side_databases(sandbox, db)


WRAPPER = '''#!/bin/sh
case " $* " in
  *" --list "*|*" --version "*) exec %(real)s "$@" ;;
esac
echo "$$ $PPID" > %(marker)s.tmp && mv %(marker)s.tmp %(marker)s
exec sleep 600
'''


def test_a_killed_replace_leaves_a_temporary_database_that_the_next_run_drops(sandbox, restored, tmp_path):
    db = PREFIX + 'killed'
    restored(db)
    before = fingerprint(sandbox, db)
    dumped = direct_dump(sandbox, tmp_path / 'second')
    # A pg_restore that stops before restoring: the run is killed (-9) while the temporary database exists.
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for tool in ('vacuumdb', 'psql'):
        (bindir / tool).symlink_to(os.path.join(sandbox['postgres']['bindir'], tool))
    marker = tmp_path / 'pg_restore.pids'
    (bindir / 'pg_restore').write_text(WRAPPER % {'real': os.path.join(sandbox['postgres']['bindir'], 'pg_restore'),
                                                  'marker': marker})
    (bindir / 'pg_restore').chmod(0o755)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(run_module(
        'db_restore', restore_args(sandbox, dumped['path'], db, state='replaced', pg_bindir=str(bindir)))))
    runner.start()
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and runner.is_alive():
        time.sleep(0.2)
    assert marker.exists(), outcome
    wrapper_pid, module_pid = [int(word) for word in marker.read_text().split()]
    os.kill(module_pid, signal.SIGKILL)
    os.kill(wrapper_pid, signal.SIGKILL)
    runner.join(300)
    assert outcome.get('failed'), outcome
    leftovers = databases(sandbox, db + '_omero_backup_new_%')
    assert len(leftovers) == 1 and comment_of(sandbox, leftovers[0]).endswith('replacing "%s"' % db)
    assert fingerprint(sandbox, db) == before

    # Look-alikes the next run must leave alone: the name without the comment, and a replaced database kept on purpose.
    decoys = [db + '_omero_backup_new_00000000', db + '_omero_backup_old_20000101T000000Z']
    # And what a run killed after its swap leaves: the replaced database it had no time to drop.
    pending = db + '_omero_backup_old_20000101T000001Z'
    conn = psycopg2_connect(sandbox, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for name in decoys + [pending]:
                cursor.execute('CREATE DATABASE "%s"' % name)
            cursor.execute('COMMENT ON DATABASE "%s" IS %%s' % decoys[1],
                           ('omero.backup replaced database "%s" (kept, keep_replaced=true) at 2000-01-01T00:00:00Z' % db,))
            cursor.execute('COMMENT ON DATABASE "%s" IS %%s' % pending,
                           ('omero.backup replaced database "%s" (DROP PENDING) at 2000-01-01T00:00:01Z by a restore' % db,))
            cursor.execute('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS false' % pending)
    finally:
        conn.close()
    leftovers = sorted(leftovers + [pending])

    checked = run_module('db_restore', restore_args(sandbox, dumped['path'], db, state='replaced'), check=True)
    assert not checked['failed'] and sorted(checked['leftovers_dropped']) == leftovers and 'would drop' in checked['msg']
    assert sorted(databases(sandbox, db + '_omero_backup_%')) == sorted(decoys + leftovers)

    replaced = run_module('db_restore', restore_args(sandbox, dumped['path'], db, state='replaced'))
    assert not replaced['failed'], replaced.get('msg')
    assert sorted(replaced['leftovers_dropped']) == leftovers and replaced['replaced'] is True
    assert sorted(databases(sandbox, db + '_omero_backup_%')) == sorted(decoys)
    assert comment_of(sandbox, db).startswith('omero.backup restored sha256=%s ' % dumped['sha256'])


def test_replace_refuses_when_the_tablespace_is_visibly_too_small(sandbox, restored, tmp_path):
    db = PREFIX + 'space'
    restored(db)
    before = fingerprint(sandbox, db)
    dumped = direct_dump(sandbox, tmp_path / 'source')
    huge = copy_dump(dumped, tmp_path / 'huge')
    rewrite_manifest(huge, database_bytes=2 ** 60)
    refused = run_module('db_restore', restore_args(sandbox, huge, db, state='replaced'))
    assert refused['failed'] and 'needs about %d bytes in tablespace pg_default' % 2 ** 60 in refused['msg'], refused.get('msg')
    assert 'is kept until the new one is complete' in refused['msg'] and 'Nothing was changed' in refused['msg']
    checked = run_module('db_restore', restore_args(sandbox, huge, db, state='replaced'), check=True)
    assert checked['failed'] and 'needs about' in checked['msg']
    assert fingerprint(sandbox, db) == before
    assert_no_side_databases(sandbox, db)


# ------------------------------------------------------------------ item 1: trust only the set record's sha256

def test_expected_sha256_decides_whatever_the_manifest_beside_the_dump_says(sandbox, scratch, tmp_path):
    db = PREFIX + 'expected'
    genuine = direct_dump(sandbox, tmp_path / 'genuine')
    # Someone who can write in the staging directory swaps in a dump of their own with a matching manifest.
    other = direct_dump(sandbox, tmp_path / 'other', db='postgres')
    swapped = copy_dump(genuine, tmp_path / 'staging')
    shutil.copy(other['path'], swapped)
    rewrite_manifest(swapped)
    refused = run_module('db_restore', restore_args(sandbox, swapped, db, expected_sha256=genuine['sha256']))
    assert refused['failed'] and 'not the expected_sha256 %s' % genuine['sha256'] in refused['msg'], refused.get('msg')
    assert 'Nothing was changed' in refused['msg'] and databases(sandbox, db) == []
    # The genuine dump beside a manifest that names another sha256: its facts are not used.
    mismatched = copy_dump(genuine, tmp_path / 'mismatched')
    rewrite_manifest(mismatched, sha256=other['sha256'])
    refused = run_module('db_restore', restore_args(sandbox, mismatched, db, expected_sha256=genuine['sha256'].upper()))
    assert refused['failed'] and 'describes another dump' in refused['msg'], refused.get('msg')
    assert databases(sandbox, db) == []

    # The genuine dump without its manifest: expected_sha256 vouches for it.
    alone = tmp_path / 'alone'
    alone.mkdir()
    shutil.copy(genuine['path'], str(alone))
    restored = run_module('db_restore', restore_args(sandbox, alone / os.path.basename(genuine['path']), db,
                                                     expected_sha256=genuine['sha256']))
    assert not restored['failed'], restored.get('msg')
    assert restored['sha256'] == genuine['sha256'] and restored['manifest'] is None and restored['db_uuid'] == sandbox['db_uuid']

    # A directory dump: the same tree digest db_dump records.
    directory = direct_dump(sandbox, tmp_path / 'directory', fmt='directory')
    args = restore_args(sandbox, directory['path'], PREFIX + 'expected_dir', expected_sha256=directory['sha256'])
    ok = run_module('db_restore', args)
    assert not ok['failed'] and ok['sha256'] == directory['sha256'], ok.get('msg')
    with open(os.path.join(directory['path'], 'toc.dat'), 'ab') as handle:
        handle.write(b'\0')
    refused = run_module('db_restore', dict(args, db=PREFIX + 'expected_dir2'))
    assert refused['failed'] and 'not the expected_sha256' in refused['msg'] and databases(sandbox, PREFIX + 'expected_dir2') == []


# ------------------------------------------------------------------ item 1: no code of a restored database runs as superuser

EVIL = '''
CREATE TABLE public.witness (who text, session_user_name text, at text);
CREATE FUNCTION public.evil(place text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $body$
BEGIN
    BEGIN
        EXECUTE format('COPY (SELECT 1) TO PROGRAM %%L', 'touch %(flag)s');
    EXCEPTION WHEN others THEN NULL;
    END;
    BEGIN
        INSERT INTO public.witness VALUES (current_user, session_user, place);
    EXCEPTION WHEN others THEN NULL;
    END;
    RETURN true;
END
$body$;
CREATE FUNCTION public.evil_index(value bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    PERFORM public.evil('index');
    RETURN value;
END
$body$;
CREATE TABLE public.indexed (id bigint);
INSERT INTO public.indexed SELECT generate_series(1, 50);
CREATE INDEX indexed_evil ON public.indexed ((public.evil_index(id)));
-- An operator that matches "varchar = unknown" better than pg_catalog's text = text (CVE-2018-1058's pattern):
-- configuration.name, originalfile.repo ... are varchar.
CREATE FUNCTION public.evil_eq(a varchar, b varchar) RETURNS boolean LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM public.evil('operator');
    RETURN a::text OPERATOR(pg_catalog.=) b::text;
END
$body$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.evil_eq);
-- Views named like OMERO tables the collection counts or reads, in public where the table is missing ...
CREATE VIEW public.image AS SELECT 1::bigint AS id WHERE public.evil('public.image');
CREATE VIEW public.project AS SELECT 1::bigint AS id WHERE public.evil('public.project');
-- ... and in a schema named like the superuser, first in the default search path ("$user", public).
CREATE SCHEMA %(superuser)s;
CREATE VIEW %(superuser)s.dbpatch AS SELECT 1 AS id, 'OMERO0.0'::text AS currentversion, 0 AS currentpatch
    WHERE public.evil('dbpatch');
CREATE VIEW %(superuser)s.configuration AS SELECT 'omero.db.uuid'::text AS name, 'evil'::text AS value
    WHERE public.evil('configuration');
CREATE VIEW %(superuser)s.pixels AS SELECT 1::bigint AS id WHERE public.evil('pixels');
CREATE VIEW %(superuser)s.originalfile AS SELECT 1::bigint AS id, ''::text AS path, ''::text AS name, NULL::text AS repo,
    'Repository'::text AS mimetype, ''::text AS hash WHERE public.evil('originalfile');
'''


def test_queries_in_a_hostile_restored_database_run_none_of_its_code(sandbox, scratch, tmp_path):
    source, db = PREFIX + 'hostile_src', PREFIX + 'hostile'
    superuser = sandbox['postgres']['superuser']
    flag = '/tmp/omero-backup-pwned-%s' % secrets.token_hex(8)
    try:
        _hostile_restore(sandbox, tmp_path, source, db, superuser, flag)
    finally:
        if os.path.exists(flag):
            os.unlink(flag)


def _hostile_restore(sandbox, tmp_path, source, db, superuser, flag):
    dumped = direct_dump(sandbox, tmp_path / 'clean')
    made = run_module('db_restore', restore_args(sandbox, dumped['path'], source))
    assert not made['failed'], made.get('msg')
    # What the owner role (its password is in OMERO's configuration) can add to its own database.
    conn = psycopg2_connect(sandbox, dbname=source, role='owner')
    try:
        with conn.cursor() as cursor:
            cursor.execute(EVIL % {'flag': flag, 'superuser': superuser})
        conn.commit()
    finally:
        conn.close()
    # The traps are armed: the default search path picks them (shown as the owner, who may not run programs).
    query(sandbox, "SELECT count(*) FROM configuration WHERE name = 'omero.db.uuid'", dbname=source, role='owner')
    query(sandbox, 'SELECT count(*) FROM image', dbname=source, role='owner')
    armed = set(row[0] for row in query(sandbox, 'SELECT at FROM public.witness', dbname=source, role='owner'))
    assert {'operator', 'public.image'} <= armed, armed
    query(sandbox, 'DELETE FROM public.witness', dbname=source, role='owner')
    # A plain pg_dump of it, and a manifest written for it as db_dump would (without db_dump's own queries).
    hostile = str(tmp_path / 'hostile.pg_dump')
    subprocess.check_call([os.path.join(sandbox['postgres']['bindir'], 'pg_dump'), '-Fc', '-f', hostile, source],
                          env=dict(os.environ, PGHOST=sandbox['postgres']['host'], PGPORT=str(sandbox['postgres']['port']),
                                   PGUSER=superuser))
    shutil.copy(dumped['manifest'], hostile + '.manifest.json')
    rewrite_manifest(hostile)

    def assert_nothing_ran_as_superuser():
        assert not os.path.exists(flag), 'the restored database ran COPY ... TO PROGRAM as a superuser'
        witnesses = query(sandbox, 'SELECT who, session_user_name, at FROM public.witness ORDER BY 3', dbname=db)
        # Index expressions ran (pg_restore's CREATE INDEX, ANALYZE) as the table's owner only, never as the superuser;
        # no view ran at all.
        assert all(who == sandbox['postgres']['owner'] for who, _session, _at in witnesses), witnesses
        assert set(at for _who, _session, at in witnesses) <= {'index'}, witnesses

    restored = run_module('db_restore', restore_args(sandbox, hostile, db))
    assert not restored['failed'], restored.get('msg')
    assert_nothing_ran_as_superuser()
    assert restored['db_uuid'] == sandbox['db_uuid'] and restored['schema_version'] == sandbox['schema']['version']
    assert 'image' not in restored['row_counts'] and 'project' not in restored['row_counts']
    assert restored['row_counts']['pixels'] == sandbox['counts']['db_rows']['pixels']
    # The other modules that query a database as superuser: db_dump, info, verify.
    dumped_again = run_module('db_dump', dict(connection_args(sandbox), db=db, dest=str(tmp_path / 'again')))
    assert not dumped_again['failed'] and dumped_again['omero']['db_uuid'] == sandbox['db_uuid'], dumped_again.get('msg')
    info = run_module('info', dict(connection_args(sandbox), db=db, datadir=sandbox['datadir']))
    assert not info['failed'] and info['omero']['db_uuid'] == sandbox['db_uuid'], info.get('msg')
    verified = run_module('verify', dict(connection_args(sandbox), db=db, datadir=sandbox['datadir'], fail_on_problems=False))
    assert verified.get('db_uuid') == sandbox['db_uuid'], verified

    assert_nothing_ran_as_superuser()
    assert json.dumps(restored).count('evil') == 0


# ------------------------------------------------------------------ state=absent

def test_state_absent_drops_only_marked_databases_idempotently_and_honestly(sandbox, restored, tmp_path):
    db = PREFIX + 'absent'
    restored(db)
    args = restore_args(sandbox, None, db, state='absent')
    checked = run_module('db_restore', args, check=True, diff=True)
    assert not checked['failed'] and checked['changed'] and checked['dropped'], checked.get('msg')
    assert 'restored from sha256=' in checked['diff']['before'] and checked['diff']['after'] == 'database: absent\n'
    assert databases(sandbox, db) == [db]

    session = psycopg2_connect(sandbox, dbname=db)
    try:
        dropped = run_module('db_restore', args, diff=True)
        assert not dropped['failed'] and dropped['changed'] and dropped['dropped'], dropped.get('msg')
        assert 'ended 1 session' in dropped['msg']
    finally:
        session.close()
    assert databases(sandbox, db) == []
    again = run_module('db_restore', args, diff=True)
    assert not again['failed'] and again['changed'] is False and again['dropped'] is False and 'is absent' in again['msg']

    # A database the collection did not make is dropped only with force=true.
    conn = psycopg2_connect(sandbox, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute('CREATE DATABASE "%s"' % (PREFIX + 'foreign'))
    finally:
        conn.close()
    foreign = restore_args(sandbox, None, PREFIX + 'foreign', state='absent')
    refused = run_module('db_restore', foreign)
    assert refused['failed'] and 'carries no omero.backup comment' in refused['msg'] and 'force=true' in refused['msg']
    assert databases(sandbox, PREFIX + 'foreign') == [PREFIX + 'foreign']
    forced = run_module('db_restore', dict(foreign, force=True))
    assert not forced['failed'] and forced['dropped'] and databases(sandbox, PREFIX + 'foreign') == []
    never = run_module('db_restore', restore_args(sandbox, None, 'postgres', state='absent', force=True))
    assert never['failed'] and 'never drops' in never['msg']
