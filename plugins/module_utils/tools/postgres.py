# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL access shared by the database-facing modules.

SQL goes through psycopg2; the client tools (pg_dump, pg_restore, psql) get
their connection from PG* environment variables, so a password never appears
on a command line where ``ps`` or /proc/*/cmdline would show it.

Every connection runs with ``search_path = pg_catalog``, set before its first
query, and the collection's SQL names user tables schema-qualified
(``public.dbpatch``) and reads only ordinary tables (``table_exists``). The
collection mostly runs as a superuser, in databases whose objects someone else
may have defined (a restored dump, the OMERO owner role): with the default
search path an unqualified ``image`` or ``count()`` can resolve to a view or a
function of theirs, which then runs with the superuser's rights.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import struct
import traceback

from ansible_collections.omero.backup.plugins.module_utils.base.output import tail
from ansible_collections.omero.backup.plugins.module_utils.base.params import given

PSYCOPG2_IMPORT_ERROR = None
try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
except ImportError:
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()


class PostgresError(Exception):
    """A database problem explained for the operator, never carrying the password."""


def postgres_argument_spec():
    return dict(
        login_host=dict(type='str', aliases=['host']),
        port=dict(type='int', default=5432, aliases=['login_port']),
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', no_log=True),
        login_unix_socket=dict(type='path'),
        connect_timeout=dict(type='int', default=10),
    )


def server_host(params):
    """Where to connect: login_host when set, else the socket directory login_unix_socket, else None (libpq's default).

    The one precedence rule: callers (the roles included) pass both options as they are configured, and
    nothing else decides between them.
    """
    return params.get('login_host') or params.get('login_unix_socket') or None


def connection_options(params):
    """The connection options of ``params`` with postgres_argument_spec()'s defaults, the one place they are written
    (a caller outside Ansible may pass fewer keys)."""
    return given(postgres_argument_spec(), params)


def libpq_env(params, dbname=None):
    """PG* variables for the client tools; includes PGPASSWORD when one was given."""
    options = connection_options(params)
    env = {
        'PGPORT': str(options['port']),
        'PGUSER': options['login_user'],
        'PGCONNECT_TIMEOUT': str(options['connect_timeout']),
        # Tool messages are parsed (versions, errors): keep them in English.
        'LC_MESSAGES': 'C',
        'PGAPPNAME': 'omero.backup',
    }
    host = server_host(params)
    if host:
        env['PGHOST'] = host
    if params.get('login_password'):
        env['PGPASSWORD'] = params['login_password']
    if dbname:
        env['PGDATABASE'] = dbname
    return env


def describe_target(params, dbname=None):
    """Where we connect, for messages (no secret)."""
    where = server_host(params) or 'local socket'
    options = connection_options(params)
    text = '%s@%s:%s' % (options['login_user'], where, options['port'])
    if dbname:
        text += '/' + dbname
    return text


def connect(params, dbname, autocommit=True):
    if not HAS_PSYCOPG2:
        raise PostgresError('psycopg2 is required on the managed host (pip install psycopg2-binary)')
    options = connection_options(params)
    kwargs = dict(dbname=dbname, user=options['login_user'], port=options['port'], connect_timeout=options['connect_timeout'],
                  application_name='omero.backup')
    host = server_host(params)
    if host:
        kwargs['host'] = host
    if params.get('login_password'):
        kwargs['password'] = params['login_password']
    try:
        conn = psycopg2.connect(**kwargs)
    except psycopg2.Error as exc:
        message = str(exc).strip()
        if params.get('login_password'):
            message = message.replace(params['login_password'], '********')
        raise PostgresError('cannot connect to %s: %s' % (describe_target(params, dbname), message))
    # Before anything else runs on it: a search path of pg_catalog only (see the module docstring). Session-wide
    # (is_local false), and committed at once, so a later set_session() of the caller finds no open transaction.
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_catalog.set_config('search_path', 'pg_catalog', false)")
    conn.autocommit = autocommit
    return conn


def query_one(conn, sql, args=None):
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchone()


def query_all(conn, sql, args=None):
    with conn.cursor() as cursor:
        cursor.execute(sql, args)
        return cursor.fetchall()


def server_version(conn):
    """'15.18' style version of the server."""
    return query_one(conn, 'SHOW server_version')[0].split()[0]


def server_version_num(conn):
    return int(query_one(conn, 'SHOW server_version_num')[0])


_VERSION = re.compile(r'\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?')


def client_version(runner, tool='pg_dump'):
    """(major, minor, text) of a client tool, e.g. (15, 18, '15.18')."""
    rc, out, err = runner([tool, '--version'])
    match = _VERSION.search(out or '')
    if rc != 0 or not match:
        raise PostgresError('cannot run %s --version: %s' % (tool, tail(err or out) or 'rc=%d' % rc))
    major = int(match.group(1))
    minor = int(match.group(2) or 0)
    return major, minor, '%d.%d' % (major, minor)


def table_exists(conn, name, schema='public'):
    """Whether ``schema.name`` is an ordinary table.

    A view, or a foreign or partitioned table, of that name is reported as absent: reading one runs what its
    definer chose (functions, a foreign server), with the rights of whoever reads it.
    """
    row = query_one(conn, "SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = %s AND c.relname = %s", (schema, name))
    return row is not None and row[0] == 'r'


def qualified(conn, name, schema='public'):
    """``"schema"."name"`` for SQL text."""
    return '%s.%s' % (quote_ident(conn, schema), quote_ident(conn, name))


def omero_facts(conn):
    """Schema version and the database uuid that ties the data dir to this database."""
    facts = {'schema_version': None, 'schema_patch': None, 'db_uuid': None}
    if table_exists(conn, 'dbpatch'):
        row = query_one(conn, 'SELECT currentversion, currentpatch FROM public.dbpatch ORDER BY id DESC LIMIT 1')
        if row:
            facts['schema_version'], facts['schema_patch'] = row[0], row[1]
    if table_exists(conn, 'configuration'):
        row = query_one(conn, "SELECT value FROM public.configuration WHERE name = 'omero.db.uuid'")
        if row:
            facts['db_uuid'] = row[0]
    return facts


_ARCHIVE_MAGIC = b'PGDMP'


def archive_version(path, fmt):
    """(major, minor, revision) of a pg_dump archive's header, e.g. (1, 14, 0), or None when unreadable.

    The custom format starts with it; a directory dump has it at the start of ``toc.dat``. pg_restore refuses an
    archive version newer than its own (PostgreSQL 17's pg_dump writes 1.16, 15's 1.14).
    """
    member = os.path.join(path, 'toc.dat') if fmt == 'directory' else path
    try:
        with open(member, 'rb') as handle:
            head = handle.read(len(_ARCHIVE_MAGIC) + 3)
    except (IOError, OSError):
        return None
    if len(head) < len(_ARCHIVE_MAGIC) + 3 or not head.startswith(_ARCHIVE_MAGIC):
        return None
    return struct.unpack('BBB', head[len(_ARCHIVE_MAGIC):])


def tablespace_path(conn, params, dbname=None):
    """(tablespace name, local directory or None) where ``dbname`` (or a new database) keeps its files.

    Best effort, for a free-space check: the directory is given only when the server is reached over a Unix
    socket or the loopback, and the directory the server names is there for this process. None otherwise (a
    remote server, a role that may not read data_directory).
    """
    if dbname is None:
        row = query_one(conn, "SELECT oid, spcname FROM pg_catalog.pg_tablespace WHERE spcname = 'pg_default'")
    else:
        row = query_one(conn, 'SELECT t.oid, t.spcname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t '
                              'ON t.oid = d.dattablespace WHERE d.datname = %s', (dbname,))
    if row is None:
        return None, None
    oid, name = row
    host = server_host(params) or ''
    if host and not host.startswith('/') and host.lower() not in ('localhost', '127.0.0.1', '::1'):
        return name, None
    try:
        if name == 'pg_default':
            location = query_one(conn, "SELECT pg_catalog.current_setting('data_directory', true)")[0]
        else:
            location = query_one(conn, 'SELECT pg_catalog.pg_tablespace_location(%s)', (oid,))[0]
    except psycopg2.Error:
        return name, None
    return name, location if location and os.path.isdir(location) else None


def database_size(conn, dbname):
    row = query_one(conn, 'SELECT pg_database_size(%s)', (dbname,))
    return int(row[0])


def database_exists(conn, dbname):
    return query_one(conn, 'SELECT 1 FROM pg_database WHERE datname = %s', (dbname,)) is not None


def role_exists(conn, role):
    return query_one(conn, 'SELECT 1 FROM pg_roles WHERE rolname = %s', (role,)) is not None


def quote_ident(conn, name):
    return psycopg2.extensions.quote_ident(name, conn)


# psycopg2 errors past connect() (a role without rights, a dropped table): reported, not a traceback.
DATABASE_ERRORS = (psycopg2.Error,) if HAS_PSYCOPG2 else ()


def tool_path(params, name):
    """A PostgreSQL client tool, from O(pg_bindir) when given (several major versions installed)."""
    bindir = params.get('pg_bindir')
    return os.path.join(bindir, name) if bindir else name


def scrub(text, params):
    """Tool output as it may be shown: without the password, trimmed to what explains the failure."""
    text = (text or '').strip()
    for key in ('login_password', 'owner_password'):
        secret = params.get(key)
        if secret:
            text = text.replace(secret, '********')
    return tail(text)
