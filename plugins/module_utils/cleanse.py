# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Orphan cleanse of an OMERO binary repository (Pixels/, Files/, Thumbnails/).

Two backends decide what is an orphan:

* ``database`` reads the ids of ``pixels``, ``originalfile`` and ``thumbnail``
  once per table (one query per million ids, kept as sorted 8-byte arrays,
  read in a background thread) and streams the directory walk against them: no per-file query, memory bounded by the row
  count, and no OMERO.server or session needed.
* ``omero`` runs the real ``omero admin cleanse`` and parses what it prints.

Both share the interlocks that keep a cleanse from eating a restored server,
the data dir lock (one cleanse at a time per data dir), and the result shape.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import array
import bisect
import contextlib
import errno
import itertools
import json
import operator
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_open
from ansible_collections.omero.backup.plugins.module_utils import quarantine
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import (DirChain, DirChanged, LinkRefused, identity, lstat_at, open_dir,
                                                                              open_top_dir, split_relpath)
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import entry_id, entry_ids
from ansible_collections.omero.backup.plugins.module_utils.base.names import ID_DIRECTORY
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock, datadir_lock_path, lock_file_hint
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli, OmeroCliError

SUBDIRECTORIES = ('Pixels', 'Files', 'Thumbnails')
TABLES = {'Pixels': 'pixels', 'Files': 'originalfile', 'Thumbnails': 'thumbnail'}
# omero admin cleanse asks the server about this many ids per query.
OMERO_QUERY_BATCH = 25
# The server only ever creates Dir-NNN directories below the three roots; any
# other directory is not its work and is left alone with everything in it.
_ID_DIRECTORY = ID_DIRECTORY  # names.py: exactly three ASCII digits, anchored with \Z


class CleanseRefused(OmeroBackupError):
    """An interlock fired; nothing was removed."""

    def __init__(self, reasons, result, what='refusing to cleanse, nothing was removed'):
        super(CleanseRefused, self).__init__(what + ': ' + ' '.join(reasons))
        self.reasons = reasons
        self.result = result


def check_subdirectories(subdirectories):
    chosen = list(subdirectories or SUBDIRECTORIES)
    unknown = [name for name in chosen if name not in SUBDIRECTORIES]
    if unknown:
        raise OmeroBackupError('unknown subdirectories %s: choose from %s' % (', '.join(unknown), ', '.join(SUBDIRECTORIES)))
    # The order of the walk is fixed so reports compare across runs.
    return [name for name in SUBDIRECTORIES if name in chosen]


# --------------------------------------------------------------------------- ids

ID_CHUNK = 1000000


def _is_strictly_increasing(ids):
    # C-level iteration: about 0.1 s per million ids.
    return all(map(operator.lt, ids, itertools.islice(ids, 1, None)))


def load_ids(conn, table, chunk=ID_CHUNK):
    """(every id of ``table`` as a sorted array('q'), number of queries).

    Each query returns up to ``chunk`` ids as one bytea of big-endian 8-byte
    values (int8send), turned into the array in C: no Python object per row,
    and at most one chunk in flight. Rows reach the aggregate in index order
    (no parallel plan); the order is still verified, never trusted.
    """
    ids = array.array('q')
    if ids.itemsize != 8:
        raise OmeroBackupError('this Python has no 8-byte array type')
    # Schema-qualified: connections run with search_path = pg_catalog (see postgres.py).
    name = 'public.' + postgres.quote_ident(conn, table)
    queries = 0
    last = None
    with conn.cursor() as cursor:
        cursor.execute('SET LOCAL max_parallel_workers_per_gather = 0')
        while True:
            where = '' if last is None else 'WHERE id > %(last)s '
            cursor.execute("SELECT count(*), string_agg(int8send(id), ''::bytea) FROM (SELECT id FROM %s %sORDER BY id "
                           "LIMIT %%(chunk)s) AS ids" % (name, where), {'last': last, 'chunk': chunk})
            queries += 1
            rows, blob = cursor.fetchone()
            if not rows:
                break
            part = array.array('q')
            part.frombytes(blob)
            if sys.byteorder == 'little':
                part.byteswap()
            if last is not None and part[0] <= last:
                raise OmeroBackupError('ids of table %s came back out of order' % table)
            ids.extend(part)
            if rows < chunk:
                break
            last = ids[-1]
    if not _is_strictly_increasing(ids):
        ids = array.array('q', sorted(set(ids)))
    return ids, queries


def id_lookup(sorted_ids, wanted):
    """A container answering ``object_id in container`` for every id of ``wanted``.

    Entries of one directory share an id range (Dir-123 holds 123000-123999),
    so one slice of the array turned into a set answers them all; scattered
    ids fall back to a binary search each.
    """
    if not wanted:
        return frozenset()
    low = bisect.bisect_left(sorted_ids, min(wanted))
    high = bisect.bisect_right(sorted_ids, max(wanted))
    if high - low <= 4 * len(wanted) + 2048:
        return set(sorted_ids[low:high])
    found = set()
    for object_id in wanted:
        index = bisect.bisect_left(sorted_ids, object_id, low, high)
        if index < high and sorted_ids[index] == object_id:
            found.add(object_id)
    return found


