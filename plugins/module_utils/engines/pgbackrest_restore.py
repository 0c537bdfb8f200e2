# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgBackRest engine's restore: a whole cluster back to a point in time.

Order: read the stanza (its backups and the newest archived WAL), choose the backup and check the target against
the archived range (from the end of the oldest backup to the newest WAL in the repository) before anything is
touched; then ``pgbackrest restore`` either

* into the stopped cluster, ``pg_path``, with ``--delta`` (only with ``state=replaced``: it overwrites the cluster;
  into a missing or empty ``pg_path`` with ``state=present``), left stopped: starting PostgreSQL replays WAL up to
  the target and promotes; or
* into a scratch data directory for a drill (``scratch_path``, missing or empty), with archiving off, on its own
  port and socket, started and waited for until recovery has reached the target and promoted.

``state=absent`` with ``scratch_path`` stops a drill cluster and removes its directory (only one this module made:
it carries the marker file).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil
import socket
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import apply_owner, atomic_write
from ansible_collections.omero.backup.plugins.module_utils.engines.base import EngineError
from ansible_collections.omero.backup.plugins.module_utils.engines.pgbackrest import archived_until
from ansible_collections.omero.backup.plugins.module_utils.tools import pgbackrest as tool

SCRATCH_MARKER = '.omero-backup-scratch'
TARGET_TYPES = ('time', 'immediate', 'default')
PROMOTE_TIMEOUT = 600
# A drill cluster: its own port and socket, no archiving (its WAL must not reach the stanza's repository), and
# nothing listening on the network.
SCRATCH_SETTINGS = (('listen_addresses', "''"), ('archive_mode', "'off'"), ('cluster_name', "'omero-backup-drill'"))
SCRATCH_HBA = ('# written by omero.backup for a restore drill: local connections of the cluster user only\n'
               'local   all   all   peer\n')


class RestoreRefused(EngineError):
    """A pgBackRest restore refused before anything was touched."""


def restore(engine, options, check_mode=False):
    """db_restore with engine=pgbackrest; returns the module result."""
    if options.state == 'absent':
        return remove_scratch(engine, options, check_mode)
    into, scratch = _target_dir(options)
    stanza = engine.stanza(options)
    newest = engine.archive_newest(options, stanza)
    until = archived_until(stanza, newest)
    backup, target = choose(stanza, options, until)
    result = {'changed': True, 'restored_from': backup['label'], 'backup_type': backup['type'],
              'backup_time': tool.iso(backup['stop']), 'target_type': options.target_type, 'target_time': None,
              'archived_from': tool.iso(_oldest_stop(stanza)), 'archived_until': tool.iso(until),
              'archived_until_epoch': until, 'pg_path': into, 'scratch': scratch, 'started': False, 'promoted': False,
              'warnings': [], 'stanza': options.stanza}
    if target is not None:
        result['target_time'] = tool.iso(target) if target == int(target) else tool.target_text(target)
    started = time.time()
    argv = engine.tool(options).argv('restore', _restore_options(options, backup, target, into, scratch))
    result['commands'] = [argv]
    if check_mode:
        result['msg'] = 'would restore backup %s of stanza %s into %s%s' % (
            backup['label'], options.stanza, into, _target_words(options, target))
        return result
    _prepare_dir(into, options, scratch)
    found = engine.tool(options)
    try:
        found.restore(_restore_options(options, backup, target, into, scratch))
    except tool.PgBackRestError as exc:
        raise EngineError(str(exc), result=dict(result, changed=True, commands=list(found.commands)))
    finally:
        engine.commands = list(found.commands)
    result['commands'] = list(found.commands)
    if scratch:
        # After the restore: pgBackRest restores only into an empty directory.
        atomic_write(os.path.join(into, SCRATCH_MARKER), 'omero.backup drill cluster: db_restore state=absent removes it\n',
                     mode=0o600, owner=options.os_user)
        _scratch_config(into, options)
        if options.scratch_start:
            _start_and_promote(engine.runner, into, options, result)
    result['duration'] = round(time.time() - started, 3)
    result['msg'] = 'restored backup %s of stanza %s into %s%s' % (backup['label'], options.stanza, into,
                                                                   _target_words(options, target))
    if not scratch:
        result['msg'] += '; start PostgreSQL: it replays WAL up to the target and then promotes'
    return result


def _target_words(options, target):
    if options.target_type == 'time':
        return ' up to %s' % tool.target_text(target)
    if options.target_type == 'immediate':
        return ' as of the end of the backup'
    return ' with all archived WAL replayed'


def _oldest_stop(stanza):
    stops = [backup['stop'] for backup in stanza['backups'] if not backup['error'] and backup['stop']]
    return min(stops) if stops else None


