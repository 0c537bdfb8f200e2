# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database objects a pg_dump restore makes and reads: the owner role (its password as a SCRAM verifier, or
the stored one from the roles file), the database from template0, its comment (what it holds, whether ANALYZE is
pending, whether it is a temporary or a replaced database), the names of temporary and replaced databases, and
the leftovers a killed restore left.

Every query here that reads a restored database goes through a connection whose search path is pg_catalog only
and names tables schema-qualified (tools/postgres).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import hashlib
import hmac
import os
import re
import secrets

from ansible_collections.omero.backup.plugins.module_utils.base.runner import utc_now
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres


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
ROW_COUNT_TABLES = ('experimenter', 'project', 'dataset', 'image', 'pixels', 'fileset', 'originalfile', 'thumbnail')


def target_state(params, admin, db):
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


def describe(role_exists, target):
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


def not_empty(target):
    return target['exists'] and target['relations'] != 0


def set_comment(admin, db, text):
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


def owner_verifier_from_roles_file(path, record, owner, result):
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


def create_role(admin, owner, password, verifier=None):
    sql = 'CREATE ROLE %s LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE' % postgres.quote_ident(admin, owner)
    with admin.cursor() as cursor:
        if password or verifier:
            cursor.execute(sql + ' PASSWORD %s', (scram_sha256(password) if password else verifier,))
        else:
            cursor.execute(sql)


def create_database(admin, db, owner, tablespace=None):
    sql = "CREATE DATABASE %s OWNER %s ENCODING 'UTF8' TEMPLATE template0" % (
        postgres.quote_ident(admin, db), postgres.quote_ident(admin, owner))
    if tablespace and tablespace != 'pg_default':
        sql += ' TABLESPACE %s' % postgres.quote_ident(admin, tablespace)
    with admin.cursor() as cursor:
        cursor.execute(sql)


def drop_database(admin, db):
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


def leftover_databases(admin, db):
    """The databases killed restores into ``db`` left behind (leftover_kind)."""
    rows = postgres.query_all(admin, "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database ORDER BY 1")
    return [name for name, comment in rows if leftover_kind(db, name, comment)]


def drop_leftovers(admin, names, check_mode):
    """Under the database's lock no other restore into it runs, so its leftovers belong to dead runs."""
    if not check_mode:
        for name in names:
            drop_database(admin, name)
