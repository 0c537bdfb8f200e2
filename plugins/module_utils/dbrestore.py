# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of an OMERO database dump the way the OMERO docs describe it, with the checks they leave out.

Order: find and verify the dump (sha256 against its manifest) before touching
anything; create the non-superuser owner role and an empty UTF8 database from
template0 when missing; refuse a non-empty target unless ``state=replaced``;
``pg_restore --exit-on-error``; ``vacuumdb --analyze-only``, since a restore
brings no planner statistics. The target database carries a comment that says
whether it holds a complete restore (``omero.backup restored sha256=...``) or not,
and whether its ANALYZE is still to run, which also makes a second run with the
same dump ``changed=false``. One restore at a time per host, port and database
(a lock file keyed by them).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import shutil
import time

from ansible_collections.omero.backup.plugins.module_utils import postgres
from ansible_collections.omero.backup.plugins.module_utils.common import OmeroBackupError, iso_time, sha256_file
from ansible_collections.omero.backup.plugins.module_utils.dbdump import (DATABASE_ERRORS, list_dumps, scrub, tool_path, tree_digest,
                                                                          tree_files)
from ansible_collections.omero.backup.plugins.module_utils.locking import (AlreadyRunning, ExclusiveLock, keyed_lock_path,
                                                                           lock_file_hint)
from ansible_collections.omero.backup.plugins.module_utils.manifest import (MANIFEST_SUFFIX, ManifestError, manifest_path_for,
                                                                            read_manifest, verify_manifest_files)

COMMENT_RESTORED = 'omero.backup restored sha256=%s from %s at %s'
COMMENT_IN_PROGRESS = 'omero.backup restore NOT COMPLETE: started %s from %s (sha256=%s)'
# Appended to COMMENT_RESTORED until ANALYZE has run: pg_restore brings no planner statistics, and a run that
# failed or skipped ANALYZE must be told apart from a finished one so that the next run with analyze=true does it.
COMMENT_ANALYZE_PENDING = '; ANALYZE pending (no planner statistics yet)'
_RESTORED = re.compile(r'^omero\.backup restored sha256=([0-9a-f]{64}) ')
ROW_COUNT_TABLES = ('experimenter', 'project', 'dataset', 'image', 'pixels', 'fileset', 'originalfile', 'thumbnail')


class DbRestoreError(OmeroBackupError):
    """A restore problem explained for the operator; ``result`` holds what was done before it, if anything."""

    def __init__(self, message, result=None):
        super(DbRestoreError, self).__init__(message)
        self.result = result


def database_lock_path(params, db, lock_dir=None):
    """The lock serialising restores into one database: keyed by host (or socket directory), port and name."""
    host = params.get('login_unix_socket') or params.get('login_host') or ''
    if host.startswith('/'):
        host = os.path.realpath(host)
    return keyed_lock_path('database', '%s:%s/%s' % (host.lower(), params.get('port') or 5432, db), lock_dir)


def _acquire_lock(path, purpose):
    lock = ExclusiveLock(path, purpose)
    try:
        return lock.acquire()
    except AlreadyRunning as exc:
        raise DbRestoreError('%s. Nothing was changed.' % exc)
    except OSError as exc:
        raise DbRestoreError('cannot take the lock %s: %s. %sNothing was changed.'
                             % (path, exc.strerror or exc, lock_file_hint(path)))


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
    state['analyze_pending'] = bool(match) and COMMENT_ANALYZE_PENDING in state['comment']
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
        pending = ', ANALYZE pending' if target.get('analyze_pending') else ''
        lines.append('database: restored from sha256=%s%s' % (target['restored_sha256'], pending))
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


_ROLES_FILE_PASSWORD = re.compile(r"""^ALTER ROLE (?P<name>"(?:[^"]|"")+"|[^\s"]+) WITH .*? PASSWORD '(?P<verifier>(?:[^']|'')*)';$""")


def roles_file_verifier(path, role):
    """The stored password verifier (SCRAM-SHA-256 or md5 hash, never clear text) of ``role`` in a pg_dumpall
    --roles-only file, or None when the file has none for it (saved with --no-role-passwords)."""
    with open(path, 'r', encoding='utf-8', errors='replace') as handle:
        for line in handle:
            match = _ROLES_FILE_PASSWORD.match(line.rstrip('\n'))
            if not match:
                continue
            name = match.group('name')
            if name.startswith('"'):
                name = name[1:-1].replace('""', '"')
            if name != role:
                continue
            verifier = match.group('verifier').replace("''", "'")
            if verifier.startswith('SCRAM-SHA-256$') or re.match(r'^md5[0-9a-f]{32}$', verifier):
                return verifier
            return None
    return None


