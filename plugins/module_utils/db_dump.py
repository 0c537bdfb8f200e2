# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_dump step: its options, read and checked once; the destination (made 0700 when missing; its parent must
exist, so an unmounted backup volume fails); one dump at a time per destination (its lock); skip_if_newer_than;
then the chosen engine writes the dump and applies retention.

The pg_dump engine (engines/pg_dump_write.py) writes a dump that is either complete and verified or not there at
all: under a temporary name, read back in full, checked against a size floor, published by rename between a
manifest that says ``complete: false`` and one that says ``complete: true``. The names, listing and retention of a
dump destination are dumps.py's.

The pgBackRest engine (engines/pgbackrest.py) takes a full, diff or incr backup of the stanza into its repository
(set up by the db_archive step); pgBackRest holds its own stanza lock and expires old backups itself, and the result
names the backup label and the time up to which WAL is archived.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.locking import take_lock
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.engines.base import DATABASE, EngineError, engine_for
from ansible_collections.omero.backup.plugins.module_utils.engines.pg_dump_files import DbDumpError
from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest import backup_fields
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

LOCK_PURPOSE = 'db_dump'
# The engines db_dump offers (and engines.base.engine_for knows).
ENGINES = ['pg_dump', 'pgbackrest']
PGBACKREST = 'pgbackrest'


def dump_argument_spec():
    spec = postgres.postgres_argument_spec()
    spec.update(
        engine=dict(type='str', choices=list(ENGINES), default=ENGINES[0]),
        db=dict(type='str', default='omero'),
        dest=dict(type='path'),
        format=dict(type='str', choices=['custom', 'directory'], default='custom'),
        jobs=dict(type='int', default=1),
        compress=dict(type='str'),
        globals=dict(type='bool', default=True),
        min_size=dict(type='int', default=4096),
        server_stopped=dict(type='bool', default=False),
        skip_if_newer_than=dict(type='str'),
        min_keep=dict(type='int', default=1),
        keep=dict(type='int'),
        max_age=dict(type='str'),
        owner=dict(type='str'),
        group=dict(type='str'),
        pg_bindir=dict(type='path'),
        stanza=dict(type='str', default='omero'),
        config=dict(type='path', default='/etc/pgbackrest/pgbackrest.conf'),
        type=dict(type='str', choices=['full', 'diff', 'incr'], default='incr'),
        os_user=dict(type='str', default='postgres'),
    )
    return spec


class DumpOptions(object):
    """One db_dump, read and checked once from the module's params (a value missing there comes from the argument
    spec): durations in seconds. ``connection`` is the mapping tools/postgres reads (login_*, port, pg_bindir)."""

    def __init__(self, params):
        values = given(dump_argument_spec(), params)
        for name, value in values.items():
            setattr(self, name, value)
        self.connection = values
        self.max_age_seconds = parse_duration(self.max_age, 'max_age')
        self.skip_seconds = parse_duration(self.skip_if_newer_than, 'skip_if_newer_than')

    @classmethod
    def from_params(cls, params):
        options = cls(params)
        options.validate()
        return options

    def validate(self):
        if self.jobs < 1:
            raise DbDumpError('jobs must be 1 or more, got %d' % self.jobs)
        if self.jobs > 1 and self.format != 'directory':
            raise DbDumpError('jobs=%d needs format=directory: pg_dump writes the custom format with one process' % self.jobs)
        if self.min_keep < 1:
            raise DbDumpError('min_keep must be 1 or more: the newest complete dump is never removed')
        if self.keep is not None and self.keep < self.min_keep:
            raise DbDumpError('keep (%d) is smaller than min_keep (%d)' % (self.keep, self.min_keep))
        if self.min_size < 0:
            raise DbDumpError('min_size must be 0 or more bytes')
        if not self.db:
            raise DbDumpError('db must name the database to dump')
        if self.engine == PGBACKREST:
            return
        if not self.dest or not os.path.isabs(self.dest):
            raise DbDumpError('dest must be an absolute path, got %r' % (self.dest,))


def validate(params):
    """Refuse bad options before anything runs (DbDumpError); the options read."""
    return DumpOptions.from_params(params)


