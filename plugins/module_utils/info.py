# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a backup needs to know about a host, gathered read-only."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.space import directory_usage, free_bytes


def repository_dir(datadir, db_uuid):
    return os.path.join(datadir, '.omero', 'repository', db_uuid)


def datadir_facts(datadir, db_uuid=None, with_sizes=True):
    facts = {'path': datadir, 'exists': os.path.isdir(datadir), 'repository_dir_exists': None,
             'sizes': {}, 'total_bytes': None}
    if not facts['exists']:
        return facts
    if db_uuid:
        facts['repository_dir_exists'] = os.path.isdir(repository_dir(datadir, db_uuid))
    if with_sizes:
        total = 0
        for entry in sorted(os.listdir(datadir)):
            full = os.path.join(datadir, entry)
            if os.path.isdir(full) and not os.path.islink(full):
                size = directory_usage(full)
            else:
                size = os.lstat(full).st_size
            facts['sizes'][entry] = size
            total += size
        facts['total_bytes'] = total
    return facts


def gather(params, runner):
    """Facts for omero.backup.info. Database problems are reported, not raised:
    a host without a reachable database still has a data dir worth describing."""
    result = {}
    if params.get('database', True):
        result.update(database_facts(params, runner))
    db_uuid = result['omero']['db_uuid'] if params.get('database', True) else None
    result['datadir'] = datadir_facts(params['datadir'], db_uuid, params['datadir_sizes'])
    if params.get('backup_dest'):
        result['backup_dest'] = {'path': params['backup_dest'], 'exists': os.path.isdir(params['backup_dest']),
                                 'free_bytes': free_bytes(params['backup_dest'])}
    return result


def database_facts(params, runner):
    """PostgreSQL and OMERO facts; a database that cannot be reached is described in postgres.error."""
    result = {'postgres': {'server_version': None, 'client_version': None, 'reachable': False, 'error': None},
              'omero': {'schema_version': None, 'schema_patch': None, 'db_uuid': None}}
    try:
        result['postgres']['client_version'] = postgres.client_version(runner, 'pg_dump')[2]
    except postgres.PostgresError as exc:
        result['postgres']['error'] = str(exc)
    try:
        conn = postgres.connect(params, params['db'])
        try:
            result['postgres']['server_version'] = postgres.server_version(conn)
            result['postgres']['reachable'] = True
            result['postgres']['database_bytes'] = postgres.database_size(conn, params['db'])
            result['omero'].update(postgres.omero_facts(conn))
        finally:
            conn.close()
    except postgres.PostgresError as exc:
        result['postgres']['error'] = str(exc)
    return result
