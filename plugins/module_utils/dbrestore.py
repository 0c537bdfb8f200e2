# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of an OMERO database dump the way the OMERO docs describe it, with the checks they leave out.

Order: find and verify the dump (sha256 against its manifest) before touching
anything; create the non-superuser owner role and an empty UTF8 database from
template0 when missing; refuse a non-empty target unless ``state=replaced``;
``pg_restore --exit-on-error``. The target database carries a comment that says
whether it holds a complete restore (``omero.backup restored sha256=...``) or not,
which also makes a second run with the same dump ``changed=false``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import time

from ansible_collections.omero.backup.plugins.module_utils import postgres
from ansible_collections.omero.backup.plugins.module_utils.common import OmeroBackupError, iso_time, sha256_file
from ansible_collections.omero.backup.plugins.module_utils.dbdump import (DATABASE_ERRORS, list_dumps, scrub, tool_path, tree_digest,
                                                                          tree_files)
from ansible_collections.omero.backup.plugins.module_utils.manifest import (MANIFEST_SUFFIX, ManifestError, manifest_path_for,
                                                                            read_manifest, verify_manifest_files)

COMMENT_RESTORED = 'omero.backup restored sha256=%s from %s at %s'
COMMENT_IN_PROGRESS = 'omero.backup restore NOT COMPLETE: started %s from %s (sha256=%s)'
_RESTORED = re.compile(r'^omero\.backup restored sha256=([0-9a-f]{64}) ')
ROW_COUNT_TABLES = ('experimenter', 'project', 'dataset', 'image', 'pixels', 'fileset', 'originalfile', 'thumbnail')


class DbRestoreError(OmeroBackupError):
    """A restore problem explained for the operator."""


def resolve_source(src, db=None):
    """(dump path, format, manifest path or None) for a dump, its manifest, or a directory of dumps."""
    src = src.rstrip('/') or '/'
    if src.endswith(MANIFEST_SUFFIX):
        manifest = src
        src = src[:-len(MANIFEST_SUFFIX)]
        if not os.path.exists(src):
            raise DbRestoreError('the manifest %s names a dump that is not there (%s)' % (manifest, src))
    if not os.path.exists(src):
        raise DbRestoreError('src %s does not exist' % src)
    if os.path.isdir(src) and not os.path.exists(os.path.join(src, 'toc.dat')):
        dumps = list_dumps(src, db) or list_dumps(src)
        complete = [item for item in dumps if item['complete']]
        if not complete:
            raise DbRestoreError('no complete dump in %s (found %d dump(s) without a complete manifest%s)'
                                 % (src, len(dumps), (': ' + ', '.join(item['name'] for item in dumps[:5])) if dumps else ''))
        src = complete[0]['path']
    fmt = 'directory' if os.path.isdir(src) else 'custom'
    manifest = manifest_path_for(src)
    return src, fmt, manifest if os.path.exists(manifest) else None


def verify_source(path, fmt, manifest_path, verify):
    """The manifest record (or {}) and the dump's sha256; raises DbRestoreError when it does not match."""
    record = {}
    if manifest_path:
        try:
            record = read_manifest(manifest_path)
        except ManifestError as exc:
            if verify:
                raise DbRestoreError('%s; refusing to restore an unverifiable dump (verify=false skips this check)' % exc)
    if verify:
        if not manifest_path:
            raise DbRestoreError('%s has no manifest (%s): refusing to restore a dump that cannot be verified '
                                 '(verify=false skips this check)' % (path, manifest_path_for(path)))
        if record.get('complete') is not True:
            raise DbRestoreError('the manifest %s does not say complete: the dump was interrupted or is still being written; '
                                 'refusing to restore it (verify=false skips this check)' % manifest_path)
        problems = verify_manifest_files(os.path.dirname(path), record.get('files') or [])
        if not record.get('files'):
            problems.append('the manifest lists no files')
        if problems:
            raise DbRestoreError('%s does not match its manifest, the dump is damaged: %s. Nothing was changed.'
                                 % (path, '; '.join(problems[:5])))
        if record.get('sha256'):
            return record, record['sha256']
    if fmt == 'directory':
        digest = tree_digest([{'path': rel, 'sha256': sha256_file(os.path.join(path, rel))} for rel in tree_files(path)])
    else:
        digest = sha256_file(path)
    return record, digest


