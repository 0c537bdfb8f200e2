# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock of a playbook run: a record with an owner and a lease, on the OMERO.server host.

A run of the backup or restore role spans many tasks and many processes, so no
flock can be held for it. Instead the run writes a record (JSON) naming its
holder: the controller host and the pid of its ansible-playbook, the target
host, a run id, when it started and when its lease expires. Every step renews
the lease; the end of the run removes the record, but only when the run id is
still its own.

A record is *live* while its lease has not expired and its holder may still be
running. It is *provably gone* (and taken over, with a warning naming it) when:

* its lease expired, unless the holder is a process on this host that still
  runs (same boot, same pid, same start time): a slow step of a live run is
  never taken from it; or
* the holder ran on this host (controller host == this host) and its process
  is gone: another boot, no such pid, or a pid reused by another process.

Nothing ever asks the operator to delete the record by hand.

Where: ``<lock dir>/omero-backup-run-<name>.json``, in the lock directory of
base/locking.py (/run/omero-backup for root, 0700, checked by its rule). Every
read-check-write is done under that directory's keyed flock for the name, so
two runs starting at once cannot both take the lock. The record is written by
temp file + fsync + rename, mode 0600.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import json
import os
import re
import socket
import stat
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.locking import (
    AlreadyRunning, ExclusiveLock, LockRefused, default_lock_dir, keyed_lock_path, open_lock_dir)

RECORD_VERSION = 1
NAME = re.compile(r'\A[a-z0-9][a-z0-9_-]{0,63}\Z')
_BOOT_ID = '/proc/sys/kernel/random/boot_id'


class RunLockHeld(OmeroBackupError):
    """Another run holds the lock and is not provably gone; ``holder`` is its record."""

    def __init__(self, message, holder):
        super(RunLockHeld, self).__init__(message)
        self.holder = holder


def record_path(name, lock_dir=None):
    return os.path.join(lock_dir or default_lock_dir(), 'omero-backup-run-%s.json' % name)


def boot_id():
    try:
        with open(_BOOT_ID) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def process_start(pid):
    """The start time of process ``pid`` (clock ticks since boot, /proc/PID/stat field 22), None when it is gone."""
    try:
        with open('/proc/%d/stat' % int(pid)) as handle:
            text = handle.read()
    except (IOError, OSError, ValueError):
        return None
    # The command name (field 2) may hold blanks and parentheses: count from the last ')'.
    fields = text[text.rindex(')') + 2:].split()
    return int(fields[19])


def describe(holder):
    """One line naming a holder, for messages and warnings."""
    if not holder:
        return 'an unknown holder'
    pid = holder.get('controller_pid')
    return ('run %s from %s%s on %s, started %s, lease until %s%s'
            % (holder.get('run_id') or '?', holder.get('controller_host') or 'an unknown controller',
               ' (ansible-playbook pid %s)' % pid if pid else '', holder.get('target_host') or '?',
               holder.get('started') or '?', holder.get('expires') or '?',
               ', at step %s' % holder['step'] if holder.get('step') else ''))


def _iso(moment):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(moment))


def holder_state(holder, now, this_host=None, this_boot=None):
    """('live' | 'gone', why) for a holder record, by the rules of this module's docstring."""
    this_host = this_host or socket.gethostname()
    this_boot = this_boot if this_boot is not None else boot_id()
    local = holder.get('controller_host') == this_host and holder.get('controller_pid')
    running, why = None, None
    if local:
        if holder.get('boot_id') and this_boot and holder['boot_id'] != this_boot:
            running, why = False, 'this host has rebooted since'
        else:
            start = process_start(holder['controller_pid'])
            if start is None:
                running, why = False, 'its ansible-playbook (pid %s) is gone' % holder['controller_pid']
            elif holder.get('controller_pid_start') not in (None, start):
                running, why = False, 'pid %s is now another process' % holder['controller_pid']
            else:
                running = True
    if running is False:
        return 'gone', why
    try:
        expires = float(holder.get('expires_epoch'))
    except (TypeError, ValueError):
        return 'gone', 'its record names no lease'
    if expires < now and not running:
        return 'gone', 'its lease expired at %s' % _iso(expires)
    if running:
        return 'live', 'its ansible-playbook (pid %s) still runs on this host' % holder['controller_pid']
    return 'live', 'its lease runs until %s' % _iso(expires)


