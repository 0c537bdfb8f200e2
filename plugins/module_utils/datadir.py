# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Back up and restore the OMERO binary repository (/OMERO) with rdiff-backup.

The modules datadir_backup and datadir_restore are thin wrappers around
``backup_datadir`` and ``restore_datadir``; both take a Runner so that they run
the same way under Ansible, in unit tests and in the benchmarks.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import time

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, fsync_dir, resolve_owner
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.glue import exit_with_result
from ansible_collections.omero.backup.plugins.module_utils.base.runner import file_timestamp, module_runner
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.locking import AlreadyRunning, ExclusiveLock, datadir_lock_path
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import (Location, Rdiff, glob_escape, interval_seconds, iso, listing_lines,
                                                                               lock_path, parse_location, parse_statistics, parse_verify, remote_schema,
                                                                               resolve_at, restore_problems)
from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import open_dir_nofollow, remove_tree_at

# BioFormatsCache is regenerated on demand; .lock files under .omero are stale after a crash.
DEFAULT_EXCLUDES = ('BioFormatsCache', '.omero/**/.lock', 'ManagedRepository/.omero/**/.lock')
FULLTEXT = 'FullText'
RESTORED_MARKER = '.omero/omero-backup-restored.json'
STAGING_PREFIX = '.omero-backup-restore.'
REPLACED_INSIDE_PREFIX = 'omero-backup-replaced-'
# What a restore leaves in a data dir that is a mount point: never part of a backup, whatever exclude says.
# A staging tree is a full-size copy a killed restore left (the next run removes it); a replaced tree is the
# old content kept on purpose (keep_replaced), which OMERO does not know and a backup must not double.
LEFTOVER_PATTERNS = (STAGING_PREFIX + '*', REPLACED_INSIDE_PREFIX + '*')
# mkdtemp's random part: 8 of [a-z0-9_]; with the data dir's key before it, a sibling staging tree names its data dir.
_STAGING_SUFFIX = re.compile(r'[a-z0-9_]{8}\Z')
MAX_LISTED = 20


class DatadirError(OmeroBackupError):
    """Raised with a message for the operator and the partial result gathered so far."""

    def __init__(self, message, result=None):
        super(DatadirError, self).__init__(message)
        self.result = result or {}


def ssh_argument_spec():
    """How datadir_backup and datadir_restore reach a remote repository (doc fragment omero.backup.rdiff_ssh)."""
    return dict(
        ssh_user=dict(type='str'),
        ssh_key=dict(type='path', no_log=False),
        ssh_port=dict(type='int'),
        ssh_options=dict(type='list', elements='str', default=[]),
        rdiff_backup=dict(type='str', default='rdiff-backup'),
        remote_rdiff_backup=dict(type='str', default='rdiff-backup'),
    )


def run_datadir_module(module, operation):
    """The data dir modules' one way out: ``operation(params, runner, check_mode)`` gives the result; its
    warnings become task warnings and ``warnings_list``; a DatadirError fails with what the run had found."""
    try:
        result = operation(module.params, module_runner(module), check_mode=module.check_mode)
    except DatadirError as exc:
        partial = exc.result
        warnings = partial.pop('warnings', [])
        partial.pop('msg', None)
        partial.pop('diff', None)
        changed = partial.pop('changed', False)
        module.fail_json(msg=str(exc), changed=changed, warnings_list=warnings, **partial)
    except OmeroBackupError as exc:
        module.fail_json(msg=str(exc), changed=False)
    warnings = result.pop('warnings', [])
    for warning in warnings:
        module.warn(warning)
    result['warnings_list'] = warnings
    exit_with_result(module, result)


def _rdiff(params, runner, location_is_remote):
    schema = None
    if location_is_remote:
        if params.get('ssh_key') and not os.path.isfile(params['ssh_key']):
            raise DatadirError('ssh_key %s does not exist or is not a file' % params['ssh_key'])
        schema = remote_schema(ssh_user=params.get('ssh_user'), ssh_key=params.get('ssh_key'),
                               ssh_port=params.get('ssh_port'), ssh_options=params.get('ssh_options'),
                               remote_command=params.get('remote_rdiff_backup') or 'rdiff-backup')
    return Rdiff(runner, executable=params.get('rdiff_backup') or 'rdiff-backup', schema=schema)


