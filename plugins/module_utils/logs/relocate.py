# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log_dir module's step: point OMERO_LOGS elsewhere, make the directory, optionally move the logs."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import grp
import os
import pwd
import shutil
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import fsync_dir, publish, TEMP_PREFIX, temp_sibling
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape, escaped_list
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.base.runner import CHUNK
from ansible_collections.omero.backup.plugins.module_utils.logs.descriptor import (configured_log_dir, Descriptor, existing_descriptors, logs_value_for,
                                                                                   resolve_logs_value, TEMPLATE_DESCRIPTOR)
from ansible_collections.omero.backup.plugins.module_utils.logs.paths import DEFAULT_OMERODIR, DEFAULT_USER, LogsError, refuse_repository_path
from ansible_collections.omero.backup.plugins.module_utils.logs.rolled import keep_owner, LIVE, ROLLED


def open_files(paths):
    """{path: pid} for the given files that some process holds open (read from /proc).

    Processes this user may not inspect are invisible, which is why relocation runs as root."""
    wanted = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        wanted[(st.st_dev, st.st_ino)] = path
    holders = {}
    if not wanted or not os.path.isdir('/proc'):
        return holders
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        fd_dir = os.path.join('/proc', pid, 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key in wanted:
                holders[wanted[key]] = int(pid)
    return holders


def _same_content(first, second):
    if os.path.getsize(first) != os.path.getsize(second):
        return False
    with open(first, 'rb') as one, open(second, 'rb') as two:
        while True:
            block = one.read(CHUNK)
            if block != two.read(CHUNK):
                return False
            if not block:
                return True


def _movable_logs(directory):
    """Server logs in ``directory``: live NAME.log, rolled and compressed ones. master.out/err are
    not OMERO_LOGS files (etc/master.cfg places them) and stay where they are."""
    names = []
    for name in sorted(os.listdir(directory)):
        if name.startswith(TEMP_PREFIX) or not (LIVE.match(name) or ROLLED.match(name)):
            continue
        if stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode):
            names.append(name)
    return names


def _move_file(source, target):
    """Rename when on one filesystem; otherwise copy to a temporary sibling with the same mode, owner
    and mtime, fsync, publish, and only then remove the source."""
    if os.lstat(source).st_dev == os.lstat(os.path.dirname(target)).st_dev:
        os.rename(source, target)
        fsync_dir(os.path.dirname(target))
        fsync_dir(os.path.dirname(source))
        return
    st = os.lstat(source)
    tmp = temp_sibling(target)
    try:
        with open(source, 'rb') as reader, open(tmp, 'wb') as writer:
            shutil.copyfileobj(reader, writer, CHUNK)
            writer.flush()
            os.fsync(writer.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        keep_owner(tmp, st)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        if not _same_content(source, tmp):
            raise LogsError('copy of %s to %s does not match the original; the original was kept' % (source, target))
        publish(tmp, target)
        tmp = None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    os.unlink(source)
    fsync_dir(os.path.dirname(source))


def _user_ids(user):
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LogsError('OMERO system user %r does not exist on this host (set user)' % (user,))
    return entry.pw_uid, entry.pw_gid


def _writable_by(path, uid, gid):
    st = os.stat(path)
    if uid == 0:
        return True
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR) and bool(st.st_mode & stat.S_IXUSR)
    groups = set([gid] + [g.gr_gid for g in _groups_of(uid)])
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IWGRP) and bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IWOTH) and bool(st.st_mode & stat.S_IXOTH)


def _groups_of(uid):
    name = pwd.getpwuid(uid).pw_name
    return [group for group in grp.getgrall() if name in group.gr_mem]


def argument_spec():
    """The log_dir module's options: the one place their defaults are written."""
    return dict(
        path=dict(type='path', required=True),
        omerodir=dict(type='path', default=DEFAULT_OMERODIR),
        datadir=dict(type='path', default='/OMERO'),
        user=dict(type='str', default=DEFAULT_USER),
        mode=dict(type='str', default='0750'),
        move_logs=dict(type='bool', default=False),
    )


class RelocateOptions(object):
    """One relocation, read once from params (defaults from argument_spec()): mode as a number."""

    def __init__(self, params):
        for key, value in given(argument_spec(), params).items():
            setattr(self, key, value)
        mode = self.mode
        try:
            self.mode = int(mode, 8) if isinstance(mode, str) else int(mode)
        except ValueError:
            raise LogsError('mode %r is not an octal permission such as 0750' % (mode,))
        if not 0 <= self.mode <= 0o7777:
            raise LogsError('mode %04o is not a permission' % self.mode)


