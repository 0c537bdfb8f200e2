# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_restore step: its options, read once; one restore at a time per host, port and database (a lock file
keyed by them, taken before the dump is even read); the chosen engine does the restore.

The pg_dump engine (engines/pg_dump_restore.py) restores a dump the way the OMERO docs describe it, with the
checks they leave out, and replaces a non-empty database by swap (engines/pg_dump_replace.py). The pgBackRest
engine (engines/pgbackrest_restore.py) restores the whole cluster to a point in time, into the stopped cluster or
into a scratch data directory for a drill; its lock is keyed by that data directory.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.locking import keyed_lock_path, take_lock
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATABASE, EngineError, engine_for
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

# The engines db_restore offers (and engines.base.engine_for knows).
ENGINES = ['pg_dump', 'pgbackrest']
PGBACKREST = 'pgbackrest'


def restore_argument_spec():
    spec = postgres.postgres_argument_spec()
    spec.update(
        engine=dict(type='str', choices=list(ENGINES), default=ENGINES[0]),
        src=dict(type='path'),
        db=dict(type='str', default='omero'),
        owner=dict(type='str', default='omero'),
        owner_password=dict(type='str', no_log=True),
        owner_from_roles_file=dict(type='bool', default=False),
        state=dict(type='str', choices=['present', 'replaced', 'absent'], default='present'),
        keep_replaced=dict(type='bool', default=False),
        expected_sha256=dict(type='str'),
        jobs=dict(type='int', default=1),
        analyze=dict(type='bool', default=True),
        lock_dir=dict(type='path'),
        verify=dict(type='bool', default=True),
        expected_schema=dict(type='str'),
        force=dict(type='bool', default=False),
        pg_bindir=dict(type='path'),
        stanza=dict(type='str', default='omero'),
        config=dict(type='path', default='/etc/pgbackrest/pgbackrest.conf'),
        os_user=dict(type='str', default='postgres'),
        target_type=dict(type='str', choices=['time', 'immediate', 'default'], default='default'),
        target_time=dict(type='str'),
        set=dict(type='str'),
        pg_path=dict(type='path'),
        scratch_path=dict(type='path'),
        scratch_port=dict(type='int'),
        scratch_socket_dir=dict(type='path'),
        scratch_start=dict(type='bool', default=True),
    )
    return spec


class RestoreOptions(object):
    """One db_restore, read once from the module's params (a value missing there comes from the argument spec).

    ``connection`` is the mapping tools/postgres reads: the login options, pg_bindir, and the passwords that
    scrub() hides in messages.
    """

    def __init__(self, params):
        values = given(restore_argument_spec(), params)
        for name, value in values.items():
            setattr(self, name, value)
        self.connection = values


def database_lock_path(params, db, lock_dir=None):
    """The lock serialising restores into one database: keyed by host (or socket directory), port and name."""
    host = postgres.server_host(params) or ''
    if host.startswith('/'):
        host = os.path.realpath(host)
    return keyed_lock_path('database', '%s:%s/%s' % (host.lower(), postgres.connection_options(params)['port'], db), lock_dir)


def restore(params, runner, check_mode=False):
    """Run one db_restore; returns the module result (without ``failed``).

    The lock is taken before the dump is read, so a second restore into the same database fails at once; check mode
    changes nothing and takes none.
    """
    options = RestoreOptions(params)
    db = options.db
    try:
        if options.engine == PGBACKREST:
            # A cluster restore: one at a time per data directory.
            lock_path = keyed_lock_path('database', 'pgbackrest:' + os.path.realpath(options.scratch_path or options.pg_path or '/'),
                                        options.lock_dir)
        else:
            lock_path = database_lock_path(options.connection, db, options.lock_dir)
    except OSError as exc:
        raise DbRestoreError('%s: set lock_dir. Nothing was changed.' % (exc.strerror or exc))
    lock = None
    if not check_mode:
        what = (options.scratch_path or options.pg_path) if options.engine == PGBACKREST else \
            postgres.describe_target(options.connection, db)
        lock = take_lock(lock_path, 'db_restore into %s' % what, error=DbRestoreError)
    try:
        result = engine_for(DATABASE, options.engine, runner).restore(options, check_mode=check_mode)
    except EngineError as exc:
        if exc.result:
            exc.result['lock'] = lock_path
        raise
    except postgres.DATABASE_ERRORS as exc:
        raise DbRestoreError('PostgreSQL refused a step of the restore of %s: %s'
                             % (db, postgres.scrub(str(exc), options.connection)))
    finally:
        if lock is not None:
            lock.release()
    result['lock'] = lock_path
    return result