def exclude_globs(src, patterns, exclude_fulltext=False):
    """rdiff-backup ``--exclude`` globs: each pattern is relative to ``src``, which is matched literally."""
    globs = []
    names = list(patterns if patterns is not None else DEFAULT_EXCLUDES)
    if exclude_fulltext and FULLTEXT not in names:
        names.append(FULLTEXT)
    for pattern in names:
        pattern = str(pattern).strip().strip('/')
        if not pattern:
            raise DatadirError('exclude: an empty pattern would exclude the whole data dir')
        if pattern.split('/', 1)[0] == '..' or '/../' in '/' + pattern + '/':
            raise DatadirError('exclude %r: patterns are relative to src and may not leave it' % pattern)
        globs.append(glob_escape(src.rstrip('/')) + '/' + pattern)
    return globs


def scan_symlinks(src, skip_top=()):
    """Count symbolic links below ``src`` and those whose target lies outside it (in-place imports)."""
    src = os.path.abspath(src)
    total = 0
    outside = 0
    targets = set()
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
                    target = os.path.normpath(os.path.join(directory, os.readlink(entry.path)))
                    if target != src and not target.startswith(src.rstrip('/') + '/'):
                        outside += 1
                        targets.add(os.path.dirname(target))
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    listed = sorted(escape(target) for target in targets)
    return {'total': total, 'outside': outside, 'outside_dirs': listed[:MAX_LISTED],
            'outside_dirs_truncated': len(listed) > MAX_LISTED}


def _has_repo_uuid(datadir):
    base = os.path.join(datadir, '.omero', 'repository')
    try:
        return sorted(name for name in os.listdir(base) if os.path.isfile(os.path.join(base, name, 'repo_uuid')))
    except OSError:
        return []


def _inside(child, parent):
    child = os.path.abspath(child).rstrip('/') + '/'
    parent = os.path.abspath(parent).rstrip('/') + '/'
    return child.startswith(parent)


def leftover_globs(src):
    """rdiff-backup ``--exclude`` globs for restore leftovers at the top of ``src`` (LEFTOVER_PATTERNS)."""
    return [glob_escape(src.rstrip('/')) + '/' + pattern for pattern in LEFTOVER_PATTERNS]


def staging_prefix(datadir):
    """The name prefix of the restore staging of ``datadir`` (a real path): keyed by that path, so that a staging
    tree beside the data dir says whose it is, and a run never takes another data dir's staging for its own."""
    key = hashlib.sha256(datadir.encode('utf-8', 'surrogateescape')).hexdigest()[:12]
    return '%s%s.' % (STAGING_PREFIX, key)


def find_leftovers(datadir):
    """(ours, unknown): restore staging trees of ``datadir`` (a real path) as (directory, name), and staging
    trees beside it whose data dir cannot be told (named by a version before the key), as paths.

    Ours: every top-level ``.omero-backup-restore.*`` inside the data dir (a mount point stages there) and the
    ``.omero-backup-restore.<key>.*`` beside it. Only safe to remove while the data dir's lock is held: any
    restore using one holds that lock.
    """
    ours, unknown = [], []
    if os.path.isdir(datadir) and not os.path.islink(datadir):
        ours.extend((datadir, name) for name in sorted(os.listdir(datadir)) if name.startswith(STAGING_PREFIX))
    parent = os.path.dirname(datadir.rstrip('/')) or '/'
    mine = staging_prefix(datadir)
    try:
        beside = sorted(os.listdir(parent))
    except OSError:
        beside = []
    for name in beside:
        if name.startswith(mine) and _STAGING_SUFFIX.match(name[len(mine):]):
            ours.append((parent, name))
        elif (name.startswith(STAGING_PREFIX) and _STAGING_SUFFIX.match(name[len(STAGING_PREFIX):])
              and os.path.isdir(os.path.join(parent, name))):
            unknown.append(os.path.join(parent, name))
    return ours, unknown


