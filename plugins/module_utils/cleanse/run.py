# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One cleanse (or undo of a quarantine) under the data dir lock: the step the cleanse module runs.

The package, by concern: options.py (the argument spec, CleanseOptions, CleanseRefused), ids.py (the ids the
database knows), walk.py (the walk against them), interlocks.py (why a cleanse refuses), remove.py (removal
through checked directory descriptors), quarantine.py and undo.py (the quarantine journal and its undo),
results.py (result, listing, spool, report), one file per backend (database.py, omero.py), and this entry.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError, OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.locking import datadir_lock_path, take_lock
from ansible_collections.omero.backup.plugins.module_utils.cleanse.database import cleanse_database
from ansible_collections.omero.backup.plugins.module_utils.cleanse.omero import cleanse_omero
from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseOptions, CleanseRefused
from ansible_collections.omero.backup.plugins.module_utils.cleanse.results import Listing, new_result
from ansible_collections.omero.backup.plugins.module_utils.cleanse.undo import plan_restore, restore
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres


def restore_quarantine(params, check_mode):
    """Move a quarantine made by this module back into the data dir (state=restored); see undo.py.

    Every check runs first, in check mode too: a file without its journal
    record or with another size than recorded, a temporary copy, a file that
    already exists in the data dir, a symlink where a directory belongs. Any
    of them refuses the whole undo and nothing moves.
    """
    started = time.time()
    opts = CleanseOptions.of(params)
    datadir, quarantine_dir = opts.datadir, opts.quarantine_dir
    if not quarantine_dir:
        raise OmeroBackupError('state=restored needs quarantine_dir, the quarantine to move back')
    if not os.path.isdir(datadir):
        raise OmeroBackupError('data directory %s does not exist' % datadir)
    if not os.path.isdir(quarantine_dir):
        raise OmeroBackupError('quarantine_dir %s does not exist: nothing to restore' % quarantine_dir)
    result = new_result(opts, opts.backend)
    result['check_mode'] = bool(check_mode)
    plan = plan_restore(quarantine_dir, datadir)
    listing = Listing(opts.max_listed)
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
        restore(quarantine_dir, datadir, plan, result)
        result['changed'] = bool(result['restored'] or plan['drop'] or plan['dirs'])
    result['duration'] = round(time.time() - started, 3)
    return result


def lock_datadir(datadir, lock_dir=None):
    """The data dir lock, held; raises OmeroBackupError (nothing removed) when another run holds it."""
    try:
        path = datadir_lock_path(datadir, lock_dir)
    except OSError as exc:
        raise OmeroBackupError('%s: set lock_dir. Nothing was removed.' % (exc.strerror or exc))
    return take_lock(path, 'cleanse of %s' % os.path.realpath(datadir), 'Nothing was removed.')


def cleanse(params, runner, check_mode):
    """One cleanse under the data dir lock; check mode removes nothing and takes no lock."""
    opts = CleanseOptions.of(params)
    lock = None if check_mode else lock_datadir(opts.datadir, opts.lock_dir)
    try:
        if opts.state == 'restored':
            result = restore_quarantine(opts, check_mode)
        elif opts.backend == 'omero':
            result = cleanse_omero(opts, runner, check_mode)
        else:
            result = cleanse_database(opts, check_mode)
    except CleanseRefused as exc:
        exc.result['lock'] = lock.path if lock else None
        raise
    finally:
        if lock is not None:
            lock.release()
    result['lock'] = lock.path if lock else None
    return result


def _diff(result, restored=False):
    if not result['listed']:
        return None
    lines = ''.join(path + '\n' for path in result['listed'])
    if result['listed_truncated']:
        lines += '... (%d in all)\n' % (len(result['listed']) if restored else result['orphans'])
    header = '%s orphans' % result['datadir']
    # A cleanse shows the orphans as removed lines, the undo as added ones.
    return {'before_header': header, 'after_header': header, 'before': '' if restored else lines, 'after': lines if restored else ''}


def cleanse_task(params, runner, check_mode):
    """The cleanse module's step for glue.run_step: cleanse(), its diff, and a failure when files stayed."""
    opts = CleanseOptions.of(params)
    if opts.backend == 'database' and opts.state == 'cleansed' and not postgres.HAS_PSYCOPG2:
        raise OperationFailed('psycopg2 is required on the managed host (pip install psycopg2-binary)',
                              {'exception': postgres.PSYCOPG2_IMPORT_ERROR})
    try:
        result = cleanse(opts, runner, check_mode)
    except CleanseRefused as exc:
        exc.result.pop('check_mode', None)
        exc.result['changed'] = False
        raise
    except (IOError, OSError) as exc:
        raise OmeroBackupError('cleanse stopped: %s' % exc)
    result.pop('check_mode', None)
    result['diff'] = _diff(result, restored=opts.state == 'restored')
    if result['errors']:
        what = 'file(s) could not be restored' if opts.state == 'restored' else 'orphan(s) could not be removed'
        raise OperationFailed('%d %s: %s' % (len(result['errors']), what, '; '.join(result['errors'][:5])), result)
    return result