def relocate(params, check_mode=False):
    """Point OMERO_LOGS at ``params['path']`` in every grid descriptor, create the directory for the
    OMERO system user and optionally move the existing logs there.

    Everything is checked before anything is changed: every descriptor parses and
    can be edited, the directory is usable by the user, no log to move is open
    and no name clashes. Then the directory is made, the logs moved, the
    descriptors written (templates first), each write atomic.
    """
    opts = RelocateOptions(params)
    value = logs_value_for(opts.path)
    target = resolve_logs_value(opts.omerodir, value)
    refuse_repository_path(target, opts.datadir)
    descriptors = existing_descriptors(opts.omerodir)
    if TEMPLATE_DESCRIPTOR not in [rel for rel, path in descriptors]:
        raise LogsError('%s has no %s: not an OMERO.server directory (set omerodir)' % (opts.omerodir, TEMPLATE_DESCRIPTOR))
    parsed = [Descriptor(path, rel) for rel, path in descriptors]
    edits = [(descriptor, descriptor.with_value(value)) for descriptor in parsed if descriptor.value != value]
    previous_dir, previous_source = configured_log_dir(opts.omerodir)
    uid, gid = _user_ids(opts.user)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise LogsError('%s exists and is not a directory; nothing was changed' % target)
    create = not os.path.isdir(target)
    if not create and not _writable_by(target, uid, gid):
        raise LogsError('log directory %s exists but user %s cannot write to it; fix its ownership or mode, nothing was changed'
                        % (target, opts.user))
    moves = _planned_moves(previous_dir, target) if opts.move_logs else []
    names_b64 = {}
    result = {
        'path': target,
        'value': value,
        'previous_path': previous_dir,
        'previous_source': previous_source,
        'descriptors': [descriptor.relpath for descriptor, text in edits],
        'created': create,
        'moved': escaped_list([name for name, source, destination, duplicate in moves], names_b64),
        'names_b64': names_b64,
        'changed': bool(edits or create or moves),
        'diff': [{'before_header': descriptor.relpath, 'after_header': descriptor.relpath,
                  'before': descriptor.text, 'after': text} for descriptor, text in edits],
    }
    if create:
        result['diff'].insert(0, {'before_header': target, 'after_header': target, 'before': {'state': 'absent'},
                                  'after': {'state': 'directory', 'owner': opts.user, 'mode': '%04o' % opts.mode}})
    if not check_mode and result['changed']:
        if create:
            _make_log_dir(target, opts.mode, uid, gid)
        _move_all(moves, previous_dir)
        _write_descriptors(edits)
    return result


def _planned_moves(previous_dir, target):
    """(name, source, destination, duplicate) of every log to move; refuses clashes and open files."""
    moves = []
    if not os.path.isdir(previous_dir) or os.path.realpath(previous_dir) == os.path.realpath(target):
        return moves
    for name in _movable_logs(previous_dir):
        source = os.path.join(previous_dir, name)
        destination = os.path.join(target, name)
        duplicate = False
        if os.path.lexists(destination):
            if not os.path.isfile(destination) or not _same_content(source, destination):
                raise LogsError('%s and %s both exist with different content; nothing was changed'
                                % (escape(source), escape(destination)))
            duplicate = True
        moves.append((name, source, destination, duplicate))
    busy = open_files([source for name, source, destination, duplicate in moves])
    if busy:
        raise LogsError('refusing to move logs that are open (stop OMERO.server first): %s; nothing was changed'
                        % ', '.join('%s (pid %d)' % (escape(os.path.basename(path)), pid) for path, pid in sorted(busy.items())))
    return moves


def _move_all(moves, previous_dir):
    for name, source, destination, duplicate in moves:
        if duplicate:
            os.unlink(source)
            fsync_dir(previous_dir)
        else:
            _move_file(source, destination)


def _write_descriptors(edits):
    """Each edited descriptor written atomically, with its mode and owner (templates first: the order of edits)."""
    for descriptor, text in edits:
        st = os.stat(descriptor.path)
        tmp = temp_sibling(descriptor.path)
        try:
            with open(tmp, 'wb') as handle:
                handle.write(text.encode('utf-8'))
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            keep_owner(tmp, st)
            publish(tmp, descriptor.path)
            tmp = None
        finally:
            if tmp is not None and os.path.lexists(tmp):
                os.unlink(tmp)


def _make_log_dir(target, mode, uid, gid):
    """Create missing parents as root would (0755) and the log directory itself for the OMERO user."""
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent, 0o755)
    os.mkdir(target, mode)
    os.chmod(target, mode)
    if (uid, gid) != (os.geteuid(), os.getegid()):
        os.chown(target, uid, gid)
    fsync_dir(parent)
