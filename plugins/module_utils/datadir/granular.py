# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Granular restore: some paths of one backup, merged into the live data dir or a scratch dir.

What a user asks for after a mistake is rarely the whole store: one fileset, one user's directory of
ManagedRepository, a few files of Files/ or Pixels/. datadir.restore swaps a whole tree in; this step merges
paths into a tree that stays in use, so its rules differ:

* the paths are relative to the data dir; a fileset id is resolved to its directory through the database
  (``fileset`` -> ``filesetentry`` -> ``originalfile.path``, plus the import logs linked to its jobs), a user to
  ``ManagedRepository/<omename>_<id>`` (the server's default ``omero.fs.repo.path`` template);
* the engine writes the paths of the chosen point into a private staging directory (mkdtemp, 0700, named as a
  restore's staging, beside dest or inside it when it is a mount point: the same filesystem, so every move is
  one rename, and a killed run leaves a tree the next restore or backup removes as a leftover);
* nothing moves until every requested path is in the staging tree and the engine reported no problem;
* then each entry moves in by one rename, through directory descriptors that never follow a symlink: a
  missing entry (a whole missing directory at once) is restored, an identical file is skipped, and a file that
  differs is refused unless ``overwrite`` says so (``newer``: only where the backup's copy is newer than the
  file in dest; ``always``). A type clash (a file where the backup has a directory, a symlink in dest) is always
  refused. Directories already in dest keep their owner and mode; restored entries keep the backup's (owner and
  group can force them, as for a whole restore);
* check mode does all of it but the moves: the staging tree is compared with dest and removed, so the listing
  of what would be restored, skipped and refused is exact.

Names are bytes: results show them through base.names.escape(), with the exact bytes in ``names_b64``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import os
import stat
import tempfile
import time

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import fsync_dir
from ansible_collections.omero.backup.plugins.module_utils.base.dirfs import O_READ_NOFOLLOW, link_no_replace, lstat_at, open_dir
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape, escaped_list, to_bytes
from ansible_collections.omero.backup.plugins.module_utils.datadir.common import (
    DatadirError, Options, datadir_locked, engine_errors, has_repo_uuid, inside, repository_locked,
    restore_argument_spec)
from ansible_collections.omero.backup.plugins.module_utils.datadir.leftovers import clean_leftovers, remove_at, staging_prefix
from ansible_collections.omero.backup.plugins.module_utils.datadir.swap import chown_tree
from ansible_collections.omero.backup.plugins.module_utils.engines.base import EngineError, STAGING_PREFIX
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres

OVERWRITE = ['never', 'newer', 'always']
# Names listed per kind in a result; the counts are always complete.
MAX_LISTED = 1000
MANAGED = 'ManagedRepository'
CHUNK = 1 << 20


def granular_argument_spec():
    """datadir_restore's options without the whole-tree ones (state, keep_replaced, verify, include), plus what to take."""
    spec = restore_argument_spec()
    for name in ('state', 'keep_replaced', 'verify', 'include'):
        spec.pop(name, None)
    spec.update(
        paths=dict(type='list', elements='str', default=[]),
        filesets=dict(type='list', elements='int', default=[]),
        users=dict(type='list', elements='str', default=[]),
        overwrite=dict(type='str', choices=list(OVERWRITE), default=OVERWRITE[0]),
    )
    return spec


class GranularOptions(Options):
    SPEC = staticmethod(granular_argument_spec)


def relpath_bytes(text, what='paths'):
    """``text`` as a clean path relative to the data dir, in bytes; refuses what would leave it or name all of it."""
    raw = to_bytes(text)
    if raw.startswith(b'/'):
        raise DatadirError('%s: %s is absolute; give paths relative to the data dir (e.g. ManagedRepository/user_2)'
                           % (what, escape(raw)))
    parts = [part for part in raw.split(b'/') if part not in (b'', b'.')]
    if b'..' in parts:
        raise DatadirError('%s: %s leaves the data dir' % (what, escape(raw)))
    if not parts:
        raise DatadirError('%s: %r names the whole data dir; restore it with omero.backup.datadir_restore' % (what, text))
    if parts[0].startswith(STAGING_PREFIX.encode()):
        raise DatadirError('%s: %s is a restore staging tree, never part of a backup' % (what, escape(raw)))
    return b'/'.join(parts)