class RunLock(object):
    """The record of one run lock (``name``) in a lock directory; see the module docstring."""

    def __init__(self, name, lock_dir=None, check_mode=False):
        if not NAME.match(name or ''):
            raise OmeroBackupError('run lock name %r: use lower-case letters, digits, - and _ (e.g. backup, restore)'
                                   % (name,))
        self.name = name
        self.lock_dir = os.path.normpath(lock_dir or default_lock_dir())
        self.path = record_path(name, self.lock_dir)
        self.check_mode = check_mode

    def _dir_checked(self):
        """True when the lock directory exists (checked by the rule of base/locking.py); made unless check mode.

        A named lock_dir is made too (unlike a module's lock_dir): the roles name one per site, and a run lock is
        only ever shared through the same role variables, so a misspelling cannot split one lock in two.
        """
        if self.check_mode and not os.path.lexists(self.lock_dir):
            return False
        os.close(open_lock_dir(self.lock_dir, create=not self.check_mode))
        return True

    def read(self):
        """The current record, or None. A record another user could have written is refused, not believed."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise LockRefused('cannot read the run lock %s: %s' % (self.path, exc.strerror), self.path)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077 \
                    or info.st_nlink != 1:
                raise LockRefused('run lock %s is not a private file of this user (mode %04o, uid %d, %d links): '
                                  'refused, nothing was written' % (self.path, stat.S_IMODE(info.st_mode),
                                                                    info.st_uid, info.st_nlink), self.path)
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
        try:
            record = json.loads(data.decode('utf-8'))
        except ValueError:
            # A torn or foreign file cannot name a live holder: written only by rename, so never ours half-done.
            return {'unreadable': True}
        return record if isinstance(record, dict) else {'unreadable': True}

    def _write(self, record):
        atomic_write(self.path, json.dumps(record, sort_keys=True, indent=1) + '\n', mode=0o600)

    def _guarded(self, fn):
        """Run ``fn`` under the keyed flock of this name, so read-check-write is one step between runs.

        Check mode only reads: it takes no flock, whose file it would have to create.
        """
        if not self._dir_checked() or self.check_mode:
            return fn()
        try:
            with ExclusiveLock(keyed_lock_path('run', self.name, self.lock_dir), purpose='run lock update'):
                return fn()
        except AlreadyRunning as exc:
            # Held only for a read and a rename: another run is taking or renewing this very lock now.
            raise RunLockHeld('the run lock %s is being taken by another run right now (%s)' % (self.path, exc), None)

    def new_record(self, holder, now, lease, step=None):
        record = dict(holder)
        record.update(version=RECORD_VERSION, name=self.name, target_host=socket.gethostname(), boot_id=boot_id(),
                      started=_iso(now), started_epoch=now, lease_seconds=lease, step=step)
        pid = record.get('controller_pid')
        if pid and record.get('controller_host') == record['target_host']:
            record['controller_pid_start'] = process_start(pid)
        return self._renewed(record, now, lease, step)

    @staticmethod
    def _renewed(record, now, lease, step):
        record = dict(record)
        record.update(renewed=_iso(now), expires=_iso(now + lease), expires_epoch=now + lease, lease_seconds=lease)
        if step:
            record['step'] = step
        return record

    def take(self, holder, now, lease, step=None):
        """Take the lock for ``holder`` (run_id, controller_host, controller_pid). Returns a result dict."""
        def take_locked():
            current = self.read()
            result = dict(path=self.path, name=self.name, changed=True, taken_over=None, warnings=[])
            if current and current.get('run_id') == holder['run_id']:
                result.update(state='held', changed=False)
                record = self._renewed(current, now, lease, step)
            else:
                if current:
                    self._refuse_live(current, now)
                    result['taken_over'] = current
                    result['warnings'].append(self._takeover_warning(current, now))
                result['state'] = 'taken'
                record = self.new_record(holder, now, lease, step)
            if not self.check_mode:
                self._write(record)
            result['holder'] = record
            return result
        return self._guarded(take_locked)

    def _refuse_live(self, current, now):
        if current.get('unreadable'):
            return
        state, why = holder_state(current, now)
        if state == 'live':
            raise RunLockHeld('another omero.backup %s run holds the run lock %s: %s (%s). This run changed nothing; '
                              'it may start once that run ends, its lease expires or its process is gone.'
                              % (self.name, self.path, describe(current), why), current)

    def _takeover_warning(self, current, now):
        if current.get('unreadable'):
            return 'run lock %s held an unreadable record: taken over' % self.path
        return ('run lock %s: taken over from %s, which is gone (%s); a run killed there may have left work unfinished'
                % (self.path, describe(current), holder_state(current, now)[1]))

    def renew(self, run_id, now, lease, step=None):
        """Extend the lease of our lock; an error when the lock is no longer ours (taken over, removed)."""
        def renew_locked():
            current = self.read()
            result = dict(path=self.path, name=self.name, changed=False, taken_over=None, warnings=[])
            if self.check_mode and current is None:
                # A check run took no lock: nothing to renew, and nothing wrong.
                result.update(state='absent', holder=None)
                return result
            if not current or current.get('run_id') != run_id:
                raise RunLockHeld('the run lock %s is no longer held by run %s: %s. Stopping rather than run beside it.'
                                  % (self.path, run_id, 'it was removed' if not current else
                                     'it is held by ' + describe(current)), current)
            record = self._renewed(current, now, lease, step)
            if not self.check_mode:
                self._write(record)
            result.update(state='held', changed=True, holder=record)
            return result
        return self._guarded(renew_locked)

    def release(self, run_id):
        """Remove the lock when ``run_id`` holds it; another holder's lock is left alone and reported."""
        def release_locked():
            current = self.read()
            result = dict(path=self.path, name=self.name, changed=False, taken_over=None, warnings=[], holder=current)
            if current is None:
                result['state'] = 'absent'
            elif current.get('run_id') != run_id:
                result['state'] = 'held'
                result['warnings'].append('run lock %s is held by %s, not by run %s: left in place'
                                          % (self.path, describe(current), run_id))
            else:
                if not self.check_mode:
                    os.unlink(self.path)
                result.update(state='absent', changed=True, holder=None)
            return result
        if self.check_mode and not os.path.lexists(self.lock_dir):
            return dict(path=self.path, name=self.name, changed=False, taken_over=None, warnings=[], holder=None,
                        state='absent')
        return self._guarded(release_locked)


def run_lock_step(lock, params, lease, now=None):
    """The module's one call: take, renew or release ``lock`` for the run in ``params``."""
    now = time.time() if now is None else now
    if params['state'] == 'present':
        holder = dict(run_id=params['run_id'], job=params.get('job'), controller_host=params.get('controller_host'),
                      controller_pid=params.get('controller_pid'))
        return lock.take(holder, now, lease, params.get('step'))
    if params['state'] == 'renewed':
        return lock.renew(params['run_id'], now, lease, params.get('step'))
    return lock.release(params['run_id'])