# --------------------------------------------------------------------------- results

def _new_stats():
    return {'entries': 0, 'orphans': 0, 'orphan_bytes': 0, 'removed': 0, 'removed_bytes': 0,
            'kept_young': 0, 'kept_unknown': 0, 'empty_dirs': 0, 'empty_dirs_removed': 0,
            'highest_orphan_id': None, 'above_max_id': 0, 'db_max_id': None, 'omero_queries': 0}


def new_result(params, backend):
    return {
        'changed': False,
        'backend': backend,
        'datadir': params['datadir'],
        'db_uuid': None,
        'subdirectories': {},
        'orphans': 0,
        'orphan_bytes': 0,
        'removed': 0,
        'removed_bytes': 0,
        'quarantine_dir': params.get('quarantine_dir'),
        'listed': [],
        'listed_truncated': False,
        'kept_young': 0,
        'kept_unknown': 0,
        'kept_unknown_listed': [],
        'empty_dirs': 0,
        'empty_dirs_removed': 0,
        'managed_dirs_removed': [],
        'report_file': params.get('report_file'),
        'queries': 0,
        'omero_equivalent_queries': 0,
        'restored': 0,
        'restored_bytes': 0,
        'refused': [],
        'forced': [],
        'warnings': [],
        'errors': [],
        'duration': 0.0,
    }


def _totals(result):
    for key in ('orphans', 'orphan_bytes', 'removed', 'removed_bytes', 'kept_young', 'kept_unknown',
                'empty_dirs', 'empty_dirs_removed'):
        result[key] = sum(stats[key] for stats in result['subdirectories'].values())
    result['omero_equivalent_queries'] = sum(stats['omero_queries'] for stats in result['subdirectories'].values())


class _Listing(object):
    """Bounded sample for the module output; the full list goes to a spool file on disk."""

    def __init__(self, max_listed):
        self.max_listed = max_listed
        self.sample = []
        self.truncated = False

    def add(self, relpath):
        if len(self.sample) < self.max_listed:
            # Results are JSON: a name's bytes are shown by names.escape(), one to one.
            self.sample.append(escape_name(relpath))
        else:
            self.truncated = True


def _open_spool():
    return tempfile.TemporaryFile(mode='w+', encoding='ascii', prefix='omero-cleanse.')


def _spool_write(spool, relpath, size, object_id):
    # One JSON array per line: json keeps a newline, a tab or an undecodable
    # byte (a lone surrogate from os.listdir) of a name inside the line, and
    # gives the same str back.
    spool.write(json.dumps([relpath, size, object_id]) + '\n')


def _spool_read(spool):
    spool.seek(0)
    for line in spool:
        relpath, size, object_id = json.loads(line)
        yield relpath, size, object_id


def _report_line(relpath, size, action):
    return ('%s\t%d\t%s\n' % (escape_name(relpath), size, action)).encode('utf-8')


# --------------------------------------------------------------------------- walk

def _is_real_dir(dir_fd, name):
    """A directory, not a symlink to one (the walk never follows links below the roots)."""
    info = lstat_at(dir_fd, name)
    return info is not None and stat.S_ISDIR(info.st_mode)


