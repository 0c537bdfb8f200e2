# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic engine of the data dir: a DatadirEngine over the tool adapter tools/restic.py (restic 0.14).

Public API (what the steps, restic-extra's granular restore, the roles and the benchmarks use):

- ``ResticEngine(runner, executable='restic', password=None, password_file=None, s3_access_key_id=None,
  s3_secret_access_key=None, s3_credentials_file=None, ssh_user=None, ssh_key=None, ssh_port=None, ssh_options=(),
  hostname=None, source=None, keep_last=None, keep_hourly=None, keep_daily=None, keep_weekly=None,
  keep_monthly=None, keep_yearly=None, verify_read_data='none', verify_rotation=7, verify_state_dir=None,
  lock_lease=1800, cache_dir=None)``; built by ``engine_for('datadir', 'restic', runner, **settings)``.
- ``parse_repository(text, what)`` -> tools.restic.Location (``spec``, ``kind``, ``is_remote``, ``path``).
- ``list(repo)`` -> [Point] oldest first (None: no repository). Point.id = full snapshot id; Point.epoch = float
  seconds; Point.details = {short_id, tags, host, paths, time}. Filtered by ``hostname`` (when given) and
  ``source`` (the data dir path, when given).
- ``select(points, at)``: ``now``/``latest``, a tag (the backup set id), a snapshot id prefix (4+ hex digits), or a
  time as rdiff-backup's ``at`` reads it (NB, epoch, ISO 8601, an interval back).
- ``backup(src, repo, excludes, previous, label=set_id, extra=[abs paths])`` -> BackupOutcome; one snapshot:
  the tree's root is ``src`` (backed up as ``.`` from inside it), each extra path sits at its absolute path;
  details: snapshot_id, snapshot_short_id, initialized, statistics (restic's JSON summary), rc.
- ``verify(repo)`` -> VerifyOutcome with details {subset, packs_read, packs_total, errors, damaged_packs,
  rotation_part, rotation_parts}.
- ``retention(repo, points, keep_seconds, now)`` -> RetentionOutcome (forget + prune; keep-last >= 1 always).
- ``restore(repo, point, into)`` writes the data dir (extras left out) into ``into``;
  ``restore_paths(repo, point, into, includes)`` writes only ``includes`` (absolute paths inside the snapshot,
  e.g. the set's dump) under ``into`` at their full path.
- ``listing(repo, point)`` -> [node dicts of ``restic ls --json``] (cached); ``extra_tops(repo, point)``.
- ``environment(repo)`` -> the env restic needs (secrets: handed to the runner only, never logged).
- ``repository_locks(repo)`` -> [lock dicts] (id, hostname, pid, age, exclusive).

Secrets: password / S3 keys reach restic only through the runner's environment; a password or credentials file must
be a regular file no one but its owner can read (0600 or 0400), else the run is refused before restic starts.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re
import socket
import stat
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
    LEFTOVER_PATTERNS, BackupOutcome, DatadirEngine, EngineError, Health, Point, RestoreOutcome, RetentionOutcome,
    VerifyOutcome, iso)
from ansible_collections.omero.backup.plugins.module_utils.tools import restic as tool
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import resolve_at

SNAPSHOT = 'snapshot'
DEFAULT_STATE_DIR = '/var/lib/omero-backup/state'
DEFAULT_LOCK_LEASE = 1800
MAX_LISTED = 20
_HEX = re.compile(r'^[0-9a-f]{4,64}$')


def private_file(path, what):
    """Refuse a secret file that is missing, not a regular file, or readable by anyone but its owner."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise EngineError('%s %s: %s' % (what, path, exc.strerror or exc))
    if not stat.S_ISREG(info.st_mode):
        raise EngineError('%s %s is not a regular file' % (what, path))
    if info.st_mode & 0o077:
        raise EngineError('%s %s has mode %04o: a secret must be readable by its owner only (chmod 0600); '
                          'nothing was run' % (what, path, stat.S_IMODE(info.st_mode)))
    return path


def keep_within(seconds):
    """restic 0.14's ``--keep-within`` takes y, m (months), d and h only: the duration in days and hours,
    rounded up to the hour."""
    hours = -(-int(seconds) // 3600)
    days, hours = divmod(hours, 24)
    return '%dd%dh' % (days, hours)


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError, OverflowError):
        return True
    return True


class ResticEngine(DatadirEngine):
    """restic 0.14 on a local, sftp, rest or s3 repository."""

    name = 'restic'
    # restic 0.14 writes a link's target as a JSON string: bytes that are not UTF-8 come back as U+FFFD (names of
    # files are kept exactly). The backup step warns about such links.
    lossy_link_targets = True

    def __init__(self, runner, executable=tool.RESTIC, password=None, password_file=None, s3_access_key_id=None,
                 s3_secret_access_key=None, s3_credentials_file=None, ssh_user=None, ssh_key=None, ssh_port=None,
                 ssh_options=(), hostname=None, source=None, keep_last=None, keep_hourly=None, keep_daily=None,
                 keep_weekly=None, keep_monthly=None, keep_yearly=None, verify_read_data='none', verify_rotation=7,
                 verify_state_dir=None, lock_lease=DEFAULT_LOCK_LEASE, cache_dir=None):
        super(ResticEngine, self).__init__(runner)
        self.executable = executable
        self.password = password
        self.password_file = password_file
        self.s3 = dict(key_id=s3_access_key_id, secret=s3_secret_access_key, file=s3_credentials_file)
        self.ssh = dict(ssh_user=ssh_user, ssh_key=ssh_key, ssh_port=ssh_port, ssh_options=list(ssh_options or []))
        self.hostname = hostname or socket.gethostname()
        self.host_filter = hostname
        self.source = source
        self.keep = dict(last=keep_last, hourly=keep_hourly, daily=keep_daily, weekly=keep_weekly,
                         monthly=keep_monthly, yearly=keep_yearly)
        self.verify_read_data = str(verify_read_data or 'none').strip()
        self.verify_rotation = int(verify_rotation or 1)
        self.verify_state_dir = verify_state_dir or DEFAULT_STATE_DIR
        self.lock_lease = DEFAULT_LOCK_LEASE if lock_lease is None else lock_lease
        self.cache_dir = cache_dir
        self.initialized = False
        self.would_init = False
        self.removed_locks = []
        self._exists = {}
        self._tools = {}
        self._version = None
        self._listings = {}
        self._check_settings()

    # -- settings, secrets, the adapter -------------------------------------------------------------------------

    def _check_settings(self):
        for name, value in self.keep.items():
            if value is not None and int(value) < 0:
                raise EngineError('keep_%s must be 0 or more' % name)
        if self.verify_read_data not in ('none', 'all', 'rotating'):
            try:
                tool.check_subset(self.verify_read_data)
            except tool.ResticError as exc:
                raise EngineError('%s (or none, all, rotating)' % exc)
        if self.verify_rotation < 1:
            raise EngineError('verify_rotation must be 1 or more')
        if self.password is not None and self.password_file:
            raise EngineError('give the restic repository password as password or password_file, not both')
        if (self.s3['key_id'] is None) != (self.s3['secret'] is None):
            raise EngineError('s3_access_key_id and s3_secret_access_key go together')

    def environment(self, repo):
        """The variables restic needs for ``repo``: the password (or its file) and, for s3, the keys (or their
        file). Checked here, before any restic command runs."""
        env = {}
        if self.password is not None:
            if not self.password:
                raise EngineError('the restic repository password is empty')
            env['RESTIC_PASSWORD'] = self.password
        elif self.password_file:
            env['RESTIC_PASSWORD_FILE'] = private_file(self.password_file, 'password_file')
        else:
            raise EngineError('restic needs the repository password: set password_file (a 0600 file) or password')
        if repo.kind == 's3':
            if self.s3['key_id'] is not None:
                env['AWS_ACCESS_KEY_ID'] = self.s3['key_id']
                env['AWS_SECRET_ACCESS_KEY'] = self.s3['secret']
            elif self.s3['file']:
                env['AWS_SHARED_CREDENTIALS_FILE'] = private_file(self.s3['file'], 's3_credentials_file')
            else:
                raise EngineError('an s3 repository needs s3_access_key_id and s3_secret_access_key, or '
                                  's3_credentials_file (a 0600 AWS credentials file)')
        return env

    def _restic(self, repo):
        if repo.spec not in self._tools:
            options = []
            if repo.kind == 'sftp':
                if self.ssh['ssh_key'] and not os.path.isfile(self.ssh['ssh_key']):
                    raise EngineError('ssh_key %s does not exist or is not a file' % self.ssh['ssh_key'])
                options.append('sftp.command=%s' % tool.sftp_command(repo.host, **self.ssh))
            self._tools[repo.spec] = tool.Restic(self.runner, repo, self.executable, self.environment(repo), options,
                                                 self.cache_dir)
        return self._tools[repo.spec]

    def _run(self, repo, action, args=(), json_output=False, no_lock=False, cwd=None, log=True):
        """Run restic; a run refused for a repository lock is retried once after a stale lock was removed."""
        restic = self._restic(repo)
        outcome, argv = restic.run(action, args, json_output, no_lock, cwd)
        if log:
            self.commands.append(argv)
        if outcome.locked and self._remove_stale_locks(repo, outcome):
            outcome, argv = restic.run(action, args, json_output, no_lock, cwd)
            if log:
                self.commands.append(argv)
        if outcome.wrong_password:
            raise EngineError('restic cannot open %s: wrong repository password (or no key for it); nothing was '
                              'changed' % repo.spec)
        if outcome.locked:
            raise EngineError(self._locked_message(repo, outcome), {'repository_locks': self._last_locks})
        return outcome

    def _plan(self, repo, action, args=(), json_output=False, no_lock=False):
        self.commands.append(self._restic(repo).argv(action, args, json_output, no_lock))

    # -- locks --------------------------------------------------------------------------------------------------

    _last_locks = ()

    def repository_locks(self, repo):
        """Every lock in the repository with its holder and age (``list locks`` and ``cat lock``, lock-free)."""
        restic = self._restic(repo)
        outcome, argv = restic.run(['list', 'locks'], no_lock=True)
        self.commands.append(argv)
        if outcome.failed:
            raise EngineError('cannot list the locks of %s: %s' % (repo.spec, outcome.describe()))
        locks = []
        now = time.time()
        for lock_id in tool.parse_lock_ids(outcome.out):
            shown, argv = restic.run(['cat', 'lock', lock_id], no_lock=True)
            if shown.failed:
                continue  # removed meanwhile
            locks.append(tool.parse_lock(shown.out, lock_id, now))
        return locks

    def _lock_verdict(self, lock):
        """Why ``lock`` must stay (None: it is stale by our rule: older than the lease and its holder is gone)."""
        if lock['hostname'] != self.hostname:
            return 'held from another host (%s): whether its process is gone cannot be proven from here; run ' \
                   '"restic unlock" there, or remove it by hand once that host is known to be down' % lock['hostname']
        if lock['age'] < self.lock_lease:
            return 'younger than the lease (%ds < lock_lease %ds)' % (lock['age'], self.lock_lease)
        if pid_alive(lock['pid']):
            return 'its process %s is still running on this host' % lock['pid']
        return None

    def _remove_stale_locks(self, repo, outcome):
        """``restic unlock`` (0.14: removes stale locks only) when every lock present is stale by our rule; True
        when it ran and the command may be retried."""
        locks = self.repository_locks(repo)
        self._last_locks = [dict(lock, verdict=self._lock_verdict(lock) or 'stale') for lock in locks]
        if not locks or any(self._lock_verdict(lock) for lock in locks):
            return False
        unlocked, argv = self._restic(repo).run(['unlock'])
        self.commands.append(argv)
        if unlocked.failed:
            return False
        self.removed_locks.extend(self._last_locks)
        return True

    def _locked_message(self, repo, outcome):
        holders = []
        for lock in self._last_locks:
            holders.append('PID %s on %s by %s, %s%s, %ds old: %s' % (
                lock['pid'], lock['hostname'], lock['username'], 'exclusive' if lock['exclusive'] else 'shared',
                '', lock['age'], lock['verdict']))
        if not holders:
            parsed = tool.parse_locked_message(outcome.err)
            holders.append('PID %s on %s by %s' % parsed if parsed else outcome.describe())
        return 'the restic repository %s is locked (%s); nothing was changed. A lock is removed only when it is ' \
               'older than lock_lease and its holder is provably gone' % (repo.spec, '; '.join(holders))

    # -- the seam -----------------------------------------------------------------------------------------------

    def parse_repository(self, text, what):
        try:
            location = tool.parse_location(text, what)
        except tool.ResticError as exc:
            raise EngineError(str(exc))
        if not location.is_remote:
            location = tool.Location('local', os.path.realpath(location.path))
        return location

    def lock_path(self, repo):
        return tool.lock_path(repo)

    def version(self, repo):
        if self._version is None:
            try:
                self._version = '.'.join(str(part) for part in tool.Restic(self.runner, repo, self.executable).version())
            except tool.ResticError as exc:
                raise EngineError(str(exc))
        return self._version

    def health(self, repo, exists=True):
        """The tool runs and its secrets are in order; ``exists``: the repository opens with the password."""
        version = self.version(repo)
        try:
            self.environment(repo)
        except EngineError as exc:
            return Health(False, version, None, [str(exc)])
        if not exists:
            return Health(True, version, None)
        outcome = self._restic(repo).run(['cat', 'config'], no_lock=True)[0]
        if outcome.no_repository:
            return Health(False, version, True, ['no restic repository at %s' % repo.spec])
        if outcome.failed:
            return Health(False, version, False, ['cannot open the restic repository %s: %s'
                                                  % (repo.spec, outcome.describe())])
        self._exists[repo.spec] = True
        return Health(True, version, True)

    def list(self, repo):
        args = []
        if self.host_filter:
            args += ['--host', self.host_filter]
        if self.source:
            args += ['--path', self.source]
        outcome = self._run(repo, ['snapshots'], args, json_output=True, no_lock=True, log=False)
        if outcome.no_repository:
            self._exists[repo.spec] = False
            return None
        if outcome.failed:
            raise EngineError('cannot list the snapshots of %s: %s' % (repo.spec, outcome.describe()))
        self._exists[repo.spec] = True
        return [self._point(snap) for snap in tool.parse_snapshots(outcome.out)]

    @staticmethod
    def _point(snap):
        return Point(snap['id'], snap['epoch'], SNAPSHOT, True,
                     {'short_id': snap['short_id'], 'tags': snap['tags'], 'host': snap['host'], 'paths': snap['paths'],
                      'time': snap['time']})

    def select(self, points, at, now=None):
        if not points:
            raise EngineError('the repository holds no snapshot')
        text = '' if at is None else str(at).strip()
        if text in ('', 'now', 'latest'):
            return points[-1]
        tagged = [point for point in points if text in point.details.get('tags', ())]
        if tagged:
            return tagged[-1]
        if _HEX.match(text):
            matches = [point for point in points if point.id.startswith(text)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise EngineError('at %r: the snapshot id prefix names %d snapshots; give more digits' % (text, len(matches)))
        try:
            epoch = resolve_at(text, [point.epoch for point in points], now)
        except OmeroBackupError as exc:
            raise EngineError('%s (restic also takes a backup set id, a snapshot id or latest)' % exc)
        return [point for point in points if point.epoch == epoch][-1]

    def excludes(self, src, patterns):
        """restic patterns anchored at ``src`` (a pattern without a leading / would match at any depth)."""
        base = tool.glob_escape(src.rstrip('/'))
        return [base + '/' + pattern for pattern in list(patterns) + list(LEFTOVER_PATTERNS)]

    def _check_extra(self, src, extra):
        tops = set(os.listdir(src))
        checked = []
        for path in extra or ():
            path = os.path.normpath(str(path))
            if not path.startswith('/'):
                raise EngineError('extra %s: the path must be absolute' % path)
            if not os.path.exists(path):
                raise EngineError('extra %s does not exist; nothing was backed up' % path)
            if path == src or path.startswith(src.rstrip('/') + '/') or src.startswith(path.rstrip('/') + '/'):
                raise EngineError('extra %s and the data dir %s must not contain each other' % (path, src))
            top = path.strip('/').split('/')[0]
            if top in tops:
                raise EngineError('extra %s: the data dir %s has an entry %s at its top, where the snapshot keeps '
                                  'this path; move the file elsewhere' % (path, src, escape(top)))
            checked.append(path)
        if checked and src.strip('/').split('/')[0] in tops:
            raise EngineError('the data dir %s holds an entry named like the first part of its own path; extra '
                              'paths cannot be told apart from it in a snapshot' % src)
        return checked

    def _ensure_repository(self, repo, check_mode):
        """Initialise ``repo`` when there is none (check mode: only say so)."""
        if self._exists.get(repo.spec):
            return
        missing = self._exists.get(repo.spec) is False
        if not missing:
            if not repo.is_remote and (not os.path.isdir(repo.path) or not os.listdir(repo.path)):
                missing = True
            else:
                outcome = self._restic(repo).run(['cat', 'config'], no_lock=True)[0]
                if outcome.failed and not outcome.no_repository:
                    raise EngineError('cannot open the restic repository %s: %s' % (repo.spec, outcome.describe()))
                missing = outcome.no_repository
        if not missing:
            self._exists[repo.spec] = True
            return
        if check_mode:
            self._plan(repo, ['init'])
            self.would_init = True
            return
        outcome = self._run(repo, ['init'])
        if outcome.failed:
            raise EngineError('cannot create the restic repository %s: %s' % (repo.spec, outcome.describe()))
        self.initialized = True
        self._exists[repo.spec] = True

    def backup(self, src, repo, excludes, previous=(), statistics=False, check_mode=False, label=None, extra=()):
        """One snapshot of ``src`` (as ``.``, so the tree's root is the data dir) and the ``extra`` paths."""
        extra = self._check_extra(src, extra)
        self._ensure_repository(repo, check_mode)
        args = ['--host', self.hostname]
        if label:
            if ',' in label or not label.strip():
                raise EngineError('label %r: a restic tag may not be empty nor hold a comma' % label)
            args += ['--tag', label]
        if previous:
            # The snapshot's paths change with each set's extras: without --parent, restic would find no parent
            # and read every file again.
            args += ['--parent', previous[-1].id]
        for pattern in excludes:
            args += ['--exclude', pattern]
        args += ['.'] + extra
        if check_mode:
            self._plan(repo, ['backup', '-q'], args, json_output=True)
            return None
        started = time.time()
        outcome = self._run(repo, ['backup', '-q'], args, json_output=True, cwd=src)
        seconds = time.time() - started
        summary, errors = tool.parse_backup(outcome.out + '\n' + outcome.err)
        details = {'rc': outcome.rc, 'statistics': summary or {}, 'initialized': self.initialized}
        if outcome.incomplete and summary and summary.get('snapshot_id'):
            unreadable = sorted(set(escape(error['path'] or '?') for error in errors))
            details.update(incomplete_snapshot=summary['snapshot_id'], unreadable_files=unreadable[:MAX_LISTED])
            # An incomplete snapshot is no backup: forgotten, so no restore or retention counts it.
            forgot = self._run(repo, ['forget'], [summary['snapshot_id']])
            raise EngineError('backup of %s to %s is incomplete: restic could not read %d file(s) (%s); the snapshot '
                              '%s was %s and does not count as a backup. Fix the permissions (or exclude the files) '
                              'and run again.' % (src, repo.spec, len(unreadable), ', '.join(unreadable[:5]),
                                                  summary['snapshot_id'],
                                                  'forgotten' if not forgot.failed else 'left in place (forget failed)'),
                              details)
        if outcome.failed or not summary:
            raise EngineError('backup of %s to %s failed, no snapshot made: %s' % (src, repo.spec, outcome.describe()),
                              details)
        snap = self._snapshot(repo, summary['snapshot_id'])
        files, size, changed = tool.backup_counts(summary)
        details.update(snapshot_id=snap['id'], snapshot_short_id=snap['short_id'])
        return BackupOutcome(self._point(snap), files=files, bytes=size, changed_files=changed, seconds=seconds,
                             details=details)

    def _snapshot(self, repo, snapshot_id):
        outcome = self._run(repo, ['snapshots'], [snapshot_id], json_output=True, no_lock=True, log=False)
        snaps = tool.parse_snapshots(outcome.out) if not outcome.failed else []
        if not snaps:
            raise EngineError('restic made snapshot %s in %s but cannot show it: %s'
                              % (snapshot_id, repo.spec, outcome.describe()))
        return snaps[0]

    # -- verify -------------------------------------------------------------------------------------------------

    def _state_path(self, repo):
        import hashlib
        key = hashlib.sha256(repo.spec.encode('utf-8', 'surrogateescape')).hexdigest()[:20]
        return os.path.join(self.verify_state_dir, 'restic-verify-%s.json' % key)

    def _read_state(self, repo):
        try:
            with open(self._state_path(repo)) as handle:
                state = json.load(handle)
            return state if isinstance(state, dict) else {}
        except (OSError, ValueError):
            return {}

    def _subset(self, repo):
        """(restic check arguments, subset text, rotation part or None)."""
        mode = self.verify_read_data
        if mode == 'none':
            return [], None, None
        if mode == 'all':
            return ['--read-data'], 'all', None
        if mode == 'rotating':
            state = self._read_state(repo)
            part = state.get('next_part', 1)
            if state.get('parts') != self.verify_rotation or not 1 <= part <= self.verify_rotation:
                part = 1
            subset = '%d/%d' % (part, self.verify_rotation)
            return ['--read-data-subset', subset], subset, part
        return ['--read-data-subset', self.verify_read_data], self.verify_read_data, None

    def _advance(self, repo, part):
        """The next run reads the next part: a 0600 state file in the root-only state dir, written atomically."""
        ensure_private_dir(self.verify_state_dir)
        state = {'repository': repo.spec, 'parts': self.verify_rotation, 'last_part': part,
                 'next_part': part % self.verify_rotation + 1, 'last_time': iso(time.time())}
        if part == self.verify_rotation:
            state['last_full_cycle'] = state['last_time']
        else:
            state['last_full_cycle'] = self._read_state(repo).get('last_full_cycle')
        atomic_write(self._state_path(repo), json.dumps(state, indent=1, sort_keys=True) + '\n', mode=0o600)

    def verify(self, repo, point=None, check_mode=False):
        """``restic check`` of the whole repository's structure, plus the data read verify_read_data asks for."""
        args, subset, part = self._subset(repo)
        details = {'subset': subset, 'rotation_part': part, 'rotation_parts': self.verify_rotation if part else None,
                   'packs_read': None, 'packs_total': None, 'errors': [], 'damaged_packs': []}
        if check_mode:
            if self._exists.get(repo.spec) is not False and not self.would_init:
                self._plan(repo, ['check'], args)
            return VerifyOutcome(None, details=details)
        started = time.time()
        outcome = self._run(repo, ['check'], args)
        seconds = round(time.time() - started, 3)
        found = tool.parse_check(outcome.err + '\n' + outcome.out)
        details.update(packs_read=found['packs_read'], packs_total=found['packs_total'],
                       errors=found['errors'][:MAX_LISTED], damaged_packs=tool.damaged_packs(found['errors']))
        if outcome.rc == 0 and found['ok'] is not False:
            if part:
                self._advance(repo, part)
            return VerifyOutcome(True, seconds=seconds, details=details)
        damaged = details['damaged_packs'] or found['errors'][:5]
        return VerifyOutcome(False, count=len(details['damaged_packs']) or len(found['errors']) or 1,
                             damaged=damaged[:MAX_LISTED], seconds=seconds, detail=outcome.describe(), details=details)

    # -- retention ----------------------------------------------------------------------------------------------

    def retention_args(self, keep_seconds):
        """The forget policy: keep_* and keep_seconds (as --keep-within); --keep-last 1 at least."""
        args = []
        for name in ('last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'):
            if self.keep[name]:
                args += ['--keep-%s' % name, str(int(self.keep[name]))]
        if keep_seconds:
            args += ['--keep-within', keep_within(keep_seconds)]
        if args and not self.keep['last']:
            # Whatever the policy, the newest snapshot stays.
            args += ['--keep-last', '1']
        return args

    def retention(self, repo, points, keep_seconds, now, check_mode=False, label=None):
        """``forget`` (grouped by host: each set's extras change a snapshot's paths) then ``prune``."""
        policy = self.retention_args(keep_seconds)
        if not policy or self._exists.get(repo.spec) is False or self.would_init:
            return RetentionOutcome()
        args = ['--host', self.hostname, '--group-by', 'host'] + policy
        if self.source:
            args += ['--path', self.source]
        if check_mode:
            outcome = self._run(repo, ['forget', '--dry-run'], args, json_output=True, no_lock=True)
        else:
            outcome = self._run(repo, ['forget'], args, json_output=True)
        if outcome.failed:
            raise EngineError('restic forget on %s failed: %s' % (repo.spec, outcome.describe()))
        keep, remove = tool.parse_forget(outcome.out)
        by_id = dict((point.id, point) for point in points)
        removed = [by_id[snap_id].time if snap_id in by_id else snap_id for snap_id in remove]
        if check_mode or not remove:
            return RetentionOutcome(removed, len(keep) if not check_mode else None)
        pruned = self._run(repo, ['prune'])
        if pruned.failed:
            raise EngineError('restic forgot %d snapshot(s) of %s but prune failed (the data stays until the next '
                              'prune): %s' % (len(remove), repo.spec, pruned.describe()))
        return RetentionOutcome(removed, len(keep))

    # -- listing and restore ------------------------------------------------------------------------------------

    def listing(self, repo, point):
        """The nodes of ``point`` (``restic ls --json``), cached per snapshot."""
        if point.id not in self._listings:
            outcome = self._run(repo, ['ls'], [point.id], json_output=True, no_lock=True)
            if outcome.failed:
                raise EngineError('cannot list snapshot %s of %s: %s' % (point.id[:8], repo.spec, outcome.describe()))
            self._listings[point.id] = tool.parse_ls(outcome.out)[1]
        return self._listings[point.id]

    def extra_tops(self, repo, point):
        """The top-level names of the snapshot that hold extra paths (the set's dump and config), not the data dir:
        the snapshot's paths that the tree holds at their absolute place."""
        paths = point.details.get('paths') or []
        if len(paths) < 2:
            return []
        present = set(node['path'] for node in self.listing(repo, point))
        return sorted(set(path.strip('/').split('/')[0] for path in paths if path in present))

    def repository_uuids(self, repo, point):
        uuids = set()
        for node in self.listing(repo, point):
            parts = node['path'].split('/')
            if len(parts) == 5 and parts[1:3] == ['.omero', 'repository'] and parts[4] == 'repo_uuid':
                uuids.add(parts[3])
        return sorted(uuids)

    def restore(self, repo, point, into, check_mode=False):
        args = [point.id, '--target', into]
        tops = [] if check_mode else self.extra_tops(repo, point)
        for top in tops:
            args += ['--exclude', '/' + tool.glob_escape(top)]
        if check_mode:
            self._plan(repo, ['restore'], args)
            return None
        outcome = self._run(repo, ['restore'], args)
        return RestoreOutcome(point, tool.parse_restore_problems(outcome), outcome.rc, {'excluded_tops': tops})

    def restore_paths(self, repo, point, into, includes, check_mode=False):
        """Only ``includes`` (absolute paths inside the snapshot, such as the set's dump) under ``into``."""
        args = [point.id, '--target', into]
        for path in includes:
            args += ['--include', tool.glob_escape(path)]
        if check_mode:
            self._plan(repo, ['restore'], args)
            return None
        outcome = self._run(repo, ['restore'], args)
        return RestoreOutcome(point, tool.parse_restore_problems(outcome), outcome.rc)

    def missing(self, repo, point, relpaths):
        """Entries of the snapshot (extras left out) absent from the restored tree, compared as restic's JSON shows
        names (tools.restic.ls_name)."""
        tops = set(self.extra_tops(repo, point))
        wanted = tool.ls_counter(node['path'] for node in self.listing(repo, point)
                                 if node['path'].split('/')[1] not in tops)
        have = tool.ls_counter(tool.ls_name(relpath) for relpath in relpaths)
        return sorted((wanted - have).elements())