def _target_state(params, admin, db):
    """What the target database looks like: absent, or present with its owner, comment and relation count."""
    state = {'exists': postgres.database_exists(admin, db), 'relations': 0, 'comment': None, 'owner': None,
             'restored_sha256': None}
    if not state['exists']:
        return state
    row = postgres.query_one(admin, "SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database') "
                                    "FROM pg_database WHERE datname = %s", (db,))
    state['owner'], state['comment'] = row
    match = _RESTORED.match(state['comment'] or '')
    state['restored_sha256'] = match.group(1) if match else None
    conn = postgres.connect(params, db)
    try:
        state['relations'] = postgres.query_one(
            conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%' "
                  "AND n.nspname NOT LIKE 'pg_temp%%'")[0]
    finally:
        conn.close()
    return state


def _describe(role_exists, target):
    lines = ['role: %s' % ('present' if role_exists else 'absent')]
    if not target['exists']:
        lines.append('database: absent')
    elif target['restored_sha256']:
        lines.append('database: restored from sha256=%s' % target['restored_sha256'])
    else:
        lines.append('database: %s (%d relations)' % ('empty' if not target['relations'] else 'NOT EMPTY', target['relations']))
    return '\n'.join(lines) + '\n'


def _set_comment(admin, db, text):
    with admin.cursor() as cursor:
        cursor.execute('COMMENT ON DATABASE %s IS %%s' % postgres.quote_ident(admin, db), (text,))