def _target_dir(options):
    """(data directory to restore into, whether it is a scratch one), refused when unusable; nothing touched."""
    if bool(options.pg_path) == bool(options.scratch_path):
        raise RestoreRefused('give either pg_path (the stopped cluster) or scratch_path (a drill cluster), not %s'
                             % ('both' if options.pg_path else 'neither'))
    if options.target_type not in TARGET_TYPES:
        raise RestoreRefused('target_type %r: use one of %s' % (options.target_type, ', '.join(TARGET_TYPES)))
    if options.target_type == 'time' and not options.target_time:
        raise RestoreRefused('target_type=time needs target_time (an ISO 8601 time such as 2026-12-03T10:30:00Z)')
    if options.target_type != 'time' and options.target_time:
        raise RestoreRefused('target_time is only used with target_type=time (got target_type=%s)' % options.target_type)
    path = (options.scratch_path or options.pg_path).rstrip('/') or '/'
    scratch = bool(options.scratch_path)
    if not os.path.isdir(os.path.dirname(path) or '/'):
        raise RestoreRefused('the parent of %s does not exist; nothing was changed' % path)
    if os.path.lexists(path) and not os.path.isdir(path):
        raise RestoreRefused('%s exists and is not a directory; nothing was changed' % path)
    entries = os.listdir(path) if os.path.isdir(path) else []
    if _running(path):
        raise RestoreRefused('PostgreSQL is running on %s (postmaster.pid names a live process): stop it first; '
                             'nothing was changed' % path)
    if scratch:
        if entries:
            raise RestoreRefused('scratch_path %s is not empty: a drill restores into a missing or empty directory '
                                 '(state=absent removes a drill cluster this module made); nothing was changed' % path)
        if not options.scratch_port:
            raise RestoreRefused('scratch_path needs scratch_port, the port of the drill cluster')
        if _port_in_use(options.scratch_port):
            raise RestoreRefused('port %d is in use on this host: give scratch_port a free one' % options.scratch_port)
    elif entries and options.state != 'replaced':
        raise RestoreRefused('%s holds a cluster: restoring over it needs state=replaced (pgbackrest restore --delta '
                             'overwrites it); nothing was changed' % path)
    return path, scratch


