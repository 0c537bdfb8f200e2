# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The missing-file report, the inverse of cleanse: rows of the database whose file is not in the data dir.

Set-based on both sides, never a query or a stat per row: one query per kind returns every id as its decimal name
(and, for the managed repository, every id and ``path || name``) as one value split in C, read in a thread while
the main thread lists the directories (os.listdir for the id trees, names only; os.scandir with d_type for the
managed repository), then one set difference per kind. A file counts by its name within its tree, as cleanse
reads it (an id's file misplaced in another Dir-NNN is not reported). The path rules are proof/paths.py's, the
same as cleanse's and verify's:

* ``originalfile`` with ``repo`` NULL (not a directory or repository root): ``Files/<id path>``;
* ``originalfile`` and ``pixels`` with ``repo`` = the ManagedRepository's uuid: ``<managed dir>/<path><name>``;
  a link there (in-place import) is present, whatever its target (verify reports dangling links);
* ``pixels`` with ``repo`` NULL: ``Pixels/<id path>`` or ``<id>_pyramid``; where the schema has ``image.fileset``
  (OMERO.server's), only pixels of images without a fileset: an imported image's pixels are read from its
  fileset in the managed repository and have no file in Pixels/;
* ``thumbnail``: ``Thumbnails/<id path>`` (regenerated on demand by the server, but a restore should bring them).

Read-only; writes only its 0600 report file (not in check mode).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import array
import json
import os
import stat
import sys
import threading
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError, OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.proof import paths
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import id_to_relpath
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec

STEP_OPTIONS = dict(
    db=dict(type='str', default='omero'),
    datadir=dict(type='path', default='/OMERO'),
    managed_dir=dict(type='path'),
    report_file=dict(type='path'),
    max_listed=dict(type='int', default=100),
    fail_on_missing=dict(type='bool', default=True),
)

KINDS = ('Files', 'Pixels', 'Thumbnails', 'ManagedRepository')
_NOT_A_FILE = "mimetype IS DISTINCT FROM 'Directory' AND mimetype IS DISTINCT FROM 'Repository'"
# ids as the names of their files ("/" separated: no id holds one), compared with the names on disk as strings: no
# int per file name, no str per row, one split in C.
# No ORDER BY: a sort of a million rows would double the query's time, and sets need no order.
_IDS = "SELECT count(*), convert_to(string_agg(id::text, '/'), 'UTF8') FROM %s WHERE %s"
# ids and UTF-8 paths of the managed repository's rows, NUL separated (PostgreSQL text never holds a NUL).
# Both aggregates of one query see the rows in the same order, so the n-th id is the n-th path.
_MANAGED = ("SELECT count(*), string_agg(int8send(id), ''::bytea), "
            "string_agg(convert_to(path || name, 'UTF8'), '\\x00'::bytea) FROM %s WHERE repo = %%(managed)s AND %s")


def argument_spec():
    spec = postgres_argument_spec()
    spec.update(STEP_OPTIONS)
    return spec


class MissingOptions(object):
    def __init__(self, params):
        for key, value in given(argument_spec(), params).items():
            setattr(self, key, value)
        self.connection = dict((key, getattr(self, key)) for key in postgres_argument_spec())
        if self.max_listed < 0:
            raise OmeroBackupError('max_listed must be 0 or more, got %d' % self.max_listed)
        self.datadir = self.datadir.rstrip('/') or '/'
        self.managed_dir = (self.managed_dir or os.path.join(self.datadir, 'ManagedRepository')).rstrip('/') or '/'


def _ids(blob):
    ids = array.array('q')
    if blob:
        ids.frombytes(bytes(blob))
        if sys.byteorder == 'little':
            ids.byteswap()
    return ids


def _has_column(conn, table, column):
    row = postgres.query_one(conn, "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = %s::regclass "
                                   "AND attname = %s AND attnum > 0 AND NOT attisdropped", ('public.' + table, column))
    return bool(row[0])


def _pixels_where(conn):
    where = 'p.repo IS NULL'
    if postgres.table_exists(conn, 'image') and _has_column(conn, 'image', 'fileset') and _has_column(conn, 'pixels', 'image'):
        where += ' AND NOT EXISTS (SELECT 1 FROM public.image AS i WHERE i.id = p.image AND i.fileset IS NOT NULL)'
    return where


def load_rows(conn, managed):
    """{kind: (ids, relpaths)} of the rows that must have a file, one query per kind: for the id trees the ids as
    decimal strings and relpaths None, for the managed repository an array of ids and their relpaths (bytes)."""
    for table in ('originalfile', 'pixels', 'thumbnail'):
        if not postgres.table_exists(conn, table):
            raise OmeroBackupError('the database has no table %s: not an OMERO database' % table)
    rows = {}
    with conn.cursor() as cursor:
        cursor.execute('SET max_parallel_workers_per_gather = 0')  # one aggregate, no partial ones to combine
        for kind, source, where in (('Files', 'public.originalfile', 'repo IS NULL AND ' + _NOT_A_FILE),
                                    ('Pixels', 'public.pixels AS p', _pixels_where(conn)),
                                    ('Thumbnails', 'public.thumbnail', 'true')):
            cursor.execute(_IDS % (source, where))
            names = cursor.fetchone()[1]
            rows[kind] = (bytes(names).split(b'/') if names else [], None)
        ids, relpaths = array.array('q'), []
        if managed is not None:
            for table, where in (('originalfile', _NOT_A_FILE), ('pixels', 'true')):
                cursor.execute(_MANAGED % ('public.' + table, where), {'managed': managed})
                count, id_blob, path_blob = cursor.fetchone()
                if count:
                    ids.extend(_ids(id_blob))
                    relpaths.extend(relpath.lstrip(b'/') for relpath in bytes(path_blob).split(b'\x00'))
        rows['ManagedRepository'] = (ids, relpaths)
    return rows


def area_names(root, pixels=False):
    """Every name below ``root`` (and, under Pixels/, ``<id>`` for each ``<id>_pyramid``): os.listdir only, no
    stat, no per-name parsing. An id's row has its file when the id's decimal name is among them; names that are
    not ids (Dir-NNN, a pyramid's lock or temporary file, a stray README) never equal one."""
    found = set()
    stack = [os.fsencode(root)]  # bytes: no UTF-8 decoding of a million names
    while stack:
        directory = stack.pop()
        try:
            names = os.listdir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        stack.extend(os.path.join(directory, name) for name in names if name[:4] == b'Dir-')
        found.update(names)
        if pixels:
            found.update(name[:-8] for name in names if name.endswith(b'_pyramid'))
    return found


def managed_entries(root):
    """Relpaths (bytes) of everything below ``root`` that is not a directory; symlinked directories (volumes
    linked into the repository) are entered once each."""
    found = set()
    seen = set()
    stack = [(os.fsencode(root), b'')]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, prefix + entry.name + b'/'))
                elif entry.is_symlink() and _linked_dir(entry.path, seen):
                    stack.append((entry.path, prefix + entry.name + b'/'))
                else:
                    found.add(prefix + entry.name)
    return found


