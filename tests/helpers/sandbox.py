# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options for a sandbox described by omero_sandbox, in the shape the modules take."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import sys

TOOLS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'tools')
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)

# The sandbox tool's own probe: a TCP port on 127.0.0.1 that is free now.
from omero_sandbox.system import free_port as free_tcp_port  # noqa: E402,F401 pylint: disable=wrong-import-position,unused-import


def connection_args(description, via='socket', role='superuser'):
    """Module options (CONTRACTS.md names) to reach the sandbox's database.

    via: 'socket' (trust, no password) or 'tcp' (127.0.0.1, scram password);
    role: 'superuser' (postgres) or 'owner' (the non-superuser omero role).
    """
    postgres = description['postgres']
    args = {'port': postgres['port'], 'db': postgres['dbname']}
    if role == 'superuser':
        args['login_user'] = postgres['superuser']
        password = postgres['superuser_password']
    elif role == 'owner':
        args['login_user'] = postgres['owner']
        password = postgres['owner_password']
    else:
        raise ValueError('role is superuser or owner, not %r' % (role,))
    if via == 'socket':
        args['login_host'] = postgres['host']
    elif via == 'tcp':
        args['login_host'] = postgres['tcp_host']
        args['login_password'] = password
    else:
        raise ValueError('via is socket or tcp, not %r' % (via,))
    return args


def psycopg2_connect(description, dbname=None, role='superuser'):
    """A psycopg2 connection over the sandbox's socket (for assertions straight on the database)."""
    import psycopg2
    postgres = description['postgres']
    user = postgres['superuser'] if role == 'superuser' else postgres['owner']
    return psycopg2.connect(host=postgres['host'], port=postgres['port'], user=user, dbname=dbname or postgres['dbname'])


def query(description, sql, params=None, dbname=None, role='superuser'):
    conn = psycopg2_connect(description, dbname=dbname, role=role)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else None
        conn.commit()
        return rows
    finally:
        conn.close()


def drop_database_and_owner(description):
    """The database disaster: the OMERO database and its owner role are gone."""
    postgres = description['postgres']
    conn = psycopg2_connect(description, dbname='postgres')
    try:
        conn.autocommit = True  # DROP DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute('DROP DATABASE %s WITH (FORCE)' % postgres['dbname'])
            cursor.execute('DROP ROLE %s' % postgres['owner'])
    finally:
        conn.close()


def tree_fingerprint(root):
    """Every path under root with its type, mode, size and content hash (or link target)."""
    fingerprint = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = os.path.join(dirpath, name)
            stat = os.lstat(full)
            relpath = os.path.relpath(full, root)
            if os.path.islink(full):
                fingerprint[relpath] = ('link', os.readlink(full))
            elif os.path.isdir(full):
                fingerprint[relpath] = ('dir', stat.st_mode)
            else:
                with open(full, 'rb') as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                fingerprint[relpath] = ('file', stat.st_mode, stat.st_size, stat.st_mtime_ns, digest)
    return fingerprint
