# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup_set step: write, read, list and prune the set records of a store.

schema.py holds the record's schema (what a field must be, what makes a set complete), store.py how records are
read from ``<store_path>/sets``; this file the operations of the modules backup_set (present, pruned) and
backup_set_info (one set, the listing). Each returns a result dict
(``changed``, and ``diff`` for ``present``) and raises BackupSetError for a refusal, having changed nothing.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.backup_set.schema import (
    COMPONENTS, FORMAT_VERSION, LATEST, BackupSetError, assemble, components_of, dumps, redone, set_time)
from ansible_collections.omero.backup.plugins.module_utils.backup_set.store import SetStore

__all__ = ['argument_spec', 'info_argument_spec', 'REQUIRED_IF', 'Options', 'BackupSetError', 'COMPONENTS', 'FORMAT_VERSION',
           'run', 'read', 'present', 'info', 'listing', 'prune']


PRESENT_NEEDS = ['server_host', 'backup_dir', 'dbname', 'config', 'database', 'datadir']


def argument_spec():
    """The module backup_set's options: the one place their types and defaults are written."""
    return dict(
        state=dict(type='str', choices=['present', 'pruned'], required=True),
        store_path=dict(type='path', required=True),
        server_host=dict(type='str'),
        database_host=dict(type='str'),
        store_host=dict(type='str'),
        backup_dir=dict(type='path'),
        dbname=dict(type='str'),
        consistent=dict(type='bool', default=False),
        config=dict(type='dict'),
        database=dict(type='dict'),
        datadir=dict(type='dict'),
        other_sources=dict(type='dict'),
        sources=dict(type='list', elements='dict'),
        keep=dict(type='int'),
        keep_younger_than=dict(type='str'),
        set_ids=dict(type='list', elements='str'),
    )


REQUIRED_IF = [('state', 'present', PRESENT_NEEDS), ('state', 'pruned', ['keep', 'keep_younger_than', 'set_ids'], True)]


def info_argument_spec():
    """The module backup_set_info's options."""
    return dict(
        store_path=dict(type='path', required=True),
        set_id=dict(type='str'),
        require_complete=dict(type='bool', default=True),
    )


class Options(object):
    """A module's params, read once through base/params.given() (defaults live in the argument spec only)."""

    __slots__ = ('state', 'store_path', 'set_id', 'require_complete', 'server_host', 'database_host', 'store_host',
                 'backup_dir', 'dbname', 'consistent', 'config', 'database', 'datadir', 'other_sources', 'keep',
                 'keep_younger_than', 'set_ids', 'sources')

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    @classmethod
    def from_params(cls, params, spec):
        values = given(spec, params)
        return cls(**{name: values[name] for name in cls.__slots__ if name in values})


def _text(raw):
    return raw.decode('utf-8', 'replace') if raw is not None else ''


def _latest_is_stale(latest, kept):
    """Whether latest.json must be pointed at ``kept`` (a set this run confirmed without rewriting it): when it is
    missing or unreadable, or names an older set (a run killed between the set's rename and latest.json's)."""
    if latest.record is None or latest.refused or not isinstance(latest.record, dict):
        return True
    if latest.record.get('set_id') == kept.set_id:
        return False
    return (set_time(latest.record) or 0) < (set_time(kept.record) or 0)


def present(options, check_mode, now):
    """Write the set record the facts describe, then latest.json; only what differs from the store is written.

    A set whose record the store already holds complete is kept as the run that made it wrote it when this run
    redid no component (the rule of the roles' former shell step): a re-run that found everything recent writes
    nothing and reports no change.
    """
    record, problems = assemble(options, now)
    if problems and not check_mode:
        raise BackupSetError('no set record written for %s: the set is not complete: %s'
                             % (record['set_id'], '; '.join(problems)))
    store = SetStore(options.store_path)
    data = dumps(record)
    fd = store.open_dir()
    try:
        existing = store.read(fd, record['set_id'] + '.json', record['set_id'])
        latest = store.read(fd, 'latest.json', None)
    finally:
        if fd is not None:
            os.close(fd)
    keep = existing.complete and ((existing.raw == data and existing.mode == 0o600) or not redone(options))
    target = existing.raw if keep else data
    write_latest = latest.raw != target and (not keep or _latest_is_stale(latest, existing))
    result = dict(set_id=record['set_id'], path=existing.path, latest_path=store.latest_path,
                  record=existing.record if keep else record, complete=not problems, problems=problems,
                  written=not keep, latest_written=write_latest, changed=not keep or write_latest,
                  diff=dict(before=_text(existing.raw), after=_text(target), before_header=existing.path,
                            after_header=existing.path))
    if not check_mode and result['changed']:
        if fd is None and not os.path.isdir(options.store_path):
            raise BackupSetError('no set record written: the store directory %s does not exist (the backup '
                                 'makes it before anything is copied)' % options.store_path)
        ensure_private_dir(store.sets_dir)
        store.open_dir_checked()
        if not keep:
            atomic_write(existing.path, data, mode=0o600)
        if write_latest:
            atomic_write(store.latest_path, target, mode=0o600)
    return result


