# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data dir backup step: one backup of the OMERO binary repository (/OMERO) into a repository, then verify and
retention, through the chosen engine (engines.base.DatadirEngine).

The module datadir_backup is a thin wrapper around ``backup_datadir``, which takes a Runner so that it runs the
same way under Ansible, in unit tests and in the benchmarks. What is the same for every engine is here: the
source and destination checks, the repository lock, restore leftovers, skip_if_newer_than, the scan for links
pointing outside the data dir, and the module result.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import threading
import time

from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import (
    BackupOptions, DatadirError, engine_errors, has_repo_uuid, inside, repository_locked)
from ansible_collections.omero.backup.plugins.module_utils.datadir.leftovers import clean_leftovers
from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    REPLACED_INSIDE_PREFIX, Point, exclude_patterns, iso)

MAX_LISTED = 20


def scan_symlinks(src, skip_top=()):
    """Count symbolic links below ``src`` and those whose target lies outside it (in-place imports)."""
    src = os.path.abspath(src)
    total = 0
    outside = 0
    targets = set()
    not_utf8 = []
    stack = [src]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if directory == src and entry.name in skip_top:
                    continue
                if entry.is_symlink():
                    total += 1
                    link = os.readlink(entry.path)
                    try:
                        link.encode('utf-8')
                    except UnicodeEncodeError:
                        not_utf8.append(entry.path)
                    target = os.path.normpath(os.path.join(directory, link))
                    if target != src and not target.startswith(src.rstrip('/') + '/'):
                        outside += 1
                        targets.add(os.path.dirname(target))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    listed = sorted(escape(target) for target in targets)
    links = {'total': total, 'outside': outside, 'outside_dirs': listed[:MAX_LISTED],
             'outside_dirs_truncated': len(listed) > MAX_LISTED}
    if not_utf8:
        links.update(targets_not_utf8=len(not_utf8),
                     targets_not_utf8_links=sorted(escape(path) for path in not_utf8)[:MAX_LISTED])
    return links


def backup_datadir(params, runner, check_mode=False, now=None):
    """One backup of ``src`` into ``dest``, then verify and retention; returns the result dict."""
    options = BackupOptions(params)
    started = time.time()
    now = int(now if now is not None else started)
    # rdiff-backup refuses a symlink as source; a /OMERO that links to the real volume is common.
    src = os.path.realpath(options.src)
    result = {'changed': False, 'skipped': False, 'src': src, 'dest': options.dest, 'warnings': [],
              'commands': [], 'regressed': False, 'verified': None, 'pruned': []}
    with engine_errors(result):
        engine = options.make_engine(runner)
        repo, globs, keep_seconds, skip_seconds = _checked(engine, options, src, result)
        result['excluded'] = [escape(glob) for glob in globs]
        _warn_about_source(options, src, result)
        # The tool runs, and a remote repository's host answers (its parent, since a first backup makes it).
        health = engine.health(repo, exists=False)
        result['%s_version' % engine.name.replace('-', '_')] = health.version
        if not health.ok:
            raise DatadirError('; '.join(health.problems), result)
        result['lock'] = engine.lock_path(repo)
        # Locked before the repository is even read: a concurrent run would show a half-written session.
        try:
            with repository_locked(result, 'datadir backup', check_mode):
                clean_leftovers(src, check_mode, result)
                _backup_steps(_Backup(engine, options, src, repo, globs, keep_seconds, skip_seconds, now, check_mode),
                              result)
        finally:
            result['commands'] = list(engine.commands)
            if getattr(engine, 'removed_locks', None):
                result['removed_locks'] = list(engine.removed_locks)
    if result['changed'] and not check_mode and not result['skipped']:
        result['duration'] = round(time.time() - started, 3)
    return result


