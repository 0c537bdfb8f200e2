# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result of a cleanse, its bounded listing, the spool of every orphan and the report file."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import tempfile

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_open
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseOptions


def new_stats():
    return {'entries': 0, 'orphans': 0, 'orphan_bytes': 0, 'removed': 0, 'removed_bytes': 0,
            'kept_young': 0, 'kept_unknown': 0, 'empty_dirs': 0, 'empty_dirs_removed': 0,
            'highest_orphan_id': None, 'above_max_id': 0, 'db_max_id': None, 'omero_queries': 0}


def new_result(params, backend):
    opts = CleanseOptions.of(params)
    return {
        'changed': False,
        'backend': backend,
        'datadir': opts.datadir,
        'db_uuid': None,
        'subdirectories': {},
        'orphans': 0,
        'orphan_bytes': 0,
        'removed': 0,
        'removed_bytes': 0,
        'quarantine_dir': opts.quarantine_dir,
        'listed': [],
        'listed_truncated': False,
        'kept_young': 0,
        'kept_unknown': 0,
        'kept_unknown_listed': [],
        'empty_dirs': 0,
        'empty_dirs_removed': 0,
        'managed_dirs_removed': [],
        'report_file': opts.report_file,
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


def totals(result):
    for key in ('orphans', 'orphan_bytes', 'removed', 'removed_bytes', 'kept_young', 'kept_unknown',
                'empty_dirs', 'empty_dirs_removed'):
        result[key] = sum(stats[key] for stats in result['subdirectories'].values())
    result['omero_equivalent_queries'] = sum(stats['omero_queries'] for stats in result['subdirectories'].values())


class Listing(object):
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


def open_spool():
    return tempfile.TemporaryFile(mode='w+', encoding='ascii', prefix='omero-cleanse.')


def spool_write(spool, relpath, size, object_id):
    # One JSON array per line: json keeps a newline, a tab or an undecodable
    # byte (a lone surrogate from os.listdir) of a name inside the line, and
    # gives the same str back.
    spool.write(json.dumps([relpath, size, object_id]) + '\n')


def spool_read(spool):
    spool.seek(0)
    for line in spool:
        relpath, size, object_id = json.loads(line)
        yield relpath, size, object_id


def report_line(relpath, size, action):
    return ('%s\t%d\t%s\n' % (escape_name(relpath), size, action)).encode('utf-8')


def write_report(path, spool, result, removed_paths=None):
    """The full list, one ``relpath<TAB>bytes<TAB>action`` line per orphan (names escaped), written atomically."""
    action = 'would_remove'
    if not result.get('check_mode'):
        action = 'quarantined' if result.get('quarantine_dir') else 'removed'
    with atomic_open(path, mode=0o600) as handle:
        for relpath, size, _object_id in spool_read(spool):
            this_action = action
            if removed_paths is not None and relpath not in removed_paths:
                this_action = 'kept'
            handle.write(report_line(relpath, size, this_action))


def set_changed(result, check_mode):
    if check_mode:
        # What a real run would change (it could still find a file touched meanwhile and keep it).
        result['changed'] = bool(result['orphans'] or result['empty_dirs'])
    else:
        result['changed'] = bool(result['removed'] or result['empty_dirs_removed'])