def _running(path):
    pidfile = os.path.join(path, 'postmaster.pid')
    try:
        with open(pidfile) as handle:
            pid = int(handle.readline().strip())
    except (IOError, OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == 1  # EPERM: a live process of another user
    return True


def _port_in_use(port):
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        return probe.connect_ex(('127.0.0.1', port)) == 0
    finally:
        probe.close()


def choose(stanza, options, until):
    """(backup, target epoch or None): the backup to restore and the checked target; refused outside the range."""
    complete = [backup for backup in stanza['backups'] if not backup['error']]
    if not complete:
        raise RestoreRefused('stanza %s holds no complete backup to restore; nothing was changed' % options.stanza)
    if options.set:
        named = [backup for backup in complete if backup['label'] == options.set]
        if not named:
            raise RestoreRefused('stanza %s holds no complete backup %s (it has %s); nothing was changed'
                                 % (options.stanza, options.set, ', '.join(b['label'] for b in complete)))
    if options.target_type != 'time':
        return (named[0] if options.set else complete[-1]), None
    try:
        target = tool.epoch_of_target(options.target_time)
    except tool.PgBackRestError as exc:
        raise RestoreRefused(str(exc))
    oldest = _oldest_stop(stanza)
    span = 'the archived range of stanza %s is %s to %s' % (options.stanza, tool.iso(oldest), tool.iso(until))
    if target < oldest:
        raise RestoreRefused('target_time %s is before the end of the oldest backup (%s, %s): no backup can be '
                             'restored to it; %s. Nothing was changed.'
                             % (options.target_time, complete[0]['label'], tool.iso(oldest), span))
    # pgBackRest lists a file's time in whole seconds: a target within the newest segment's second is in range.
    if until is None or int(target) > until:
        raise RestoreRefused('target_time %s is after the newest WAL in the repository: %s. A restore to it would '
                             'stop short of the target. Nothing was changed.' % (options.target_time, span))
    if options.set:
        if named[0]['stop'] > target:
            raise RestoreRefused('backup %s ended at %s, after target_time %s: it cannot be restored to an earlier time; '
                                 'nothing was changed' % (options.set, tool.iso(named[0]['stop']), options.target_time))
        return named[0], target
    return [backup for backup in complete if backup['stop'] <= target][-1], target


def _restore_options(options, backup, target, into, scratch):
    argv = ['--pg1-path=%s' % into, '--set=%s' % backup['label'], '--type=%s' % options.target_type]
    if options.target_type == 'time':
        argv += ['--target=%s' % tool.target_text(target), '--target-action=promote']
    elif options.target_type == 'immediate':
        argv.append('--target-action=promote')
    if scratch:
        argv.append('--archive-mode=off')
    elif os.path.isdir(into) and os.listdir(into):
        argv.append('--delta')
    return argv


def _prepare_dir(into, options, scratch):
    if not os.path.isdir(into):
        os.mkdir(into, 0o700)
    os.chmod(into, 0o700)
    apply_owner(into, options.os_user, None)


def _scratch_config(into, options):
    """The drill cluster's own port, socket and no archiving, after what the restore wrote (the last value wins)."""
    socket_dir = options.scratch_socket_dir or into
    settings = [('port', str(options.scratch_port)), ('unix_socket_directories', "'%s'" % socket_dir)]
    settings += list(SCRATCH_SETTINGS)
    # A Debian cluster keeps postgresql.conf and pg_hba.conf in /etc/postgresql: the drill gets minimal ones.
    if not os.path.exists(os.path.join(into, 'postgresql.conf')):
        atomic_write(os.path.join(into, 'postgresql.conf'), '# written by omero.backup for a restore drill\n',
                     mode=0o600, owner=options.os_user)
    if not os.path.exists(os.path.join(into, 'pg_hba.conf')):
        atomic_write(os.path.join(into, 'pg_hba.conf'), SCRATCH_HBA, mode=0o600, owner=options.os_user)
    auto = os.path.join(into, 'postgresql.auto.conf')
    with open(auto) as handle:
        text = handle.read()
    text += '\n# omero.backup restore drill\n' + ''.join('%s = %s\n' % item for item in settings)
    atomic_write(auto, text, mode=0o600, owner=options.os_user)


def _bindir(into, options):
    if options.pg_bindir:
        return options.pg_bindir
    with open(os.path.join(into, 'PG_VERSION')) as handle:
        major = handle.read().strip()
    return '/usr/lib/postgresql/%s/bin' % major


def _start_and_promote(runner, into, options, result):
    """pg_ctl start of the drill cluster; wait until recovery reached the target and promoted."""
    bindir = _bindir(into, options)
    log = os.path.join(into, 'omero-backup-drill.log')
    argv = tool.as_user(options.os_user, [os.path.join(bindir, 'pg_ctl'), '-D', into, '-l', log, '-w', '-t', '300', 'start'])
    result['commands'].append(argv)
    rc, out, err = runner(argv)
    if rc != 0:
        raise EngineError('the drill cluster in %s did not start: %s %s' % (into, (out or '').strip(), _log_tail(log)),
                          result=result)
    result['started'] = True
    socket_dir = options.scratch_socket_dir or into
    query = tool.as_user(options.os_user, [os.path.join(bindir, 'psql'), '-h', socket_dir, '-p', str(options.scratch_port),
                                           '-d', 'postgres', '-X', '-A', '-t', '-c', 'SELECT pg_is_in_recovery()'])
    deadline = time.time() + PROMOTE_TIMEOUT
    while time.time() < deadline:
        rc, out, err = runner(query)
        if rc == 0 and out.strip() == 'f':
            result['promoted'] = True
            return
        if not _running(into):
            break
        time.sleep(0.5)
    raise EngineError('the drill cluster in %s did not finish recovery (promote): %s' % (into, _log_tail(log)), result=result)


def _log_tail(log, lines=8):
    try:
        with open(log) as handle:
            return ' | '.join(line.strip() for line in handle.readlines()[-lines:])
    except (IOError, OSError):
        return '(no log)'


def remove_scratch(engine, options, check_mode):
    """state=absent: stop the drill cluster in scratch_path and remove the directory (only one with the marker)."""
    path = options.scratch_path
    if not path:
        raise RestoreRefused('state=absent with engine=pgbackrest removes a drill cluster: give scratch_path '
                             '(a live cluster is never removed)')
    result = {'changed': False, 'scratch': True, 'pg_path': path, 'removed': False, 'warnings': []}
    if not os.path.lexists(path):
        result['msg'] = '%s does not exist; nothing to do' % path
        return result
    if not os.path.exists(os.path.join(path, SCRATCH_MARKER)):
        raise RestoreRefused('%s does not carry %s: it is not a drill cluster this module made; nothing was removed'
                             % (path, SCRATCH_MARKER))
    result.update(changed=True, removed=True)
    if check_mode:
        result['msg'] = 'would stop the drill cluster in %s and remove it' % path
        return result
    if _running(path):
        argv = tool.as_user(options.os_user, [os.path.join(_bindir(path, options), 'pg_ctl'), '-D', path, '-m', 'immediate',
                                              '-w', '-t', '60', 'stop'])
        rc, out, err = engine.runner(argv)
        if rc != 0:
            raise EngineError('could not stop the drill cluster in %s: %s' % (path, (err or out or '').strip()), result=result)
    shutil.rmtree(path)
    result['msg'] = 'stopped and removed the drill cluster in %s' % path
    return result
