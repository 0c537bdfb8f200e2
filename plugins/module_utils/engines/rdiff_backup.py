# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rdiff-backup engine of the data dir: a DatadirEngine over the tool adapter tools/rdiff.py.

What is rdiff-backup's here and nowhere else: its glob syntax for exclusions, its increments as points (named by
their whole second, so a backup waits for the next second), its exit bits and printed reports read as outcomes,
``remove increments --older-than NNNs`` as retention, ``verify`` by recorded checksums, and its lossy listing
(compared as counted lines) as the completeness check of a restore.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import time

from ansible_collections.omero.backup.plugins.module_utils.base.durations import rdiff_backup_interval
from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    LEFTOVER_PATTERNS, BackupOutcome, DatadirEngine, EngineError, Health, Point, RestoreOutcome, RetentionOutcome,
    VerifyOutcome, exclude_patterns)
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import (
    RDIFF_BACKUP, Location, Rdiff, RdiffError, glob_escape, listing_lines, lock_path, parse_location, parse_statistics,
    parse_verify, remote_schema, resolve_at, restore_problems)

INCREMENT = 'increment'


def exclude_globs(src, patterns, exclude_fulltext=False):
    """rdiff-backup ``--exclude`` globs: each pattern is relative to ``src``, which is matched literally."""
    return [glob_escape(src.rstrip('/')) + '/' + pattern for pattern in exclude_patterns(patterns, exclude_fulltext)]


def leftover_globs(src):
    """rdiff-backup ``--exclude`` globs for restore leftovers at the top of ``src`` (LEFTOVER_PATTERNS)."""
    return [glob_escape(src.rstrip('/')) + '/' + pattern for pattern in LEFTOVER_PATTERNS]