def outermost(relpaths):
    """The paths sorted, without those inside another one (restoring a directory restores what it holds)."""
    kept = []
    for path in sorted(set(relpaths)):
        if not any(path == other or path.startswith(other + b'/') for other in kept):
            kept.append(path)
    return kept


# ---------------------------------------------------------------------------
# Filesets and users, through the database
# ---------------------------------------------------------------------------

def _common_dir(paths):
    """The deepest directory (``a/b/``, relative to the repository root) that holds every one of ``paths``."""
    split = [[part for part in path.split('/') if part] for path in paths]
    common = []
    for parts in zip(*split):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return '/'.join(common)


def fileset_paths(conn, fileset_ids):
    """{fileset id: [relpath (bytes)]}: the fileset's directory under ManagedRepository and its import logs.

    originalfile.path of a fileset's entries is relative to the managed repository's root and ends in '/'; a
    vendor format keeps sub-directories, so the fileset's directory is the deepest one all entries share. The
    import log sits beside that directory (``<time>.log``), linked to the fileset through its jobs.
    """
    for table in ('fileset', 'filesetentry', 'originalfile'):
        if not postgres.table_exists(conn, table):
            raise DatadirError('the database has no table public.%s: it is not an OMERO database, so filesets '
                               'cannot be resolved; give paths instead' % table)
    rows = postgres.query_all(
        conn, 'SELECT fe.fileset, o.path FROM public.filesetentry fe JOIN public.originalfile o ON o.id = fe.originalfile '
              'WHERE fe.fileset = ANY(%s)', (list(fileset_ids),))
    found = {}
    for fileset, path in rows:
        found.setdefault(fileset, []).append(path or '')
    missing = sorted(set(fileset_ids) - set(found))
    if missing:
        rows = postgres.query_all(conn, 'SELECT id FROM public.fileset WHERE id = ANY(%s)', (missing,))
        known = set(row[0] for row in rows)
        raise DatadirError('fileset(s) %s: %s; nothing restored' % (', '.join(str(i) for i in missing), '; '.join(
            '%d has no entries' % i if i in known else '%d does not exist in the database' % i for i in missing)))
    logs = {}
    if postgres.table_exists(conn, 'filesetjoblink') and postgres.table_exists(conn, 'joboriginalfilelink'):
        for fileset, path, name in postgres.query_all(
                conn, 'SELECT fj.parent, o.path, o.name FROM public.filesetjoblink fj '
                      'JOIN public.joboriginalfilelink jo ON jo.parent = fj.child '
                      'JOIN public.originalfile o ON o.id = jo.child WHERE fj.parent = ANY(%s)', (list(fileset_ids),)):
            logs.setdefault(fileset, []).append((path or '') + (name or ''))
    resolved = {}
    for fileset in fileset_ids:
        directory = _common_dir(found[fileset])
        if not directory:
            raise DatadirError('fileset %d: its entries share no directory below the managed repository (%s); '
                               'give paths instead' % (fileset, ', '.join(sorted(set(found[fileset]))[:3])))
        paths = [MANAGED + '/' + directory] + [MANAGED + '/' + log.strip('/') for log in logs.get(fileset, [])]
        resolved[fileset] = [relpath_bytes(path, 'filesets') for path in paths]
    return resolved


def user_paths(conn, users):
    """{omename: relpath}: ``ManagedRepository/<omename>_<id>``, the user's directory under the server's default
    template (``%user%_%userId%/...``)."""
    if not postgres.table_exists(conn, 'experimenter'):
        raise DatadirError('the database has no table public.experimenter: it is not an OMERO database')
    rows = dict(postgres.query_all(conn, 'SELECT omename, id FROM public.experimenter WHERE omename = ANY(%s)', (list(users),)))
    unknown = sorted(set(users) - set(rows))
    if unknown:
        raise DatadirError('user(s) %s do not exist in the database; nothing restored' % ', '.join(unknown))
    return dict((user, relpath_bytes('%s/%s_%d' % (MANAGED, user, rows[user]), 'users')) for user in users)


