# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore of an OMERO database dump the way the OMERO docs describe it, with the checks they leave out.

Order: find and verify the dump (sha256 against ``expected_sha256``, the backup
set record's, and its manifest) and prove this pg_restore can read it
(``pg_restore --list``, the pg_dump version) before touching anything; create
the non-superuser owner role and an empty UTF8 database from template0 when
missing; refuse a non-empty target unless ``state=replaced``;
``pg_restore --exit-on-error``; ``vacuumdb --analyze-only``, since a restore
brings no planner statistics. The target database carries a comment that says
whether it holds a complete restore (``omero.backup restored sha256=...``) or not,
and whether its ANALYZE is still to run, which also makes a second run with the
same dump ``changed=false``. One restore at a time per host, port and database
(a lock file keyed by them).

``state=replaced`` never drops the database it replaces before the new one is
complete: the dump goes into a temporary database (``<db>_omero_backup_new_<hex>``),
is checked and analyzed there, and only then do two ``ALTER DATABASE ... RENAME``
in one transaction swap it in; the old one becomes ``<db>_omero_backup_old_<stamp>``
and is dropped (or kept, ``keep_replaced``). Any failure before the swap drops
the temporary database and leaves the old one as it was. A run killed on the way
leaves a temporary (or a replaced, to-be-dropped) database whose name and
comment say so; the next run for the same database drops it.

Every query this module runs in a restored database (its facts, row counts,
schema checks) goes through a connection whose search path is pg_catalog only,
names tables schema-qualified and reads ordinary tables only (postgres.py).
ANALYZE runs as ``login_user``: PostgreSQL (14.3, 13.7, 12.11, 11.16, 10.21 and
later) runs index expressions during ANALYZE as the table's owner in a
security-restricted operation; a ``SET ROLE`` of ours would be no boundary,
since code running under it may ``RESET ROLE``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import secrets
import shutil
import time

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.space import free_bytes
from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time, sha256_file, utc_now
from ansible_collections.omero.backup.plugins.module_utils.db_dump import DATABASE_ERRORS, artefact_size, list_dumps, scrub, tool_path, tree_digest, tree_files
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock, keyed_lock_path, lock_file_hint
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import (MANIFEST_SUFFIX, ManifestError, manifest_path_for, read_manifest,
                                                                                 verify_manifest_files)

COMMENT_RESTORED = 'omero.backup restored sha256=%s from %s at %s'
COMMENT_IN_PROGRESS = 'omero.backup restore NOT COMPLETE: started %s from %s (sha256=%s)'
# Appended to COMMENT_RESTORED until ANALYZE has run: pg_restore brings no planner statistics, and a run that
# failed or skipped ANALYZE must be told apart from a finished one so that the next run with analyze=true does it.
COMMENT_ANALYZE_PENDING = '; ANALYZE pending (no planner statistics yet)'
_RESTORED = re.compile(r'^omero\.backup restored sha256=([0-9a-f]{64}) ')
# Every comment db_restore writes starts so: state=absent drops only databases that carry it (unless force=true).
MARKER = 'omero.backup '
# state=replaced: the temporary database the dump goes into, and the name the replaced one takes at the swap.
# Both are <db> (cut to fit PostgreSQL's 63-byte names) + infix + a fixed-length tail.
NEW_INFIX = '_omero_backup_new_'
OLD_INFIX = '_omero_backup_old_'
NEW_TAIL_HEX = 8
OLD_STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
NAME_BYTES = 63
# Appended to the comment of the temporary database for as long as it is one: with its name, this is how the next
# run tells a killed run's leftover from a database of someone else's that happens to have such a name.
COMMENT_TEMPORARY = '; temporary database of a restore replacing "%s"'
# The comment of the replaced database after the swap; DROP PENDING until it is dropped (the next run drops it when
# this run could not), "kept" with keep_replaced=true (never dropped by the collection).
COMMENT_REPLACED = 'omero.backup replaced database "%s" (%s) at %s by a restore of %s (sha256=%s)'
REPLACED_DROP = 'DROP PENDING'
REPLACED_KEPT = 'kept, keep_replaced=true'
# Without database_bytes in a manifest, the restored size is guessed from the dump's: a compressed custom dump
# holds no index and compresses text several times.
ROUGH_SIZE_FACTOR = 5
# CVE-2022-1552: from these releases on, ANALYZE runs index expressions as the table owner, restricted.
_ANALYZE_RESTRICTED_SINCE = {10: 100021, 11: 110016, 12: 120011, 13: 130007, 14: 140003}
ROW_COUNT_TABLES = ('experimenter', 'project', 'dataset', 'image', 'pixels', 'fileset', 'originalfile', 'thumbnail')


class DbRestoreError(OmeroBackupError):
    """A restore problem explained for the operator; ``result`` holds what was done before it, if anything."""

    def __init__(self, message, result=None):
        super(DbRestoreError, self).__init__(message)
        self.result = result


def database_lock_path(params, db, lock_dir=None):
    """The lock serialising restores into one database: keyed by host (or socket directory), port and name."""
    host = postgres.server_host(params) or ''
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


def dump_digest(path, fmt):
    """The sha256 db_dump records for a dump: of the file, or for a directory dump of its ``sha256  relpath`` listing."""
    if fmt == 'directory':
        return tree_digest([{'path': rel, 'sha256': sha256_file(os.path.join(path, rel))} for rel in tree_files(path)])
    return sha256_file(path)


_SHA256 = re.compile(r'\A[0-9a-f]{64}\Z')


def verify_source(path, fmt, manifest_path, verify, expected_sha256=None):
    """The manifest record (or {}) and the dump's sha256; raises DbRestoreError when it does not match.

    With ``expected_sha256`` (the backup set record's, read from the store) the dump's own bytes must have that
    digest, whatever a manifest beside it says: whoever can write beside a dump can write a matching manifest.
    The manifest is then read for its facts only (owner, sizes, versions), and must at least name the same sha256.
    """
    record = {}
    expected = (expected_sha256 or '').strip().lower() or None
    if expected is not None and not _SHA256.match(expected):
        raise DbRestoreError('expected_sha256 must be 64 hexadecimal digits, got %r. Nothing was changed.' % expected_sha256)
    if manifest_path:
        try:
            record = read_manifest(manifest_path)
        except ManifestError as exc:
            if verify and expected is None:
                raise DbRestoreError('%s; refusing to restore an unverifiable dump (verify=false skips this check)' % exc)
            record = {}
    if expected is not None:
        actual = dump_digest(path, fmt)
        if actual != expected:
            raise DbRestoreError('%s has sha256 %s, not the expected_sha256 %s named by the backup set record: it is not '
                                 'the dump that was backed up (damaged, or replaced by whoever can write there). '
                                 'Refusing to restore it. Nothing was changed.' % (path, actual, expected))
        if record.get('sha256') and record['sha256'] != expected:
            raise DbRestoreError('the manifest %s describes another dump (sha256 %s) than %s (sha256 %s, as expected): '
                                 'refusing to use its facts. Nothing was changed.'
                                 % (manifest_path, record['sha256'], path, expected))
        return record, actual
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
    return record, dump_digest(path, fmt)


def _major(version):
    match = re.match(r'\s*(\d+)', version or '')
    return int(match.group(1)) if match else None


def prove_readable(params, runner, path, fmt, record):
    """Refuse, before any change, a dump this pg_restore cannot read; returns the versions for the result.

    A pg_dump newer than this pg_restore (its version from the manifest) is refused by major version: pg_restore
    cannot read a newer archive format (PostgreSQL 17's pg_dump writes 1.16, 15's pg_restore reads up to 1.14),
    and a newer pg_dump writes SQL for a newer server. Then ``pg_restore --list`` must read the archive's header
    and table of contents.
    """
    tool = tool_path(params, 'pg_restore')
    try:
        major, _minor, text = postgres.client_version(runner, tool)
    except postgres.PostgresError as exc:
        raise DbRestoreError('%s. Nothing was changed.' % exc)
    header = postgres.archive_version(path, fmt)
    facts = {'pg_restore_version': text, 'archive_version': '%d.%d.%d' % header if header else None}
    dumped_by = (record.get('postgres') or {}).get('client_version')
    dump_major = _major(dumped_by)
    if dump_major is not None and dump_major > major:
        raise DbRestoreError('the dump was made by pg_dump %s (archive version %s), newer than this pg_restore %s: it '
                             'cannot restore a newer pg_dump\'s archive. Install the PostgreSQL %d client tools and set '
                             'pg_bindir. Nothing was changed.'
                             % (dumped_by, facts['archive_version'] or 'unknown', text, dump_major))
    rc, out, err = runner([tool, '--list', '-F', 'd' if fmt == 'directory' else 'c', path], env={'LC_MESSAGES': 'C'})
    if rc != 0:
        raise DbRestoreError('pg_restore %s cannot read %s (archive version %s): %s. Refusing to restore it. Nothing was '
                             'changed.' % (text, path, facts['archive_version'] or 'unknown',
                                           scrub(err or out, params) or 'rc=%d' % rc))
    return facts


def _target_state(params, admin, db):
    """What the target database looks like: absent, or present with its owner, comment and relation count."""
    state = {'exists': postgres.database_exists(admin, db), 'relations': 0, 'comment': None, 'owner': None,
             'restored_sha256': None}
    if not state['exists']:
        return state
    row = postgres.query_one(admin, "SELECT pg_get_userbyid(datdba), shobj_description(oid, 'pg_database'), datallowconn "
                                    "FROM pg_database WHERE datname = %s", (db,))
    state['owner'], state['comment'], allowed = row
    match = _RESTORED.match(state['comment'] or '')
    state['restored_sha256'] = match.group(1) if match else None
    state['analyze_pending'] = bool(match) and COMMENT_ANALYZE_PENDING in state['comment']
    if not allowed:
        # ALLOW_CONNECTIONS false (a drop that did not finish): its content cannot be counted, so it is not empty.
        state['relations'] = None
        return state
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
    elif target['relations'] is None:
        lines.append('database: NOT EMPTY (connections not allowed, content not counted)')
    else:
        lines.append('database: %s (%d relations)' % ('empty' if not target['relations'] else 'NOT EMPTY', target['relations']))
    return '\n'.join(lines) + '\n'


def _not_empty(target):
    return target['exists'] and target['relations'] != 0


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


def _create_database(admin, db, owner, tablespace=None):
    sql = "CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0" % (
        postgres.quote_ident(admin, db), postgres.quote_ident(admin, owner))
    if tablespace and tablespace != 'pg_default':
        sql += ' TABLESPACE %s' % postgres.quote_ident(admin, tablespace)
    with admin.cursor() as cursor:
        cursor.execute(sql)


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
    """Rows of a few OMERO tables; only ordinary tables are read, schema-qualified (postgres.table_exists)."""
    counts = {}
    for table in ROW_COUNT_TABLES:
        if postgres.table_exists(conn, table):
            counts[table] = postgres.query_one(conn, 'SELECT pg_catalog.count(*) FROM %s' % postgres.qualified(conn, table))[0]
    return counts


def side_name(db, infix, tail):
    """``<db><infix><tail>``, with ``db`` cut (at a character boundary) so the whole fits PostgreSQL's 63 bytes."""
    budget = NAME_BYTES - len((infix + tail).encode('utf-8'))
    prefix = db.encode('utf-8')[:budget].decode('utf-8', 'ignore')
    return prefix + infix + tail


def temporary_name(db):
    return side_name(db, NEW_INFIX, secrets.token_hex(NEW_TAIL_HEX // 2))


def replaced_name(db, moment=None):
    return side_name(db, OLD_INFIX, (moment or utc_now()).strftime(OLD_STAMP_FORMAT))


def leftover_kind(db, name, comment):
    """'temporary' or 'replaced' when database ``name`` is what a killed restore into ``db`` left behind, else None.

    Both the name pattern and the comment must say so: a database of someone else's that happens to be named like
    one is never touched, and a replaced database kept on purpose (keep_replaced) is not a leftover.
    """
    comment = comment or ''
    new_prefix = side_name(db, NEW_INFIX, 'x' * NEW_TAIL_HEX)[:-NEW_TAIL_HEX]
    if (re.match(r'\A%s[0-9a-f]{%d}\Z' % (re.escape(new_prefix), NEW_TAIL_HEX), name)
            and comment.startswith(MARKER) and comment.endswith(COMMENT_TEMPORARY % db)):
        return 'temporary'
    old_prefix = side_name(db, OLD_INFIX, 'x' * 16)[:-16]
    if (re.match(r'\A%s[0-9]{8}T[0-9]{6}Z\Z' % re.escape(old_prefix), name)
            and comment.startswith('omero.backup replaced database "%s" (%s) ' % (db, REPLACED_DROP))):
        return 'replaced'
    return None


def _leftovers(admin, db):
    """The databases killed restores into ``db`` left behind (leftover_kind)."""
    rows = postgres.query_all(admin, "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database ORDER BY 1")
    return [name for name, comment in rows if leftover_kind(db, name, comment)]


def _drop_leftovers(admin, names, check_mode):
    """Under the database's lock no other restore into it runs, so its leftovers belong to dead runs."""
    if not check_mode:
        for name in names:
            _drop_database(admin, name)


def _space_plan(params, admin, db, target, record, path, will_replace):
    """Room the restore needs, and whether the filesystem holding the target's tablespace visibly has it.

    The new database is built while the old one (state=replaced) still exists, so for a while the cluster holds
    both: the old one's pg_database_size plus the restored size, estimated by the dump's database_bytes (the
    source's pg_database_size when it was dumped), else roughly from the dump's own size.
    """
    estimate = record.get('database_bytes')
    source = 'manifest'
    if not isinstance(estimate, int) or isinstance(estimate, bool) or estimate <= 0:
        estimate = artefact_size(path) * ROUGH_SIZE_FACTOR
        source = 'dump_size'
    old = postgres.database_size(admin, db) if will_replace else 0
    tablespace, location = postgres.tablespace_path(admin, params, db if target['exists'] else None)
    free = None
    if location:
        try:
            free = free_bytes(location)
        except OSError:
            location = None
    return {'old_database_bytes': old, 'restore_bytes_estimate': estimate, 'estimate_from': source,
            'peak_bytes': old + estimate, 'tablespace': tablespace, 'path': location, 'free_bytes': free,
            'checked': free is not None}


def _check_space(space, result):
    if not space['checked'] or space['free_bytes'] >= space['restore_bytes_estimate']:
        return
    text = ('the restore needs about %d bytes in tablespace %s (%s), %s, and only %d are free there'
            % (space['restore_bytes_estimate'], space['tablespace'], space['path'],
               'the size of the dumped database' if space['estimate_from'] == 'manifest'
               else 'a rough guess of %d times the dump\'s size' % ROUGH_SIZE_FACTOR, space['free_bytes']))
    if space['old_database_bytes']:
        text += ('; the database it replaces (%d bytes) is kept until the new one is complete'
                 % space['old_database_bytes'])
    if space['estimate_from'] != 'manifest':
        result['warnings'].append(text)
        return
    raise DbRestoreError('%s. Refusing to start. Nothing was changed.' % text)


def _analyze_warning(admin):
    """A warning when this server runs a restored database's index expressions with login_user's rights in ANALYZE."""
    number = postgres.server_version_num(admin)
    since = _ANALYZE_RESTRICTED_SINCE.get(number // 10000)
    if number >= 150000 or (since is not None and number >= since):
        return None
    return ('PostgreSQL %s runs the index expressions of the restored tables with the rights of %s during ANALYZE '
            '(fixed in 14.3, 13.7, 12.11, 11.16, 10.21, CVE-2022-1552): update the server'
            % (postgres.server_version(admin), 'login_user'))


def check_restored(params, db, record, result):
    """The restored database holds what the dump's manifest (and expected_schema) say, else DbRestoreError.

    Run before a restore is called complete (and before state=replaced swaps it in), on a pg_catalog-only
    connection reading ordinary tables only.
    """
    conn = postgres.connect(params, db)
    try:
        facts = postgres.omero_facts(conn)
    finally:
        conn.close()
    omero = record.get('omero') or {}
    problems = []
    for key in ('schema_version', 'db_uuid'):
        if omero.get(key) and facts[key] != omero[key]:
            problems.append('%s is %s, the manifest says %s' % (key, facts[key], omero[key]))
    expected = params.get('expected_schema')
    if expected and facts['schema_version'] != expected and not params.get('force'):
        problems.append('schema_version is %s, not the expected %s' % (facts['schema_version'], expected))
    if problems:
        raise DbRestoreError('the restored database does not hold what the dump was said to hold: %s'
                             % '; '.join(problems), None)
    return facts


def _pg_restore(params, runner, into, path, fmt, jobs, dump_owner, owner, result):
    argv = [tool_path(params, 'pg_restore'), '--no-password', '--exit-on-error', '-F', 'd' if fmt == 'directory' else 'c',
            '--dbname', into]
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
        return 'pg_restore failed (rc %d): %s' % (rc, (scrub(err or out, params) or 'no message').rstrip('.'))
    return None


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
        if (params.get('state') or 'present') == 'absent':
            result = _absent(params, check_mode)
        else:
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


_PROTECTED_DATABASES = ('postgres', 'template0', 'template1')


def _absent(params, check_mode):
    """state=absent: drop the database (ending its sessions), and what killed restores into it left."""
    db = params['db']
    if not db or db in _PROTECTED_DATABASES:
        raise DbRestoreError('state=absent never drops %r. Nothing was changed.' % db)
    admin = postgres.connect(params, 'postgres')
    try:
        leftovers = _leftovers(admin, db)
        target = _target_state(params, admin, db)
        before = _describe(True, target).split('\n', 1)[1]
        result = {'changed': bool(leftovers), 'dropped': False, 'leftovers_dropped': leftovers, 'warnings': [],
                  'diff': {'before_header': '%s (before)' % db, 'after_header': '%s (after)' % db,
                           'before': before, 'after': 'database: absent\n'}}
        if not target['exists']:
            _drop_leftovers(admin, leftovers, check_mode)
            result['msg'] = 'database %s is absent' % db
            if leftovers:
                result['msg'] += '; %s %s left by killed restores' % ('would drop' if check_mode else 'dropped',
                                                                      ', '.join(leftovers))
            return result
        template = postgres.query_one(admin, 'SELECT datistemplate FROM pg_database WHERE datname = %s', (db,))[0]
        if template:
            raise DbRestoreError('database %s is a template: state=absent does not drop templates. Nothing was changed.' % db)
        if not (target['comment'] or '').startswith(MARKER):
            if not params.get('force'):
                raise DbRestoreError('database %s carries no omero.backup comment (it was not made by db_restore%s): refusing '
                                     'to drop it; force=true drops it anyway. Nothing was changed.'
                                     % (db, ', its comment is: %s' % target['comment'] if target['comment'] else ''))
            result['warnings'].append('database %s carries no omero.backup comment; dropped because force=true' % db)
        result.update(changed=True, dropped=True)
        if check_mode:
            result['msg'] = 'would drop database %s after ending its sessions' % db
            return result
        _drop_leftovers(admin, leftovers, check_mode)
        sessions = postgres.query_one(admin, 'SELECT count(*) FROM pg_stat_activity WHERE datname = %s', (db,))[0]
        _drop_database(admin, db)
        result['msg'] = 'dropped database %s%s' % (db, ' (ended %d session(s))' % sessions if sessions else '')
        return result
    finally:
        admin.close()


def _restore(params, runner, check_mode):
    db, owner, state = params['db'], params['owner'], params.get('state') or 'present'
    jobs = 1 if params.get('jobs') is None else params['jobs']
    want_analyze = params.get('analyze', True) is not False
    if jobs < 1:
        raise DbRestoreError('jobs must be 1 or more, got %d' % jobs)
    if not params.get('src'):
        raise DbRestoreError('src is required with state=%s' % state)
    clock = time.time()
    path, fmt, manifest_path = resolve_source(params['src'], db)
    record, digest = verify_source(path, fmt, manifest_path, params.get('verify', True), params.get('expected_sha256'))
    result = {'changed': False, 'restored_from': path, 'manifest': manifest_path, 'format': fmt, 'sha256': digest,
              'created': {'role': False, 'database': False}, 'replaced': False, 'analyzed': False, 'warnings': [],
              'leftovers_dropped': [],
              'schema_version': (record.get('omero') or {}).get('schema_version'),
              'schema_patch': (record.get('omero') or {}).get('schema_patch')}
    if not params.get('verify', True) and not params.get('expected_sha256'):
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
        # Listed now, dropped only once nothing refuses the run (a refusal changes nothing).
        leftovers = result['leftovers_dropped'] = _leftovers(admin, db)
        role_exists = postgres.role_exists(admin, owner)
        target = _target_state(params, admin, db)
        before = _describe(role_exists, target)
        if target['exists'] and target['restored_sha256'] == digest:
            if want_analyze and target['analyze_pending']:
                require_tools(params, ['vacuumdb'])
                _drop_leftovers(admin, leftovers, check_mode)
                return _analyze_only(params, runner, admin, db, jobs, target, before, check_mode, clock, result)
            _drop_leftovers(admin, leftovers, check_mode)
            result.update(msg='%s already holds a complete restore of this dump (sha256 %s); nothing to do' % (db, digest),
                          diff={'before': before, 'after': before}, changed=bool(leftovers))
            if leftovers:
                result['msg'] += ' but %s %s, left by killed restores' % (
                    'would drop' if check_mode else 'dropped', ', '.join(leftovers))
            return _with_facts(params, result, db)
        if _not_empty(target) and state != 'replaced':
            raise DbRestoreError('database %s is not empty (%s relations%s): refusing to restore into it. pg_restore into an '
                                 'existing schema fails on the OMERO triggers and would mix two databases. Set '
                                 'state=replaced to restore it under a temporary name and swap it in (its current content '
                                 'is then dropped, or kept with keep_replaced=true). Nothing was changed.'
                                 % (db, 'unknown number of' if target['relations'] is None else target['relations'],
                                    ', comment: %s' % target['comment'] if target['comment'] else ''))
        if params.get('owner_from_roles_file') and not role_exists and params.get('expected_sha256'):
            raise DbRestoreError('owner_from_roles_file takes a password hash from the roles file that the manifest beside '
                                 'the dump names; expected_sha256 vouches for the dump only, not for that file. Give '
                                 'owner_password instead. Nothing was changed.')

        require_tools(params, ['pg_restore'] + (['vacuumdb'] if want_analyze else []))
        result.update(prove_readable(params, runner, path, fmt, record))
        will_replace = _not_empty(target)
        space = _space_plan(params, admin, db, target, record, path, will_replace)
        result['space'] = space
        _check_space(space, result)
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
            if result['leftovers_dropped']:
                actions.append('drop %s left by killed restores' % ', '.join(result['leftovers_dropped']))
            if not role_exists:
                actions.append('create role %s (password: %s)' % (owner, result['owner_password_source'].replace('_', ' ')))
            if will_replace:
                actions.append('pg_restore %s into a temporary database%s, then swap it with %s (%s relations), which is %s'
                               % (path, ' and ANALYZE it' if want_analyze else '', db,
                                  'an unknown number of' if target['relations'] is None else target['relations'],
                                  'kept as %s' % replaced_name(db) if params.get('keep_replaced') else 'then dropped'))
            else:
                if not target['exists']:
                    actions.append('create database %s owned by %s' % (db, owner))
                actions.append('pg_restore %s into %s' % (path, db))
                if want_analyze:
                    actions.append('ANALYZE %s' % db)
            result['msg'] = 'would ' + ', '.join(actions)
            return result

        _drop_leftovers(admin, leftovers, check_mode)
        if not role_exists:
            _create_role(admin, owner, params.get('owner_password'), verifier)
            if not params.get('owner_password') and not verifier and not params.get('owner_from_roles_file'):
                result['warnings'].append('role %s was created without a password (owner_password not given): OMERO.server '
                                          'can log in only with peer/trust authentication until one is set' % owner)
        if want_analyze:
            warning = _analyze_warning(admin)
            if warning:
                result['warnings'].append(warning)
        if will_replace:
            _replace(params, runner, admin, target, path, fmt, digest, record, jobs, want_analyze, result)
        else:
            _restore_in_place(params, runner, admin, target, path, fmt, digest, record, jobs, want_analyze, result)
    finally:
        admin.close()
    result['duration'] = round(time.time() - clock, 3)
    return _with_facts(params, result, db)


def _restore_in_place(params, runner, admin, target, path, fmt, digest, record, jobs, want_analyze, result):
    """Into a missing (created here) or empty database; a failure leaves it with a NOT COMPLETE comment."""
    db, owner = params['db'], params['owner']
    if not target['exists']:
        _create_database(admin, db, owner)
    elif target['owner'] != owner:
        result['warnings'].append('database %s exists and is owned by %s, not %s' % (db, target['owner'], owner))
    _set_comment(admin, db, COMMENT_IN_PROGRESS % (iso_time(), os.path.basename(path), digest))
    failure = _pg_restore(params, runner, db, path, fmt, jobs, record.get('database_owner'), owner, result)
    if failure:
        raise DbRestoreError('%s into %s. The database is marked as not restored (COMMENT ON DATABASE); fix the cause and '
                             'run again with state=replaced, which restores under a temporary name and swaps it in.'
                             % (failure, db))
    check_restored(params, db, record, result)
    restored_comment = COMMENT_RESTORED % (digest, os.path.basename(path), iso_time())
    _set_comment(admin, db, restored_comment + COMMENT_ANALYZE_PENDING)
    result['msg'] = 'restored %s into %s' % (os.path.basename(path), db)
    if want_analyze:
        _run_analyze(params, runner, admin, db, jobs, restored_comment, result)


def _replace(params, runner, admin, target, path, fmt, digest, record, jobs, want_analyze, result):
    """state=replaced of a non-empty database: restore under a temporary name, check, ANALYZE, then swap.

    Until the swap commits, the database being replaced is not touched; every failure before it drops the
    temporary database. The swap is one transaction: both renames and both comments, or none.
    """
    db, owner, keep = params['db'], params['owner'], bool(params.get('keep_replaced'))
    name = os.path.basename(path)
    tmp = temporary_name(db)
    result['temporary_database'] = tmp
    _create_database(admin, tmp, owner, result['space']['tablespace'] if result.get('space') else None)
    swapped = False
    try:
        _set_comment(admin, tmp, COMMENT_IN_PROGRESS % (iso_time(), name, digest) + COMMENT_TEMPORARY % db)
        failure = _pg_restore(params, runner, tmp, path, fmt, jobs, record.get('database_owner'), owner, result)
        if failure:
            raise DbRestoreError(failure)
        check_restored(params, tmp, record, result)
        if want_analyze:
            try:
                seconds, warnings = analyze(params, runner, tmp, jobs)
            except OmeroBackupError as exc:
                raise DbRestoreError('ANALYZE of the restored copy failed: %s (analyze=false restores without it)' % exc)
            result['analyze_duration'] = seconds
            result['warnings'].extend(warnings[:20])
        restored_comment = COMMENT_RESTORED % (digest, name, iso_time()) + ('' if want_analyze else COMMENT_ANALYZE_PENDING)
        old = _free_replaced_name(admin, db)
        replaced_comment = COMMENT_REPLACED % (db, REPLACED_KEPT if keep else REPLACED_DROP, iso_time(), name, digest)
        if target['comment']:
            replaced_comment += '; its comment was: %s' % target['comment']
        _swap(admin, db, tmp, old, restored_comment, replaced_comment, keep)
        swapped = True
    except Exception as exc:
        if swapped:
            raise
        reason = str(exc)
        if not isinstance(exc, (DbRestoreError, OmeroBackupError)):
            if not isinstance(exc, DATABASE_ERRORS):
                raise
            reason = 'PostgreSQL refused a step: %s' % str(exc).strip()
        try:
            _drop_database(admin, tmp)
            cleaned = 'The temporary database was dropped'
        except DATABASE_ERRORS as drop_exc:
            cleaned = ('The temporary database %s could not be dropped (%s; the next run drops it)'
                       % (tmp, str(drop_exc).strip()))
        # What did change: a role created for the restore stays, and killed runs' leftovers are gone.
        done = {'changed': bool(result['created']['role'] or result['leftovers_dropped']),
                'created': {'role': result['created']['role'], 'database': False}, 'replaced': False,
                'leftovers_dropped': result['leftovers_dropped'], 'space': result.get('space'),
                'warnings': result['warnings']}
        raise DbRestoreError('restoring %s into a temporary database to replace %s failed: %s. %s and %s is untouched. %s'
                             % (name, db, scrub(reason, params), cleaned, db,
                                'Nothing else was changed.' if done['changed'] else 'Nothing was changed.'), done)
    result['replaced_kept_as'] = old if keep else None
    previous = 'is kept as %s' % old
    if not keep:
        try:
            _drop_database(admin, old)
            previous = 'was dropped'
        except DATABASE_ERRORS as exc:
            previous = 'is %s, to be dropped' % old
            result['warnings'].append('the replaced database, now %s, could not be dropped (%s); its comment says DROP '
                                      'PENDING and the next run into %s drops it' % (old, str(exc).strip(), db))
    result['msg'] = ('restored %s into %s (replaced: restored under the temporary name %s, then swapped in; the previous '
                     'database %s)' % (name, db, tmp, previous))
    if want_analyze:
        result['msg'] += ', ANALYZE (%.1f s) before the swap' % result['analyze_duration']


def _free_replaced_name(admin, db):
    """The name the replaced database takes: a time stamp no database has (at most one swap a second)."""
    for _attempt in range(3):
        name = replaced_name(db)
        if not postgres.database_exists(admin, name):
            return name
        time.sleep(1.05)
    raise DbRestoreError('cannot find an unused name for the replaced database (%s exists)' % name)


def _swap(admin, db, tmp, old, restored_comment, replaced_comment, keep):
    """In one transaction: end the sessions on ``db``, rename it to ``old`` and ``tmp`` to ``db``, comment both.

    A RENAME waits up to 5 s for ended sessions to go and fails when one is still there (a client reconnecting):
    tried three times, then refused; the transaction leaves both databases as they were.
    """
    quote = postgres.quote_ident
    last = None
    for _attempt in range(3):
        admin.autocommit = False
        try:
            with admin.cursor() as cursor:
                cursor.execute('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s '
                               'AND pid <> pg_backend_pid()', (db,))
                cursor.execute('ALTER DATABASE %s RENAME TO %s' % (quote(admin, db), quote(admin, old)))
                cursor.execute('ALTER DATABASE %s RENAME TO %s' % (quote(admin, tmp), quote(admin, db)))
                cursor.execute('COMMENT ON DATABASE %s IS %%s' % quote(admin, db), (restored_comment,))
                cursor.execute('COMMENT ON DATABASE %s IS %%s' % quote(admin, old), (replaced_comment,))
                if not keep:
                    # Nobody connects to it again before it is dropped (now, or by the next run).
                    cursor.execute('ALTER DATABASE %s WITH ALLOW_CONNECTIONS false' % quote(admin, old))
            admin.commit()
            return
        except DATABASE_ERRORS as exc:
            admin.rollback()
            if getattr(exc, 'pgcode', None) != '55006':  # object_in_use: a session is still connected
                raise
            last = exc
        except BaseException:
            admin.rollback()
            raise
        finally:
            admin.autocommit = True
    raise DbRestoreError('sessions keep connecting to %s (%s): stop OMERO.server and every other client'
                         % (db, str(last).strip()))


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
