# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine seam: what a binary-store engine and a database engine must do, and the factory that picks one.

The steps (datadir backup/restore, db_dump, db_restore) hold every rule that does not depend on the tool: locks,
refusals, staging and swap-in, set records. They call an engine only through the interfaces below, so a new
engine (restic for the data dir, issue 14; pgBackRest for the database, issue 15) is one class here and one
name in ``engine_for`` and in the modules' ``engine`` choices; the roles only pass the name on.

Invariant: an engine changes nothing in check mode; it logs every command it runs (or, in check mode, would
run) in ``commands``; it reports what it found in small result objects and raises EngineError with the facts
gathered so far, never a half-written module result.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import abc
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed

# What any data dir engine leaves out of a backup. BioFormatsCache is regenerated on demand; .lock files under
# .omero are stale after a crash.
DEFAULT_EXCLUDES = ('BioFormatsCache', '.omero/**/.lock', 'ManagedRepository/.omero/**/.lock')
FULLTEXT = 'FullText'
# What a restore leaves at the top of a data dir: a staging tree of a killed restore, and the old content a
# restore kept (keep_replaced). Neither is ever part of a backup, whatever exclude says.
STAGING_PREFIX = '.omero-backup-restore.'
REPLACED_INSIDE_PREFIX = 'omero-backup-replaced-'
LEFTOVER_PATTERNS = (STAGING_PREFIX + '*', REPLACED_INSIDE_PREFIX + '*')

DATADIR = 'datadir'
DATABASE = 'database'


class EngineError(OperationFailed):
    """An engine's refusal or failure, explained for the operator; ``details`` are the facts found so far
    (result fields such as ``verified`` or ``corrupted_files``) that the step adds to its partial result."""

    def __init__(self, message, details=None, result=None):
        super(EngineError, self).__init__(message, result)
        self.details = details or {}


def exclude_patterns(patterns, exclude_fulltext=False):
    """The exclusion patterns of a data dir backup, relative to it (None: DEFAULT_EXCLUDES); each engine writes
    them in its own syntax. A pattern may not be empty (the whole data dir) nor leave the data dir."""
    names = list(patterns if patterns is not None else DEFAULT_EXCLUDES)
    if exclude_fulltext and FULLTEXT not in names:
        names.append(FULLTEXT)
    checked = []
    for pattern in names:
        pattern = str(pattern).strip().strip('/')
        if not pattern:
            raise EngineError('exclude: an empty pattern would exclude the whole data dir')
        if pattern.split('/', 1)[0] == '..' or '/../' in '/' + pattern + '/':
            raise EngineError('exclude %r: patterns are relative to src and may not leave it' % pattern)
        checked.append(pattern)
    return checked


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


class _Record(object):
    """A small result object: named fields, ``as_dict()`` for results and tests, ``details`` for the extras
    one engine has and another has not."""

    __slots__ = ()

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return '%s(%s)' % (type(self).__name__, ', '.join('%s=%r' % item for item in sorted(self.as_dict().items())))

    def __eq__(self, other):
        return type(self) is type(other) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other


class Point(_Record):
    """One restorable point: an rdiff-backup increment, a dump, a restic snapshot, a pgBackRest backup.

    ``id``: what names it for the engine (an epoch, a dump path, a snapshot id, a backup label); ``epoch``:
    when it was taken (seconds); ``complete``: whether it may be restored; ``details``: engine facts (restic
    tags holding the set id, a pgBackRest WAL range).
    """

    __slots__ = ('id', 'epoch', 'kind', 'complete', 'details')

    def __init__(self, id, epoch, kind, complete=True, details=None):
        self.id = id
        self.epoch = epoch
        self.kind = kind
        self.complete = complete
        self.details = details or {}

    @property
    def time(self):
        return iso(self.epoch)