def _resolve_from_db(options, result):
    """The relpaths that filesets and users name, and ``db_uuid``; the connection is the shared one (``db``)."""
    if not options.db:
        if options.filesets or options.users:
            raise DatadirError('filesets and users are resolved through the OMERO database: set db (and the '
                               'connection options)', result)
        return []
    try:
        conn = postgres.connect(options.connection, options.db)
    except postgres.PostgresError as exc:
        raise DatadirError('%s; nothing restored' % exc, result)
    try:
        relpaths = []
        if options.filesets:
            resolved = fileset_paths(conn, options.filesets)
            result['filesets'] = dict((str(i), [escape(p) for p in paths]) for i, paths in resolved.items())
            relpaths.extend(path for paths in resolved.values() for path in paths)
        if options.users:
            resolved = user_paths(conn, options.users)
            result['users'] = dict((user, escape(path)) for user, path in resolved.items())
            relpaths.extend(resolved.values())
        result['db_uuid'] = postgres.omero_facts(conn).get('db_uuid')
        return relpaths
    except DatadirError as exc:
        exc.result = result
        raise
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Merging the staging tree into dest
# ---------------------------------------------------------------------------

class Merge(object):
    """What a merge did (or, in check mode, would do): names as bytes, counts complete, lists capped."""

    def __init__(self, overwrite, check_mode):
        self.overwrite = overwrite
        self.check_mode = check_mode
        self.restored, self.replaced, self.skipped, self.refused = [], [], [], []
        self.counts = dict(restored=0, replaced=0, skipped=0, refused=0, directories=0)
        self.dirty = set()

    def note(self, kind, relpath, reason=None):
        self.counts[kind] += 1
        listed = getattr(self, kind)
        if len(listed) < MAX_LISTED:
            listed.append((relpath, reason) if kind == 'refused' else relpath)

    def report(self, result):
        names_b64 = result.setdefault('names_b64', {})
        for kind in ('restored', 'replaced', 'skipped'):
            result[kind] = shown(getattr(self, kind), names_b64)
        result['refused'] = [{'path': shown([path], names_b64)[0], 'reason': reason} for path, reason in self.refused]
        result['counts'] = dict(self.counts)
        result['truncated'] = any(self.counts[kind] > MAX_LISTED for kind in ('restored', 'replaced', 'skipped', 'refused'))


def shown(names, names_b64):
    """escaped_list() of bytes names: only those whose escaped form differs get their bytes in ``names_b64``."""
    return escaped_list([os.fsdecode(name) for name in names], names_b64)


def _join(rel, name):
    name = to_bytes(name)
    return rel + b'/' + name if rel else name


def _same_content(sfd, dfd, name, sinfo, dinfo):
    if stat.S_ISLNK(sinfo.st_mode):
        return os.readlink(name, dir_fd=sfd) == os.readlink(name, dir_fd=dfd)
    if sinfo.st_size != dinfo.st_size:
        return False
    one = os.open(name, O_READ_NOFOLLOW, dir_fd=sfd)
    try:
        two = os.open(name, O_READ_NOFOLLOW, dir_fd=dfd)
        try:
            while True:
                first, second = os.read(one, CHUNK), os.read(two, CHUNK)
                if first != second:
                    return False
                if not first:
                    return True
        finally:
            os.close(two)
    finally:
        os.close(one)


def _count_tree(sfd, name, rel, merge):
    """Every entry of the directory ``name`` in ``sfd`` as restored (it moved in, or would move in, whole)."""
    fd = open_dir(name, dir_fd=sfd)
    try:
        merge.counts['directories'] += 1
        for child in sorted(os.listdir(fd)):
            info = os.lstat(child, dir_fd=fd)
            if stat.S_ISDIR(info.st_mode):
                _count_tree(fd, child, _join(rel, child), merge)
            else:
                merge.note('restored', _join(rel, child))
    finally:
        os.close(fd)


def _kind(info):
    if info is None:
        return 'missing'
    if stat.S_ISDIR(info.st_mode):
        return 'directory'
    if stat.S_ISLNK(info.st_mode):
        return 'symlink'
    if stat.S_ISREG(info.st_mode):
        return 'file'
    return 'special file'