def clean_leftovers(datadir, check_mode, result, lock_held=False):
    """Remove the restore staging trees a killed restore left for ``datadir``; results ``leftovers`` (paths
    removed, or that would be in check mode) and ``leftovers_bytes``.

    Only under the data dir's lock, which every restore holds while its staging tree exists. ``lock_held``: the
    caller (a restore) holds it, and a tree that cannot be removed fails the run. Otherwise (a backup) it is
    taken here without waiting; when another run holds it nothing is removed and a warning says so (the
    leftovers are excluded from the backup anyway).
    """
    result.setdefault('leftovers', [])
    result.setdefault('leftovers_bytes', 0)
    ours, unknown = find_leftovers(datadir)
    for path in unknown:
        result['warnings'].append('%s looks like the staging tree of a killed restore, but its name does not say '
                                  'which data dir it belongs to; remove it by hand once no restore runs'
                                  % escape(path))
    if not ours:
        return
    if check_mode:
        for directory, name in ours:
            result['leftovers'].append(escape(os.path.join(directory, name)))
            result['leftovers_bytes'] += directory_usage_safe(os.path.join(directory, name))
        result['changed'] = True
        return
    lock = None
    if not lock_held:
        lock = ExclusiveLock(datadir_lock_path(datadir), 'removal of restore leftovers in %s' % datadir)
        try:
            lock.acquire()
        except (AlreadyRunning, OSError) as exc:
            result['warnings'].append('restore leftovers %s were not removed (%s); they are not part of this backup'
                                      % (', '.join(escape(os.path.join(d, n)) for d, n in ours), exc))
            return
        # Listed again under the lock: a restore that finished meanwhile has renamed its staging away.
        ours, unknown = find_leftovers(datadir)
    try:
        for directory, name in ours:
            path = escape(os.path.join(directory, name))
            users = processes_using(os.path.join(directory, name))
            if users:
                # Not a leftover yet; the next run takes it once that process has ended.
                result['warnings'].append('restore leftover %s was not removed: process(es) %s still name it on their '
                                          'command line (an rdiff-backup whose restore was killed?)'
                                          % (path, ', '.join(str(pid) for pid in users)))
                continue
            report = _remove_at(directory, name)
            result['leftovers'].append(path)
            result['leftovers_bytes'] += report.bytes
            result['changed'] = True
            if report.errors:
                message = 'restore leftover %s was only partly removed: %s' % (path, '; '.join(
                    '%s: %s' % (escape(rel), why) for rel, why in report.errors[:5]))
                if lock_held:
                    raise DatadirError(message + '; nothing restored', result)
                result['warnings'].append(message)
    finally:
        if lock is not None:
            lock.release()
    if result['leftovers']:
        result['warnings'].append('removed %d restore leftover(s) (%d bytes) a killed restore had left: %s'
                                  % (len(result['leftovers']), result['leftovers_bytes'], ', '.join(result['leftovers'])))


def processes_using(path):
    """Pids whose command line names ``path`` or a path below it (from /proc/*/cmdline).

    A restore killed alone (the OOM killer takes the module, not its child) can leave its rdiff-backup running,
    still writing into the staging tree it was given on its command line: that tree is not a leftover yet.
    """
    wanted = os.fsencode(path.rstrip('/'))
    users = []
    try:
        pids = [entry for entry in os.listdir('/proc') if entry.isdigit()]
    except OSError:
        return users
    for pid in pids:
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                args = handle.read().split(b'\0')
        except (IOError, OSError):
            continue
        if any(arg == wanted or arg.startswith(wanted + b'/') for arg in args):
            users.append(int(pid))
    return sorted(users)


def _remove_at(directory, name):
    fd = open_dir_nofollow(directory)
    try:
        report = remove_tree_at(fd, name)
        os.fsync(fd)
    finally:
        os.close(fd)
    return report