def _owner_verifier_from_roles_file(path, record, owner, result):
    """The owner's verifier from the dump's roles file (owner_from_roles_file), with a warning when there is none."""
    roles_name = record.get('globals_path')
    if not roles_name:
        result['warnings'].append('owner_from_roles_file: the dump has no roles file (db_dump globals=false); role %s is '
                                  'created without a password' % owner)
        return None
    dump_owner = record.get('database_owner') or owner
    verifier = roles_file_verifier(os.path.join(os.path.dirname(path), roles_name), dump_owner)
    if verifier and verifier.startswith('md5') and dump_owner != owner:
        # An md5 hash is salted with the role name: it cannot log in under another name.
        verifier = None
    if not verifier:
        result['warnings'].append('owner_from_roles_file: %s holds no usable password of role %s (saved without passwords, '
                                  'or an md5 hash of another role name); role %s is created without a password'
                                  % (roles_name, dump_owner, owner))
    return verifier


def _create_role(admin, owner, password, verifier=None):
    sql = 'CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' % postgres.quote_ident(admin, owner)
    with admin.cursor() as cursor:
        if password or verifier:
            cursor.execute(sql + ' PASSWORD %s', (scram_sha256(password) if password else verifier,))
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


def require_tools(params, names):
    """Refuse before any change when a client tool the run needs is missing (run_command would only say it failed)."""
    missing = []
    for name in names:
        path = tool_path(params, name)
        found = os.access(path, os.X_OK) if os.sep in path else shutil.which(path)
        if not found:
            missing.append(path)
    if missing:
        raise DbRestoreError('%s not found%s (install the PostgreSQL client tools%s). Nothing was changed.'
                             % (', '.join(missing), ' in pg_bindir' if params.get('pg_bindir') else ' on PATH',
                                '; analyze=false restores without vacuumdb' if any(m.endswith('vacuumdb') for m in missing)
                                else ''))


def analyze(params, runner, db, jobs):
    """``vacuumdb --analyze-only`` of ``db``; returns (seconds, warnings).

    The database goes in PGDATABASE, not argv, where a name holding ``=`` would be read as a connection string.
    """
    argv = [tool_path(params, 'vacuumdb'), '--no-password', '--analyze-only', '--quiet']
    if jobs > 1:
        argv += ['--jobs', str(jobs)]
    started = time.time()
    rc, out, err = runner(argv, env=postgres.libpq_env(params, dbname=db))
    seconds = round(time.time() - started, 3)
    if rc != 0:
        raise OmeroBackupError('vacuumdb --analyze-only failed (rc %d): %s' % (rc, scrub(err or out, params) or 'no message'))
    # A login user that owns neither the database nor its tables gets a WARNING per table skipped, and rc 0.
    warnings = [line.strip() for line in (err or '').splitlines() if line.startswith('WARNING')]
    return seconds, warnings


def row_counts(conn):
    counts = {}
    for table in ROW_COUNT_TABLES:
        if postgres.table_exists(conn, table):
            counts[table] = postgres.query_one(conn, 'SELECT count(*) FROM %s' % table)[0]
    return counts


def restore(params, runner, check_mode=False):
    """Run one db_restore; returns the module result (without ``failed``).

    The lock is taken before the dump is read, so a second restore into the same database fails at once; check mode
    changes nothing and takes none.
    """
    db = params['db']
    try:
        lock_path = database_lock_path(params, db, params.get('lock_dir'))
    except OSError as exc:
        raise DbRestoreError('%s: set lock_dir. Nothing was changed.' % (exc.strerror or exc))
    lock = None if check_mode else _acquire_lock(lock_path, 'db_restore into %s' % postgres.describe_target(params, db))
    try:
        result = _restore(params, runner, check_mode)
    except DbRestoreError as exc:
        if exc.result is not None:
            exc.result['lock'] = lock_path
        raise
    except DATABASE_ERRORS as exc:
        raise DbRestoreError('PostgreSQL refused a step of the restore of %s: %s' % (db, scrub(str(exc), params)))
    finally:
        if lock is not None:
            lock.release()
    result['lock'] = lock_path
    return result