def info(options):
    """The set ``options.set_id`` names (``latest``: the one latest.json names), parsed, with its completeness."""
    store = SetStore(options.store_path)
    found, warnings = store.find(options.set_id)
    record = found.record if isinstance(found.record, dict) else None
    result = dict(changed=False, set_id=found.set_id if found.set_id != LATEST else None, path=found.path,
                  found=found.exists, record=record, complete=found.complete, problems=found.problems,
                  format_version=(record or {}).get('format_version'), time=found.time,
                  components=components_of(record) if record else None, warnings=warnings)
    if options.require_complete:
        if not found.exists:
            raise BackupSetError('no backup set %s: %s does not exist%s' % (
                options.set_id, found.path, '' if options.set_id != LATEST else ' and the store holds no complete set'))
        if not found.complete:
            raise BackupSetError('%s does not describe a complete backup set (%s); choose another set'
                                 % (found.path, '; '.join(found.problems)))
    return result


def listing(options):
    """Every set record of the store, newest first, each with its completeness."""
    entries, ignored, latest = SetStore(options.store_path).list()
    latest_id = latest.record.get('set_id') if isinstance(latest.record, dict) and not latest.refused else None
    return dict(changed=False, sets=[found.summary() for found in entries], latest=latest_id, ignored=ignored,
                complete_sets=[found.set_id for found in entries if found.complete])


def _protected(entries, latest_id, keep, keep_seconds, now):
    """{set id: why it stays} under the retention rule; every other record listed is pruned."""
    why = {}
    complete = [found for found in entries if found.complete]
    for rank, found in enumerate(complete[:max(keep or 1, 1)]):
        why[found.set_id] = 'the newest complete set' if rank == 0 else 'one of the %d newest complete sets' % keep
    if latest_id:
        why.setdefault(latest_id, 'the set latest.json names')
    for found in entries:
        if found.refused or not isinstance(found.record, dict) or found.record.get('format_version') not in (1, 2):
            # What cannot be read (a symlink, another user's file, a newer format) is never removed here.
            why.setdefault(found.set_id, 'not a record this module can judge: %s' % '; '.join(found.problems))
        elif keep_seconds is not None and found.time is not None and now - found.time < keep_seconds:
            why.setdefault(found.set_id, 'younger than keep_younger_than')
    return why


def prune(options, check_mode, now):
    """Remove the set records retention does not keep: the O(keep) newest complete sets, every set younger than
    O(keep_younger_than), the newest complete one and the one latest.json names always stay."""
    keep_seconds = parse_duration(options.keep_younger_than, 'keep_younger_than')
    if options.keep is not None and options.keep < 1:
        raise BackupSetError('keep=%d: keep must be 1 or more, the newest complete set always stays' % options.keep)
    store = SetStore(options.store_path)
    entries, ignored, latest = store.list()
    latest_id = latest.record.get('set_id') if isinstance(latest.record, dict) and not latest.refused else None
    result = dict(changed=False, pruned=[], kept=[], ignored=ignored)
    if not any(found.complete for found in entries):
        result['msg'] = 'no complete set on the store: nothing pruned (the records are kept for an operator to inspect)'
        result['kept'] = [dict(set_id=found.set_id, reason='no complete set on the store') for found in entries]
        return result
    why = _protected(entries, latest_id, options.keep, keep_seconds, now)
    if options.set_ids is not None:
        # Only the sets whose data an engine's retention removed (restic forget); the rules above still protect.
        named = set(options.set_ids)
        for found in entries:
            if found.set_id not in named:
                why.setdefault(found.set_id, 'not named in set_ids')
    doomed = [found for found in entries if found.set_id not in why]
    result['kept'] = [dict(set_id=found.set_id, reason=why[found.set_id]) for found in entries if found.set_id in why]
    result['pruned'] = [found.set_id for found in doomed]
    result['changed'] = bool(doomed)
    if doomed and not check_mode:
        store.remove([found.name for found in doomed])
    return result


def run(options, check_mode, now):
    """The operation ``options.state`` names (the module backup_set: present or pruned)."""
    if options.state == 'present':
        return present(options, check_mode, now)
    return prune(options, check_mode, now)


def read(options):
    """What the module backup_set_info returns: every record of the store, and the one ``options.set_id`` names
    when it names one (``latest``: the one latest.json names)."""
    result = listing(options)
    if options.set_id is not None:
        result.update(info(options))
    return result