def _linked_dir(path, seen):
    try:
        info = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or (info.st_dev, info.st_ino) in seen:
        return False
    seen.add((info.st_dev, info.st_ino))
    return True


class _Loader(threading.Thread):
    """The database side, read while the main thread lists the directories (psycopg2 releases the GIL)."""

    def __init__(self, conn, managed):
        threading.Thread.__init__(self, name='omero-missing-rows')
        self.daemon = True
        self.conn, self.managed, self.rows, self.error = conn, managed, None, None

    def run(self):
        try:
            self.rows = load_rows(self.conn, self.managed)
        except Exception as exc:  # handed to the main thread
            self.error = exc


def find_missing(conn, options):
    """{kind: {'rows': n, 'missing': [(id, relpath bytes)]}} and the seconds each side took."""
    managed = paths.managed_uuid(conn)
    loader = _Loader(conn, managed)
    started = time.monotonic()
    loader.start()
    present = {'Files': area_names(os.path.join(options.datadir, 'Files')),
               'Pixels': area_names(os.path.join(options.datadir, 'Pixels'), pixels=True),
               'Thumbnails': area_names(os.path.join(options.datadir, 'Thumbnails')),
               'ManagedRepository': managed_entries(options.managed_dir)}
    walked = time.monotonic() - started
    loader.join()
    if loader.error is not None:
        if postgres.psycopg2 is not None and isinstance(loader.error, postgres.psycopg2.Error):
            raise OmeroBackupError('cannot read the rows: %s' % str(loader.error).strip())
        raise loader.error
    found = {}
    for kind in KINDS:
        ids, relpaths = loader.rows[kind]
        if relpaths is None:
            # The usual answer, none missing, in one C loop; the set difference only when something is.
            absent = [] if present[kind].issuperset(ids) else sorted(int(name) for name in set(ids).difference(present[kind]))
            missing = [(object_id, ('%s/%s' % (kind, id_to_relpath(object_id))).encode('ascii')) for object_id in absent]
        else:
            on_disk = present[kind]
            missing = [(object_id, b'ManagedRepository/' + relpath) for object_id, relpath in zip(ids, relpaths)
                       if relpath not in on_disk]
        found[kind] = {'rows': len(ids), 'missing': missing}
    return found, managed, walked, time.monotonic() - started


