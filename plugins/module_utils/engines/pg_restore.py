# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_restore and vacuumdb as the pg_dump engine's restore runs them, and the checks around them: the tools are
there, this pg_restore can read the dump, the room it needs, the restored database holds what the manifest says,
the facts of the result. ``pg`` is the PostgreSQL settings mapping tools/postgres reads (connection, pg_bindir,
the passwords scrubbed from messages).

ANALYZE runs as ``login_user``: PostgreSQL (14.3, 13.7, 12.11, 11.16, 10.21 and later) runs index expressions
during ANALYZE as the table's owner in a security-restricted operation; a ``SET ROLE`` of ours would be no
boundary, since code running under it may ``RESET ROLE``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import shutil
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.space import free_bytes
from ansible_collections.omero.backup.plugins.module_utils.dumps import artefact_size
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbRestoreError
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_sql import row_counts, set_comment
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import scrub, tool_path

# Without database_bytes in a manifest, the restored size is guessed from the dump's: a compressed custom dump
# holds no index and compresses text several times.
ROUGH_SIZE_FACTOR = 5
# CVE-2022-1552: from these releases on, ANALYZE runs index expressions as the table owner, restricted.
_ANALYZE_RESTRICTED_SINCE = {10: 100021, 11: 110016, 12: 120011, 13: 130007, 14: 140003}


def _major(version):
    match = re.match(r'\s*(\d+)', version or '')
    return int(match.group(1)) if match else None


def require_tools(pg, names):
    """Refuse before any change when a client tool the run needs is missing (run_command would only say it failed)."""
    missing = []
    for name in names:
        path = tool_path(pg, name)
        found = os.access(path, os.X_OK) if os.sep in path else shutil.which(path)
        if not found:
            missing.append(path)
    if missing:
        raise DbRestoreError('%s not found%s (install the PostgreSQL client tools%s). Nothing was changed.'
                             % (', '.join(missing), ' in pg_bindir' if pg.get('pg_bindir') else ' on PATH',
                                '; analyze=false restores without vacuumdb' if any(m.endswith('vacuumdb') for m in missing)
                                else ''))


def prove_readable(pg, runner, path, fmt, record):
    """Refuse, before any change, a dump this pg_restore cannot read; returns the versions for the result.

    A pg_dump newer than this pg_restore (its version from the manifest) is refused by major version: pg_restore
    cannot read a newer archive format (PostgreSQL 17's pg_dump writes 1.16, 15's pg_restore reads up to 1.14),
    and a newer pg_dump writes SQL for a newer server. Then ``pg_restore --list`` must read the archive's header
    and table of contents.
    """
    tool = tool_path(pg, 'pg_restore')
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
                                           scrub(err or out, pg) or 'rc=%d' % rc))
    return facts


def space_plan(pg, admin, db, target, record, path, will_replace):
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
    tablespace, location = postgres.tablespace_path(admin, pg, db if target['exists'] else None)
    free = None
    if location:
        try:
            free = free_bytes(location)
        except OSError:
            location = None
    return {'old_database_bytes': old, 'restore_bytes_estimate': estimate, 'estimate_from': source,
            'peak_bytes': old + estimate, 'tablespace': tablespace, 'path': location, 'free_bytes': free,
            'checked': free is not None}


def check_space(space, result):
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


def pg_restore(pg, runner, into, path, fmt, jobs, dump_owner, owner, result):
    argv = [tool_path(pg, 'pg_restore'), '--no-password', '--exit-on-error', '-F', 'd' if fmt == 'directory' else 'c',
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
    rc, out, err = runner(argv, env=postgres.libpq_env(pg))
    if rc != 0:
        return 'pg_restore failed (rc %d): %s' % (rc, (scrub(err or out, pg) or 'no message').rstrip('.'))
    return None


def check_restored(options, db, record, result):
    """The restored database holds what the dump's manifest (and expected_schema) say, else DbRestoreError.

    Run before a restore is called complete (and before state=replaced swaps it in), on a pg_catalog-only
    connection reading ordinary tables only.
    """
    conn = postgres.connect(options.connection, db)
    try:
        facts = postgres.omero_facts(conn)
    finally:
        conn.close()
    omero = record.get('omero') or {}
    problems = []
    for key in ('schema_version', 'db_uuid'):
        if omero.get(key) and facts[key] != omero[key]:
            problems.append('%s is %s, the manifest says %s' % (key, facts[key], omero[key]))
    expected = options.expected_schema
    if expected and facts['schema_version'] != expected and not options.force:
        problems.append('schema_version is %s, not the expected %s' % (facts['schema_version'], expected))
    if problems:
        raise DbRestoreError('the restored database does not hold what the dump was said to hold: %s'
                             % '; '.join(problems), None)
    return facts


def with_facts(pg, result, db):
    conn = postgres.connect(pg, db)
    try:
        facts = postgres.omero_facts(conn)
        result['schema_version'] = facts['schema_version']
        result['schema_patch'] = facts['schema_patch']
        result['db_uuid'] = facts['db_uuid']
        result['row_counts'] = row_counts(conn)
    finally:
        conn.close()
    return result


def analyze_warning(admin):
    """A warning when this server runs a restored database's index expressions with login_user's rights in ANALYZE."""
    number = postgres.server_version_num(admin)
    since = _ANALYZE_RESTRICTED_SINCE.get(number // 10000)
    if number >= 150000 or (since is not None and number >= since):
        return None
    return ('PostgreSQL %s runs the index expressions of the restored tables with the rights of %s during ANALYZE '
            '(fixed in 14.3, 13.7, 12.11, 11.16, 10.21, CVE-2022-1552): update the server'
            % (postgres.server_version(admin), 'login_user'))


def analyze(pg, runner, db, jobs):
    """``vacuumdb --analyze-only`` of ``db``; returns (seconds, warnings).

    The database goes in PGDATABASE, not argv, where a name holding ``=`` would be read as a connection string.
    """
    argv = [tool_path(pg, 'vacuumdb'), '--no-password', '--analyze-only', '--quiet']
    if jobs > 1:
        argv += ['--jobs', str(jobs)]
    started = time.time()
    rc, out, err = runner(argv, env=postgres.libpq_env(pg, dbname=db))
    seconds = round(time.time() - started, 3)
    if rc != 0:
        raise OmeroBackupError('vacuumdb --analyze-only failed (rc %d): %s' % (rc, scrub(err or out, pg) or 'no message'))
    # A login user that owns neither the database nor its tables gets a WARNING per table skipped, and rc 0.
    warnings = [line.strip() for line in (err or '').splitlines() if line.startswith('WARNING')]
    return seconds, warnings


def run_analyze(pg, runner, admin, db, jobs, restored_comment, result):
    """ANALYZE, then the comment without its pending mark; a failure keeps the mark, so the next run retries."""
    try:
        seconds, warnings = analyze(pg, runner, db, jobs)
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
    set_comment(admin, db, restored_comment)
    result['msg'] += ', then ANALYZE (%.1f s)' % seconds
