# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interlocks that keep a cleanse from eating a restored server: the data dir belongs to the database, no orphan id above the database's highest."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseRefused, TABLES
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import spool_read


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


def count_above_max(spool, result, max_id_margin):
    limits = {}
    for subdir, stats in result['subdirectories'].items():
        limits[subdir] = (stats['db_max_id'] or 0) + max_id_margin
    for relpath, _size, object_id in spool_read(spool):
        subdir = relpath.split('/', 1)[0]
        if object_id > limits[subdir]:
            result['subdirectories'][subdir]['above_max_id'] += 1


def decide(result, blocking, overridable, force):
    """Raise CleanseRefused unless every fired interlock may be and is overridden."""
    reasons = list(blocking)
    if overridable and not force:
        reasons.extend(overridable)
    if reasons:
        result['refused'] = reasons
        raise CleanseRefused(reasons, result)
    result['forced'] = list(overridable)