def report(params, conn, check_mode=False):
    options = params if isinstance(params, MissingOptions) else MissingOptions(params)
    if not os.path.isdir(options.datadir):
        raise OmeroBackupError('data directory %s does not exist' % options.datadir)
    found, managed, walked, duration = find_missing(conn, options)
    counts = dict((kind, {'rows': found[kind]['rows'], 'missing': len(found[kind]['missing'])}) for kind in KINDS)
    total = sum(count['missing'] for count in counts.values())
    listed = []
    for kind in KINDS:
        for object_id, relpath in found[kind]['missing']:
            if len(listed) >= options.max_listed:
                break
            listed.append({'kind': kind, 'id': object_id, 'path': escape(relpath)})
    problems = ['%d of %d %s row(s) have no file, e.g. %s'
                % (counts[kind]['missing'], counts[kind]['rows'], kind, escape(found[kind]['missing'][0][1]))
                for kind in KINDS if counts[kind]['missing']]
    result = {'changed': False, 'ok': not problems, 'problems': problems, 'counts': counts, 'missing_total': total,
              'missing': listed, 'datadir': options.datadir, 'managed_dir': options.managed_dir, 'managed_repo_uuid': managed,
              'duration': round(duration, 3), 'walk_duration': round(walked, 3), 'report_file': options.report_file}
    if options.report_file:
        body = dict(result, missing=[{'kind': kind, 'id': object_id, 'path': escape(relpath)}
                                     for kind in KINDS for object_id, relpath in found[kind]['missing']])
        for key in ('changed', 'duration', 'walk_duration'):  # the same findings make the same report, unchanged
            body.pop(key)
        text = json.dumps(body, indent=1, sort_keys=True) + '\n'
        result['changed'] = _changed(options.report_file, text)
        if result['changed'] and not check_mode:
            atomic_write(options.report_file, text, mode=0o600)
    if options.fail_on_missing and problems:
        raise OperationFailed('missing files: ' + '; '.join(problems), result)
    return result


def _changed(path, text):
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OmeroBackupError('directory %s does not exist (for the report file %s)' % (parent, path))
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8') != text
    except (IOError, OSError):
        return True


def run(params, check_mode=False):
    options = MissingOptions(params)
    try:
        conn = postgres.connect(options.connection, options.db)
    except postgres.PostgresError as exc:
        raise OmeroBackupError(str(exc))
    try:
        return report(options, conn, check_mode)
    finally:
        conn.close()