def _restore(params, runner, check_mode):
    db, owner, state = params['db'], params['owner'], params.get('state') or 'present'
    jobs = 1 if params.get('jobs') is None else params['jobs']
    want_analyze = params.get('analyze', True) is not False
    if jobs < 1:
        raise DbRestoreError('jobs must be 1 or more, got %d' % jobs)
    clock = time.time()
    path, fmt, manifest_path = resolve_source(params['src'], db)
    record, digest = verify_source(path, fmt, manifest_path, params.get('verify', True))
    result = {'changed': False, 'restored_from': path, 'manifest': manifest_path, 'format': fmt, 'sha256': digest,
              'created': {'role': False, 'database': False}, 'replaced': False, 'analyzed': False, 'warnings': [],
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
            if want_analyze and target['analyze_pending']:
                require_tools(params, ['vacuumdb'])
                return _analyze_only(params, runner, admin, db, jobs, target, before, check_mode, clock, result)
            result.update(msg='%s already holds a complete restore of this dump (sha256 %s); nothing to do' % (db, digest),
                          diff={'before': before, 'after': before})
            return _with_facts(params, result, db)
        if target['exists'] and target['relations'] and state != 'replaced':
            raise DbRestoreError('database %s is not empty (%d relations%s): refusing to restore into it. pg_restore into an '
                                 'existing schema fails on the OMERO triggers and would mix two databases. Set '
                                 'state=replaced to drop it and restore (its current content is lost). Nothing was changed.'
                                 % (db, target['relations'], ', comment: %s' % target['comment'] if target['comment'] else ''))

        require_tools(params, ['pg_restore'] + (['vacuumdb'] if want_analyze else []))
        will_replace = target['exists'] and bool(target['relations'])
        dump_owner = record.get('database_owner')
        result['diff'] = {'before_header': '%s (before)' % db, 'after_header': '%s (after)' % db,
                          'before': before, 'after': _describe(True, {'exists': True, 'restored_sha256': digest,
                                                                      'analyze_pending': not want_analyze})}
        result['changed'] = True
        result['created'] = {'role': not role_exists, 'database': not target['exists'] or will_replace}
        result['replaced'] = will_replace
        result['analyzed'] = want_analyze
        verifier = None
        if not role_exists:
            if params.get('owner_password'):
                result['owner_password_source'] = 'owner_password'
            elif params.get('owner_from_roles_file'):
                verifier = _owner_verifier_from_roles_file(path, record, owner, result)
            result.setdefault('owner_password_source', 'roles_file' if verifier else 'none')
        if check_mode:
            actions = []
            if not role_exists:
                actions.append('create role %s (password: %s)' % (owner, result['owner_password_source'].replace('_', ' ')))
            if will_replace:
                actions.append('drop database %s (%d relations) after ending its sessions' % (db, target['relations']))
            if not target['exists'] or will_replace:
                actions.append('create database %s owned by %s' % (db, owner))
            actions.append('pg_restore %s into %s' % (path, db))
            if want_analyze:
                actions.append('ANALYZE %s' % db)
            result['msg'] = 'would ' + ', '.join(actions)
            return result

        if not role_exists:
            _create_role(admin, owner, params.get('owner_password'), verifier)
            if not params.get('owner_password') and not verifier and not params.get('owner_from_roles_file'):
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
        restored_comment = COMMENT_RESTORED % (digest, os.path.basename(path), iso_time())
        _set_comment(admin, db, restored_comment + COMMENT_ANALYZE_PENDING)
        result['msg'] = 'restored %s into %s%s' % (os.path.basename(path), db, ' (replaced)' if result['replaced'] else '')
        if want_analyze:
            _run_analyze(params, runner, admin, db, jobs, restored_comment, result)
    finally:
        admin.close()
    result['duration'] = round(time.time() - clock, 3)
    return _with_facts(params, result, db)


def _run_analyze(params, runner, admin, db, jobs, restored_comment, result):
    """ANALYZE, then the comment without its pending mark; a failure keeps the mark, so the next run retries."""
    try:
        seconds, warnings = analyze(params, runner, db, jobs)
    except OmeroBackupError as exc:
        result['analyzed'] = False
        failed = dict(result, changed=True)
        for key in ('diff', 'msg'):
            failed.pop(key, None)
        raise DbRestoreError('%s, but ANALYZE failed: %s. The data is complete; without planner statistics OMERO.server '
                             'runs slowly until autovacuum analyzes the tables. Run the task again to retry ANALYZE '
                             '(the database comment says it is pending).' % (result['msg'], exc), failed)
    result['analyze_duration'] = seconds
    result['warnings'].extend(warnings[:20])
    _set_comment(admin, db, restored_comment)
    result['msg'] += ', then ANALYZE (%.1f s)' % seconds


def _analyze_only(params, runner, admin, db, jobs, target, before, check_mode, clock, result):
    """The dump is restored but its ANALYZE failed or was left out (analyze=false) then: run it now."""
    restored_comment = target['comment'].replace(COMMENT_ANALYZE_PENDING, '')
    result.update(changed=True, analyzed=True,
                  diff={'before': before, 'after': _describe(True, dict(target, analyze_pending=False))})
    if check_mode:
        result['msg'] = 'would ANALYZE %s, which holds this dump without planner statistics' % db
        return _with_facts(params, result, db)
    result['msg'] = '%s already held this dump without planner statistics' % db
    _run_analyze(params, runner, admin, db, jobs, restored_comment, result)
    result['duration'] = round(time.time() - clock, 3)
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