def _checked(engine, options, src, result):
    """(repository, exclusion arguments, retention seconds, skip seconds): the refusals that need no repository."""
    if not os.path.isdir(src):
        raise DatadirError('src %s does not exist or is not a directory' % src, result)
    if not has_repo_uuid(src):
        result['warnings'].append('%s has no .omero/repository/<uuid>/repo_uuid: it does not look like an OMERO data '
                                  'dir, and a restore of it would make OMERO register a new repository' % src)
    repo = engine.parse_repository(options.dest, 'dest')
    result['dest'] = repo.spec
    if not repo.is_remote:
        if inside(repo.path, src) or inside(src, repo.path):
            raise DatadirError('dest %s and src %s must not contain each other' % (repo.path, src), result)
        parent = os.path.dirname(repo.path)
        if not os.path.isdir(parent):
            raise DatadirError('the parent of dest, %s, does not exist (is the backup volume mounted?)' % parent, result)
        if os.path.exists(repo.path) and not os.path.isdir(repo.path):
            raise DatadirError('dest %s exists and is not a directory' % repo.path, result)
    keep_seconds = None
    if options.keep_increments_for:
        keep_seconds = parse_duration(options.keep_increments_for, 'keep_increments_for')
        if keep_seconds <= 0:
            raise DatadirError('keep_increments_for must be longer than 0 seconds', result)
    skip_seconds = parse_duration(options.skip_if_newer_than)
    globs = engine.excludes(src, exclude_patterns(options.exclude, options.exclude_fulltext))
    return repo, globs, keep_seconds, skip_seconds


def _warn_about_source(options, src, result):
    kept_old = [name for name in os.listdir(src) if name.startswith(REPLACED_INSIDE_PREFIX)]
    if kept_old:
        result['warnings'].append('not backed up: %s in %s, the old content a restore kept (keep_replaced); move or '
                                  'delete it' % (', '.join(escape(name) for name in sorted(kept_old)), escape(src)))
    if options.exclude_fulltext:
        result['warnings'].append('FullText (the search index) is excluded: after a restore, run a full reindex '
                                  '(see the OMERO search docs) before searches return results')


def _previous_points(engine, repo, result):
    """The repository's points before this run, or None for a new one (an absent or empty local directory)."""
    if not repo.is_remote and (not os.path.isdir(repo.path) or not os.listdir(repo.path)):
        return None
    points = engine.list(repo)
    if points is None and not repo.is_remote:
        raise DatadirError('refusing to back up into %s: it is a non-empty directory but not an %s repository; '
                           'choose an empty or new directory' % (repo.path, engine.name), result)
    return points


class _Backup(object):
    """One backup's settings once checked: the engine, the source, the repository and its exclusions, the times."""

    def __init__(self, engine, options, src, repo, globs, keep_seconds, skip_seconds, now, check_mode):
        self.engine, self.options, self.src, self.repo, self.globs = engine, options, src, repo, globs
        self.keep_seconds, self.skip_seconds, self.now, self.check_mode = keep_seconds, skip_seconds, now, check_mode


def _backup_steps(run, result):
    engine, options, src, repo = run.engine, run.options, run.src, run.repo
    points = _previous_points(engine, repo, result)
    result['previous_increment_time'] = points[-1].time if points else None
    if run.skip_seconds is not None and points and run.now - points[-1].epoch < run.skip_seconds:
        result.update(skipped=True, increment_time=points[-1].time, increments=len(points),
                      msg='the newest backup (%s) is younger than skip_if_newer_than=%s'
                      % (points[-1].time, options.skip_if_newer_than))
        _retention(run, points, run.check_mode, result)
        return
    # The walk for links costs seconds on a large store: unless its answer can stop the backup, it runs
    # beside the engine's tool (another process) instead of before it.
    scan = _SymlinkScan(src)
    if options.symlinks_outside == 'fail' or run.check_mode:
        scan.run()
        _report_symlinks(scan, src, options, engine, result)
    else:
        scan.start()
    try:
        made = engine.backup(src, repo, run.globs, previous=points or [], statistics=options.file_statistics,
                             check_mode=run.check_mode, label=options.label, extra=options.extra)
        if getattr(engine, 'would_init', False) or getattr(engine, 'initialized', False):
            result['repository_initialized'] = True
        if run.check_mode:
            result['changed'] = True
            if options.verify:
                planned = engine.verify(repo, check_mode=True)
                if planned.details:
                    result['verify'] = dict(planned.details, ok=None)
            _retention(run, (points or []) + [Point(run.now, run.now, 'planned')], True, result)
            result['msg'] = 'would back up %s to %s%s' % (
                src, repo.spec, ' (a new repository: it would be initialised first)' if result.get('repository_initialized')
                else '')
            return
        points = _record_backup(engine, made, points or [], result)
        _verify(engine, repo, options, result)
        result['msg'] = 'backed up %s to %s as the backup of %s%s' % (
            src, repo.spec, result['increment_time'], ', verified' if result['verified'] else '')
        _retention(run, points, False, result)
    finally:
        if scan.is_alive() or 'symlinks' not in result:
            scan.join()
            _report_symlinks(scan, src, options, engine, result)