class _Walker(object):
    """Streams one of Pixels/Files/Thumbnails, spooling orphans and noting what would be left empty.

    Every directory is opened relative to its parent's descriptor without
    following a symlink (only the three roots may be symlinks), and its
    identity, owner, mode and times are kept in ``dirs``: the removal acts
    only in directories that are still these ones, and a quarantine gives its
    directories these owners and modes.
    """

    def __init__(self, datadir, subdir, ids, stats, spool, listing, unknown_listing, now, min_age):
        self.datadir = datadir
        self.subdir = subdir
        self.ids = ids
        self.stats = stats
        self.spool = spool
        self.listing = listing
        self.unknown_listing = unknown_listing
        self.young_before = now - min_age
        self.empty_dirs = []  # post-order: children before parents
        self.dirs = {}  # relpath ('' is the data dir) -> quarantine.dir_record()

    def walk(self):
        datadir_fd = open_dir(self.datadir, follow=True)
        try:
            self.dirs[''] = quarantine.dir_record(os.fstat(datadir_fd))
            # The three roots may be symlinks to bigger volumes (as omero's own walk
            # allows); below them no symlinked directory is followed.
            try:
                root_fd = open_top_dir(datadir_fd, self.subdir)
            except LinkRefused as exc:
                raise OmeroBackupError('%s/%s %s: refusing to cleanse through it. Nothing was removed.'
                                       % (self.datadir, self.subdir, exc.why))
            if root_fd is not None:
                try:
                    self._walk_dir(root_fd, self.subdir, top=True)
                finally:
                    os.close(root_fd)
        finally:
            os.close(datadir_fd)
        # omero asks about every file it meets, kept names included, 25 at a time.
        self.stats['omero_queries'] = -(-self.stats['entries'] // OMERO_QUERY_BATCH)

    def _keep_unknown(self, relpath):
        self.stats['kept_unknown'] += 1
        self.unknown_listing.add(relpath)

    def _walk_dir(self, fd, relpath, top=False):
        """True when nothing would be left in this directory after the cleanse.

        os.listdir, not os.scandir: names only, no object per entry, as fast
        as find. Types are asked for (lstat) only where they matter: names
        that are not ids (a Dir-NNN to enter, or something to keep) and
        orphans (a directory named like an id is kept, never removed).
        """
        self.dirs[relpath] = quarantine.dir_record(os.fstat(fd))
        names = os.listdir(fd)
        ids = entry_ids(names)
        kept = 0
        subdirs = []
        if None in ids:
            for name, object_id in zip(names, ids):
                if object_id is not None:
                    continue
                is_dir = _is_real_dir(fd, name)
                if is_dir and _ID_DIRECTORY.match(name):
                    subdirs.append(name)
                    continue
                self._keep_unknown(relpath + '/' + name + ('/' if is_dir else ''))
                kept += 1
            known = [object_id for object_id in ids if object_id is not None]
        else:
            known = ids
        self.stats['entries'] += len(names) - len(subdirs)
        present = id_lookup(self.ids, known)
        if present.issuperset(known):
            # The usual directory: every id has its row (checked in C, no list built).
            orphans = []
        else:
            orphans = [(name, object_id) for name, object_id in zip(names, ids)
                       if object_id is not None and object_id not in present]
        kept += len(known) - len(orphans)
        orphans.sort()
        for name, object_id in orphans:
            if not self._orphan(fd, name, relpath + '/' + name, object_id):
                kept += 1
        # Subdirectories are walked after this directory's listing is done;
        # only the descriptors of the directories above stay open.
        for name in sorted(subdirs):
            try:
                child = open_dir(name, dir_fd=fd)
            except OSError as exc:
                # Swapped for a symlink (or gone) since the lstat above: not entered.
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise
                self._keep_unknown(relpath + '/' + name)
                kept += 1
                continue
            try:
                if not self._walk_dir(child, relpath + '/' + name):
                    kept += 1
            finally:
                os.close(child)
        if kept == 0 and not top:
            self.empty_dirs.append(relpath)
            self.stats['empty_dirs'] += 1
            return True
        return False

    def _orphan(self, dir_fd, name, relpath, object_id):
        """Account for one orphan; False when it must stay (too young)."""
        info = lstat_at(dir_fd, name)
        if info is None:
            return True
        if stat.S_ISDIR(info.st_mode):
            # omero lists such a directory but never removes it; neither do we.
            self._keep_unknown(relpath + '/')
            return False
        if info.st_mtime > self.young_before:
            self.stats['kept_young'] += 1
            return False
        self.stats['orphans'] += 1
        self.stats['orphan_bytes'] += info.st_size
        if self.stats['highest_orphan_id'] is None or object_id > self.stats['highest_orphan_id']:
            self.stats['highest_orphan_id'] = object_id
        _spool_write(self.spool, relpath, info.st_size, object_id)
        self.listing.add(relpath)
        return True


# --------------------------------------------------------------------------- removal

def _check_quarantine_dir(datadir, quarantine_dir, subdirectories):
    if not quarantine_dir:
        return
    target = os.path.realpath(quarantine_dir)
    for subdir in subdirectories:
        scanned = os.path.realpath(os.path.join(datadir, subdir))
        if target == scanned or target.startswith(scanned + os.sep):
            raise OmeroBackupError('quarantine_dir %s is inside the scanned directory %s: choose a place outside it'
                                   % (quarantine_dir, scanned))
    if os.path.lexists(quarantine_dir) and not os.path.isdir(quarantine_dir):
        raise OmeroBackupError('quarantine_dir %s exists and is not a directory' % quarantine_dir)
    # An existing quarantine another user can write into is refused before the walk, in check mode too.
    quarantine.check_quarantine_root(quarantine_dir)


def _write_report(path, spool, result, removed_paths=None):
    """The full list, one ``relpath<TAB>bytes<TAB>action`` line per orphan (names escaped), written atomically."""
    action = 'would_remove'
    if not result.get('check_mode'):
        action = 'quarantined' if result.get('quarantine_dir') else 'removed'
    with atomic_open(path, mode=0o600) as handle:
        for relpath, size, _object_id in _spool_read(spool):
            this_action = action
            if removed_paths is not None and relpath not in removed_paths:
                this_action = 'kept'
            handle.write(_report_line(relpath, size, this_action))


# --------------------------------------------------------------------------- interlocks

def repository_dir(datadir, db_uuid):
    return os.path.join(datadir, '.omero', 'repository', db_uuid)


def check_uuid(datadir, db_uuid):
    """None when the data dir belongs to the database, else why not."""
    if not db_uuid:
        return 'the database has no omero.db.uuid in its configuration table, so it cannot be matched to %s' % datadir
    if not os.path.isdir(repository_dir(datadir, db_uuid)):
        return ('%s has no .omero/repository/%s: the data directory does not belong to this database '
                '(omero.db.uuid %s), and cleansing it would delete files the database does not know.'
                % (datadir, db_uuid, db_uuid))
    return None


def check_max_ids(result, max_id_margin):
    """Why the orphans look like an older dump restored under a newer store, or None."""
    problems = []
    for subdir, stats in result['subdirectories'].items():
        if stats['above_max_id']:
            problems.append('%s: %d orphan(s) carry ids above the highest %s id %s + max_id_margin %d (highest %d)'
                            % (subdir, stats['above_max_id'], TABLES[subdir], stats['db_max_id'] or 0,
                               max_id_margin, stats['highest_orphan_id']))
    if not problems:
        return None
    return ('; '.join(problems) + '. This is what an older database dump restored under a newer data directory looks '
            'like: cleansing would delete every file created after the dump.')


def _count_above_max(spool, result, max_id_margin):
    limits = {}
    for subdir, stats in result['subdirectories'].items():
        limits[subdir] = (stats['db_max_id'] or 0) + max_id_margin
    for relpath, _size, object_id in _spool_read(spool):
        subdir = relpath.split('/', 1)[0]
        if object_id > limits[subdir]:
            result['subdirectories'][subdir]['above_max_id'] += 1


def _decide(result, blocking, overridable, force):
    """Raise CleanseRefused unless every fired interlock may be and is overridden."""
    reasons = list(blocking)
    if overridable and not force:
        reasons.extend(overridable)
    if reasons:
        result['refused'] = reasons
        raise CleanseRefused(reasons, result)
    result['forced'] = list(overridable)


# --------------------------------------------------------------------------- database backend

def _connect(params):
    conn = postgres.connect(params, params['db'], autocommit=False)
    # One snapshot for every table: the ids of pixels and thumbnail agree with each other.
    conn.set_session(readonly=True, isolation_level='REPEATABLE READ')
    return conn


def _load_ids_or_explain(conn, table):
    try:
        return load_ids(conn, table)
    except Exception as exc:
        if postgres.psycopg2 is not None and isinstance(exc, postgres.psycopg2.Error):
            raise OmeroBackupError('cannot read the ids of table %s: %s' % (table, str(exc).strip()))
        raise


class _IdLoader(object):
    """Reads the id tables, in order, in a background thread while the main thread walks.

    psycopg2 releases the GIL while the server works and the bytes are turned
    into arrays in C, so the reading of one table hides behind the walk of the
    previous directory. Only this thread uses the connection until join().
    """

    def __init__(self, conn, tables):
        self._results = {}
        self._ready = dict((table, threading.Event()) for table in tables)
        self._thread = threading.Thread(target=self._run, args=(conn, list(tables)), name='omero-cleanse-ids')
        self._thread.daemon = True
        self._thread.start()

    def _run(self, conn, tables):
        for table in tables:
            try:
                self._results[table] = (True, _load_ids_or_explain(conn, table))
            except Exception as exc:  # handed to the main thread, raised there
                for pending in tables[tables.index(table):]:
                    self._results[pending] = (False, exc)
                    self._ready[pending].set()
                return
            self._ready[table].set()

    def get(self, table):
        """(sorted ids, queries) of ``table``, waiting for it if needed."""
        self._ready[table].wait()
        loaded, value = self._results[table]
        if not loaded:
            raise value
        del self._results[table]
        return value

    def join(self):
        self._thread.join()


def _database_facts(params, result, subdirectories):
    """(conn, blocking reasons); conn is None when the database cannot be used."""
    try:
        conn = _connect(params)
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
                          % (params['db'], ', '.join(missing))]
        result['queries'] += 1
        row = postgres.query_one(conn, "SELECT value FROM public.configuration WHERE name = 'omero.db.uuid'")
        result['db_uuid'] = row[0] if row else None
    except Exception as exc:
        conn.close()
        if postgres.psycopg2 is not None and isinstance(exc, postgres.psycopg2.Error):
            return None, ['cannot read database %s: %s' % (params['db'], str(exc).strip())]
        raise
    return conn, []


