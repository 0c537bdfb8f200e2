# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One source of the layout restored through the data dir engine, and the link that points to it.

A source other than the data dir (managed.dir elsewhere, a volume, the certificates, an extra source) is a plain
directory: it holds no ``.omero/repository/<uuid>`` and must not get the data dir's restore marker, so the data
dir restore step (which refuses a tree without them) is not used; its rules that hold for any directory are, from
the same files: the engine writes the point into a fresh staging directory beside the destination (inside it
when it is a mount point), the engine's own listing is compared with the names on disk, and only then the old
tree is swapped aside (datadir/swap.py) and kept unless ``keep_replaced: false``. A populated destination is
refused unless ``state: replaced``. The marker that makes a second run a no-op lives beside the destination
(``.<name>.omero-backup-restored.json``), not in it: a volume's root belongs to OMERO.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, fsync_dir
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import (
    DatadirError, Options, datadir_locked, engine_argument_spec, engine_errors, inside, repository_locked, restic_argument_spec,
    ssh_argument_spec)
from ansible_collections.omero.backup.plugins.module_utils.datadir.leftovers import remove_at, staging_prefix
from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import _relpaths as relpaths, tree_fingerprint
from ansible_collections.omero.backup.plugins.module_utils.datadir.swap import chown_tree, swap_inside, swap_sibling
from ansible_collections.omero.backup.plugins.module_utils.engines.base import REPLACED_INSIDE_PREFIX, STAGING_PREFIX, iso

MAX_LISTED = 20


def argument_spec():
    spec = ssh_argument_spec()
    spec.update(engine_argument_spec())
    # The restic engine's settings too (documented by the same fragment), so Options.engine_settings finds them.
    spec.update(restic_argument_spec())
    spec.update(
        src=dict(type='str', required=True),
        dest=dict(type='path', required=True),
        at=dict(type='str', default='now'),
        state=dict(type='str', choices=['present', 'replaced'], default='present'),
        keep_replaced=dict(type='bool', default=True),
        owner=dict(type='str'),
        group=dict(type='str'),
        datadir=dict(type='path'),
        link=dict(type='str'),
        link_root=dict(type='path'),
    )
    return spec


class SourceRestoreOptions(Options):
    SPEC = staticmethod(argument_spec)


def marker_path(dest):
    return os.path.join(os.path.dirname(dest.rstrip('/')) or '/', '.%s.omero-backup-restored.json' % os.path.basename(dest.rstrip('/')))


