# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data dir restore step: one backup of the repository into the data dir, through the chosen engine.

What is the same for every engine is here: the locks (the repository's and the data dir's, which cleanse takes
too), restore leftovers, the choice of the point, the repository uuid against ``omero.db.uuid``, the marker that
makes a second run a no-op, the refusal of a populated data dir, staging beside it (or inside it when it is a
mount point), the completeness check, owner and group, and the swap-in (datadir.swap). The engine only writes
the chosen point into the empty staging directory and says what it holds.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import json
import os
import stat
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import (
    DatadirError, RestoreOptions, datadir_locked, engine_errors, has_repo_uuid, inside, repository_locked)
from ansible_collections.omero.backup.plugins.module_utils.datadir.leftovers import clean_leftovers, remove_at, staging_prefix
from ansible_collections.omero.backup.plugins.module_utils.datadir.swap import chown_tree, swap_inside, swap_sibling
from ansible_collections.omero.backup.plugins.module_utils.engines.base import REPLACED_INSIDE_PREFIX, STAGING_PREFIX, iso
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

RESTORED_MARKER = '.omero/omero-backup-restored.json'
MAX_LISTED = 20


def tree_fingerprint(path, skip_top=()):
    """sha256 over every entry's relative path, type, mode, owner and, for files, size and mtime.

    Directory mtimes are left out: writing the restore marker changes them.
    """
    digest = hashlib.sha256()
    count = 0
    stack = ['']
    while stack:
        rel = stack.pop()
        full = os.path.join(path, rel) if rel else path
        try:
            names = sorted(os.listdir(full))
        except OSError:
            continue
        for name in names:
            relpath = os.path.join(rel, name) if rel else name
            if not rel and name in skip_top or relpath == RESTORED_MARKER or (not rel and name.startswith(STAGING_PREFIX)):
                continue
            info = os.lstat(os.path.join(path, relpath))
            kind = stat.S_IFMT(info.st_mode)
            line = '%s\0%o\0%o\0%d\0%d' % (relpath, kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
            if stat.S_ISDIR(info.st_mode):
                stack.append(relpath)
            elif stat.S_ISLNK(info.st_mode):
                line += '\0' + os.readlink(os.path.join(path, relpath))
            else:
                line += '\0%d\0%d' % (info.st_size, info.st_mtime_ns)
            digest.update(line.encode('utf-8', 'surrogateescape') + b'\n')
            count += 1
    return digest.hexdigest(), count


def read_marker(dest):
    try:
        with open(os.path.join(dest, RESTORED_MARKER)) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _replaced_inside(dest):
    return [name for name in os.listdir(dest) if name.startswith(REPLACED_INSIDE_PREFIX)]


def _dest_state(dest):
    """'missing', 'empty' or 'populated' (with the entry count)."""
    if not os.path.lexists(dest):
        return 'missing', 0
    if not os.path.isdir(dest) or os.path.islink(dest):
        raise DatadirError('dest %s exists and is not a directory' % dest)
    entries = [name for name in os.listdir(dest) if not name.startswith(STAGING_PREFIX)]
    return ('populated' if entries else 'empty'), len(entries)


def _staging_inside(dest):
    """Whether the restore must be staged inside dest: it is a mount point (or on another device than its
    parent), so a sibling directory would be on another filesystem and could not be renamed into place."""
    if not os.path.isdir(dest):
        return False
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    return os.path.ismount(dest) or os.stat(dest).st_dev != os.stat(parent).st_dev


def _relpaths(root):
    """Every entry below ``root`` as a relative path in bytes (the names exactly as they are on disk)."""
    root = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            yield name if rel == b'.' else rel + b'/' + name


def _check_db_uuid(options, uuids, result):
    """Compare the backup's repository dirs with omero.db.uuid when a database was named and answers."""
    if not options.db:
        return
    try:
        conn = postgres.connect(options.connection, options.db)
        try:
            facts = postgres.omero_facts(conn)
        finally:
            conn.close()
    except postgres.PostgresError as exc:
        result['warnings'].append('the repository uuid was not compared with the database: %s' % exc)
        return
    result['db_uuid'] = facts.get('db_uuid')
    if not facts.get('db_uuid'):
        result['warnings'].append('database %s has no omero.db.uuid: the repository uuid was not compared' % options.db)
        return
    if facts['db_uuid'] not in uuids:
        result['uuid_match'] = False
        raise DatadirError(
            'UUID MISMATCH, nothing restored: database %s has omero.db.uuid %s but the backup holds '
            '.omero/repository/%s; OMERO would register a new repository and every imported fileset would be '
            'unreachable. Restore the database dump that belongs to this data dir first (or leave out db to skip '
            'this check).' % (options.db, facts['db_uuid'], ', '.join(uuids) or '(none)'), result)
    result['uuid_match'] = True


class _Restore(object):
    """One restore's state: the engine, the repository, the data dir and what was found about it."""

    def __init__(self, engine, options, repo, dest, check_mode, now):
        self.engine, self.options, self.repo, self.dest = engine, options, repo, dest
        self.check_mode, self.now = check_mode, now
        self.parent = os.path.dirname(dest.rstrip('/')) or '/'
        self.dest_state, self.entries = _dest_state(dest)
        self.point = None


def restore_datadir(params, runner, check_mode=False, now=None):
    """Restore one backup of the repository ``src`` into ``dest``; returns the result dict."""
    options = RestoreOptions(params)
    started = time.time()
    # A /OMERO that links to the real volume: restore beside (or into) the real directory, keep the link.
    dest = os.path.realpath(options.dest)
    result = {'changed': False, 'src': options.src, 'dest': dest, 'warnings': [], 'commands': [],
              'replaced_path': None, 'uuid_match': None, 'db_uuid': None, 'verified': None}
    with engine_errors(result):
        engine = options.make_engine(runner)
        repo = engine.parse_repository(options.src, 'src')
        result['src'] = repo.spec
        if not repo.is_remote and (inside(dest, repo.path) or inside(repo.path, dest)):
            raise DatadirError('dest %s and the repository %s must not contain each other' % (dest, repo.path), result)
        if not os.path.isdir(os.path.dirname(dest.rstrip('/')) or '/'):
            raise DatadirError('the parent of dest, %s, does not exist' % (os.path.dirname(dest.rstrip('/')) or '/'),
                               result)
        if options.include:
            try:
                _restore_included(engine, options, repo, dest, check_mode, now, result)
            finally:
                result['commands'] = list(engine.commands)
            return result
        run = _Restore(engine, options, repo, dest, check_mode, now)
        result['dest_state'] = run.dest_state
        result['%s_version' % engine.name.replace('-', '_')] = engine.version(repo)
        result['lock'] = engine.lock_path(repo)
        try:
            with repository_locked(result, 'datadir restore', check_mode, read_only=True):
                with datadir_locked(dest, check_mode, result):
                    # Under the data dir's lock no restore is using a staging tree: what is there, a killed run left.
                    clean_leftovers(dest, check_mode, result, lock_held=True)
                    _restore_steps(run, result)
        finally:
            result['commands'] = list(engine.commands)
    if result['changed'] and not check_mode:
        result['duration'] = round(time.time() - started, 3)
    return result


def _restore_included(engine, options, repo, dest, check_mode, now, result):
    """Only ``options.include`` (absolute paths of the snapshot that datadir_backup stored as ``extra``: the set's dump
    and config) into ``dest``, missing or empty, at dest + path. A staging copy for the restore role: no swap-in, no
    uuid or database check, no marker."""
    if engine.name != 'restic':
        raise DatadirError('include is for engine=restic only (the %s engine keeps one tree per repository)'
                           % engine.name, result)
    bad = [path for path in options.include if not path.startswith('/') or '/../' in path + '/']
    if bad:
        raise DatadirError('include %s: give absolute paths as datadir_backup stored them (extra)' % bad[0], result)
    if os.path.lexists(dest) and (os.path.islink(dest) or not os.path.isdir(dest) or os.listdir(dest)):
        raise DatadirError('refusing to restore the included paths into %s: it must be missing or an empty '
                           'directory; nothing changed' % dest, result)
    result['lock'] = engine.lock_path(repo)
    health = engine.health(repo, exists=True)
    if not health.ok:
        raise DatadirError('; '.join(health.problems), result)
    points = engine.list(repo)
    if not points:
        raise DatadirError('no restic repository (or no snapshot in it) at %s' % repo.spec, result)
    point = engine.select(points, options.at, now)
    result.update(increment_epoch=point.epoch, increment_time=point.time, snapshot_id=point.id,
                  included=list(options.include), changed=True)
    if check_mode:
        engine.restore_paths(repo, point, dest, options.include, check_mode=True)
        result['msg'] = 'would restore %s of snapshot %s into %s' % (', '.join(options.include), point.id[:8], dest)
        return
    if not os.path.lexists(dest):
        os.mkdir(dest, 0o700)
    with repository_locked(result, 'datadir restore', check_mode, read_only=True):
        outcome = engine.restore_paths(repo, point, dest, options.include)
    if outcome.rc != 0 or outcome.problems:
        raise DatadirError('restic restore of %s from snapshot %s failed: %s' % (
            ', '.join(options.include), point.id[:8], '; '.join(outcome.problems) or 'exit code %d' % outcome.rc), result)
    missing = [path for path in options.include if not os.path.lexists(dest.rstrip('/') + path)]
    if missing:
        raise DatadirError('snapshot %s holds no %s; nothing usable restored' % (point.id[:8], ', '.join(missing)), result)
    result['msg'] = 'restored %s of snapshot %s into %s' % (', '.join(options.include), point.id[:8], dest)


def _choose_point(run, result):
    """The point ``at`` names, after the repository answered and holds a complete OMERO data dir."""
    engine, repo = run.engine, run.repo
    health = engine.health(repo, exists=True)
    if not health.ok:
        raise DatadirError('; '.join(health.problems), result)
    points = engine.list(repo)
    if not points:
        raise DatadirError('no %s repository (or no backup in it) at %s' % (engine.name, repo.spec), result)
    run.point = engine.select(points, run.options.at, run.now)
    result.update(increment_epoch=run.point.epoch, increment_time=run.point.time, increments=len(points))
    uuids = engine.repository_uuids(repo, run.point)
    result['repository_uuids'] = uuids
    if not uuids:
        raise DatadirError('the backup of %s in %s holds no .omero/repository/<uuid>/repo_uuid: it is not a complete '
                           'OMERO data dir, and OMERO would register a new repository; nothing restored'
                           % (run.point.time, repo.spec), result)
    _check_db_uuid(run.options, uuids, result)


def _already_restored(run, result):
    """Whether dest still holds this very backup, unchanged since it was restored (the marker says so)."""
    marker = read_marker(run.dest) if run.dest_state == 'populated' else None
    result['diff'] = {'before': {'path': run.dest, 'restored_increment': marker.get('increment_time') if marker else None,
                                 'state': run.dest_state},
                      'after': {'path': run.dest, 'restored_increment': run.point.time, 'state': 'populated'}}
    if not marker or marker.get('repository') != run.repo.spec or marker.get('increment_epoch') != run.point.epoch:
        return False
    fingerprint, count = tree_fingerprint(run.dest, skip_top=_replaced_inside(run.dest))
    if fingerprint == marker.get('fingerprint'):
        result['msg'] = '%s already holds the backup of %s from %s, unchanged since it was restored' % (
            run.dest, run.repo.spec, run.point.time)
        result['files'] = count
        return True
    result['warnings'].append('%s was restored from this backup before but has changed since' % run.dest)
    return False


def _restore_steps(run, result):
    _choose_point(run, result)
    if _already_restored(run, result):
        return
    if run.dest_state == 'populated' and run.options.state != 'replaced':
        raise DatadirError('refusing to restore into %s: it is not empty (%d entries); nothing changed. Use '
                           'state: replaced to swap it for the backup (the old tree is kept unless '
                           'keep_replaced: false)' % (run.dest, run.entries), result)
    staged_inside = run.dest_state != 'missing' and _staging_inside(run.dest)
    result['staging'] = 'inside dest (it is a mount point)' if staged_inside else 'sibling of dest'
    if run.check_mode:
        if run.options.verify:
            run.engine.verify(run.repo, run.point, check_mode=True)
        staging_example = os.path.join(run.dest if staged_inside else run.parent, staging_prefix(run.dest) + 'XXXXXXXX')
        run.engine.restore(run.repo, run.point, staging_example, check_mode=True)
        result['changed'] = True
        result['msg'] = 'would restore the backup of %s from %s into %s' % (run.repo.spec, run.point.time, run.dest)
        return
    if run.options.verify:
        _verify_before_restore(run, result)
    _restore_and_swap(run, staged_inside, result)


def _verify_before_restore(run, result):
    verified = run.engine.verify(run.repo, run.point)
    if not verified.ok:
        result['verified'] = False
        result['corrupted_files'] = verified.damaged[:MAX_LISTED]
        raise DatadirError('verify of the backup of %s in %s failed (%d file(s) damaged: %s); nothing restored. '
                           'Choose another backup with at, or restore without verify and repair the listed files.'
                           % (run.point.time, run.repo.spec, verified.count,
                              ', '.join(verified.damaged[:5]) or verified.detail), result)
    result['verified'] = True


def _restore_and_swap(run, staged_inside, result):
    staging = tempfile.mkdtemp(prefix=staging_prefix(run.dest), dir=run.dest if staged_inside else run.parent)
    try:
        _restore_into(run, staging, result)
        if run.options.owner or run.options.group:
            chown_tree(staging, run.options.owner, run.options.group)
        _write_marker(run, staging, result)
        # One sync makes the whole restored tree durable before the old store is moved aside.
        os.sync()
        if staged_inside:
            swap_inside(staging, run.dest, run.dest_state, run.options.keep_replaced, result)
        else:
            swap_sibling(staging, run.dest, run.dest_state, run.options.keep_replaced, result)
        staging = None
    finally:
        if staging is not None and os.path.isdir(staging):
            remove_at(os.path.dirname(staging), os.path.basename(staging))
    result['changed'] = True
    result['msg'] = 'restored the backup of %s from %s into %s' % (run.repo.spec, run.point.time, run.dest)


def _restore_into(run, staging, result):
    """The engine writes the point into ``staging``; any doubt about the copy leaves dest as it was."""
    restored = run.engine.restore(run.repo, run.point, staging)
    result['rc'] = restored.rc
    # Any warning from a restore means a file may be missing or wrong: the old store stays.
    if restored.problems:
        raise DatadirError('restore of %s from %s failed, %s left as it was: %s'
                           % (run.point.time, run.repo.spec, run.dest, '; '.join(restored.problems[:10])), result)
    missing = run.engine.missing(run.repo, run.point, _relpaths(staging))
    if missing:
        result['missing_entries'] = [escape(line) for line in missing[:MAX_LISTED]]
        raise DatadirError('restore of %s from %s is incomplete (%d entries missing: %s), %s left as it was'
                           % (run.point.time, run.repo.spec, len(missing), ', '.join(result['missing_entries'][:5]),
                              run.dest), result)
    if not has_repo_uuid(staging):
        raise DatadirError('the restored tree has no .omero/repository/<uuid>/repo_uuid; %s left as it was' % run.dest,
                           result)


def _write_marker(run, staging, result):
    """The marker that lets the next run with the same backup find dest unchanged and do nothing."""
    fingerprint, count = tree_fingerprint(staging)
    result['files'] = count
    marker = {'repository': run.repo.spec, 'increment_epoch': run.point.epoch, 'increment_time': run.point.time,
              'restored_at': iso(time.time()), 'fingerprint': fingerprint, 'entries': count}
    marker_path = os.path.join(staging, RESTORED_MARKER)
    info = os.stat(os.path.dirname(marker_path))
    atomic_write(marker_path, json.dumps(marker, indent=1, sort_keys=True) + '\n', mode=0o644,
                 owner=info.st_uid, group=info.st_gid)