def cleanse_database(params, check_mode, now=None):
    """Cleanse with the database backend; returns the result or raises CleanseRefused/OmeroBackupError."""
    started = time.time()
    now = time.time() if now is None else now
    datadir = params['datadir']
    subdirectories = check_subdirectories(params.get('subdirectories'))
    min_age = parse_duration(params.get('min_age') if params.get('min_age') is not None else '1h')
    max_id_margin = int(params.get('max_id_margin') if params.get('max_id_margin') is not None else 1000)
    force = bool(params.get('force'))
    quarantine_dir = params.get('quarantine_dir')
    if not os.path.isdir(datadir):
        raise OmeroBackupError('data directory %s does not exist' % datadir)
    _check_quarantine_dir(datadir, quarantine_dir, subdirectories)
    if params.get('managed_repository_empty_dirs'):
        raise OmeroBackupError('managed_repository_empty_dirs needs backend omero: the server removes those directories '
                               'together with their database rows, which read-only SQL cannot do')

    result = new_result(params, 'database')
    result['check_mode'] = bool(check_mode)
    listing = _Listing(int(params.get('max_listed', 100)))
    unknown_listing = _Listing(int(params.get('max_listed', 100)))
    conn, blocking = _database_facts(params, result, subdirectories)
    if conn is None:
        result['duration'] = round(time.time() - started, 3)
        _decide(result, blocking, [], force)
    overridable = []
    spool = _open_spool()
    empty_dirs = []
    dir_records = {}
    try:
        uuid_problem = check_uuid(datadir, result['db_uuid'])
        if uuid_problem:
            overridable.append(uuid_problem)
        for subdir in subdirectories:
            result['subdirectories'][subdir] = _new_stats()
        # originalfile is the big table (ManagedRepository rows too): read it
        # last, while the other two directories are walked.
        walk_order = sorted(subdirectories, key=lambda name: name == 'Files')
        loader = _IdLoader(conn, [TABLES[subdir] for subdir in walk_order])
        try:
            for subdir in walk_order:
                stats = result['subdirectories'][subdir]
                ids, queries = loader.get(TABLES[subdir])
                result['queries'] += queries
                stats['db_max_id'] = ids[-1] if len(ids) else None
                walker = _Walker(datadir, subdir, ids, stats, spool, listing, unknown_listing, now, min_age)
                walker.walk()
                empty_dirs.extend(walker.empty_dirs)
                dir_records.update(walker.dirs)
                del ids
        finally:
            loader.join()
        conn.rollback()
    finally:
        conn.close()
    spool.flush()
    _count_above_max(spool, result, max_id_margin)
    max_problem = check_max_ids(result, max_id_margin)
    if max_problem:
        overridable.append(max_problem)
    result['listed'] = listing.sample
    result['listed_truncated'] = listing.truncated
    result['kept_unknown_listed'] = unknown_listing.sample
    _totals(result)
    try:
        try:
            _decide(result, [], overridable, force)
        except CleanseRefused:
            result['duration'] = round(time.time() - started, 3)
            raise
        if check_mode:
            if params.get('report_file'):
                _write_report(params['report_file'], spool, result)
        else:
            _apply(datadir, quarantine_dir, spool, empty_dirs, result, now - min_age, params.get('report_file'), dir_records)
    finally:
        spool.close()
    _totals(result)
    _set_changed(result, check_mode)
    result['duration'] = round(time.time() - started, 3)
    return result


