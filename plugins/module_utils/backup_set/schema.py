# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup-set record's schema: its fields, what makes it complete, how it is assembled and serialised.

A backup set is one config save, one database dump and one binary-repository increment that belong together.
Its record, ``<store_path>/sets/<set_id>.json`` (a copy as ``sets/latest.json``), is what a backup writes last
and what a restore, a drill and a verification read first. This step is its only owner: the roles hand it
facts and get parsed records back (plugins/modules/backup_set.py documents the schema; docs/architecture.md,
"The backup set record", says the same in prose).

Invariants:
- a record on the store was written whole (temp file, fsync, rename, directory fsync; mode 0600), the set's
  file first, then latest.json;
- a record is complete only when it says so and every component it names passes its completeness rule;
  a record that is not complete is never written by ``present`` outside check mode;
- a record is read only from a regular file (never through a symlink) owned by root or by the user reading
  it and writable by nobody else, in a ``sets/`` directory with the same rule;
- retention never removes the newest complete set, the set latest.json names, or a file it cannot read.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import datetime
import json
import re
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError

FORMAT_VERSION = 2
# 1: written by the roles' shell step up to issue 13 (the three components implied, no per-component flag).
# 2: written by this module: ``components`` names the parts, each of which carries its own ``complete``.
READABLE_VERSIONS = (1, 2)
COMPONENTS = ('config', 'database', 'datadir')
LATEST = 'latest'
LATEST_FILE = 'latest.json'
SETS_DIR = 'sets'
# A set id becomes a file name: plain ASCII, no slash, no leading dot (hidden, '..') or dash (an option).
SET_ID = re.compile(r'[0-9A-Za-z_][0-9A-Za-z_.-]{0,127}\Z')
SHA256 = re.compile(r'[0-9a-f]{64}\Z')
# A record is a few kilobytes; anything far larger is not one, and is not read into memory.
MAX_RECORD_BYTES = 1024 * 1024


class BackupSetError(OmeroBackupError):
    """A refusal about a set record, meant for the operator as it is."""


# ---------------------------------------------------------------- schema

def _is_str(value):
    return isinstance(value, str) and value != ''


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return _is_int(value) or isinstance(value, float)


def _is_abs(value):
    return _is_str(value) and value.startswith('/')


def _is_sha256(value):
    return isinstance(value, str) and SHA256.match(value) is not None


def _is_str_list(value):
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