class BackupOutcome(_Record):
    """What one backup made: its point, how much it saw and changed, how long it took."""

    __slots__ = ('point', 'files', 'bytes', 'changed_files', 'seconds', 'regressed', 'warnings', 'details')

    def __init__(self, point, files=None, bytes=None, changed_files=None, seconds=None, regressed=False,
                 warnings=None, details=None):
        self.point = point
        self.files = files
        self.bytes = bytes
        self.changed_files = changed_files
        self.seconds = seconds
        self.regressed = regressed
        self.warnings = warnings or []
        self.details = details or {}


class VerifyOutcome(_Record):
    """A verify: ``ok`` None when it did not run; ``damaged`` names (at most a few), ``count`` all of them;
    ``details`` the engine's own facts (restic: the data subset read, packs read, errors)."""

    __slots__ = ('ok', 'count', 'damaged', 'seconds', 'detail', 'details')

    def __init__(self, ok, count=0, damaged=None, seconds=None, detail='', details=None):
        self.ok = ok
        self.count = count
        self.damaged = damaged or []
        self.seconds = seconds
        self.detail = detail
        self.details = details or {}


class RetentionOutcome(_Record):
    """Points removed by retention (in check mode: that would be), and how many are left."""

    __slots__ = ('removed', 'left')

    def __init__(self, removed=None, left=None):
        self.removed = removed or []
        self.left = left


class RestoreOutcome(_Record):
    """A restore into a scratch or staging place: ``problems`` put the copy in doubt (nothing may be swapped in)."""

    __slots__ = ('point', 'problems', 'rc', 'details')

    def __init__(self, point, problems=None, rc=0, details=None):
        self.point = point
        self.problems = problems or []
        self.rc = rc
        self.details = details or {}


class Health(_Record):
    """Whether the engine can work on a repository now: its tool version, whether the repository answers."""

    __slots__ = ('ok', 'version', 'reachable', 'problems', 'details')

    def __init__(self, ok, version=None, reachable=None, problems=None, details=None):
        self.ok = ok
        self.version = version
        self.reachable = reachable
        self.problems = problems or []
        self.details = details or {}


class Engine(abc.ABC):
    """What every engine has: a name, its runner, and the log of the commands it ran or would run."""

    name = None
    kind = None

    def __init__(self, runner):
        self.runner = runner
        self.commands = []


class DatadirEngine(Engine):
    """A binary-store engine: puts the OMERO data dir into a repository and gets it back.

    ``repo`` is what ``parse_repository`` returned (``spec``, ``is_remote``, ``path``); points are sorted
    oldest first. The step owns the data dir: its locks, leftovers, staging, swap-in, owner and marker.
    """

    kind = DATADIR

    @abc.abstractmethod
    def parse_repository(self, text, what):
        """The repository ``text`` names (raises EngineError for one this engine cannot use)."""

    @abc.abstractmethod
    def lock_path(self, repo):
        """The file of the collection's lock that serialises runs against ``repo``."""

    @abc.abstractmethod
    def version(self, repo):
        """The version of the tool that works on ``repo``, as text (also in Health)."""

    @abc.abstractmethod
    def health(self, repo, exists=True):
        """Health: the tool runs, and ``repo`` (or, ``exists=False``, the place it will be made in) answers."""

    @abc.abstractmethod
    def list(self, repo):
        """Every point in ``repo``, oldest first; None when there is no repository there."""

    @abc.abstractmethod
    def select(self, points, at, now=None):
        """The point ``at`` names (now, NB, a time, an interval back; an engine may add its own names, such as
        restic's snapshot ids or a backup set id carried as a label)."""

    @abc.abstractmethod
    def excludes(self, src, patterns):
        """The engine's exclusion arguments for ``patterns`` (relative to ``src``), restore leftovers included."""

    @abc.abstractmethod
    def backup(self, src, repo, excludes, previous=(), statistics=False, check_mode=False, label=None, extra=()):
        """One backup of ``src``; BackupOutcome (None in check mode). ``previous``: the points before it.

        ``label``: the backup set id the point carries when the engine can tag it (restic: a tag, so a restore can
        name the set; rdiff-backup: ignored, the set record names the increment's time). ``extra``: further paths
        stored in the same point (restic: the set's dump and config, so that its encryption covers their secrets);
        an engine that keeps one tree per repository refuses them.
        """

    @abc.abstractmethod
    def verify(self, repo, point=None, check_mode=False):
        """VerifyOutcome of ``point`` (the newest when None); ok None in check mode."""

    @abc.abstractmethod
    def retention(self, repo, points, keep_seconds, now, check_mode=False):
        """Remove points older than ``keep_seconds``; the newest point always stays."""

    @abc.abstractmethod
    def repository_uuids(self, repo, point):
        """Names of the ``.omero/repository/<uuid>`` dirs holding a ``repo_uuid`` at ``point``."""

    @abc.abstractmethod
    def restore(self, repo, point, into, check_mode=False):
        """Write ``point`` into the empty directory ``into``; RestoreOutcome (None in check mode)."""

    @abc.abstractmethod
    def missing(self, repo, point, relpaths):
        """Entries of ``point`` absent from ``relpaths`` (the restored tree's relative paths, bytes)."""