def scram_sha256(password, salt=None, iterations=4096):
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password``.

    Sending the verifier instead of the password keeps the clear text out of the
    server log (log_statement=ddl) and pg_stat_activity.
    """
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    b64 = base64.b64encode
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, b64(salt).decode('ascii'), b64(stored_key).decode('ascii'),
                                          b64(server_key).decode('ascii'))


def _create_role(admin, owner, password):
    sql = 'CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' % postgres.quote_ident(admin, owner)
    with admin.cursor() as cursor:
        if password:
            cursor.execute(sql + ' PASSWORD %s', (scram_sha256(password),))
        else:
            cursor.execute(sql)


def _create_database(admin, db, owner):
    with admin.cursor() as cursor:
        cursor.execute("CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0"
                       % (postgres.quote_ident(admin, db), postgres.quote_ident(admin, owner)))


def _drop_database(admin, db):
    quoted = postgres.quote_ident(admin, db)
    with admin.cursor() as cursor:
        cursor.execute('ALTER DATABASE %s WITH ALLOW_CONNECTIONS false' % quoted)
        cursor.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()',
                       (db,))
        if postgres.server_version_num(admin) >= 130000:
            cursor.execute('DROP DATABASE %s WITH (FORCE)' % quoted)
        else:
            cursor.execute('DROP DATABASE %s' % quoted)


def row_counts(conn):
    counts = {}
    for table in ROW_COUNT_TABLES:
        if postgres.table_exists(conn, table):
            counts[table] = postgres.query_one(conn, 'SELECT count(*) FROM %s' % table)[0]
    return counts


def restore(params, runner, check_mode=False):
    """Run one db_restore; returns the module result (without ``failed``)."""
    try:
        return _restore(params, runner, check_mode)
    except DATABASE_ERRORS as exc:
        raise DbRestoreError('PostgreSQL refused a step of the restore of %s: %s' % (params['db'], scrub(str(exc), params)))


def _restore(params, runner, check_mode):
    db, owner, state = params['db'], params['owner'], params.get('state') or 'present'
    jobs = 1 if params.get('jobs') is None else params['jobs']
    if jobs < 1:
        raise DbRestoreError('jobs must be 1 or more, got %d' % jobs)
    clock = time.time()
    path, fmt, manifest_path = resolve_source(params['src'], db)
    record, digest = verify_source(path, fmt, manifest_path, params.get('verify', True))
    result = {'changed': False, 'restored_from': path, 'manifest': manifest_path, 'format': fmt, 'sha256': digest,
              'created': {'role': False, 'database': False}, 'replaced': False, 'warnings': [],
              'schema_version': (record.get('omero') or {}).get('schema_version'),
              'schema_patch': (record.get('omero') or {}).get('schema_patch')}
    if not params.get('verify', True):
        result['warnings'].append('verify=false: the dump was not checked against a manifest')

    expected = params.get('expected_schema')
    if expected and result['schema_version'] != expected:
        if not params.get('force'):
            raise DbRestoreError('the dump holds OMERO schema %s, not the expected %s: an OMERO.server refuses to start on a '
                                 'database of another schema version. Nothing was changed (force=true restores it anyway).'
                                 % (result['schema_version'] or 'unknown (no manifest)', expected))
        result['warnings'].append('schema %s differs from expected_schema %s; restored because force=true'
                                  % (result['schema_version'] or 'unknown', expected))

    admin = postgres.connect(params, 'postgres')
    try:
        role_exists = postgres.role_exists(admin, owner)
        target = _target_state(params, admin, db)
        before = _describe(role_exists, target)
        if target['exists'] and target['restored_sha256'] == digest:
            result.update(msg='%s already holds a complete restore of this dump (sha256 %s); nothing to do' % (db, digest),
                          diff={'before': before, 'after': before})
            return _with_facts(params, result, db)
        if target['exists'] and target['relations'] and state != 'replaced':
            raise DbRestoreError('database %s is not empty (%d relations%s): refusing to restore into it. pg_restore into an '
                                 'existing schema fails on the OMERO triggers and would mix two databases. Set '
                                 'state=replaced to drop it and restore (its current content is lost). Nothing was changed.'
                                 % (db, target['relations'], ', comment: %s' % target['comment'] if target['comment'] else ''))

        will_replace = target['exists'] and bool(target['relations'])
        dump_owner = record.get('database_owner')
        result['diff'] = {'before_header': '%s (before)' % db, 'after_header': '%s (after)' % db,
                          'before': before, 'after': _describe(True, {'exists': True, 'restored_sha256': digest})}
        result['changed'] = True
        result['created'] = {'role': not role_exists, 'database': not target['exists'] or will_replace}
        result['replaced'] = will_replace
        if check_mode:
            actions = []
            if not role_exists:
                actions.append('create role %s' % owner)
            if will_replace:
                actions.append('drop database %s (%d relations) after ending its sessions' % (db, target['relations']))
            if not target['exists'] or will_replace:
                actions.append('create database %s owned by %s' % (db, owner))
            actions.append('pg_restore %s into %s' % (path, db))
            result['msg'] = 'would ' + ', '.join(actions)
            return result

        if not role_exists:
            _create_role(admin, owner, params.get('owner_password'))
            if not params.get('owner_password'):
                result['warnings'].append('role %s was created without a password (owner_password not given): OMERO.server '
                                          'can log in only with peer/trust authentication until one is set' % owner)
        if will_replace:
            _drop_database(admin, db)
        if not target['exists'] or will_replace:
            _create_database(admin, db, owner)
        elif target['owner'] != owner:
            result['warnings'].append('database %s exists and is owned by %s, not %s' % (db, target['owner'], owner))
        started = iso_time()
        _set_comment(admin, db, COMMENT_IN_PROGRESS % (started, os.path.basename(path), digest))

        argv = [tool_path(params, 'pg_restore'), '--no-password', '--exit-on-error', '-F', 'd' if fmt == 'directory' else 'c',
                '--dbname', db]
        if jobs > 1:
            argv += ['-j', str(jobs)]
        else:
            argv.append('--single-transaction')
        if dump_owner and dump_owner != owner:
            # The dump's objects belong to another role name: create them as the new owner instead.
            argv += ['--no-owner', '--role', owner]
            result['warnings'].append('the dump was owned by %s; its objects were restored as owned by %s' % (dump_owner, owner))
        argv.append(path)
        rc, out, err = runner(argv, env=postgres.libpq_env(params))
        if rc != 0:
            lost = ('its previous content was dropped (state=replaced) and is lost; ' if will_replace else '')
            raise DbRestoreError(
                'pg_restore into %s failed (rc %d): %s. The database is marked as not restored (COMMENT ON DATABASE); %s'
                'fix the cause and run again with state=replaced, which drops the partial database first.'
                % (db, rc, scrub(err or out, params) or 'no message', lost))
        _set_comment(admin, db, COMMENT_RESTORED % (digest, os.path.basename(path), iso_time()))
    finally:
        admin.close()
    result['duration'] = round(time.time() - clock, 3)
    result['msg'] = 'restored %s into %s%s' % (os.path.basename(path), db, ' (replaced)' if result['replaced'] else '')
    return _with_facts(params, result, db)


def _with_facts(params, result, db):
    conn = postgres.connect(params, db)
    try:
        facts = postgres.omero_facts(conn)
        result['schema_version'] = facts['schema_version']
        result['schema_patch'] = facts['schema_patch']
        result['db_uuid'] = facts['db_uuid']
        result['row_counts'] = row_counts(conn)
    finally:
        conn.close()
    return result