# Field -> (what it must be, test, needed for the component to be complete). A field may be null (None)
# while its component is incomplete (a check run knows no sha256 yet); a complete component has every
# needed field, and every field present has the type named here.
SCHEMA = {
    'config': {
        'path': ('an absolute path', _is_abs, True),
        'sha256': ('64 lowercase hex digits', _is_sha256, True),
        'omero_version': ('a string', _is_str, False),
        'other_sources': ('a list of strings', _is_str_list, False),
        'other_sources_archive': ('an absolute path', _is_abs, False),
        'other_sources_sha256': ('64 lowercase hex digits', _is_sha256, False),
    },
    'database': {
        'host': ('a string', _is_str, True),
        # pg_dump when absent (records written before issue 15); NEEDED_BY_ENGINE says what completes each.
        'engine': ('pg_dump or pgbackrest', lambda value: value in DATABASE_ENGINES, False),
        'path': ('an absolute path', _is_abs, True),
        'manifest': ('an absolute path', _is_abs, False),
        'files': ('a list of strings', _is_str_list, True),
        'sha256': ('64 lowercase hex digits', _is_sha256, True),
        # pgbackrest: the stanza, the backup this set's run made (or found recent), and the time up to which WAL
        # was in the repository when the set was recorded: the set restores the database to that time.
        'stanza': ('a string', _is_str, False),
        'backup_label': ('a pgBackRest backup label', lambda value: isinstance(value, str) and BACKUP_LABEL.match(value) is not None,
                         False),
        'backup_type': ('full, diff or incr', lambda value: value in ('full', 'diff', 'incr'), False),
        'backup_time': ('an ISO 8601 UTC time', lambda value: _epoch_of(value) is not None, False),
        'archived_until': ('an ISO 8601 UTC time', lambda value: _epoch_of(value) is not None, False),
        'archived_until_epoch': ('a number', _is_number, False),
        'wal_stop': ('a string', _is_str, False),
        'size': ('an integer', _is_int, False),
        'schema_version': ('a string', _is_str, False),
        'schema_patch': ('an integer or a string', lambda value: _is_int(value) or _is_str(value), False),
        'db_uuid': ('a string', _is_str, False),
        'server_stopped': ('true or false', lambda value: isinstance(value, bool), False),
    },
    'datadir': {
        'src': ('an absolute path', _is_abs, True),
        'store': ('a string', _is_str, True),
        'increment_time': ('a string', _is_str, True),
        'increment_epoch': ('a number', _is_number, False),
        'files': ('an integer', _is_int, False),
        'bytes': ('an integer', _is_int, False),
        'warnings': ('a list', lambda value: isinstance(value, list), False),
        # The engine that holds the set (absent: rdiff-backup, whose increment time names it). restic keeps the set in
        # one snapshot: its id, the repository it is in, and the label (the set id) it carries as a tag.
        'engine': ('rdiff-backup or restic', lambda value: value in DATADIR_ENGINES, False),
        'repository': ('a string', _is_str, False),
        'snapshot_id': ('a restic snapshot id (hex)', lambda value: isinstance(value, str) and SNAPSHOT_ID.match(value) is not None, False),
        'label': ('a set id', lambda value: set_id_problem(value) is None, False),
    },
}
DATADIR_ENGINES = ('rdiff-backup', 'restic')
SNAPSHOT_ID = re.compile(r'[0-9a-f]{8,64}\Z')
# Fields a datadir component of an engine needs beyond SCHEMA's: without them the set cannot be found in its repository.
ENGINE_NEEDS = {'restic': ('snapshot_id', 'repository')}
TOP_SCHEMA = {
    'set_id': ('a set id ([0-9A-Za-z_.-], not starting with . or -)', lambda value: set_id_problem(value) is None, True),
    'server_host': ('a string', _is_str, True),
    'database_host': ('a string', _is_str, False),
    'store_host': ('a string', _is_str, False),
    'store_path': ('an absolute path', _is_abs, False),
    'backup_dir': ('an absolute path', _is_abs, True),
    'dbname': ('a string', _is_str, True),
    'consistent': ('true or false', lambda value: isinstance(value, bool), False),
    'sources': ('a list of sources (name, kind, an absolute path; store and increment_time but for the data dir)',
                lambda value: _sources_problem(value) is None, False),
}
DATABASE_ENGINES = ('pg_dump', 'pgbackrest')
# What makes the database component complete, by its engine: a dump file the set holds (pg_dump), or a backup in
# the pgBackRest repository and the archived WAL time the set restores to (pgbackrest).
NEEDED_BY_ENGINE = {
    'pg_dump': ('host', 'path', 'files', 'sha256'),
    'pgbackrest': ('host', 'stanza', 'backup_label', 'archived_until'),
}
# pgBackRest's labels: 20261203-101500F, 20261203-101500F_20261203-111500D (or I).
BACKUP_LABEL = re.compile(r'[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?\Z')
# Order of a written record; ``complete`` stays last, so a reader of the raw file sees it last.
TOP_ORDER = ('set_id', 'format_version', 'server_host', 'database_host', 'store_host', 'store_path', 'datadir',
             'backup_dir', 'dbname', 'consistent', 'components', 'config', 'database', 'complete')
# Keys a caller passes with a component that say what this run did, not what the set is.
RUN_KEYS = ('changed',)


# The layout's sources (layout_info): each a mapping; all but the data dir name their own repository and point.
SOURCE_KINDS = ('datadir', 'managed', 'volume', 'certs', 'extra', 'web')
# 'web' is OMERO.web's saved configuration, which travels with the config under backup_dir, not in a repository.
SOURCE_KINDS_STORED = ('managed', 'volume', 'certs', 'extra')