def _read_marker(dest):
    try:
        with open(marker_path(dest)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _skip_top(dest):
    return [name for name in os.listdir(dest) if name.startswith(REPLACED_INSIDE_PREFIX) or name.startswith(STAGING_PREFIX)]


def _dest_state(dest):
    if not os.path.lexists(dest):
        return 'missing'
    if os.path.islink(dest) or not os.path.isdir(dest):
        raise DatadirError('dest %s exists and is not a directory' % escape(dest))
    return 'populated' if [name for name in os.listdir(dest) if not name.startswith(STAGING_PREFIX)] else 'empty'


def restore_source(params, runner, check_mode=False, now=None):
    """Restore the point ``at`` of the repository ``src`` into ``dest``, then re-point ``link``; the result dict."""
    options = SourceRestoreOptions(params)
    started = time.time()
    dest = os.path.realpath(options.dest)
    result = {'changed': False, 'src': options.src, 'dest': dest, 'warnings': [], 'commands': [], 'replaced_path': None,
              'link': None}
    with engine_errors(result):
        engine = options.make_engine(runner)
        repo = engine.parse_repository(options.src, 'src')
        result['src'] = repo.spec
        if not repo.is_remote and (inside(dest, repo.path) or inside(repo.path, dest)):
            raise DatadirError('dest %s and the repository %s must not contain each other' % (dest, repo.path), result)
        if options.datadir and inside(dest, options.datadir):
            raise DatadirError('dest %s is inside the data dir %s: the data dir restore owns it' % (dest, options.datadir), result)
        parent = os.path.dirname(dest.rstrip('/')) or '/'
        if not os.path.isdir(parent):
            raise DatadirError('the parent of dest, %s, does not exist (is the volume mounted?); nothing changed' % parent, result)
        result['lock'] = engine.lock_path(repo)
        try:
            with repository_locked(result, 'layout source restore', check_mode, read_only=True):
                with datadir_locked(dest, check_mode, result):
                    _restore(engine, repo, options, dest, check_mode, now, result)
        finally:
            result['commands'] = list(engine.commands)
    if options.link:
        _relink(options, dest, check_mode, result)
    if result['changed'] and not check_mode:
        result['duration'] = round(time.time() - started, 3)
    return result


def _restore(engine, repo, options, dest, check_mode, now, result):
    health = engine.health(repo, exists=True)
    if not health.ok:
        raise DatadirError('; '.join(health.problems), result)
    points = engine.list(repo)
    if not points:
        raise DatadirError('no %s repository (or no backup in it) at %s' % (engine.name, repo.spec), result)
    point = engine.select(points, options.at, now)
    result.update(increment_epoch=point.epoch, increment_time=point.time)
    state = _dest_state(dest)
    result['dest_state'] = state
    marker = _read_marker(dest) if state == 'populated' else None
    if marker and marker.get('repository') == repo.spec and marker.get('increment_epoch') == point.epoch:
        fingerprint, count = tree_fingerprint(dest, skip_top=_skip_top(dest))
        if fingerprint == marker.get('fingerprint'):
            result.update(files=count, msg='%s already holds the backup of %s from %s' % (dest, repo.spec, point.time))
            return
        result['warnings'].append('%s was restored from this backup before but has changed since' % dest)
    if state == 'populated' and options.state != 'replaced':
        raise DatadirError('refusing to restore into %s: it is not empty; nothing changed. Use state: replaced to swap '
                           'it for the backup (the old tree is kept unless keep_replaced: false)' % dest, result)
    staged_inside = state != 'missing' and (os.path.ismount(dest) or os.stat(dest).st_dev != os.stat(os.path.dirname(dest)).st_dev)
    result['changed'] = True
    if check_mode:
        result['msg'] = 'would restore the backup of %s from %s into %s' % (repo.spec, point.time, dest)
        return
    staging = tempfile.mkdtemp(prefix=staging_prefix(dest), dir=dest if staged_inside else os.path.dirname(dest))
    try:
        restored = engine.restore(repo, point, staging)
        if restored.problems:
            raise DatadirError('restore of %s from %s failed, %s left as it was: %s'
                               % (point.time, repo.spec, dest, '; '.join(restored.problems[:10])), result)
        missing = engine.missing(repo, point, relpaths(staging))
        if missing:
            result['missing_entries'] = [escape(line) for line in missing[:MAX_LISTED]]
            raise DatadirError('restore of %s from %s is incomplete (%d entries missing), %s left as it was'
                               % (point.time, repo.spec, len(missing), dest), result)
        if options.owner or options.group:
            chown_tree(staging, options.owner, options.group)
        fingerprint, count = tree_fingerprint(staging)
        os.sync()
        (swap_inside if staged_inside else swap_sibling)(staging, dest, state, options.keep_replaced, result)
        staging = None
    finally:
        if staging is not None and os.path.isdir(staging):
            remove_at(os.path.dirname(staging), os.path.basename(staging))
    result['files'] = count
    marker = {'repository': repo.spec, 'increment_epoch': point.epoch, 'increment_time': point.time,
              'restored_at': iso(time.time()), 'fingerprint': fingerprint, 'entries': count}
    atomic_write(marker_path(dest), json.dumps(marker, sort_keys=True) + '\n', mode=0o600)
    result['msg'] = 'restored the backup of %s from %s into %s' % (repo.spec, point.time, dest)


def _relink(options, dest, check_mode, result):
    """The link to this source (in the data dir, or in the restored source that holds it: ``link_root``) points at
    ``dest`` (its mapped place), replaced atomically when not."""
    root = options.link_root or options.datadir
    if not root:
        raise DatadirError('link needs datadir or link_root (the link is relative to it)', result)
    path = os.path.join(root, options.link)
    if not inside(path, root) or os.path.normpath(path) == os.path.normpath(root):
        raise DatadirError('link %s is not inside %s' % (escape(options.link), root), result)
    current = os.readlink(path) if os.path.islink(path) else None
    result['link'] = {'path': escape(path), 'before': escape(current) if current else None, 'after': escape(options.dest)}
    if current is not None and os.path.normpath(os.path.join(os.path.dirname(path), current)) in (os.path.normpath(options.dest), dest):
        return
    if os.path.lexists(path) and current is None:
        raise DatadirError('%s is not a symlink; the data dir restore should have brought the link back' % escape(path), result)
    result['changed'] = True
    if check_mode:
        return
    temp = '%s.omero-backup-link.%d' % (path, os.getpid())
    os.symlink(options.dest, temp)
    try:
        # The link belongs to whoever owns its directory (the OMERO system user), as the restored one did.
        info = os.stat(os.path.dirname(path))
        os.lchown(temp, info.st_uid, info.st_gid)
        os.rename(temp, path)
    except OSError:
        os.unlink(temp)
        raise
    fsync_dir(os.path.dirname(path))