def _move(sfd, dfd, name, merge, dest_rel):
    """Replace dest's ``name`` by the staged one (overwrite allowed it): one rename."""
    if not merge.check_mode:
        os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
        merge.dirty.add(dest_rel)


def _move_new(sfd, dfd, name, sinfo, merge, dest_rel):
    """Put the staged ``name`` where dest had nothing, never over something that appeared there meanwhile (the
    server keeps writing): a file or link by link + unlink, which fails with EEXIST where a rename would replace;
    a directory by rename, which fails over anything but an empty directory. False when dest won the race."""
    if merge.check_mode:
        return True
    try:
        if stat.S_ISDIR(sinfo.st_mode):
            os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
        else:
            try:
                link_no_replace(sfd, name, dfd, name)
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
                    raise
                # No hard links on this filesystem: a checked rename (the data dir's lock keeps other restores out).
                if lstat_at(dfd, name) is not None:
                    raise OSError(errno.EEXIST, os.strerror(errno.EEXIST), name)
                os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
            else:
                os.unlink(name, dir_fd=sfd)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
            return False
        raise
    merge.dirty.add(dest_rel)
    return True


def merge_dir(sfd, dfd, rel, merge):
    """Merge the staged directory ``sfd`` into dest's ``dfd`` (both the directory ``rel`` of the data dir)."""
    for name in sorted(os.listdir(sfd)):
        path = _join(rel, name)
        sinfo = os.lstat(name, dir_fd=sfd)
        dinfo = lstat_at(dfd, name)
        if dinfo is None:
            if not _move_new(sfd, dfd, name, sinfo, merge, rel):
                merge.note('refused', path, 'appeared in dest during the restore')
            elif stat.S_ISDIR(sinfo.st_mode):
                # Counted where it now is (in check mode, still staged): the whole directory moved in.
                _count_tree(sfd if merge.check_mode else dfd, name, path, merge)
            else:
                merge.note('restored', path)
            continue
        skind, dkind = _kind(sinfo), _kind(dinfo)
        if skind == 'directory' and dkind == 'directory':
            child_s = open_dir(name, dir_fd=sfd)
            try:
                child_d = open_dir(name, dir_fd=dfd)
            except OSError:
                os.close(child_s)
                merge.note('refused', path, 'dest changed under the restore')
                continue
            try:
                merge_dir(child_s, child_d, path, merge)
            finally:
                os.close(child_s)
                os.close(child_d)
            continue
        if skind != dkind or skind not in ('file', 'symlink'):
            # Never a directory for a file or the other way round; a symlink in dest may be a volume of its own.
            merge.note('refused', path, 'dest has a %s where the backup has a %s' % (dkind, skind))
            continue
        if _same_content(sfd, dfd, name, sinfo, dinfo):
            merge.note('skipped', path)
            continue
        newer = dinfo.st_mtime_ns > sinfo.st_mtime_ns
        if merge.overwrite == 'always' or (merge.overwrite == 'newer' and not newer):
            merge.note('restored', path)
            merge.note('replaced', path)
            _move(sfd, dfd, name, merge, rel)
            continue
        merge.note('refused', path, 'newer in dest than in the backup' if newer
                   else 'differs from the backup (dest is not newer: overwrite=newer restores it)')


# ---------------------------------------------------------------------------
# The step
# ---------------------------------------------------------------------------

def _staging_inside(dest):
    """A mount point stages inside itself (a rename cannot cross filesystems), as datadir.restore does."""
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    return os.path.isdir(dest) and (os.path.ismount(dest) or os.stat(dest).st_dev != os.stat(parent).st_dev)