class RdiffBackupEngine(DatadirEngine):
    """rdiff-backup 2.2 through its action CLI, locally or over ssh (``host::/path``)."""

    name = 'rdiff-backup'

    def __init__(self, runner, executable=RDIFF_BACKUP, remote_executable=RDIFF_BACKUP, ssh_user=None, ssh_key=None,
                 ssh_port=None, ssh_options=()):
        super(RdiffBackupEngine, self).__init__(runner)
        self.executable = executable
        self.remote_executable = remote_executable
        self.ssh = dict(ssh_user=ssh_user, ssh_key=ssh_key, ssh_port=ssh_port, ssh_options=list(ssh_options or []))
        self._tools = {}
        self._version = None

    def _rdiff(self, repo):
        """The adapter for ``repo``: with the ssh schema for a remote one (built, and the key checked, once)."""
        remote = repo.is_remote
        if remote not in self._tools:
            schema = None
            if remote:
                if self.ssh['ssh_key'] and not os.path.isfile(self.ssh['ssh_key']):
                    raise EngineError('ssh_key %s does not exist or is not a file' % self.ssh['ssh_key'])
                schema = remote_schema(remote_command=self.remote_executable, **self.ssh)
            self._tools[remote] = Rdiff(self.runner, executable=self.executable, schema=schema)
        return self._tools[remote]

    def _run(self, repo, action, locations, force=False):
        outcome, argv = self._rdiff(repo).run(action, locations, force=force)
        self.commands.append(argv)
        return outcome

    def _plan(self, repo, action, locations, force=False):
        self.commands.append(self._rdiff(repo).argv(action, locations, force=force))

    def parse_repository(self, text, what):
        location = parse_location(text, what)
        if not location.is_remote:
            # One repository, one lock file, whatever symlinked path names it.
            location = Location(None, os.path.realpath(location.path))
        return location

    def lock_path(self, repo):
        return lock_path(repo)

    def version(self, repo):
        """rdiff-backup's version as text (run once per engine)."""
        if self._version is None:
            self._version = '.'.join(str(part) for part in self._rdiff(repo).version())
        return self._version

    def health(self, repo, exists=True):
        """Local: the tool runs (and, ``exists``, the repository directory is there). Remote: ssh logs in and
        rdiff-backup answers in ``repo`` or, for a first backup (``exists=False``), in its parent."""
        version = self.version(repo)
        if not repo.is_remote:
            if exists and not os.path.isdir(repo.path):
                return Health(False, version, False, ['no rdiff-backup repository at %s: the directory does not exist'
                                                      % repo.path])
            return Health(True, version, True)
        try:
            self._rdiff(repo).test_connection(repo if exists else repo.parent())
        except RdiffError as exc:
            return Health(False, version, False, [str(exc)])
        return Health(True, version, True)

    def list(self, repo):
        epochs = self._rdiff(repo).increments(repo)
        if epochs is None:
            return None
        return [Point(epoch, epoch, INCREMENT) for epoch in epochs]

    def select(self, points, at, now=None):
        epoch = resolve_at(at, [point.epoch for point in points], now)
        return [point for point in points if point.epoch == epoch][0]

    def excludes(self, src, patterns):
        return [glob_escape(src.rstrip('/')) + '/' + pattern for pattern in patterns] + leftover_globs(src)

    def backup(self, src, repo, excludes, previous=(), statistics=False, check_mode=False, label=None, extra=()):
        """``backup --print-statistics``; the outcome's point is None when rdiff-backup printed no statistics.

        rdiff-backup keeps one tree per repository and has no tags: ``label`` is left to the set record, and
        ``extra`` paths are refused.
        """
        if extra:
            raise EngineError('rdiff-backup keeps one tree per repository: %s cannot go into the backup of %s; '
                              'back them up beside it' % (', '.join(extra), src))
        action = ['backup', '--print-statistics']
        if not statistics:
            action.append('--no-file-statistics')
        for glob in excludes:
            action += ['--exclude', glob]
        if check_mode:
            self._plan(repo, action, [src, repo])
            return None
        # rdiff-backup names backups by the whole second and refuses one "not in the past".
        wait = (previous[-1].epoch + 1.05 - time.time()) if previous else 0
        if 0 < wait <= 2:
            time.sleep(wait)
        started = time.time()
        outcome = self._run(repo, action, [src, repo])
        seconds = time.time() - started
        details = {'rc': outcome.rc, 'regressed': outcome.regressed}
        if outcome.failed:
            # rdiff-backup regresses the repository on its next run; nothing of this run counts.
            raise EngineError('backup of %s to %s failed, no new increment: %s' % (src, repo.spec, outcome.describe()),
                              details)
        warnings = []
        if outcome.regressed:
            warnings.append('an earlier interrupted backup was rolled back (regressed) before this one')
        if outcome.warned:
            others = [m for m in outcome.messages if 'regress' not in m.lower() and 'emitted warnings' not in m]
            if others:
                warnings.append('rdiff-backup backup warned: %s' % '; '.join(others[:10]))
        stats = parse_statistics(outcome.out)
        files = stats.get('SourceFiles')
        details.update(statistics=stats)
        made = BackupOutcome(None, files=files, bytes=stats.get('SourceFileSize'), seconds=seconds,
                             changed_files=sum(stats.get(key, 0) for key in ('NewFiles', 'ChangedFiles', 'DeletedFiles')),
                             regressed=outcome.regressed, warnings=warnings, details=details)
        if stats.get('StartTime'):
            # The session's StartTime is the new backup's time; rdiff-backup keeps only whole seconds.
            epoch = int(stats['StartTime'])
            made.point = Point(epoch, epoch, INCREMENT)
        return made

    def verify(self, repo, point=None, check_mode=False):
        action = ['verify'] if point is None else ['verify', '--at', str(point.epoch)]
        if check_mode:
            self._plan(repo, action, [repo])
            return VerifyOutcome(None)
        started = time.time()
        outcome = self._run(repo, action, [repo])
        seconds = round(time.time() - started, 3)
        count, files = parse_verify(outcome)
        if outcome.rc == 0 and not count:
            return VerifyOutcome(True, seconds=seconds)
        return VerifyOutcome(False, count=count, damaged=files, seconds=seconds, detail=outcome.describe())

    def retention(self, repo, points, keep_seconds, now, check_mode=False, label=None):
        """``remove increments --older-than NNNs`` (the duration in seconds: rdiff-backup's own units differ)."""
        if not keep_seconds or not points:
            return RetentionOutcome()
        action = ['remove', 'increments', '--older-than', rdiff_backup_interval(keep_seconds)]
        due = [point for point in points[:-1] if point.epoch < now - keep_seconds]
        if check_mode:
            self._plan(repo, action, [repo], force=True)
            return RetentionOutcome([point.time for point in due])
        if not due:
            self._plan(repo, action, [repo], force=True)
            return RetentionOutcome()
        outcome = self._run(repo, action, [repo], force=True)
        if outcome.rc != 0:
            raise EngineError('removing increments older than %s from %s failed: %s'
                              % (label or rdiff_backup_interval(keep_seconds), repo.spec, outcome.describe()))
        after = self._rdiff(repo).increments(repo) or []
        return RetentionOutcome([point.time for point in points if point.epoch not in after], len(after))

    def repository_uuids(self, repo, point):
        return self._rdiff(repo).repository_uuids(repo, point.epoch)

    def restore(self, repo, point, into, check_mode=False):
        action = ['restore', '--at', str(point.epoch)]
        if check_mode:
            self._plan(repo, action, [repo, into])
            return None
        outcome = self._run(repo, action, [repo, into])
        # rdiff-backup 2.2 may exit 0 after "Could not restore file": its messages are read too.
        return RestoreOutcome(point, restore_problems(outcome), outcome.rc)

    def missing(self, repo, point, relpaths):
        """rdiff-backup lists names lossily (U+FFFD for bytes that are not UTF-8, a newline splits a name), so
        the tree's names go through the same decoding and the two are compared as counted lines."""
        listed = self._rdiff(repo).list_files(repo, point.epoch)
        return sorted((listed - listing_lines(relpaths)).elements())