def _set_changed(result, check_mode):
    if check_mode:
        # What a real run would change (it could still find a file touched meanwhile and keep it).
        result['changed'] = bool(result['orphans'] or result['empty_dirs'])
    else:
        result['changed'] = bool(result['removed'] or result['empty_dirs_removed'])


def _apply(datadir, quarantine_dir, spool, empty_dirs, result, young_before, report_file, dir_records):
    """Remove (or quarantine) the spooled orphans, then the directories left empty.

    Everything happens through descriptors of directories opened from the
    data dir down without following a symlink (dirfd.DirChain), each checked
    against the identity the walk recorded; a directory that changed since
    (a Dir-NNN swapped for a symlink, say) is skipped whole and reported.
    """
    data_fd = open_dir(datadir, follow=True)
    done_action = 'quarantined' if quarantine_dir else 'removed'
    max_errors = 50
    changed_dirs = set()
    try:
        if identity(os.fstat(data_fd)) != tuple(dir_records[''][:2]):
            raise OmeroBackupError('data directory %s is another directory than the one walked: nothing was removed' % datadir)
        chain = DirChain(data_fd, expected=dir_records, follow_first=True)
        with contextlib.ExitStack() as stack:
            stack.callback(chain.close)
            writer = None
            if quarantine_dir:
                writer = quarantine.QuarantineWriter(quarantine_dir, datadir, dir_records)
                stack.callback(writer.finish)
            # The report is written as the removal goes, so its memory stays flat.
            report = stack.enter_context(atomic_open(report_file, mode=0o600)) if report_file else None
            for relpath, size, _object_id in _spool_read(spool):
                action = _remove_one(chain, writer, relpath, result, young_before, max_errors, changed_dirs)
                if report is not None:
                    report.write(_report_line(relpath, size, done_action if action == 'done' else action))
            for relpath in empty_dirs:
                reldir, name = split_relpath(relpath)
                try:
                    parent = chain.open(reldir)
                    if writer is not None:
                        # The undo makes it again, with its owner, mode and times; no record, no removal.
                        writer.note_removed_dir(relpath)
                except DirChanged:
                    continue
                except OSError as exc:
                    if len(result['errors']) < max_errors:
                        result['errors'].append('%s/: %s, kept' % (escape_name(relpath), exc.strerror or exc))
                    continue
                try:
                    os.rmdir(name, dir_fd=parent)
                except OSError as exc:
                    # Something appeared, or a file stayed: the directory is kept.
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                        continue
                    raise
                chain.mark_dirty(reldir)
                result['subdirectories'][relpath.split('/', 1)[0]]['empty_dirs_removed'] += 1
    finally:
        os.close(data_fd)