def _check_target(engine, restorer, repo, point, dest, result):
    """The backup must belong to dest's OMERO (its repository uuid) and, when a database was named, to it."""
    # The restorer's own listing, when it has one, reads only .omero/repository, not the whole backup.
    uuids = getattr(restorer, 'repository_uuids', engine.repository_uuids)(repo, point)
    result['repository_uuids'] = uuids
    here = has_repo_uuid(dest) if os.path.isdir(dest) else []
    if here and uuids and not set(here) & set(uuids):
        raise DatadirError('UUID MISMATCH, nothing restored: %s holds .omero/repository/%s but the backup holds %s; '
                           'these files belong to another OMERO. Restore into a scratch dir to look at them.'
                           % (dest, ', '.join(here), ', '.join(uuids) or '(none)'), result)
    if result.get('db_uuid'):
        result['uuid_match'] = result['db_uuid'] in uuids
        if not result['uuid_match']:
            raise DatadirError('UUID MISMATCH, nothing restored: database %s has omero.db.uuid %s but the backup '
                               'holds .omero/repository/%s' % (result.get('db'), result['db_uuid'],
                                                               ', '.join(uuids) or '(none)'), result)


def restore_paths(params, runner, check_mode=False, now=None):
    """Restore the requested paths of one backup of ``src`` into ``dest``; returns the result dict."""
    options = GranularOptions(params)
    started = time.time()
    dest = os.path.realpath(options.dest)
    result = {'changed': False, 'src': options.src, 'dest': dest, 'warnings': [], 'commands': [], 'db': options.db,
              'db_uuid': None, 'uuid_match': None, 'overwrite': options.overwrite, 'names_b64': {}}
    relpaths = [relpath_bytes(path) for path in options.paths]
    if not relpaths and not options.filesets and not options.users:
        raise DatadirError('nothing to restore: give paths, filesets or users', result)
    relpaths = outermost(relpaths + _resolve_from_db(options, result))
    result['requested'] = shown(relpaths, result['names_b64'])
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    if not os.path.isdir(parent):
        raise DatadirError('the parent of dest, %s, does not exist' % parent, result)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise DatadirError('dest %s exists and is not a directory' % dest, result)
    with engine_errors(result):
        engine = options.make_engine(runner)
        restorer = path_restorer(engine)
        repo = engine.parse_repository(options.src, 'src')
        result['src'] = repo.spec
        if not repo.is_remote and (inside(dest, repo.path) or inside(repo.path, dest)):
            raise DatadirError('dest %s and the repository %s must not contain each other' % (dest, repo.path), result)
        result['lock'] = engine.lock_path(repo)
        try:
            with repository_locked(result, 'datadir restore of paths', check_mode, read_only=True):
                with datadir_locked(dest, check_mode, result):
                    if os.path.isdir(dest):
                        clean_leftovers(dest, check_mode, result, lock_held=True)
                    _steps(engine, restorer, repo, options, dest, relpaths, check_mode, now, result)
        finally:
            result['commands'] = list(engine.commands)
    result['duration'] = round(time.time() - started, 3)
    return result


def path_restorer(engine):
    """The engine's way of restoring some paths of a point (engines/restic_granular.py, engines/rdiff_granular.py)."""
    if engine.name == 'restic':
        from ansible_collections.omero.backup.plugins.module_utils.engines.restic_granular import ResticPaths
        return ResticPaths(engine)
    if engine.name == 'rdiff-backup':
        from ansible_collections.omero.backup.plugins.module_utils.engines.rdiff_granular import RdiffPaths
        return RdiffPaths(engine)
    raise EngineError('the %s engine cannot restore single paths' % engine.name)


