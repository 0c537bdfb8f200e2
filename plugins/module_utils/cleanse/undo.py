# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The undo of a quarantine (state=restored): every check first, then each file back with its owner, mode and times.

The journal and the writer are quarantine.py's.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import errno
import json
import os
import stat

from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import (DirChain, DirChanged, identity, link_no_replace, lstat_at, O_READ_NOFOLLOW,
                                                                              open_dir, split_relpath, TEMP_PREFIX)
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape as escape_name
from ansible_collections.omero.backup.plugins.module_utils.cleanse.quarantine import (copy_entry, JOURNAL, NO_LINK, open_quarantine_root, set_owner_mode,
                                                                                      set_times, unb64)


def read_journal(root_fd):
    """(run records, {relpath: file record}, {relpath: first dir record}, problems); removed dirs are in dirs['removed']."""
    try:
        fd = os.open(JOURNAL, O_READ_NOFOLLOW, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return [], {}, {'removed': []}, []
        raise
    with os.fdopen(fd, 'rb') as handle:
        if os.fstat(handle.fileno()).st_uid != os.geteuid():
            raise OmeroBackupError('%s in the quarantine belongs to another user: refusing to trust it' % JOURNAL)
        lines = handle.read().split(b'\n')
    runs, files, dirs, problems, removed = [], {}, {}, [], []
    if lines and lines[-1] == b'':
        lines.pop()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line.decode('ascii'))
            kind = record['type']
            relpath = unb64(record['path_b64']) if 'path_b64' in record else None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            problems.append('%s line %d is not a record the cleanse wrote' % (JOURNAL, number))
            continue
        if kind == 'run':
            runs.append(record)
        elif kind == 'file':
            files[relpath] = record
        elif kind == 'dir':
            dirs.setdefault(relpath, record)
        elif kind == 'rmdir':
            removed.append(relpath)
    dirs['removed'] = removed
    return runs, files, dirs, problems


def _scan(root_fd):
    """{relpath: lstat} of every non-directory entry of the quarantine tree (the journal excluded), and its dirs."""
    entries = {}
    directories = []

    def walk(fd, reldir):
        for name in sorted(os.listdir(fd)):
            relpath = reldir + '/' + name if reldir else name
            if not reldir and name == JOURNAL:
                continue
            info = os.lstat(name, dir_fd=fd)
            if stat.S_ISDIR(info.st_mode):
                directories.append(relpath)
                child = open_dir(name, dir_fd=fd)
                try:
                    walk(child, relpath)
                finally:
                    os.close(child)
            else:
                entries[relpath] = info

    walk(root_fd, '')
    return entries, directories


def _same_content(record, info):
    if record.get('kind') == 'link':
        return stat.S_ISLNK(info.st_mode)
    return stat.S_ISREG(info.st_mode) and info.st_size == record['size']


def plan_restore(quarantine_dir, datadir, max_reported=50):
    """What the undo would do, and every reason it must not (nothing is changed here).

    Returns {'restore': [relpath], 'drop': [relpath], 'done': [relpath], 'problems': [str], 'bytes': n}:
    ``drop`` are quarantine names that are hard links of the very file already
    back in the data dir (a run stopped between link and unlink), ``done``
    journal records whose file is already back.
    """
    plan = {'restore': [], 'drop': [], 'done': [], 'dirs': [], 'problems': [], 'bytes': 0}
    problems = plan['problems']
    root_fd = open_quarantine_root(quarantine_dir, create=False)
    data_fd = open_dir(datadir, follow=True)
    try:
        runs, files, dirs, journal_problems = read_journal(root_fd)
        problems.extend(journal_problems)
        problems.extend(_origin_problems(runs, datadir))
        problems.extend(_unrecorded(root_fd, files))
        qchain = DirChain(root_fd, require_known=False)
        dchain = DirChain(data_fd, follow_first=True, require_known=False)
        try:
            for relpath in sorted(files):
                _plan_file(plan, qchain, dchain, relpath, files[relpath], dirs)
            for relpath in sorted(set(dirs['removed'])):
                _plan_dir(plan, dchain, relpath, dirs)
        finally:
            qchain.close()
            dchain.close()
    finally:
        os.close(root_fd)
        os.close(data_fd)
    if len(problems) > max_reported:
        problems[max_reported:] = ['... and %d more' % (len(problems) - max_reported)]
    return plan


def _origin_problems(runs, datadir):
    """Why the quarantine belongs to another data dir (its journal names where each run took files from)."""
    wanted = os.path.realpath(datadir)
    for run in runs:
        made_from = unb64(run.get('datadir_b64', '')) if run.get('datadir_b64') else None
        if made_from and made_from != wanted:
            return ['the quarantine was made from %s, not from %s' % (escape_name(made_from), escape_name(wanted))]
    return []