def _sources_problem(value):
    """Why ``value`` is not a record's ``sources`` list (None when it is)."""
    if not isinstance(value, list) or not value:
        return 'not a non-empty list'
    names = set()
    for source in value:
        if not isinstance(source, dict) or not _is_str(source.get('name')) or source.get('kind') not in SOURCE_KINDS \
                or not _is_abs(source.get('path')) or source['name'] in names:
            return 'a source without a unique name, a kind or an absolute path'
        names.add(source['name'])
        if source['kind'] in SOURCE_KINDS_STORED and not (_is_str(source.get('store')) and _is_str(source.get('increment_time'))):
            return 'source %s has no store or increment_time' % source['name']
    return None


def _with_sources(record, sources):
    """``record`` with ``sources`` before ``complete`` (a record without them is written as before)."""
    ordered = dict((key, value) for key, value in record.items() if key != 'complete')
    ordered['sources'] = [dict((key, value) for key, value in source.items() if key not in RUN_KEYS) for source in sources]
    ordered['complete'] = record['complete']
    return ordered


def set_id_problem(value):
    """Why ``value`` cannot name a set (None when it can)."""
    if not isinstance(value, str) or not SET_ID.match(value):
        return ('set id %s is not one: use 1 to 128 of [0-9A-Za-z_.-], not starting with "." or "-" '
                '(it names a file in sets/)' % ascii(value))
    if value == LATEST:
        return 'set id "latest" is reserved: it names the newest set'
    return None


def _engine_problems(where, fields, needed):
    """What the datadir component's engine needs beyond the schema (restic: the snapshot and its repository)."""
    if not needed or where != 'datadir':
        return []
    return ['datadir.%s is missing (engine %s)' % (name, fields.get('engine'))
            for name in ENGINE_NEEDS.get(fields.get('engine'), ()) if fields.get(name) is None]


def schema_of(name, part):
    """SCHEMA[name] with the fields needed for ``part`` to be complete: the database's depend on its engine."""
    schema = SCHEMA[name]
    engine = part.get('engine') or 'pg_dump' if isinstance(part, dict) else 'pg_dump'
    if name != 'database' or engine not in NEEDED_BY_ENGINE:
        return schema
    needed = NEEDED_BY_ENGINE[engine]
    return dict((field, (what, test, field in needed)) for field, (what, test, _required) in schema.items())


def _field_problems(where, fields, schema, needed):
    problems = _engine_problems(where, fields, needed)
    for name, (what, test, required) in sorted(schema.items()):
        value = fields.get(name)
        if value is None:
            if required and needed:
                problems.append('%s.%s is missing' % (where, name))
        elif not test(value):
            problems.append('%s.%s must be %s, got %s' % (where, name, what, ascii(value)[:80]))
    return problems


def components_of(record):
    """The component names a record holds: v2 says so; v1 records always held all three."""
    if record.get('format_version') == 1:
        return list(COMPONENTS)
    return record.get('components')


def problems_of(record):
    """Every reason ``record`` is not a complete set of a readable format (an empty list when it is)."""
    if not isinstance(record, dict):
        return ['the record is not a JSON object']
    version = record.get('format_version')
    if not _is_int(version) or version not in READABLE_VERSIONS:
        return ['format_version %s is not one this collection reads (%s); a newer collection wrote it?'
                % (ascii(version), ', '.join(str(v) for v in READABLE_VERSIONS))]
    problems = _field_problems('record', record, TOP_SCHEMA, True)
    names = components_of(record)
    if not _is_str_list(names) or not names or not set(names) <= set(COMPONENTS) or len(set(names)) != len(names):
        return problems + ['components must name some of %s, once each, got %s' % (', '.join(COMPONENTS), ascii(names))]
    for name in names:
        part = record.get(name)
        if not isinstance(part, dict):
            problems.append('the record names component %s but holds no %s mapping' % (name, name))
            continue
        problems += _field_problems(name, part, schema_of(name, part), True)
        if version >= 2 and part.get('complete') is not True:
            problems.append('%s does not say it is complete' % name)
    if record.get('complete') is not True:
        problems.append('the record does not say it is complete')
    return problems