def _remove_one(chain, writer, relpath, result, young_before, max_errors, changed_dirs):
    """'done', 'vanished', 'kept_young' or 'kept' (could not be removed; see errors)."""
    stats = result['subdirectories'][relpath.split('/', 1)[0]]
    reldir, name = split_relpath(relpath)

    def error(text):
        if len(result['errors']) < max_errors:
            result['errors'].append(text)

    try:
        dir_fd = chain.open(reldir)
    except DirChanged as exc:
        if exc.relpath not in changed_dirs:
            changed_dirs.add(exc.relpath)
            error('%s %s since the walk: nothing in it was removed' % (escape_name(exc.relpath), exc.why))
        return 'kept'
    info = lstat_at(dir_fd, name)
    if info is None:
        return 'vanished'
    if stat.S_ISDIR(info.st_mode):
        error('%s: a directory now, kept' % escape_name(relpath))
        return 'kept'
    # Touched since the walk: a server is writing it after all.
    if info.st_mtime > young_before:
        stats['kept_young'] += 1
        return 'kept_young'
    try:
        if writer is not None:
            writer.put(dir_fd, reldir, name)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        error('%s: %s' % (escape_name(relpath), exc.strerror or exc))
        return 'kept'
    chain.mark_dirty(reldir)
    stats['removed'] += 1
    stats['removed_bytes'] += info.st_size
    return 'done'


# --------------------------------------------------------------------------- omero backend

_OMERO_LISTED = re.compile(r'^\s*\\_ (?P<path>.*) \((?P<action>remove|removedir|keep|ignored/keep)\)\s*$')
_OMERO_REMOVING = re.compile(r'^Removing (?P<path>/.*)$')
_OMERO_CONTEXT = re.compile(r'^Cleansing context: (?P<files>\d+) files \((?P<bytes>\d+) bytes\)$')


def parse_omero_output(text, datadir):
    """What ``omero admin cleanse`` printed, as data.

    Dry runs list files as ``   \\_ PATH (remove)``, directories named like
    an id as ``(removedir)`` (the real run never removes those) and, for the
    ManagedRepository, empty directories as ``(remove)`` too. A real run
    prints only ``Removing PATH`` for ManagedRepository directories, and
    OSError texts for files it could not delete. The byte total in the
    ``Cleansing context`` line is ignored: omero-py assigns instead of adding.
    """
    root = datadir.rstrip('/') + '/'
    parsed = {'files': [], 'id_dirs': [], 'managed_dirs': [], 'missing': [], 'other': [], 'context': None}
    for line in text.splitlines():
        match = _OMERO_LISTED.match(line)
        if match:
            path, action = match.group('path'), match.group('action')
            relpath = path[len(root):] if path.startswith(root) else path
            if action == 'remove':
                if relpath.startswith('ManagedRepository/') or path.endswith('/'):
                    parsed['managed_dirs'].append(relpath)
                else:
                    parsed['files'].append(relpath)
            elif action == 'removedir':
                parsed['id_dirs'].append(relpath)
            continue
        match = _OMERO_REMOVING.match(line)
        if match:
            path = match.group('path')
            parsed['managed_dirs'].append(path[len(root):] if path.startswith(root) else path)
            continue
        match = _OMERO_CONTEXT.match(line.strip())
        if match:
            parsed['context'] = {'files': int(match.group('files')), 'bytes': int(match.group('bytes'))}
            continue
        stripped = line.strip()
        if stripped.endswith('does not exist. Skipping...'):
            parsed['missing'].append(stripped[:-len(' does not exist. Skipping...')])
        elif stripped and not stripped.startswith(('Reconciling OMERO data directory', 'Removing empty directories from')) \
                and not stripped.startswith(root.rstrip('/')) and not stripped.startswith('No action taken for directory'):
            parsed['other'].append(stripped)
    return parsed


def omero_login_args(params):
    return ['-s', params.get('omero_host') or 'localhost', '-p', str(params.get('omero_port') or 4064),
            '-u', params.get('omero_user') or 'root']


def omero_cleanse_runs(params, subdirectories):
    """The ``admin cleanse`` argument lists to run, one per invocation.

    Without --subdirectory omero also removes empty ManagedRepository
    directories (through the server, with their rows), so each directory is
    named unless that is asked for; ``--subdirectory ManagedRepository``
    (omero-py 5.22+) does only that part.
    """
    datadir = params['datadir']
    dry_run = ['--dry-run'] if params.get('_dry_run') else []
    managed = bool(params.get('managed_repository_empty_dirs'))
    if managed and list(subdirectories) == list(SUBDIRECTORIES):
        return [['admin', 'cleanse'] + dry_run + [datadir]]
    names = list(subdirectories) + (['ManagedRepository'] if managed else [])
    return [['admin', 'cleanse'] + dry_run + ['--subdirectory', name, datadir] for name in names]