def directory_usage_safe(path):
    """Bytes of the regular files below ``path``, links not followed (for check mode's report)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def backup_datadir(params, runner, check_mode=False, now=None):
    """One rdiff-backup increment of ``src`` into ``dest``, then verify and retention; returns the result dict."""
    started = time.time()
    now = int(now if now is not None else started)
    # rdiff-backup refuses a symlink as source; a /OMERO that links to the real volume is common.
    src = os.path.realpath(params['src'])
    warnings = []
    result = {'changed': False, 'skipped': False, 'src': src, 'dest': params['dest'], 'warnings': warnings,
              'commands': [], 'regressed': False, 'verified': None, 'pruned': []}

    if not os.path.isdir(src):
        raise DatadirError('src %s does not exist or is not a directory' % src, result)
    uuids = _has_repo_uuid(src)
    if not uuids:
        warnings.append('%s has no .omero/repository/<uuid>/repo_uuid: it does not look like an OMERO data dir, '
                        'and a restore of it would make OMERO register a new repository' % src)
    dest = parse_location(params['dest'], 'dest')
    if not dest.is_remote:
        # One repository, one lock file, whatever symlinked path names it.
        dest = Location(None, os.path.realpath(dest.path))
    result['dest'] = dest.spec
    if not dest.is_remote:
        if _inside(dest.path, src) or _inside(src, dest.path):
            raise DatadirError('dest %s and src %s must not contain each other' % (dest.path, src), result)
        parent = os.path.dirname(dest.path)
        if not os.path.isdir(parent):
            raise DatadirError('the parent of dest, %s, does not exist (is the backup volume mounted?)' % parent, result)
        if os.path.exists(dest.path) and not os.path.isdir(dest.path):
            raise DatadirError('dest %s exists and is not a directory' % dest.path, result)

    keep_seconds = None
    if params.get('keep_increments_for'):
        keep_seconds = interval_seconds(params['keep_increments_for'], 'keep_increments_for')
        if keep_seconds <= 0:
            raise DatadirError('keep_increments_for must be longer than 0 seconds', result)
    skip_seconds = parse_duration(params.get('skip_if_newer_than'))
    globs = exclude_globs(src, params.get('exclude'), params.get('exclude_fulltext')) + leftover_globs(src)
    result['excluded'] = [escape(glob) for glob in globs]
    kept_old = [name for name in os.listdir(src) if name.startswith(REPLACED_INSIDE_PREFIX)]
    if kept_old:
        warnings.append('not backed up: %s in %s, the old content a restore kept (keep_replaced); move or delete it'
                        % (', '.join(escape(name) for name in sorted(kept_old)), escape(src)))
    if params.get('exclude_fulltext'):
        warnings.append('FullText (the search index) is excluded: after a restore, run a full reindex '
                        '(see the OMERO search docs) before searches return results')

    rdiff = _rdiff(params, runner, dest.is_remote)
    result['rdiff_backup_version'] = '.'.join(str(part) for part in rdiff.version())
    result['lock'] = lock_path(dest)
    # Locked before the repository is even read: a concurrent run would show a half-written session.
    with _locked(result, 'datadir backup', check_mode):
        clean_leftovers(src, check_mode, result)
        _backup_steps(rdiff, src, dest, globs, params, keep_seconds, skip_seconds, now, check_mode, result)
    if result['changed'] and not check_mode and not result['skipped']:
        result['duration'] = round(time.time() - started, 3)
    return result


@contextlib.contextmanager
def _locked(result, purpose, check_mode, read_only=False):
    """Our lock on the repository; check mode changes nothing and takes none.

    ``read_only``: a repository on read-only media (restores) cannot take a lock file, and no backup can write
    there either, so the run goes on without one.
    """
    if check_mode:
        yield
        return
    lock = ExclusiveLock(result['lock'], purpose)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise DatadirError(str(exc), result)
    except OSError as exc:
        if not read_only or exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise DatadirError('cannot create the lock file %s: %s' % (result['lock'], exc), result)
        result['warnings'].append('no lock taken (%s is not writable: %s); make sure no backup writes to the '
                                  'repository meanwhile' % (result['lock'], exc.strerror))
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _backup_steps(rdiff, src, dest, globs, params, keep_seconds, skip_seconds, now, check_mode, result):
    if dest.is_remote:
        # The parent, because a first backup creates dest itself.
        rdiff.test_connection(dest.parent())
    if not dest.is_remote and (not os.path.isdir(dest.path) or not os.listdir(dest.path)):
        increments = None
    else:
        increments = rdiff.increments(dest)
        if increments is None and not dest.is_remote:
            raise DatadirError('refusing to back up into %s: it is a non-empty directory but not an rdiff-backup '
                               'repository; choose an empty or new directory' % dest.path, result)
    result['previous_increment_time'] = iso(increments[-1]) if increments else None

    if skip_seconds is not None and increments and now - increments[-1] < skip_seconds:
        result.update(skipped=True, increment_time=iso(increments[-1]), increments=len(increments),
                      msg='the newest backup (%s) is younger than skip_if_newer_than=%s'
                      % (iso(increments[-1]), params['skip_if_newer_than']))
        _retention(rdiff, dest, params, keep_seconds, increments, now, check_mode, result)
        return

    # The walk for links costs seconds on a large store: unless its answer can stop the backup, it runs
    # beside rdiff-backup (another process) instead of before it.
    scan = _SymlinkScan(src)
    if params.get('symlinks_outside') == 'fail' or check_mode:
        scan.run()
        _report_symlinks(scan, src, params, result)
    else:
        scan.start()
    action = ['backup', '--print-statistics']
    if not params.get('file_statistics', False):
        action.append('--no-file-statistics')
    for glob in globs:
        action += ['--exclude', glob]
    result['commands'].append(rdiff.argv(action, [src, dest]))
    if check_mode:
        result['changed'] = True
        if params.get('verify'):
            result['commands'].append(rdiff.argv(['verify'], [dest]))
        _retention(rdiff, dest, params, keep_seconds, (increments or []) + [now], now, True, result)
        result['msg'] = 'would back up %s to %s' % (src, dest.spec)
        return
    # rdiff-backup names backups by the whole second and refuses one "not in the past".
    wait = (increments[-1] + 1.05 - time.time()) if increments else 0
    if 0 < wait <= 2:
        time.sleep(wait)
    try:
        _run_backup(rdiff, src, dest, action, params, keep_seconds, now, increments or [], result)
    finally:
        if scan.is_alive() or 'symlinks' not in result:
            scan.join()
            _report_symlinks(scan, src, params, result)


class _SymlinkScan(threading.Thread):
    def __init__(self, src):
        super(_SymlinkScan, self).__init__(name='omero-backup-symlink-scan')
        self.daemon = True
        self.src = src
        self.links = None

    def run(self):
        self.links = scan_symlinks(self.src, skip_top=('BioFormatsCache',))


def _report_symlinks(scan, src, params, result):
    links = scan.links or {'total': 0, 'outside': 0, 'outside_dirs': [], 'outside_dirs_truncated': False}
    result['symlinks'] = links
    if links['outside']:
        message = ('%d symbolic link(s) in %s point outside it (in-place imports): rdiff-backup stores the links, '
                   'not the files; back up their targets too (%s)'
                   % (links['outside'], src, ', '.join(links['outside_dirs'][:5])))
        if params.get('symlinks_outside') == 'fail':
            raise DatadirError(message, result)
        if params.get('symlinks_outside', 'warn') == 'warn':
            result['warnings'].append(message)


def _run_backup(rdiff, src, dest, action, params, keep_seconds, now, previous, result):
    warnings = result['warnings']
    backup_started = time.time()
    outcome, argv = rdiff.run(action, [src, dest])
    backup_seconds = time.time() - backup_started
    result['rc'] = outcome.rc
    result['regressed'] = outcome.regressed
    if outcome.failed:
        # rdiff-backup regresses the repository on its next run; nothing of this run counts.
        raise DatadirError('backup of %s to %s failed, no new increment: %s' % (src, dest.spec, outcome.describe()), result)
    if outcome.regressed:
        warnings.append('an earlier interrupted backup was rolled back (regressed) before this one')
    if outcome.warned:
        others = [m for m in outcome.messages if 'regress' not in m.lower() and 'emitted warnings' not in m]
        if others:
            warnings.append('rdiff-backup backup warned: %s' % '; '.join(others[:10]))
    stats = parse_statistics(outcome.out)
    result['changed'] = True
    result['statistics'] = stats
    result['files'] = stats.get('SourceFiles')
    result['bytes'] = stats.get('SourceFileSize')
    result['changed_files'] = sum(stats.get(key, 0) for key in ('NewFiles', 'ChangedFiles', 'DeletedFiles'))
    result['backup_duration'] = round(backup_seconds, 3)
    result['files_per_second'] = round(result['files'] / backup_seconds, 1) if result['files'] and backup_seconds else None
    if not stats.get('StartTime'):
        raise DatadirError('rdiff-backup backup printed no statistics; cannot tell which backup it made', result)
    # The session's StartTime is the new backup's time; rdiff-backup keeps only whole seconds.
    increments = sorted(set(previous + [int(stats['StartTime'])]))
    result['increment_epoch'] = increments[-1]
    result['increment_time'] = iso(increments[-1])
    result['increments'] = len(increments)

    if params.get('verify'):
        verify_started = time.time()
        verify, verify_argv = rdiff.run(['verify'], [dest])
        result['commands'].append(verify_argv)
        result['verify_duration'] = round(time.time() - verify_started, 3)
        count, files = _damage(verify, result)
        if count is not None:
            raise DatadirError('verify of %s failed: %d file(s) in the repository do not match their recorded '
                               'checksum (%s); the repository is damaged and later backups do not heal it: start a '
                               'new repository and keep this one for forensics. %s'
                               % (dest.spec, count, ', '.join(files[:5]) or 'see rdiff-backup output',
                                  verify.describe()), result)
        result['verified'] = True
    result['msg'] = 'backed up %s to %s as the backup of %s%s' % (
        src, dest.spec, result['increment_time'], ', verified' if result['verified'] else '')
    _retention(rdiff, dest, params, keep_seconds, increments, now, False, result)


def _retention(rdiff, dest, params, keep_seconds, increments, now, check_mode, result):
    """Remove increments older than keep_increments_for; the newest backup (the mirror) always stays."""
    if not keep_seconds or not increments:
        return
    older_than = '%ds' % keep_seconds
    cutoff = now - keep_seconds
    due = [epoch for epoch in increments[:-1] if epoch < cutoff]
    argv = rdiff.argv(['remove', 'increments', '--older-than', older_than], [dest], force=True)
    result['commands'].append(argv)
    if check_mode:
        result['pruned'] = [iso(epoch) for epoch in due]
        if due:
            result['changed'] = True
        return
    if not due:
        return
    outcome, argv = rdiff.run(['remove', 'increments', '--older-than', older_than], [dest], force=True)
    if outcome.rc != 0:
        raise DatadirError('removing increments older than %s from %s failed: %s'
                           % (params['keep_increments_for'], dest.spec, outcome.describe()), result)
    after = rdiff.increments(dest) or []
    result['pruned'] = [iso(epoch) for epoch in increments if epoch not in after]
    result['increments'] = len(after)
    if result['pruned']:
        result['changed'] = True


# Restore ----------------------------------------------------------------------------------------------------

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


def _check_db_uuid(params, uuids, result):
    """Compare the backup's repository dirs with omero.db.uuid when a database was named and answers."""
    if not params.get('db'):
        return
    try:
        conn = postgres.connect(params, params['db'])
        try:
            facts = postgres.omero_facts(conn)
        finally:
            conn.close()
    except postgres.PostgresError as exc:
        result['warnings'].append('the repository uuid was not compared with the database: %s' % exc)
        return
    result['db_uuid'] = facts.get('db_uuid')
    if not facts.get('db_uuid'):
        result['warnings'].append('database %s has no omero.db.uuid: the repository uuid was not compared' % params['db'])
        return
    if facts['db_uuid'] not in uuids:
        result['uuid_match'] = False
        raise DatadirError(
            'UUID MISMATCH, nothing restored: database %s has omero.db.uuid %s but the backup holds '
            '.omero/repository/%s; OMERO would register a new repository and every imported fileset would be '
            'unreachable. Restore the database dump that belongs to this data dir first (or leave out db to skip '
            'this check).' % (params['db'], facts['db_uuid'], ', '.join(uuids) or '(none)'), result)
    result['uuid_match'] = True


