# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_dump engine's restore: a dump into a database the way the OMERO docs describe it, with the checks they
leave out.

Order: find and verify the dump (sha256 against ``expected_sha256``, the backup set record's, and its manifest)
and prove this pg_restore can read it (``pg_restore --list``, the pg_dump version) before touching anything;
create the non-superuser owner role and an empty UTF8 database from template0 when missing; refuse a non-empty
target unless ``state=replaced`` (engines/pg_dump_replace.py: restore under a temporary name, swap in);
``pg_restore --exit-on-error``; ``vacuumdb --analyze-only``, since a restore brings no planner statistics. The
target database carries a comment that says whether it holds a complete restore (``omero.backup restored
sha256=...``) or not, and whether its ANALYZE is still to run, which also makes a second run with the same dump
``changed=false``. ``state=absent`` drops a database db_restore made.

``options`` is the db_restore step's options object (``connection``: the settings tools/postgres reads).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbRestoreError, resolve_source, verify_source
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_replace import replace
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_sql import (
    COMMENT_ANALYZE_PENDING, COMMENT_IN_PROGRESS, COMMENT_RESTORED, MARKER, create_database, create_role, describe,
    drop_database, drop_leftovers, leftover_databases, not_empty, owner_verifier_from_roles_file, replaced_name,
    set_comment, target_state)
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_restore import (
    analyze_warning, check_restored, check_space, pg_restore, prove_readable, require_tools, run_analyze, space_plan,
    with_facts)
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

_PROTECTED_DATABASES = ('postgres', 'template0', 'template1')


class _Run(object):
    """One restore: the options, the dump (path, format, record, digest), the admin connection and what it found."""

    def __init__(self, options, runner, check_mode):
        self.options, self.runner, self.check_mode = options, runner, check_mode
        self.db, self.owner, self.jobs = options.db, options.owner, options.jobs
        self.clock = time.time()
        self.path = self.fmt = self.record = self.digest = self.admin = self.target = None
        self.role_exists = self.will_replace = False
        self.leftovers, self.before, self.verifier = [], None, None

    @property
    def name(self):
        return os.path.basename(self.path)


def restore(options, runner, check_mode=False):
    """state=present/replaced: restore the dump; state=absent: drop the database. Returns the module result."""
    if options.state == 'absent':
        return absent(options, check_mode)
    run = _Run(options, runner, check_mode)
    result = _read_dump(run)
    run.admin = postgres.connect(options.connection, 'postgres')
    try:
        # Listed now, dropped only once nothing refuses the run (a refusal changes nothing).
        run.leftovers = result['leftovers_dropped'] = leftover_databases(run.admin, run.db)
        run.role_exists = postgres.role_exists(run.admin, run.owner)
        run.target = target_state(options.connection, run.admin, run.db)
        run.before = describe(run.role_exists, run.target)
        if run.target['exists'] and run.target['restored_sha256'] == run.digest:
            return _already_there(run, result)
        _plan(run, result)
        if check_mode:
            result['msg'] = 'would ' + ', '.join(_planned_actions(run, result))
            return result
        _apply(run, result)
    finally:
        run.admin.close()
    result['duration'] = round(time.time() - run.clock, 3)
    return with_facts(options.connection, result, run.db)


def _read_dump(run):
    """The dump found, verified against its manifest or expected_sha256, and its schema checked; the result so far."""
    options = run.options
    if options.jobs < 1:
        raise DbRestoreError('jobs must be 1 or more, got %d' % options.jobs)
    if not options.src:
        raise DbRestoreError('src is required with state=%s' % options.state)
    run.path, run.fmt, manifest_path = resolve_source(options.src, run.db)
    run.record, run.digest = verify_source(run.path, run.fmt, manifest_path, options.verify, options.expected_sha256)
    omero = run.record.get('omero') or {}
    result = {'changed': False, 'restored_from': run.path, 'manifest': manifest_path, 'format': run.fmt,
              'sha256': run.digest, 'created': {'role': False, 'database': False}, 'replaced': False,
              'analyzed': False, 'warnings': [], 'leftovers_dropped': [],
              'schema_version': omero.get('schema_version'), 'schema_patch': omero.get('schema_patch')}
    if not options.verify and not options.expected_sha256:
        result['warnings'].append('verify=false: the dump was not checked against a manifest')
    expected = options.expected_schema
    if expected and result['schema_version'] != expected:
        if not options.force:
            raise DbRestoreError('the dump holds OMERO schema %s, not the expected %s: an OMERO.server refuses to start on a '
                                 'database of another schema version. Nothing was changed (force=true restores it anyway).'
                                 % (result['schema_version'] or 'unknown (no manifest)', expected))
        result['warnings'].append('schema %s differs from expected_schema %s; restored because force=true'
                                  % (result['schema_version'] or 'unknown', expected))
    return result


def _already_there(run, result):
    """The database holds a complete restore of this very dump: nothing to do, or only its pending ANALYZE."""
    if run.options.analyze and run.target['analyze_pending']:
        require_tools(run.options.connection, ['vacuumdb'])
        drop_leftovers(run.admin, run.leftovers, run.check_mode)
        return _analyze_only(run, result)
    drop_leftovers(run.admin, run.leftovers, run.check_mode)
    result.update(msg='%s already holds a complete restore of this dump (sha256 %s); nothing to do' % (run.db, run.digest),
                  diff={'before': run.before, 'after': run.before}, changed=bool(run.leftovers))
    if run.leftovers:
        result['msg'] += ' but %s %s, left by killed restores' % (
            'would drop' if run.check_mode else 'dropped', ', '.join(run.leftovers))
    return with_facts(run.options.connection, result, run.db)


def _plan(run, result):
    """Every refusal and proof before a change: the target, the owner's password source, the tools, the dump's
    readability, the room; then what the run will do, in result."""
    options, target = run.options, run.target
    if not_empty(target) and options.state != 'replaced':
        raise DbRestoreError('database %s is not empty (%s relations%s): refusing to restore into it. pg_restore into an '
                             'existing schema fails on the OMERO triggers and would mix two databases. Set '
                             'state=replaced to restore it under a temporary name and swap it in (its current content '
                             'is then dropped, or kept with keep_replaced=true). Nothing was changed.'
                             % (run.db, 'unknown number of' if target['relations'] is None else target['relations'],
                                ', comment: %s' % target['comment'] if target['comment'] else ''))
    if options.owner_from_roles_file and not run.role_exists and options.expected_sha256:
        raise DbRestoreError('owner_from_roles_file takes a password hash from the roles file that the manifest beside '
                             'the dump names; expected_sha256 vouches for the dump only, not for that file. Give '
                             'owner_password instead. Nothing was changed.')
    require_tools(options.connection, ['pg_restore'] + (['vacuumdb'] if options.analyze else []))
    result.update(prove_readable(options.connection, run.runner, run.path, run.fmt, run.record))
    run.will_replace = not_empty(target)
    result['space'] = space_plan(options.connection, run.admin, run.db, target, run.record, run.path, run.will_replace)
    check_space(result['space'], result)
    result['diff'] = {'before_header': '%s (before)' % run.db, 'after_header': '%s (after)' % run.db,
                      'before': run.before, 'after': describe(True, {'exists': True, 'restored_sha256': run.digest,
                                                                     'analyze_pending': not options.analyze})}
    result.update(changed=True, replaced=run.will_replace, analyzed=options.analyze,
                  created={'role': not run.role_exists, 'database': not target['exists'] or run.will_replace})
    if not run.role_exists:
        if options.owner_password:
            result['owner_password_source'] = 'owner_password'
        elif options.owner_from_roles_file:
            run.verifier = owner_verifier_from_roles_file(run.path, run.record, run.owner, result)
        result.setdefault('owner_password_source', 'roles_file' if run.verifier else 'none')


def _planned_actions(run, result):
    """What check mode says the run would do, in order."""
    actions = []
    if result['leftovers_dropped']:
        actions.append('drop %s left by killed restores' % ', '.join(result['leftovers_dropped']))
    if not run.role_exists:
        actions.append('create role %s (password: %s)' % (run.owner, result['owner_password_source'].replace('_', ' ')))
    if run.will_replace:
        actions.append('pg_restore %s into a temporary database%s, then swap it with %s (%s relations), which is %s'
                       % (run.path, ' and ANALYZE it' if run.options.analyze else '', run.db,
                          'an unknown number of' if run.target['relations'] is None else run.target['relations'],
                          'kept as %s' % replaced_name(run.db) if run.options.keep_replaced else 'then dropped'))
    else:
        if not run.target['exists']:
            actions.append('create database %s owned by %s' % (run.db, run.owner))
        actions.append('pg_restore %s into %s' % (run.path, run.db))
        if run.options.analyze:
            actions.append('ANALYZE %s' % run.db)
    return actions


def _apply(run, result):
    options = run.options
    drop_leftovers(run.admin, run.leftovers, run.check_mode)
    if not run.role_exists:
        create_role(run.admin, run.owner, options.owner_password, run.verifier)
        if not options.owner_password and not run.verifier and not options.owner_from_roles_file:
            result['warnings'].append('role %s was created without a password (owner_password not given): OMERO.server '
                                      'can log in only with peer/trust authentication until one is set' % run.owner)
    if options.analyze:
        warning = analyze_warning(run.admin)
        if warning:
            result['warnings'].append(warning)
    if run.will_replace:
        replace(run, result)
    else:
        _restore_in_place(run, result)


def _restore_in_place(run, result):
    """Into a missing (created here) or empty database; a failure leaves it with a NOT COMPLETE comment."""
    db, owner, target = run.db, run.owner, run.target
    if not target['exists']:
        create_database(run.admin, db, owner)
    elif target['owner'] != owner:
        result['warnings'].append('database %s exists and is owned by %s, not %s' % (db, target['owner'], owner))
    set_comment(run.admin, db, COMMENT_IN_PROGRESS % (iso_time(), run.name, run.digest))
    failure = pg_restore(run.options.connection, run.runner, db, run.path, run.fmt, run.jobs, run.record.get('database_owner'),
                         owner, result)
    if failure:
        raise DbRestoreError('%s into %s. The database is marked as not restored (COMMENT ON DATABASE); fix the cause and '
                             'run again with state=replaced, which restores under a temporary name and swaps it in.'
                             % (failure, db))
    check_restored(run.options, db, run.record, result)
    restored_comment = COMMENT_RESTORED % (run.digest, run.name, iso_time())
    set_comment(run.admin, db, restored_comment + COMMENT_ANALYZE_PENDING)
    result['msg'] = 'restored %s into %s' % (run.name, db)
    if run.options.analyze:
        run_analyze(run.options.connection, run.runner, run.admin, db, run.jobs, restored_comment, result)


def _analyze_only(run, result):
    """The dump is restored but its ANALYZE failed or was left out (analyze=false) then: run it now."""
    db, target = run.db, run.target
    restored_comment = target['comment'].replace(COMMENT_ANALYZE_PENDING, '')
    result.update(changed=True, analyzed=True,
                  diff={'before': run.before, 'after': describe(True, dict(target, analyze_pending=False))})
    if run.check_mode:
        result['msg'] = 'would ANALYZE %s, which holds this dump without planner statistics' % db
        return with_facts(run.options.connection, result, db)
    result['msg'] = '%s already held this dump without planner statistics' % db
    run_analyze(run.options.connection, run.runner, run.admin, db, run.jobs, restored_comment, result)
    result['duration'] = round(time.time() - run.clock, 3)
    return with_facts(run.options.connection, result, db)


def absent(options, check_mode):
    """state=absent: drop the database (ending its sessions), and what killed restores into it left."""
    db = options.db
    if not db or db in _PROTECTED_DATABASES:
        raise DbRestoreError('state=absent never drops %r. Nothing was changed.' % db)
    admin = postgres.connect(options.connection, 'postgres')
    try:
        leftovers = leftover_databases(admin, db)
        target = target_state(options.connection, admin, db)
        result = {'changed': bool(leftovers), 'dropped': False, 'leftovers_dropped': leftovers, 'warnings': [],
                  'diff': {'before_header': '%s (before)' % db, 'after_header': '%s (after)' % db,
                           'before': describe(True, target).split('\n', 1)[1], 'after': 'database: absent\n'}}
        if not target['exists']:
            drop_leftovers(admin, leftovers, check_mode)
            result['msg'] = 'database %s is absent' % db
            if leftovers:
                result['msg'] += '; %s %s left by killed restores' % ('would drop' if check_mode else 'dropped',
                                                                      ', '.join(leftovers))
            return result
        _may_drop(options, admin, target, result)
        result.update(changed=True, dropped=True)
        if check_mode:
            result['msg'] = 'would drop database %s after ending its sessions' % db
            return result
        drop_leftovers(admin, leftovers, check_mode)
        # Not our own connections (application_name omero.backup): the one that counted relations may still be
        # closing on the server.
        sessions = postgres.query_one(admin, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                             "AND application_name IS DISTINCT FROM 'omero.backup'", (db,))[0]
        drop_database(admin, db)
        result['msg'] = 'dropped database %s%s' % (db, ' (ended %d session(s))' % sessions if sessions else '')
        return result
    finally:
        admin.close()


def _may_drop(options, admin, target, result):
    """Refuse to drop a template, or a database db_restore did not make (unless force)."""
    db = options.db
    template = postgres.query_one(admin, 'SELECT datistemplate FROM pg_database WHERE datname = %s', (db,))[0]
    if template:
        raise DbRestoreError('database %s is a template: state=absent does not drop templates. Nothing was changed.' % db)
    if not (target['comment'] or '').startswith(MARKER):
        if not options.force:
            raise DbRestoreError('database %s carries no omero.backup comment (it was not made by db_restore%s): refusing '
                                 'to drop it; force=true drops it anyway. Nothing was changed.'
                                 % (db, ', its comment is: %s' % target['comment'] if target['comment'] else ''))
        result['warnings'].append('database %s carries no omero.backup comment; dropped because force=true' % db)