def _unrecorded(root_fd, files):
    """A file in the quarantine without its journal record: a partial copy or not the cleanse's."""
    problems = []
    entries, _directories = _scan(root_fd)
    for relpath in sorted(entries):
        if relpath in files:
            continue
        name = split_relpath(relpath)[1]
        if name.startswith(TEMP_PREFIX):
            problems.append('%s: a partial copy (an interrupted run); its original was never removed' % escape_name(relpath))
        else:
            problems.append('%s: no completion marker in %s (a copy that did not finish, or not the cleanse\'s)'
                            % (escape_name(relpath), JOURNAL))
    return problems


def _plan_file(plan, qchain, dchain, relpath, record, dirs):
    """Sort one journal record into restore, drop or done, or add why it must not move to plan['problems']."""
    problems = plan['problems']
    reldir, name = split_relpath(relpath)
    shown = escape_name(relpath)
    try:
        qfd = qchain.open(reldir)
        qinfo = lstat_at(qfd, name)
    except DirChanged:
        qinfo = None
    dinfo, missing_dir = _data_entry(dchain, reldir, name, dirs, problems, shown)
    if qinfo is None:
        if dinfo is not None and _same_content(record, dinfo):
            plan['done'].append(relpath)
        elif not missing_dir:
            problems.append('%s: in the journal but neither in the quarantine nor in the data dir' % shown)
        return
    if not _same_content(record, qinfo):
        problems.append('%s: %s in the quarantine, the journal recorded %s %d bytes: a partial or altered copy'
                        % (shown, '%d bytes' % qinfo.st_size if stat.S_ISREG(qinfo.st_mode) else 'not a file',
                           record.get('kind', 'file'), record['size']))
        return
    if record.get('kind') == 'link' and os.fsencode(os.readlink(name, dir_fd=qfd)) != \
            base64.b64decode(record.get('target_b64', '').encode('ascii')):
        problems.append('%s: the symlink points elsewhere than recorded' % shown)
        return
    if dinfo is not None:
        if identity(dinfo) == identity(qinfo):
            plan['drop'].append(relpath)
        else:
            problems.append('%s: exists in the data dir; refusing to overwrite it' % shown)
        return
    if stat.S_ISREG(qinfo.st_mode) and qinfo.st_nlink > record.get('nlink', 1):
        # More links than the cleanse left: a file planted there, or linked to one outside.
        problems.append('%s: has %d hard links, the cleanse left %d: not its file' % (shown, qinfo.st_nlink, record.get('nlink', 1)))
        return
    if missing_dir:
        return
    plan['restore'].append(relpath)
    plan['bytes'] += record['size'] if record.get('kind') != 'link' else 0


def _plan_dir(plan, dchain, relpath, dirs):
    """An empty directory the cleanse removed: to be made again, or why it cannot be."""
    problems = plan['problems']
    reldir, name = split_relpath(relpath)
    shown = escape_name(relpath)
    info, unusable = _data_entry(dchain, reldir, name, dirs, problems, shown)
    if unusable:
        return
    if info is None:
        if relpath not in dirs:
            problems.append('%s: removed empty directory without a record of its owner and mode' % shown)
        else:
            plan['dirs'].append(relpath)
    elif not stat.S_ISDIR(info.st_mode):
        problems.append('%s: was an empty directory; the data dir holds something else there now' % shown)


def _data_entry(dchain, reldir, name, dirs, problems, shown):
    """(lstat of the data dir entry or None, whether a directory on the way is unusable)."""
    parts = reldir.split('/') if reldir else []
    for index in range(len(parts)):
        relpath = '/'.join(parts[:index + 1])
        try:
            dchain.open(relpath)
        except DirChanged as exc:
            if exc.why == 'is gone':
                # Made again at restore, from its journal record.
                if any('/'.join(parts[:below + 1]) not in dirs for below in range(index, len(parts))):
                    problems.append('%s: directory %s is missing in the data dir and the journal has no owner/mode for it'
                                    % (shown, escape_name(relpath)))
                    return None, True
                return None, False
            problems.append('%s: %s in the data dir %s' % (shown, escape_name(relpath), exc.why))
            return None, True
    return lstat_at(dchain.open(reldir), name), False