@contextlib.contextmanager
def _datadir_locked(dest, check_mode, result):
    """The data dir's own lock, which cleanse takes too: a cleanse must never run over a restore in progress."""
    if check_mode:
        yield
        return
    try:
        result['datadir_lock'] = datadir_lock_path(dest)
    except OSError as exc:
        raise DatadirError('no lock for the data dir %s: %s; nothing changed' % (dest, exc.strerror or exc), result)
    lock = ExclusiveLock(result['datadir_lock'], 'datadir restore into %s' % dest)
    try:
        lock.acquire()
    except AlreadyRunning as exc:
        raise DatadirError('%s; nothing changed' % exc, result)
    except OSError as exc:
        raise DatadirError('cannot create the lock file %s: %s; nothing changed' % (result['datadir_lock'], exc), result)
    try:
        yield
    finally:
        lock.release()


def restore_datadir(params, runner, check_mode=False, now=None):
    """Restore one backup of the repository ``src`` into ``dest``; returns the result dict."""
    started = time.time()
    # A /OMERO that links to the real volume: restore beside (or into) the real directory, keep the link.
    dest = os.path.realpath(params['dest'])
    state = params.get('state') or 'present'
    warnings = []
    result = {'changed': False, 'src': params['src'], 'dest': dest, 'warnings': warnings, 'commands': [],
              'replaced_path': None, 'uuid_match': None, 'db_uuid': None, 'verified': None}
    repo = parse_location(params['src'], 'src')
    if not repo.is_remote:
        repo = Location(None, os.path.realpath(repo.path))
    result['src'] = repo.spec
    if not repo.is_remote and (_inside(dest, repo.path) or _inside(repo.path, dest)):
        raise DatadirError('dest %s and the repository %s must not contain each other' % (dest, repo.path), result)
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    if not os.path.isdir(parent):
        raise DatadirError('the parent of dest, %s, does not exist' % parent, result)
    dest_state, entries = _dest_state(dest)
    result['dest_state'] = dest_state

    rdiff = _rdiff(params, runner, repo.is_remote)
    result['rdiff_backup_version'] = '.'.join(str(part) for part in rdiff.version())
    result['lock'] = lock_path(repo)
    with _locked(result, 'datadir restore', check_mode, read_only=True):
        with _datadir_locked(dest, check_mode, result):
            # Under the data dir's lock no restore is using a staging tree: what is there, a killed run left.
            clean_leftovers(dest, check_mode, result, lock_held=True)
            _restore_steps(rdiff, repo, dest, dest_state, entries, state, params, check_mode, now, result)
    if result['changed'] and not check_mode:
        result['duration'] = round(time.time() - started, 3)
    return result