class OmeroSession(object):
    """Login once, keep the session from idling out, and log out at the end.

    The session lives in a private OMERO_SESSIONDIR so it neither reuses nor
    disturbs the system user's own sessions; the password travels only in
    OMERO_PASSWORD.
    """

    def __init__(self, cli, params):
        self.cli = cli
        self.params = params
        self.session_dir = None
        self.commands = []

    def _env(self):
        env = {'OMERO_SESSIONDIR': self.session_dir}
        if self.params.get('omero_password'):
            env['OMERO_PASSWORD'] = self.params['omero_password']
        return env

    def run(self, *args, **kwargs):
        argv = omero_login_args(self.params) + list(args)
        self.commands.append(' '.join(args[:2]))
        return self.cli.run(*argv, extra_env=self._env(), check=kwargs.get('check', True))

    def __enter__(self):
        self.session_dir = tempfile.mkdtemp(prefix='omero-cleanse-sessions.')
        if os.geteuid() == 0 and self.cli.user:
            import pwd
            try:
                account = pwd.getpwnam(self.cli.user)
                os.chown(self.session_dir, account.pw_uid, account.pw_gid)
            except KeyError:
                pass
        try:
            self.run('sessions', 'login')
        except Exception:
            shutil.rmtree(self.session_dir, ignore_errors=True)
            raise
        timeout = self.params.get('session_idle_timeout')
        if timeout:
            rc, out, err = self.run('sessions', 'timeout', str(int(timeout)), check=False)
            if rc != 0:
                self.warning = 'could not raise the session idle timeout to %ss: %s' % (timeout, (err or out).strip())
        return self

    warning = None

    def __exit__(self, *exc_info):
        try:
            self.run('sessions', 'logout', check=False)
        finally:
            shutil.rmtree(self.session_dir, ignore_errors=True)
        return False


def _omero_dry_run(session, params, subdirectories):
    listed = {'files': [], 'id_dirs': [], 'managed_dirs': [], 'other': [], 'missing': []}
    dry_params = dict(params, _dry_run=True)
    for argv in omero_cleanse_runs(dry_params, subdirectories):
        _rc, out, _err = session.run(*argv)
        parsed = parse_omero_output(out, params['datadir'])
        for key in listed:
            listed[key].extend(parsed[key])
    return listed


def cleanse_omero(params, runner, check_mode, now=None):
    """Cleanse with the real ``omero admin cleanse``; same result shape as cleanse_database."""
    started = time.time()
    now = time.time() if now is None else now
    datadir = params['datadir'].rstrip('/') or '/'
    params = dict(params, datadir=datadir)
    subdirectories = check_subdirectories(params.get('subdirectories'))
    min_age = parse_duration(params.get('min_age') if params.get('min_age') is not None else '1h')
    max_id_margin = int(params.get('max_id_margin') if params.get('max_id_margin') is not None else 1000)
    force = bool(params.get('force'))
    if params.get('quarantine_dir'):
        raise OmeroBackupError('quarantine_dir needs backend database: omero admin cleanse can only delete')
    if not os.path.isdir(datadir):
        raise OmeroBackupError('data directory %s does not exist' % datadir)

    result = new_result(params, 'omero')
    result['check_mode'] = bool(check_mode)
    cli = OmeroCli(runner, omerodir=params.get('omerodir'), omero_command=params.get('omero_command'),
                   user=params.get('user'), profile=params.get('profile'))
    overridable = []
    blocking = []
    conn, db_problems = _database_facts(params, result, subdirectories)
    overridable.extend(db_problems)
    if conn is not None:
        uuid_problem = check_uuid(datadir, result['db_uuid'])
        if uuid_problem:
            overridable.append(uuid_problem)
    try:
        with OmeroSession(cli, params) as session:
            if session.warning:
                result['warnings'].append(session.warning)
            listed = _omero_dry_run(session, params, subdirectories)
            spool = _open_spool()
            try:
                sample = _Listing(int(params.get('max_listed', 100)))
                young = []
                for subdir in subdirectories:
                    result['subdirectories'][subdir] = _new_stats()
                for relpath in listed['files']:
                    subdir = relpath.split('/', 1)[0]
                    stats = result['subdirectories'].setdefault(subdir, _new_stats())
                    try:
                        info = os.lstat(os.path.join(datadir, relpath))
                    except OSError:
                        continue
                    if info.st_mtime > now - min_age:
                        stats['kept_young'] += 1
                        young.append(relpath)
                        continue
                    object_id = entry_id(os.path.basename(relpath))
                    stats['orphans'] += 1
                    stats['orphan_bytes'] += info.st_size
                    if object_id is not None and (stats['highest_orphan_id'] is None or object_id > stats['highest_orphan_id']):
                        stats['highest_orphan_id'] = object_id
                    _spool_write(spool, relpath, info.st_size, object_id if object_id is not None else -1)
                    sample.add(relpath)
                if young:
                    # omero removes every orphan it finds: a file being written can only be protected by not running it.
                    blocking.append('%d orphan(s) are younger than min_age (e.g. %s); omero admin cleanse cannot skip '
                                    'single files, so it is not run.' % (len(young), escape_name(young[0])))
                if conn is not None:
                    for subdir in subdirectories:
                        stats = result['subdirectories'][subdir]
                        result['queries'] += 1
                        row = postgres.query_one(conn, 'SELECT max(id) FROM public.%s' % TABLES[subdir])
                        stats['db_max_id'] = row[0] if row else None
                    spool.flush()
                    _count_above_max(spool, result, max_id_margin)
                    max_problem = check_max_ids(result, max_id_margin)
                    if max_problem:
                        overridable.append(max_problem)
                result['listed'] = sample.sample
                result['listed_truncated'] = sample.truncated
                result['empty_dirs'] = len(listed['managed_dirs'])
                result['warnings'].extend('omero: %s' % escape_name(line) for line in listed['other'][:20])
                _totals(result)
                result['empty_dirs'] = len(listed['managed_dirs'])
                try:
                    _decide(result, blocking, overridable, force)
                except CleanseRefused:
                    result['duration'] = round(time.time() - started, 3)
                    raise
                if check_mode:
                    result['managed_dirs_removed'] = []
                    if params.get('report_file'):
                        _write_report(params['report_file'], spool, result)
                else:
                    for argv in omero_cleanse_runs(params, subdirectories):
                        _rc, out, _err = session.run(*argv)
                        parsed = parse_omero_output(out, datadir)
                        result['managed_dirs_removed'].extend(escape_name(path) for path in parsed['managed_dirs'])
                        result['errors'].extend(escape_name(line) for line in parsed['other'][:50])
                    done = set()
                    for relpath, size, _object_id in _spool_read(spool):
                        if not os.path.lexists(os.path.join(datadir, relpath)):
                            stats = result['subdirectories'][relpath.split('/', 1)[0]]
                            stats['removed'] += 1
                            stats['removed_bytes'] += size
                            done.add(relpath)
                    if params.get('report_file'):
                        _write_report(params['report_file'], spool, result, removed_paths=done)
            finally:
                spool.close()
    except OmeroCliError as exc:
        raise OmeroBackupError(str(exc))
    finally:
        if conn is not None:
            conn.close()
    _totals(result)
    result['empty_dirs'] = len(listed['managed_dirs'])
    result['empty_dirs_removed'] = len(result['managed_dirs_removed'])
    _set_changed(result, check_mode)
    result['duration'] = round(time.time() - started, 3)
    return result