class DatabaseEngine(Engine):
    """A database engine: backs up and restores the OMERO database. ``options`` is the step's options object
    (connection, target, engine settings); each method reads only what it needs from it."""

    kind = DATABASE

    @abc.abstractmethod
    def health(self, options):
        """Health: the client tools run and are new enough for the server."""

    @abc.abstractmethod
    def list(self, options):
        """The points (dumps, backups) of ``options.db``, oldest first (``Point.complete`` says which may be restored)."""

    @abc.abstractmethod
    def backup(self, options, check_mode=False):
        """One backup; BackupOutcome whose details are the module's result fields."""

    @abc.abstractmethod
    def verify(self, point, options):
        """VerifyOutcome of ``point``: it is complete and readable."""

    @abc.abstractmethod
    def retention(self, options, check_mode=False):
        """RetentionOutcome: points beyond the policy removed; the newest complete one always stays."""

    @abc.abstractmethod
    def restore(self, options, check_mode=False):
        """Restore into the target; a dict of the module's result fields."""


# Names a later issue adds; engine_for says so instead of "unknown".
PLANNED = {DATADIR: {}, DATABASE: {}}


def _registry(kind):
    """{name: class} of ``kind``. Imported here, not at the top: the implementations import this module, and a
    module of one kind does not load the other kind's engines."""
    if kind == DATADIR:
        from ansible_collections.omero.backup.plugins.module_utils.engines import rdiff_backup, restic
        return {rdiff_backup.RdiffBackupEngine.name: rdiff_backup.RdiffBackupEngine,
                restic.ResticEngine.name: restic.ResticEngine}
    if kind == DATABASE:
        from ansible_collections.omero.backup.plugins.module_utils.engines import pg_dump, pgbackrest
        return {pg_dump.PgDumpEngine.name: pg_dump.PgDumpEngine,
                pgbackrest.PgBackRestEngine.name: pgbackrest.PgBackRestEngine}
    raise EngineError('no engine kind %r: use %r or %r' % (kind, DATADIR, DATABASE))


def engine_names(kind):
    """The engine names ``kind`` knows, sorted (the modules' ``engine`` choices)."""
    return sorted(_registry(kind))


def engine_for(kind, name, runner, **settings):
    """The engine ``name`` of ``kind`` ('datadir' or 'database'), built with ``runner`` and its settings."""
    engines = _registry(kind)
    known = sorted(engines)
    if name not in engines:
        planned = PLANNED[kind].get(name)
        if planned:
            raise EngineError('the %s engine %r is not available yet (%s); use %s'
                              % (kind, name, planned, ' or '.join(known)))
        raise EngineError('unknown %s engine %r: use %s' % (kind, name, ' or '.join(repr(n) for n in known)))
    return engines[name](runner, **settings)