def restore(quarantine_dir, datadir, plan, result, max_errors=50):
    """Move the planned files back; set owners, modes and mtimes of the directories; tidy the quarantine."""
    root_fd = open_quarantine_root(quarantine_dir, create=False)
    data_fd = open_dir(datadir, follow=True)
    created = []
    touched = set()

    def mkdir(parent_fd, name, relpath):
        os.mkdir(name, 0o700, dir_fd=parent_fd)
        created.append(relpath)

    try:
        _runs, files, dirs, _problems = read_journal(root_fd)
        qchain = DirChain(root_fd, require_known=False)
        dchain = DirChain(data_fd, follow_first=True, require_known=False)
        try:
            _drop_links(plan['drop'], qchain, dchain)
            for relpath in plan['restore']:
                record = files[relpath]
                reldir, name = split_relpath(relpath)
                try:
                    qfd = qchain.open(reldir)
                    dfd = dchain.open(reldir, create=mkdir)
                    _restore_one(qfd, dfd, name, record)
                except OSError as exc:
                    if len(result['errors']) < max_errors:
                        result['errors'].append('%s: %s, left in the quarantine' % (escape_name(relpath), exc.strerror or exc))
                    continue
                qchain.mark_dirty(reldir)
                dchain.mark_dirty(reldir)
                parts = reldir.split('/') if reldir else []
                touched.update('/'.join(parts[:index + 1]) for index in range(len(parts)))
                result['restored'] += 1
                result['restored_bytes'] += record['size'] if record.get('kind') != 'link' else 0
            for relpath in plan['dirs']:
                try:
                    dchain.open(relpath, create=mkdir)
                except OSError as exc:
                    if len(result['errors']) < max_errors:
                        result['errors'].append('%s: %s, not made again' % (escape_name(relpath), exc.strerror or exc))
                    continue
                parts = relpath.split('/')
                touched.update('/'.join(parts[:index + 1]) for index in range(len(parts)))
            dchain.close()
            _restore_dir_attributes(data_fd, touched, created, dirs)
        finally:
            qchain.close()
            dchain.close()
        _tidy(root_fd, result)
    finally:
        os.close(root_fd)
        os.close(data_fd)


def _drop_links(relpaths, qchain, dchain):
    """Unlink quarantine names that are hard links of the file already back in the data dir."""
    for relpath in relpaths:
        reldir, name = split_relpath(relpath)
        qfd = qchain.open(reldir)
        dinfo = lstat_at(dchain.open(reldir), name)
        qinfo = lstat_at(qfd, name)
        if dinfo is not None and qinfo is not None and identity(dinfo) == identity(qinfo):
            os.unlink(name, dir_fd=qfd)
            qchain.mark_dirty(reldir)


def _restore_dir_attributes(data_fd, touched, created, dirs):
    """Owner and mode of the directories made again, times of every directory touched, as the journal recorded."""
    # Deepest first, so making or filling a child does not move its parent's mtime afterwards.
    for relpath in sorted(touched, key=lambda path: -path.count('/')):
        record = dirs.get(relpath)
        if record is None:
            continue
        chain = DirChain(data_fd, follow_first=True, require_known=False)
        try:
            fd = chain.open(relpath)
            if relpath in created:
                set_owner_mode(fd, record['uid'], record['gid'], record['mode'])
            set_times(fd, record['atime_ns'], record['mtime_ns'])
            os.fsync(fd)
        finally:
            chain.close()


def _restore_one(qfd, dfd, name, record):
    qinfo = os.lstat(name, dir_fd=qfd)
    owner = (record['uid'], record['gid'], record['mode'], record['atime_ns'], record['mtime_ns'])
    # The quarantine entry is ours: give it the recorded owner, mode and times before it goes back.
    if stat.S_ISLNK(qinfo.st_mode):
        if os.geteuid() == 0:
            os.chown(name, record['uid'], record['gid'], dir_fd=qfd, follow_symlinks=False)
        set_times(name, record['atime_ns'], record['mtime_ns'], dir_fd=qfd, follow=False)
    else:
        fd = os.open(name, O_READ_NOFOLLOW, dir_fd=qfd)
        try:
            if identity(os.fstat(fd)) != identity(qinfo) or os.fstat(fd).st_size != record['size']:
                raise OSError(errno.ESTALE, 'changed while being restored')
            set_owner_mode(fd, record['uid'], record['gid'], record['mode'])
            set_times(fd, record['atime_ns'], record['mtime_ns'])
        finally:
            os.close(fd)
    try:
        link_no_replace(qfd, name, dfd, name)
    except OSError as exc:
        if exc.errno not in NO_LINK:
            raise
        copy_entry(qfd, name, dfd, owner=owner, expected_sha256=record.get('sha256'))
    os.fsync(dfd)
    os.unlink(name, dir_fd=qfd)


def _tidy(root_fd, result):
    """Remove the quarantine directories left empty, and the journal once nothing is left to restore."""
    _entries, directories = _scan(root_fd)
    for relpath in sorted(directories, key=lambda path: -path.count('/')):
        reldir, name = split_relpath(relpath)
        chain = DirChain(root_fd, require_known=False)
        try:
            os.rmdir(name, dir_fd=chain.open(reldir))
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
        finally:
            chain.close()
    entries, directories = _scan(root_fd)
    if not entries and not directories and not result['errors']:
        try:
            os.unlink(JOURNAL, dir_fd=root_fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
    os.fsync(root_fd)