def _restore_steps(rdiff, repo, dest, dest_state, entries, state, params, check_mode, now, result):
    warnings = result['warnings']
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    if repo.is_remote:
        rdiff.test_connection(repo)
    elif not os.path.isdir(repo.path):
        raise DatadirError('no rdiff-backup repository at %s: the directory does not exist' % repo.path, result)
    increments = rdiff.increments(repo)
    if not increments:
        raise DatadirError('no rdiff-backup repository (or no backup in it) at %s' % repo.spec, result)
    epoch = resolve_at(params.get('at'), increments, now)
    result.update(increment_epoch=epoch, increment_time=iso(epoch), increments=len(increments))

    uuids = rdiff.repository_uuids(repo, epoch)
    result['repository_uuids'] = uuids
    if not uuids:
        raise DatadirError('the backup of %s in %s holds no .omero/repository/<uuid>/repo_uuid: it is not a complete '
                           'OMERO data dir, and OMERO would register a new repository; nothing restored'
                           % (iso(epoch), repo.spec), result)
    _check_db_uuid(params, uuids, result)

    marker = read_marker(dest) if dest_state == 'populated' else None
    before_increment = marker.get('increment_time') if marker else None
    result['diff'] = {'before': {'path': dest, 'restored_increment': before_increment,
                                 'state': dest_state},
                      'after': {'path': dest, 'restored_increment': iso(epoch), 'state': 'populated'}}
    if marker and marker.get('repository') == repo.spec and marker.get('increment_epoch') == epoch:
        fingerprint, count = tree_fingerprint(dest, skip_top=_replaced_inside(dest))
        if fingerprint == marker.get('fingerprint'):
            result['msg'] = '%s already holds the backup of %s from %s, unchanged since it was restored' % (
                dest, repo.spec, iso(epoch))
            result['files'] = count
            return
        warnings.append('%s was restored from this backup before but has changed since' % dest)
    if dest_state == 'populated' and state != 'replaced':
        raise DatadirError('refusing to restore into %s: it is not empty (%d entries); nothing changed. Use '
                           'state: replaced to swap it for the backup (the old tree is kept unless '
                           'keep_replaced: false)' % (dest, entries), result)

    inside = dest_state != 'missing' and _staging_inside(dest)
    result['staging'] = 'inside dest (it is a mount point)' if inside else 'sibling of dest'
    restore_action = ['restore', '--at', str(epoch)]
    if params.get('verify'):
        result['commands'].append(rdiff.argv(['verify', '--at', str(epoch)], [repo]))
    staging_example = os.path.join(dest if inside else parent, staging_prefix(dest) + 'XXXXXXXX')
    result['commands'].append(rdiff.argv(restore_action, [repo, staging_example]))
    if check_mode:
        result['changed'] = True
        result['msg'] = 'would restore the backup of %s from %s into %s' % (repo.spec, iso(epoch), dest)
        return
    if params.get('verify'):
        _verify_before_restore(rdiff, repo, epoch, result)
    _restore_and_swap(rdiff, repo, epoch, dest, dest_state, inside, restore_action, params, result)