def _steps(engine, restorer, repo, options, dest, relpaths, check_mode, now, result):
    # No separate health probe: each restic run opens the repository (a key derivation of about half a second),
    # and the listing fails with the same explanation.
    points = engine.list(repo)
    if not points:
        raise DatadirError('no %s repository (or no backup in it) at %s' % (engine.name, repo.spec), result)
    point = engine.select(points, options.at, now)
    result.update(point_id=str(point.id), increment_time=point.time, increment_epoch=point.epoch, increments=len(points))
    _check_target(engine, restorer, repo, point, dest, result)
    staged_inside = _staging_inside(dest)
    result['staging'] = 'inside dest (it is a mount point)' if staged_inside else 'sibling of dest'
    staging = tempfile.mkdtemp(prefix=staging_prefix(dest), dir=dest if staged_inside else os.path.dirname(dest.rstrip('/')) or '/')
    try:
        root, outcome = restorer.restore(repo, point, relpaths, staging)
        result['rc'] = outcome.rc
        if outcome.problems:
            raise DatadirError('restore of %s from %s failed, %s left as it was: %s'
                               % (point.time, repo.spec, dest, '; '.join(outcome.problems[:10])), result)
        absent = [path for path in relpaths if not os.path.lexists(os.path.join(os.fsencode(root), path))]
        if absent:
            result['absent'] = shown(absent, result['names_b64'])
            raise DatadirError('the backup of %s in %s does not hold %s; nothing restored'
                               % (point.time, repo.spec, ', '.join(result['absent'][:10])), result)
        _fix_made_dirs(root, dest, outcome.details.get('made_dirs', ()))
        if options.owner or options.group:
            chown_tree(root, options.owner, options.group)
        merge = Merge(options.overwrite, check_mode)
        _merge_into(root, dest, merge, check_mode)
        merge.report(result)
    finally:
        if os.path.isdir(staging):  # gone when the staging tree itself became a missing dest
            remove_at(os.path.dirname(staging), os.path.basename(staging))
    counts = result['counts']
    result['changed'] = counts['restored'] > 0
    if counts['refused']:
        result['warnings'].append('%d path(s) %srefused (dest differs from the backup; overwrite=%s): %s' % (
            counts['refused'], 'would be ' if check_mode else '', options.overwrite,
            ', '.join(item['path'] for item in result['refused'][:5])))
    result['msg'] = '%s %d entries of the backup of %s from %s into %s (%d skipped as identical, %d refused)' % (
        'would restore' if check_mode else 'restored', counts['restored'], repo.spec, point.time, dest,
        counts['skipped'], counts['refused'])
    result['diff'] = {'before': '', 'after': ''.join(name + '\n' for name in result['restored']),
                      'before_header': dest, 'after_header': dest}


def _fix_made_dirs(root, dest, made):
    """Directories an engine made in the staging tree without the backup's metadata (rdiff-backup restores a
    path, not the directories above it) get the owner and mode of the nearest directory dest already has."""
    for relpath in sorted(made):
        model = os.path.join(os.fsencode(dest), relpath)
        while not os.path.isdir(model) and len(model) > len(os.fsencode(dest)):
            model = os.path.dirname(model)
        if not os.path.isdir(model):
            continue
        info = os.stat(model)
        made_path = os.path.join(os.fsencode(root), relpath)
        os.chown(made_path, info.st_uid, info.st_gid)
        os.chmod(made_path, stat.S_IMODE(info.st_mode))


def _fsync_staged(root):
    """fsync every regular file and directory of the staging tree, links not followed (atomic.fsync_tree opens
    what a link names: a dangling in-place import link would fail it, a FIFO there would block it)."""
    for directory, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            fd = os.open(path, O_READ_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(directory)


def _merge_into(root, dest, merge, check_mode):
    """The staged data dir ``root`` into dest: one rename when dest is missing, else entry by entry."""
    if not check_mode:
        # Every staged file durable before the first one is visible in dest. Only the staged tree: os.sync() would
        # wait for every dirty page of the host (seconds on a busy server, for a fileset of a few files).
        _fsync_staged(root)
    if not os.path.lexists(dest):
        parent = os.path.dirname(dest.rstrip('/')) or '/'
        moved = check_mode
        if not check_mode:
            try:
                # The staged data dir becomes dest: with restic (and rdiff-backup) that is the 0700 staging
                # directory itself, a private scratch dir (owner/group, when given, were applied to it too).
                os.rename(root, dest)
                moved = True
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                # dest was made meanwhile: merged entry by entry below, as any existing dest.
        if moved:
            above = open_dir(os.path.dirname(root) if check_mode else parent)
            try:
                _count_tree(above, os.path.basename(root if check_mode else dest.rstrip('/')), b'', merge)
            finally:
                os.close(above)
            if not check_mode:
                fsync_dir(parent)
            return
    sfd = open_dir(root)
    try:
        try:
            dfd = open_dir(dest)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise DatadirError('dest %s changed under the restore' % dest)
            raise
        try:
            merge_dir(sfd, dfd, b'', merge)
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
    for rel in sorted(merge.dirty):
        fsync_dir(os.path.join(os.fsencode(dest), rel) if rel else os.fsencode(dest))
