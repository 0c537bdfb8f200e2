# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=replaced of a non-empty database: the dump goes into a temporary database (``<db>_omero_backup_new_<hex>``),
is checked and analyzed there, and only then do two ``ALTER DATABASE ... RENAME`` in one transaction swap it in;
the old one becomes ``<db>_omero_backup_old_<stamp>`` and is dropped (or kept, ``keep_replaced``). Any failure
before the swap drops the temporary database and leaves the old one as it was. A run killed on the way leaves a
temporary (or a replaced, to-be-dropped) database whose name and comment say so; the next run for the same
database drops it (engines/pg_dump_sql.py leftover_kind).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_sql import (
    COMMENT_ANALYZE_PENDING, COMMENT_IN_PROGRESS, COMMENT_REPLACED, COMMENT_RESTORED, COMMENT_TEMPORARY, REPLACED_DROP,
    REPLACED_KEPT, create_database, drop_database, replaced_name, set_comment, temporary_name)
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_restore import analyze, check_restored, pg_restore
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import DATABASE_ERRORS, scrub


def replace(run, result):
    """Restore under a temporary name, check, ANALYZE, then swap (``run``: pg_dump_restore's state of the run).

    Until the swap commits, the database being replaced is not touched; every failure before it drops the
    temporary database. The swap is one transaction: both renames and both comments, or none.
    """
    db, keep = run.db, run.options.keep_replaced
    tmp = temporary_name(db)
    result['temporary_database'] = tmp
    create_database(run.admin, tmp, run.owner, result['space']['tablespace'] if result.get('space') else None)
    try:
        old = _restore_and_swap(run, tmp, result)
    except Exception as exc:
        _failed_before_swap(run, tmp, exc, result)
    result['replaced_kept_as'] = old if keep else None
    previous = 'is kept as %s' % old
    if not keep:
        try:
            drop_database(run.admin, old)
            previous = 'was dropped'
        except DATABASE_ERRORS as exc:
            previous = 'is %s, to be dropped' % old
            result['warnings'].append('the replaced database, now %s, could not be dropped (%s); its comment says DROP '
                                      'PENDING and the next run into %s drops it' % (old, str(exc).strip(), db))
    result['msg'] = ('restored %s into %s (replaced: restored under the temporary name %s, then swapped in; the previous '
                     'database %s)' % (run.name, db, tmp, previous))
    if run.options.analyze:
        result['msg'] += ', ANALYZE (%.1f s) before the swap' % result['analyze_duration']


def _restore_and_swap(run, tmp, result):
    """pg_restore into ``tmp``, check and ANALYZE it, then swap it in; returns the replaced database's new name."""
    db, keep, digest = run.db, run.options.keep_replaced, run.digest
    set_comment(run.admin, tmp, COMMENT_IN_PROGRESS % (iso_time(), run.name, digest) + COMMENT_TEMPORARY % db)
    failure = pg_restore(run.options.connection, run.runner, tmp, run.path, run.fmt, run.jobs, run.record.get('database_owner'),
                         run.owner, result)
    if failure:
        raise DbRestoreError(failure)
    check_restored(run.options, tmp, run.record, result)
    if run.options.analyze:
        try:
            seconds, warnings = analyze(run.options.connection, run.runner, tmp, run.jobs)
        except OmeroBackupError as exc:
            raise DbRestoreError('ANALYZE of the restored copy failed: %s (analyze=false restores without it)' % exc)
        result['analyze_duration'] = seconds
        result['warnings'].extend(warnings[:20])
    restored_comment = COMMENT_RESTORED % (digest, run.name, iso_time()) + ('' if run.options.analyze else COMMENT_ANALYZE_PENDING)
    old = _free_replaced_name(run.admin, db)
    replaced_comment = COMMENT_REPLACED % (db, REPLACED_KEPT if keep else REPLACED_DROP, iso_time(), run.name, digest)
    if run.target['comment']:
        replaced_comment += '; its comment was: %s' % run.target['comment']
    _swap(run.admin, db, tmp, old, restored_comment, replaced_comment, keep)
    return old


def _failed_before_swap(run, tmp, exc, result):
    """Drop the temporary database and fail with what did change; an unexpected exception stays as it is."""
    reason = str(exc)
    if not isinstance(exc, (DbRestoreError, OmeroBackupError)):
        if not isinstance(exc, DATABASE_ERRORS):
            raise exc
        reason = 'PostgreSQL refused a step: %s' % str(exc).strip()
    try:
        drop_database(run.admin, tmp)
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
                         % (run.name, run.db, scrub(reason, run.options.connection), cleaned, run.db,
                            'Nothing else was changed.' if done['changed'] else 'Nothing was changed.'), done)


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