def _damage(verify, result):
    """(damaged file count, their names) of an rdiff-backup verify, or (None, []) when it found nothing wrong;
    a damaged repository is marked in result."""
    count, files = parse_verify(verify)
    if verify.rc == 0 and not count:
        return None, []
    result['verified'] = False
    result['corrupted_files'] = files[:MAX_LISTED]
    return count, files


def _verify_before_restore(rdiff, repo, epoch, result):
    outcome, argv = rdiff.run(['verify', '--at', str(epoch)], [repo])
    result['commands'].insert(0, argv)
    count, files = _damage(outcome, result)
    if count is not None:
        raise DatadirError('verify of the backup of %s in %s failed (%d file(s) damaged: %s); nothing restored. '
                           'Choose another backup with at, or restore without verify and repair the listed files.'
                           % (iso(epoch), repo.spec, count, ', '.join(files[:5]) or outcome.describe()), result)
    result['verified'] = True


def _restore_and_swap(rdiff, repo, epoch, dest, dest_state, inside, restore_action, params, result):
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    staging = tempfile.mkdtemp(prefix=staging_prefix(dest), dir=dest if inside else parent)
    try:
        outcome, argv = rdiff.run(restore_action, [repo, staging])
        result['commands'][-1] = argv
        result['rc'] = outcome.rc
        # Any warning from a restore means a file may be missing or wrong: the old store stays.
        problems = restore_problems(outcome)
        if problems:
            raise DatadirError('restore of %s from %s failed, %s left as it was: %s'
                               % (iso(epoch), repo.spec, dest, '; '.join(problems[:10])), result)
        # rdiff-backup lists names lossily (U+FFFD for bytes that are not UTF-8, a newline splits a name), so
        # the staging tree is put through the same decoding and the two are compared as counted lines.
        missing = sorted((rdiff.list_files(repo, epoch) - listing_lines(_relpaths(staging))).elements())
        if missing:
            result['missing_entries'] = [escape(line) for line in missing[:MAX_LISTED]]
            raise DatadirError('restore of %s from %s is incomplete (%d entries missing: %s), %s left as it was'
                               % (iso(epoch), repo.spec, len(missing), ', '.join(result['missing_entries'][:5]), dest),
                               result)
        restored_uuids = _has_repo_uuid(staging)
        if not restored_uuids:
            raise DatadirError('the restored tree has no .omero/repository/<uuid>/repo_uuid; %s left as it was' % dest,
                               result)
        if params.get('owner') or params.get('group'):
            _chown_tree(staging, params.get('owner'), params.get('group'))
        fingerprint, count = tree_fingerprint(staging)
        result['files'] = count
        marker = {'repository': repo.spec, 'increment_epoch': epoch, 'increment_time': iso(epoch),
                  'restored_at': iso(time.time()), 'fingerprint': fingerprint, 'entries': count}
        marker_path = os.path.join(staging, RESTORED_MARKER)
        omero_dir = os.path.dirname(marker_path)
        info = os.stat(omero_dir)
        atomic_write(marker_path, json.dumps(marker, indent=1, sort_keys=True) + '\n', mode=0o644,
                     owner=info.st_uid, group=info.st_gid)
        # One sync makes the whole restored tree durable before the old store is moved aside.
        os.sync()
        if inside:
            _swap_inside(staging, dest, dest_state, params, result)
        else:
            _swap_sibling(staging, dest, dest_state, params, result)
        staging = None
    finally:
        if staging is not None and os.path.isdir(staging):
            _remove_at(os.path.dirname(staging), os.path.basename(staging))
    result['changed'] = True
    result['msg'] = 'restored the backup of %s from %s into %s' % (repo.spec, iso(epoch), dest)