def validate_component(name, facts):
    """Type problems of a component as a caller hands it (missing values allowed: a check run has none)."""
    if not isinstance(facts, dict):
        return ['%s must be a mapping, got %s' % (name, type(facts).__name__)]
    unknown = sorted(set(facts) - set(SCHEMA[name]) - set(RUN_KEYS) - {'complete'})
    problems = ['%s.%s is not a field of the set record' % (name, key) for key in unknown]
    return problems + _field_problems(name, facts, schema_of(name, facts), False)


def _epoch_of(text):
    """Seconds since the epoch of an ISO 8601 UTC time (``2026-11-26T08:30:00Z``, or ``+00:00`` as YAML's
    timestamp type renders it), or None."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(text[:-1] + '+00:00' if text.endswith('Z') else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return calendar.timegm(moment.utctimetuple())


def set_time(record):
    """Seconds since the epoch of the set's increment (its age for listing and retention), or None."""
    datadir = record.get('datadir') if isinstance(record, dict) else None
    if not isinstance(datadir, dict):
        return None
    if _is_number(datadir.get('increment_epoch')):
        return float(datadir['increment_epoch'])
    epoch = _epoch_of(datadir.get('increment_time'))
    return float(epoch) if epoch is not None else None


def set_id_for(datadir, now):
    """A set is named after the increment that holds it (so a re-run that redid nothing names the same set), as its
    UTC time without colons; before there is one (a check run on a new store), after the time now. A restic set is
    named by the label its snapshot carries."""
    label = datadir.get('label') if isinstance(datadir, dict) else None
    if label is not None and set_id_problem(label) is None:
        # restic: the set id was chosen before the snapshot, which carries it as a tag.
        return label
    stamp = datadir.get('increment_time') if isinstance(datadir, dict) else None
    epoch = _epoch_of(stamp)
    if epoch is None and isinstance(stamp, str) and stamp:
        return re.sub(r'[^0-9A-Za-z_.-]', '', stamp)
    return time.strftime('%Y-%m-%dT%H%M%SZ', time.gmtime(now if epoch is None else epoch))


def assemble(options, now):
    """The record ``options`` (a PresentOptions) describe, in the order of TOP_ORDER, and its problems."""
    problems = []
    for name in COMPONENTS:
        problems += validate_component(name, getattr(options, name))
    if options.other_sources is not None:
        problems += validate_component('config', _other_sources_fields(options.other_sources))
    if problems:
        raise BackupSetError('the facts given for the set record are not usable: %s' % '; '.join(problems))
    parts = {}
    for name in COMPONENTS:
        part = {key: value for key, value in getattr(options, name).items() if key not in RUN_KEYS + ('complete',)}
        if name == 'config' and options.other_sources is not None:
            part.update(_other_sources_fields(options.other_sources))
        part['complete'] = not _field_problems(name, part, schema_of(name, part), True)
        parts[name] = part
    values = dict(parts, set_id=set_id_for(options.datadir, now), format_version=FORMAT_VERSION,
                  server_host=options.server_host, database_host=options.database_host, store_host=options.store_host,
                  store_path=options.store_path, backup_dir=options.backup_dir, dbname=options.dbname,
                  consistent=options.consistent, components=list(COMPONENTS), complete=True)
    record = {key: values[key] for key in TOP_ORDER}
    if getattr(options, 'sources', None) is not None:
        record = _with_sources(record, options.sources)
    problems = problems_of(record)
    if problems:
        record['complete'] = False
    return record, problems


def _other_sources_fields(other):
    if not isinstance(other, dict):
        return {'other_sources': other}
    unknown = sorted(set(other) - {'archive', 'sha256', 'sources'} - set(RUN_KEYS))
    if unknown:
        raise BackupSetError('other_sources.%s is not a field of the set record (archive, sha256, sources)' % unknown[0])
    return {'other_sources': other.get('sources') or [], 'other_sources_archive': other.get('archive'),
            'other_sources_sha256': other.get('sha256')}


def redone(options):
    """Whether this run made any component anew (a caller's ``changed`` flag on a component)."""
    parts = [options.config, options.database, options.datadir, options.other_sources or {}]
    return any(isinstance(part, dict) and part.get('changed') for part in parts)


def dumps(record):
    return (json.dumps(record, indent=4) + '\n').encode('ascii')