def dump(params, runner, check_mode=False):
    """Run one db_dump; returns the module result (without ``failed``)."""
    opts = DumpOptions.from_params(params)
    if opts.engine == PGBACKREST:
        return _pgbackrest_backup(opts, runner, check_mode)
    dest, db = opts.dest, opts.db
    result = {'changed': False, 'skipped_dump': False, 'path': None, 'manifest': None, 'globals_path': None, 'pruned': [],
              'format': opts.format, 'warnings': []}
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise DbDumpError('dest %s exists and is not a directory' % dest)
    missing_dest = not os.path.isdir(dest)
    if missing_dest and not os.path.isdir(os.path.dirname(dest.rstrip('/')) or '/'):
        raise DbDumpError('the parent of dest %s does not exist (an unmounted backup volume?); create it first' % dest)
    engine = engine_for(DATABASE, opts.engine, runner)
    # The client tools run, are new enough and take the compression asked for: checked before anything is written.
    engine.health(opts)
    if missing_dest:
        if check_mode:
            return _planned(engine, opts, result, created_dest=True)
        ensure_private_dir(dest, 0o700, opts.owner, opts.group)
        result['dest_created'] = True
    # Check mode leaves even the lock file alone.
    lock = None if check_mode else take_lock(dest, LOCK_PURPOSE, 'Not starting a second dump of %s into the same destination.' % db,
                                             error=DbDumpError)
    try:
        if _skip_for_recent(engine, opts, result):
            return result
        if check_mode:
            return _planned(engine, opts, result, created_dest=False)
        made = engine.backup(opts)
        result.update(made.details)
        result['warnings'].extend(made.warnings)
        result['changed'] = True
        result['pruned'] = engine.retention(opts).removed
        return result
    finally:
        if lock is not None:
            lock.release()


def _skip_for_recent(engine, opts, result):
    """With skip_if_newer_than, report the newest complete dump when it is recent enough (True: nothing to do)."""
    complete = [point for point in engine.list(opts) if point.complete]
    if opts.skip_seconds is None or not complete:
        return False
    newest = complete[-1]
    age = time.time() - newest.epoch
    if age > opts.skip_seconds:
        return False
    item = newest.details
    record = item['record']
    globals_path = os.path.join(opts.dest, record['globals_path']) if record.get('globals_path') else None
    result.update(skipped_dump=True, path=item['path'], manifest=item['manifest'],
                  globals_path=globals_path, size=record.get('size'), sha256=record.get('sha256'),
                  duration=record.get('duration'),
                  msg='a complete dump %d s old exists (skip_if_newer_than=%s): %s'
                  % (age, opts.skip_if_newer_than, item['name']))
    return True


def _planned(engine, opts, result, created_dest):
    """Check mode: what the engine would write, and what retention would remove."""
    planned = engine.backup(opts, check_mode=True)
    result.update(planned.details, changed=True)
    result['warnings'].extend(planned.warnings)
    if created_dest:
        result['dest_created'] = True
    else:
        result['pruned'] = engine.retention(opts, check_mode=True).removed
    return result


def _pgbackrest_backup(opts, runner, check_mode):
    """engine=pgbackrest: one backup of the stanza (pgBackRest locks the stanza and expires old backups itself)."""
    engine = engine_for(DATABASE, opts.engine, runner)
    result = {'changed': False, 'skipped_dump': False, 'path': None, 'manifest': None, 'globals_path': None, 'pruned': [],
              'format': PGBACKREST, 'stanza': opts.stanza, 'warnings': []}
    try:
        result['version'] = engine.health(opts).version
        try:
            complete = [point for point in engine.list(opts) if point.complete]
        except EngineError as exc:
            if not check_mode:
                raise
            # Check mode before db_archive has really run: no configuration or stanza yet, so the backup would be the
            # stanza's first, a full one.
            result.update(changed=True, backup_type='full', backup_label=None,
                          msg='would take the first (full) backup of stanza %s once it is set up' % opts.stanza)
            result['warnings'].append('pgBackRest cannot read stanza %s yet: %s' % (opts.stanza, exc))
            return result
        if opts.skip_seconds is not None and complete and time.time() - complete[-1].epoch <= opts.skip_seconds:
            stanza = engine.stanza(opts)
            result.update(backup_fields(stanza, complete[-1].details, engine.archive_newest(opts, stanza)), skipped_dump=True,
                          msg='a complete %s backup %d s old exists (skip_if_newer_than=%s): %s'
                          % (complete[-1].kind, time.time() - complete[-1].epoch, opts.skip_if_newer_than, complete[-1].id))
            return result
        made = engine.backup(opts, check_mode=check_mode)
    finally:
        result['commands'] = list(engine.commands)
    result.update(made.details)
    result['warnings'].extend(made.warnings)
    result['changed'] = True
    result['commands'] = list(engine.commands)
    return result