def _record_backup(engine, made, previous, result):
    """The module's fields for the backup ``made``; the points after it, oldest first."""
    result.update(rc=made.details['rc'], regressed=made.regressed, changed=True, statistics=made.details['statistics'],
                  files=made.files, bytes=made.bytes, changed_files=made.changed_files,
                  backup_duration=round(made.seconds, 3),
                  files_per_second=round(made.files / made.seconds, 1) if made.files and made.seconds else None)
    result['warnings'].extend(made.warnings)
    for name in ('snapshot_id', 'snapshot_short_id'):
        if made.details.get(name):
            result[name] = made.details[name]
    if made.point is None:
        raise DatadirError('%s backup printed no statistics; cannot tell which backup it made' % engine.name, result)
    points = sorted(dict((point.epoch, point) for point in list(previous) + [made.point]).values(),
                    key=lambda point: point.epoch)
    result.update(increment_epoch=points[-1].epoch, increment_time=iso(points[-1].epoch), increments=len(points))
    return points


def _verify(engine, repo, options, result):
    if not options.verify:
        return
    verified = engine.verify(repo)
    result['verify_duration'] = verified.seconds
    if verified.details:
        result['verify'] = dict(verified.details, ok=verified.ok)
    if not verified.ok:
        result['verified'] = False
        result['corrupted_files'] = verified.damaged[:MAX_LISTED]
        raise DatadirError('verify of %s failed: %d file(s) in the repository do not match their recorded '
                           'checksum (%s); the repository is damaged and later backups do not heal it: start a '
                           'new repository and keep this one for forensics. %s'
                           % (repo.spec, verified.count, ', '.join(verified.damaged[:5]) or 'see %s output' % engine.name,
                              verified.detail), result)
    result['verified'] = True


def _retention(run, points, check_mode, result):
    """Remove increments older than keep_increments_for; the newest backup always stays."""
    pruned = run.engine.retention(run.repo, points, run.keep_seconds, run.now, check_mode=check_mode,
                                  label=run.options.keep_increments_for)
    if not points:
        return
    if check_mode or pruned.removed:
        result['pruned'] = pruned.removed
    if pruned.left is not None:
        result['increments'] = pruned.left
    if pruned.removed:
        result['changed'] = True


class _SymlinkScan(threading.Thread):
    def __init__(self, src):
        super(_SymlinkScan, self).__init__(name='omero-backup-symlink-scan')
        self.daemon = True
        self.src = src
        self.links = None

    def run(self):
        self.links = scan_symlinks(self.src, skip_top=('BioFormatsCache',))


def _report_symlinks(scan, src, options, engine, result):
    links = scan.links or {'total': 0, 'outside': 0, 'outside_dirs': [], 'outside_dirs_truncated': False}
    result['symlinks'] = links
    if links.get('targets_not_utf8') and getattr(engine, 'lossy_link_targets', False):
        result['warnings'].append('%d symbolic link(s) in %s have a target that is not UTF-8; %s stores such targets '
                                  'lossily (each bad byte becomes U+FFFD), so they come back changed: %s'
                                  % (links['targets_not_utf8'], src, engine.name,
                                     ', '.join(links['targets_not_utf8_links'][:5])))
    if links['outside']:
        message = ('%d symbolic link(s) in %s point outside it (in-place imports): %s stores the links, '
                   'not the files; back up their targets too (%s)'
                   % (links['outside'], src, engine.name, ', '.join(links['outside_dirs'][:5])))
        if options.symlinks_outside == 'fail':
            raise DatadirError(message, result)
        if options.symlinks_outside == 'warn':
            result['warnings'].append(message)