def _relpaths(root):
    """Every entry below ``root`` as a relative path in bytes (the names exactly as they are on disk)."""
    root = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            yield name if rel == b'.' else rel + b'/' + name


def _chown_tree(path, owner, group):
    uid, gid = resolve_owner(owner, group)
    for root, dirs, files in os.walk(path):
        os.lchown(root, uid, gid)
        for name in dirs + files:
            full = os.path.join(root, name)
            if os.path.islink(full) or not os.path.isdir(full):
                os.lchown(full, uid, gid)


def _swap_sibling(staging, dest, dest_state, params, result):
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    old = None
    if dest_state != 'missing':
        old = '%s.replaced-%s' % (dest.rstrip('/'), file_timestamp())
        os.rename(dest, old)
    try:
        os.rename(staging, dest)
    except OSError:
        if old:
            os.rename(old, dest)
        raise
    fsync_dir(parent)
    if old and dest_state == 'empty':
        os.rmdir(old)
    elif old and not params.get('keep_replaced', True):
        _remove_replaced(old, result)
    elif old:
        result['replaced_path'] = old
        result['warnings'].append('the previous %s was kept as %s; delete it once the restore is checked' % (dest, old))
    fsync_dir(parent)


def _remove_replaced(old, result):
    """Delete the old tree (keep_replaced: false); what cannot be removed stays, is named and counts as kept."""
    report = _remove_at(os.path.dirname(old), os.path.basename(old))
    if report.errors:
        result['replaced_path'] = old
        result['warnings'].append('the previous tree %s could not be removed completely: %s' % (escape(old), '; '.join(
            '%s: %s' % (escape(rel), why) for rel, why in report.errors[:5])))


def _swap_inside(staging, dest, dest_state, params, result):
    """Swap by renames within dest (a mount point): old entries into a kept dir, restored entries up."""
    staging_name = os.path.basename(staging)
    old = None
    moved = [name for name in os.listdir(dest) if name != staging_name and not name.startswith(STAGING_PREFIX)]
    if moved:
        old = os.path.join(dest, REPLACED_INSIDE_PREFIX + file_timestamp())
        os.mkdir(old, 0o700)
        for name in moved:
            os.rename(os.path.join(dest, name), os.path.join(old, name))
    for name in os.listdir(staging):
        os.rename(os.path.join(staging, name), os.path.join(dest, name))
    info = os.stat(staging)
    os.chmod(dest, stat.S_IMODE(info.st_mode))
    os.chown(dest, info.st_uid, info.st_gid)
    os.rmdir(staging)
    fsync_dir(dest)
    if old and not params.get('keep_replaced', True):
        _remove_replaced(old, result)
    elif old:
        result['replaced_path'] = old
        result['warnings'].append('the previous content of %s was kept in %s, inside the data dir: move or delete it '
                                  'before the next backup' % (dest, old))