# --------------------------------------------------------------------------- undo

def restore_quarantine(params, check_mode):
    """Move a quarantine made by this module back into the data dir (state=restored); see quarantine.py.

    Every check runs first, in check mode too: a file without its journal
    record or with another size than recorded, a temporary copy, a file that
    already exists in the data dir, a symlink where a directory belongs. Any
    of them refuses the whole undo and nothing moves.
    """
    started = time.time()
    datadir = params['datadir']
    quarantine_dir = params.get('quarantine_dir')
    if not quarantine_dir:
        raise OmeroBackupError('state=restored needs quarantine_dir, the quarantine to move back')
    if not os.path.isdir(datadir):
        raise OmeroBackupError('data directory %s does not exist' % datadir)
    if not os.path.isdir(quarantine_dir):
        raise OmeroBackupError('quarantine_dir %s does not exist: nothing to restore' % quarantine_dir)
    result = new_result(params, params.get('backend') or 'database')
    result['check_mode'] = bool(check_mode)
    plan = quarantine.plan_restore(quarantine_dir, datadir)
    listing = _Listing(int(params.get('max_listed', 100)))
    for relpath in plan['restore']:
        listing.add(relpath)
    result['listed'] = listing.sample
    result['listed_truncated'] = listing.truncated
    if plan['problems']:
        result['refused'] = plan['problems']
        result['duration'] = round(time.time() - started, 3)
        raise CleanseRefused(plan['problems'], result, what='refusing to restore the quarantine, nothing was moved')
    if check_mode:
        result['changed'] = bool(plan['restore'] or plan['drop'] or plan['dirs'])
    else:
        quarantine.restore(quarantine_dir, datadir, plan, result)
        result['changed'] = bool(result['restored'] or plan['drop'] or plan['dirs'])
    result['duration'] = round(time.time() - started, 3)
    return result


def lock_datadir(datadir, lock_dir=None):
    """The data dir lock, held; raises OmeroBackupError (nothing removed) when another run holds it."""
    try:
        path = datadir_lock_path(datadir, lock_dir)
    except OSError as exc:
        raise OmeroBackupError('%s: set lock_dir. Nothing was removed.' % (exc.strerror or exc))
    lock = ExclusiveLock(path, 'cleanse of %s' % os.path.realpath(datadir))
    try:
        return lock.acquire()
    except AlreadyRunning as exc:
        raise OmeroBackupError('data dir %s is locked (%s): %s. Nothing was removed.' % (datadir, path, exc))
    except OSError as exc:
        raise OmeroBackupError('cannot take the data dir lock %s: %s. %sNothing was removed.'
                               % (path, exc.strerror or exc, lock_file_hint(path)))


def cleanse(params, runner, check_mode):
    """One cleanse under the data dir lock; check mode removes nothing and takes no lock."""
    lock = None if check_mode else lock_datadir(params['datadir'], params.get('lock_dir'))
    try:
        if params.get('state') == 'restored':
            result = restore_quarantine(params, check_mode)
        elif (params.get('backend') or 'database') == 'omero':
            result = cleanse_omero(params, runner, check_mode)
        else:
            result = cleanse_database(params, check_mode)
    except CleanseRefused as exc:
        exc.result['lock'] = lock.path if lock else None
        raise
    finally:
        if lock is not None:
            lock.release()
    result['lock'] = lock.path if lock else None
    return result
