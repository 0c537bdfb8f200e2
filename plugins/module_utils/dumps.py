# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A destination of database dumps: the names of dumps and their roles files, listing, retention, leftovers.

Shared by db_dump (which writes and prunes) and db_restore (which picks a dump): one naming rule for both.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import hashlib
import os
import re
import shutil
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX, fsync_dir
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import ManifestError, manifest_path_for, read_manifest

SUFFIXES = {'custom': '.pg_dump', 'directory': '.pg_dump.d'}
ROLES_SUFFIX = '.roles.sql'
STAMP_FORMAT = '%Y-%m-%dT%H%M%SZ'
_DUMP_NAME = re.compile(r'^(?P<db>.+)\.(?P<stamp>\d{4}-\d\d-\d\dT\d{6}Z)\.(?P<kind>pg_dump|pg_dump\.d)$')
KIND_FORMATS = {'pg_dump': 'custom', 'pg_dump.d': 'directory'}


def dump_name(db, stamp, fmt):
    return '%s.%s%s' % (db, stamp, SUFFIXES[fmt])


def roles_name(db, stamp):
    return '%s.%s%s' % (db, stamp, ROLES_SUFFIX)


def parse_dump_name(name):
    """(db, stamp, format) of a dump's base name, or None for anything else."""
    match = _DUMP_NAME.match(name)
    if not match:
        return None
    return match.group('db'), match.group('stamp'), KIND_FORMATS[match.group('kind')]


def tree_files(root):
    """Relative paths of every file below ``root``, sorted."""
    found = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            found.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(found)


def tree_digest(entries):
    """One sha256 for a directory-format dump: of its ``sha256  relpath`` listing (sha256sum's format)."""
    listing = ''.join('%s  %s\n' % (entry['sha256'], entry['path']) for entry in sorted(entries, key=lambda e: e['path']))
    return hashlib.sha256(listing.encode('utf-8')).hexdigest()


def artefact_size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(path, rel)) for rel in tree_files(path))
    return os.path.getsize(path)


def remove_path(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def list_dumps(dest, db=None):
    """Dumps in ``dest`` (of ``db`` when given), newest first: dicts with name, path, stamp, format, manifest, complete."""
    found = []
    try:
        names = os.listdir(dest)
    except OSError:
        return found
    for name in names:
        parsed = parse_dump_name(name)
        if not parsed or (db is not None and parsed[0] != db):
            continue
        path = os.path.join(dest, name)
        manifest_path = manifest_path_for(path)
        record = None
        if os.path.exists(manifest_path):
            try:
                record = read_manifest(manifest_path)
            except ManifestError:
                record = None
        found.append({'name': name, 'path': path, 'db': parsed[0], 'stamp': parsed[1], 'format': parsed[2],
                      'manifest': manifest_path, 'record': record,
                      'complete': bool(record and record.get('complete') is True)})
    found.sort(key=lambda item: (item['stamp'], item['name']), reverse=True)
    return found


def stamp_epoch(stamp):
    return calendar.timegm(time.strptime(stamp, STAMP_FORMAT))


def dump_epoch(item):
    """When a dump finished: its manifest's ``finished_epoch``, else the time stamp in its name."""
    record = item.get('record') or {}
    if isinstance(record.get('finished_epoch'), (int, float)):
        return float(record['finished_epoch'])
    return stamp_epoch(item['stamp'])


def plan_retention(dumps, min_keep, keep=None, max_age=None, now=None):
    """Which dumps to remove: (complete ones beyond ``keep`` / older than ``max_age``, incomplete leftovers).

    The ``min_keep`` newest complete dumps are always kept (at least one), so the
    last complete dump is never removed. Incomplete dumps are leftovers only when a
    complete dump newer than them exists.
    """
    now = time.time() if now is None else now
    min_keep = max(1, int(min_keep or 1))
    complete = [item for item in dumps if item['complete']]
    complete.sort(key=lambda item: (item['stamp'], item['name']), reverse=True)
    drop_complete = []
    for index, item in enumerate(complete):
        if index < min_keep:
            continue
        too_many = keep is not None and index >= keep
        too_old = max_age is not None and now - dump_epoch(item) > max_age
        if too_many or too_old:
            drop_complete.append(item)
    drop_incomplete = []
    if complete:
        newest = complete[0]['stamp']
        drop_incomplete = [item for item in dumps if not item['complete'] and item['stamp'] < newest]
    return drop_complete, drop_incomplete


def related_paths(item):
    """The dump, its manifest and its roles file, manifest first: removing in this order never leaves
    a dump that looks complete without its files."""
    base = item['path'][:-len(SUFFIXES[item['format']])]
    return [item['manifest'], item['path'], base + ROLES_SUFFIX]


def temp_leftovers(dest, db):
    prefix = TEMP_PREFIX + db + '.'
    leftovers = []
    try:
        names = os.listdir(dest)
    except OSError:
        return leftovers
    for name in names:
        if name.startswith(prefix) and ('.pg_dump' in name or ROLES_SUFFIX in name):
            leftovers.append(os.path.join(dest, name))
    return sorted(leftovers)


def prune(dest, db, min_keep, keep=None, max_age=None, check_mode=False):
    """Apply retention (``max_age`` in seconds); returns the removed (or, in check mode, removable) paths."""
    drop_complete, drop_incomplete = plan_retention(list_dumps(dest, db), min_keep, keep, max_age)
    removed = []
    for item in drop_complete + drop_incomplete:
        for path in related_paths(item):
            if os.path.lexists(path):
                removed.append(path)
                if not check_mode:
                    remove_path(path)
    # Under the lock no other dump of this destination is running, so temporaries are dead runs' leftovers.
    for path in temp_leftovers(dest, db):
        removed.append(path)
        if not check_mode:
            remove_path(path)
    if removed and not check_mode:
        fsync_dir(dest)
    return removed
