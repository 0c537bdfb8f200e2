# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database backend: the ids of pixels, originalfile and thumbnail against the walk; no per-file query, no server."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.cleanse.ids import IdLoader
from ansible_collections.omero.backup.plugins.module_utils.cleanse.interlocks import check_max_ids, check_uuid, count_above_max, decide
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseOptions, CleanseRefused, TABLES
from ansible_collections.omero.backup.plugins.module_utils.cleanse.remove import apply, check_quarantine_dir
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import Listing, new_result, new_stats, open_spool, set_changed, totals, write_report
from ansible_collections.omero.backup.plugins.module_utils.cleanse.walk import Walker
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres


def _connect(opts):
    conn = postgres.connect(opts.connection, opts.db, autocommit=False)
    # One snapshot for every table: the ids of pixels and thumbnail agree with each other.
    conn.set_session(readonly=True, isolation_level='REPEATABLE READ')
    return conn


def database_facts(params, result, subdirectories):
    """(conn, blocking reasons); conn is None when the database cannot be used."""
    opts = CleanseOptions.of(params)
    try:
        conn = _connect(opts)
    except postgres.PostgresError as exc:
        return None, ['the database is unreachable (%s); without it no file can be told an orphan.' % exc]
    missing = []
    try:
        for table in ['configuration'] + [TABLES[name] for name in subdirectories]:
            result['queries'] += 1
            if not postgres.table_exists(conn, table):
                missing.append(table)
        if missing:
            conn.close()
            return None, ['database %s has no table %s: it is not an OMERO database (or not restored yet).'
                          % (opts.db, ', '.join(missing))]
        result['queries'] += 1
        row = postgres.query_one(conn, "SELECT value FROM public.configuration WHERE name = 'omero.db.uuid'")
        result['db_uuid'] = row[0] if row else None
    except Exception as exc:
        conn.close()
        if postgres.psycopg2 is not None and isinstance(exc, postgres.psycopg2.Error):
            return None, ['cannot read database %s: %s' % (opts.db, str(exc).strip())]
        raise
    return conn, []


def cleanse_database(params, check_mode, now=None):
    """Cleanse with the database backend; returns the result or raises CleanseRefused/OmeroBackupError."""
    started = time.time()
    now = time.time() if now is None else now
    opts = CleanseOptions.of(params)
    if not os.path.isdir(opts.datadir):
        raise OmeroBackupError('data directory %s does not exist' % opts.datadir)
    check_quarantine_dir(opts.datadir, opts.quarantine_dir, opts.subdirectories)
    if opts.managed_repository_empty_dirs:
        raise OmeroBackupError('managed_repository_empty_dirs needs backend omero: the server removes those directories '
                               'together with their database rows, which read-only SQL cannot do')
    result = new_result(opts, 'database')
    result['check_mode'] = bool(check_mode)
    conn, blocking = database_facts(opts, result, opts.subdirectories)
    if conn is None:
        result['duration'] = round(time.time() - started, 3)
        decide(result, blocking, [], opts.force)
    spool = open_spool()
    try:
        overridable = [problem for problem in [check_uuid(opts.datadir, result['db_uuid'])] if problem]
        empty_dirs, dir_records = _walk_all(conn, opts, result, spool, now)
        spool.flush()
        count_above_max(spool, result, opts.max_id_margin)
        overridable.extend(problem for problem in [check_max_ids(result, opts.max_id_margin)] if problem)
        totals(result)
        try:
            decide(result, [], overridable, opts.force)
        except CleanseRefused:
            result['duration'] = round(time.time() - started, 3)
            raise
        if check_mode:
            if opts.report_file:
                write_report(opts.report_file, spool, result)
        else:
            apply(opts.datadir, opts.quarantine_dir, spool, empty_dirs, result, now - opts.min_age_seconds, opts.report_file,
                  dir_records)
    finally:
        spool.close()
    totals(result)
    set_changed(result, check_mode)
    result['duration'] = round(time.time() - started, 3)
    return result


def _walk_all(conn, opts, result, spool, now):
    """Walk every chosen directory against its table's ids (read meanwhile by an IdLoader); closes ``conn``.

    Returns (empty directories, {relpath: identity} of every directory walked); fills result's listings.
    """
    listing, unknown_listing = Listing(opts.max_listed), Listing(opts.max_listed)
    empty_dirs, dir_records = [], {}
    try:
        for subdir in opts.subdirectories:
            result['subdirectories'][subdir] = new_stats()
        # originalfile is the big table (ManagedRepository rows too): read it
        # last, while the other two directories are walked.
        walk_order = sorted(opts.subdirectories, key=lambda name: name == 'Files')
        loader = IdLoader(conn, [TABLES[subdir] for subdir in walk_order])
        try:
            for subdir in walk_order:
                stats = result['subdirectories'][subdir]
                ids, queries = loader.get(TABLES[subdir])
                result['queries'] += queries
                stats['db_max_id'] = ids[-1] if len(ids) else None
                walker = Walker(opts.datadir, subdir, ids, stats, spool, listing, unknown_listing, now, opts.min_age_seconds)
                walker.walk()
                empty_dirs.extend(walker.empty_dirs)
                dir_records.update(walker.dirs)
                del ids
        finally:
            loader.join()
        conn.rollback()
    finally:
        conn.close()
    result['listed'] = listing.sample
    result['listed_truncated'] = listing.truncated
    result['kept_unknown_listed'] = unknown_listing.sample
    return empty_dirs, dir_records
