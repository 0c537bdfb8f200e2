# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rdiff-backup 2.2 through its action CLI: locations, the ssh schema, exit codes and its printed reports.

Only the action syntax (``rdiff-backup [--force] ACTION ...``) is used; the
older ``rdiff-backup SRC DEST`` form is deprecated in 2.2.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import collections
import datetime
import os
import re
import shlex
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.locking import repository_lock_path
from ansible_collections.omero.backup.plugins.module_utils.base.ssh import HOST as SSH_HOST, ssh_argv
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail

RDIFF_BACKUP = 'rdiff-backup'

# rdiff-backup 2.2 exit codes are bit flags (Globals.RET_CODE_*): they combine.
RC_ERROR = 1         # the action failed
RC_WARNING = 2       # something unexpected, e.g. an interrupted backup was regressed, or verify found corruption
RC_FILE_ERROR = 4    # one or more files could not be processed
RC_FILE_WARNING = 8  # one or more files had a warning
_KNOWN_RC_BITS = RC_ERROR | RC_WARNING | RC_FILE_ERROR | RC_FILE_WARNING

NO_REPOSITORY_MESSAGE = "couldn't be identified as being within an existing backup repository"
REGRESS_MESSAGE = 'regressing destination now'
_STAT_LINE = re.compile(r'^([A-Za-z]+) (-?[0-9]+(?:\.[0-9]+)?)(?: \(.*\))?$')
_CORRUPT_FILE = re.compile(r"Computed SHA1 digest of file (.*?) '[0-9a-f]*' doesn't match")
_CORRUPT_COUNT = re.compile(r'Verification found (\d+) potentially corrupted files')
_BACKUPS_AGO = re.compile(r'^(\d+)B$')


class RdiffError(OmeroBackupError):
    """rdiff-backup failed or was given something it cannot work with."""


class Location(object):
    """A local path or an ssh ``[user@]host::/path`` as rdiff-backup spells it."""

    def __init__(self, host, path):
        self.host = host
        self.path = path

    @property
    def is_remote(self):
        return self.host is not None

    @property
    def spec(self):
        """The argument rdiff-backup takes."""
        return '%s::%s' % (self.host, self.path) if self.host else self.path

    def parent(self):
        return Location(self.host, os.path.dirname(self.path.rstrip('/')) or '/')

    def child(self, relpath):
        return Location(self.host, self.path.rstrip('/') + '/' + relpath)

    def __str__(self):
        return self.spec


def parse_location(text, what='dest'):
    """Location from ``/path`` or ``[user@]host::/path``; both paths must be absolute."""
    if not text or not str(text).strip():
        raise RdiffError('%s is empty' % what)
    text = str(text).strip()
    host = None
    path = text
    if '::' in text:
        host, path = text.split('::', 1)
        if not SSH_HOST.match(host):
            raise RdiffError('%s %r: the host part %r may hold only letters, digits, ".", "-", "_" and one "user@"'
                             % (what, text, host))
        if '::' in path:
            raise RdiffError('%s %r has more than one "::"' % (what, text))
    if not path.startswith('/'):
        raise RdiffError('%s %r: the path must be absolute' % (what, text))
    path = os.path.normpath(path)
    return Location(host, path)


def remote_schema(ssh_user=None, ssh_key=None, ssh_port=None, ssh_options=None, compression=True,
                  remote_command=RDIFF_BACKUP):
    """The ``--remote-schema`` value: ssh to ``{h}`` (rdiff-backup 2.2's placeholder) and start its server.

    rdiff-backup hands the filled schema to a shell, so every part is quoted;
    BatchMode makes a missing key fail at once instead of waiting for a password.
    """
    parts = ssh_argv(ssh_user, ssh_key, ssh_port, ssh_options, compression=compression)
    for part in parts + [remote_command]:
        # rdiff-backup rejects a schema with braces other than its own placeholders.
        if '{' in part or '}' in part:
            raise RdiffError('ssh option %r: braces are not allowed in the remote schema' % (part,))
    quoted = ' '.join(shlex.quote(part) for part in parts)
    return '%s {h} %s server' % (quoted, ' '.join(shlex.quote(part) for part in shlex.split(remote_command)))


def lock_path(location, lock_dir=None):
    """Where our lock for a repository lives.

    Local: a sibling of the repository, on the same filesystem; not inside it,
    where the next backup would treat the lock as a deleted source file.
    Remote: a local file keyed by ``host::path`` in the lock directory of
    locking.keyed_lock_path (root's /run/omero-backup, 0700), which serialises
    runs from this machine only; rdiff-backup's own lock is not reliable.
    """
    try:
        return repository_lock_path('rdiff', location, lock_dir)
    except OSError as exc:
        raise RdiffError('no lock directory for %s: %s' % (location.spec, exc.strerror or exc))


class Outcome(object):
    """What an rdiff-backup exit code and its messages mean for us."""

    def __init__(self, action, rc, out, err):
        self.action = action
        self.rc = rc
        self.out = out or ''
        self.err = err or ''
        text = self.out + '\n' + self.err
        self.messages = [line.strip() for line in text.splitlines()
                         if line.startswith(('ERROR', 'WARNING', 'Fatal Error', 'Exception', 'ssh:'))
                         or 'Permission denied' in line or 'Connection' in line or 'failed due to' in line]
        self.regressed = REGRESS_MESSAGE in text
        unknown_bits = rc & ~_KNOWN_RC_BITS if rc > 0 else 0
        # A negative rc is a signal (the run was killed): a failure, never a success.
        self.failed = rc < 0 or bool(rc & (RC_ERROR | RC_FILE_ERROR)) or bool(unknown_bits)
        self.warned = bool(rc & (RC_WARNING | RC_FILE_WARNING)) and not self.failed

    def describe(self):
        detail = tail('; '.join(self.messages[-12:]) or self.err.strip() or self.out.strip()) or 'no message'
        return 'rdiff-backup %s exited %d: %s' % (self.action, self.rc, detail)


class Rdiff(object):
    """Builds and runs rdiff-backup command lines through a Runner."""

    def __init__(self, runner, executable=RDIFF_BACKUP, schema=None):
        self.runner = runner
        self.executable = executable
        self.schema = schema

    def argv(self, action, locations, force=False, global_options=()):
        """``action`` is a list (action words and their options); ``locations`` the Location arguments."""
        argv = [self.executable] + list(global_options)
        if force:
            argv.append('--force')
        if self.schema and any(isinstance(loc, Location) and loc.is_remote for loc in locations):
            argv += ['--remote-schema', self.schema]
        return argv + list(action) + [loc.spec if isinstance(loc, Location) else loc for loc in locations]

    def run(self, action, locations, force=False, global_options=()):
        argv = self.argv(action, locations, force=force, global_options=global_options)
        rc, out, err = self.runner(argv, env={'LC_ALL': 'C.UTF-8'})
        return Outcome(' '.join(a for a in action if not a.startswith('-')), rc, out, err), argv

    def version(self):
        rc, out, err = self.runner([self.executable, '--version'])
        match = re.search(r'rdiff-backup\s+(\d+)\.(\d+)(?:\.(\d+))?', out or '')
        if rc != 0 or not match:
            raise RdiffError('cannot run %s --version (is rdiff-backup 2.2 installed?): %s'
                             % (self.executable, tail(err or out) or 'rc %d' % rc))
        version = tuple(int(part or 0) for part in match.groups())
        if version < (2, 2):
            raise RdiffError('rdiff-backup %s is too old: the action syntax needs 2.2 or newer' % '.'.join(map(str, version)))
        return version

    def increments(self, location):
        """Sorted epoch seconds of every backup (the newest is the current mirror), or None without a repository."""
        outcome, argv = self.run(['--parsable-output', 'list', 'increments'], [location])
        if NO_REPOSITORY_MESSAGE in outcome.out + outcome.err:
            return None
        if outcome.failed or outcome.rc != 0:
            raise RdiffError('cannot read the increments of %s: %s' % (location.spec, outcome.describe()))
        return parse_increments(outcome.out)

    def test_connection(self, location):
        """Fail unless ssh logs in and rdiff-backup answers on the far side; ``location`` must exist there."""
        outcome, argv = self.run(['test'], [location])
        if outcome.rc != 0:
            raise RdiffError('cannot reach %s with rdiff-backup over ssh (or the directory does not exist there): %s'
                             % (location.spec, outcome.describe()))

    def list_files(self, location, epoch):
        """The lines rdiff-backup prints for every entry of the backup taken at ``epoch``, counted
        (``.`` is the root); compare them with ``listing_lines()`` of a tree, never with its names."""
        outcome, argv = self.run(['list', 'files', '--at', str(epoch)], [location])
        if outcome.rc != 0:
            raise RdiffError('cannot list the files of %s: %s' % (location.spec, outcome.describe()))
        return parse_listing(outcome.out)

    def repository_uuids(self, location, epoch):
        """Names of ``.omero/repository/<uuid>`` dirs holding a ``repo_uuid`` in the backup taken at ``epoch``."""
        outcome, argv = self.run(['list', 'files', '--at', str(epoch)], [location.child('.omero/repository')])
        if outcome.rc != 0:
            raise RdiffError('cannot list .omero/repository in %s: %s' % (location.spec, outcome.describe()))
        uuids = set()
        for line in outcome.out.splitlines():
            parts = line.strip().split('/')
            if len(parts) == 4 and parts[:2] == ['.omero', 'repository'] and parts[3] == 'repo_uuid':
                uuids.add(parts[2])
        return sorted(uuids)


# Warnings a restore may print that do not put any restored file in doubt.
_HARMLESS_RESTORE_WARNINGS = ("doesn't have an 'increments' sub-directory",)


def restore_problems(outcome):
    """Messages of a restore that put its result in doubt; rdiff-backup 2.2 may exit 0 after
    "Could not restore file" or a hash mismatch, so the text is read as well as the exit code."""
    problems = []
    for line in (outcome.out + '\n' + outcome.err).splitlines():
        line = line.strip()
        if line.startswith(('WARNING', 'ERROR', 'Fatal Error', 'Exception')) and not any(
                harmless in line for harmless in _HARMLESS_RESTORE_WARNINGS):
            problems.append(line)
    if outcome.rc != 0 and not problems:
        problems.append(outcome.describe())
    return problems


def parse_increments(text):
    """Epoch seconds from ``--parsable-output list increments`` (``<epoch> directory`` lines)."""
    epochs = []
    for line in (text or '').splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            epochs.append(int(fields[0]))
    return sorted(set(epochs))


def parse_listing(text):
    """Counter of the lines of ``rdiff-backup list files`` (``.`` and one relative path a line).

    rdiff-backup 2.2 prints names as lossy text: each byte that is not UTF-8 becomes U+FFFD (the same as
    Python's ``bytes.decode('utf-8', 'replace')``), and a name holding a newline comes out in pieces (it
    ignores --null-separator here). So the listing is not a set of names: it is a multiset of lines, and
    ``listing_lines()`` gives the same multiset for the tree a restore wrote. Lines are split as
    ``str.splitlines()`` splits them, on both sides, so a runner that turns CR into LF changes nothing.
    """
    return collections.Counter(line for line in (text or '').splitlines() if line)


def listing_lines(relpaths):
    """Counter of the lines ``rdiff-backup list files`` prints for these relative paths (bytes, or str
    decoded with surrogateescape), with the root ``.``: see parse_listing()."""
    lines = collections.Counter(['.'])
    for relpath in relpaths:
        if not isinstance(relpath, bytes):
            relpath = relpath.encode('utf-8', 'surrogateescape')
        lines.update(line for line in relpath.decode('utf-8', 'replace').splitlines() if line)
    return lines


def parse_statistics(text):
    """The ``--print-statistics`` block as a dict of numbers (StartTime, SourceFiles, ...)."""
    stats = {}
    inside = False
    for line in (text or '').splitlines():
        line = line.strip()
        if 'Session statistics' in line:
            inside = True
            continue
        if inside and line.startswith('-----'):
            break
        if inside:
            match = _STAT_LINE.match(line)
            if match:
                number = match.group(2)
                stats[match.group(1)] = float(number) if '.' in number else int(number)
    return stats


def parse_verify(outcome):
    """(corrupted count, corrupted relpaths) from a verify run."""
    text = outcome.out + '\n' + outcome.err
    files = _CORRUPT_FILE.findall(text)
    match = _CORRUPT_COUNT.search(text)
    count = int(match.group(1)) if match else len(set(files))
    return count, sorted(set(files))


def glob_escape(path):
    r"""A literal path inside an rdiff-backup glob (it takes \ as the escape character)."""
    return re.sub(r'([\\*?\[\]])', r'\\\1', path)


def interval_seconds(text, what='interval'):
    """Seconds in an interval such as ``8W``, ``1D12h`` or ``90m``: the collection's one grammar (durations.parse_duration),
    whose units are rdiff-backup's (m minutes, M months of 30 days, Y years of 365 days).

    A value handed on to rdiff-backup goes as durations.rdiff_backup_interval(seconds), never as the text given.
    """
    try:
        return parse_duration(text, what)
    except OmeroBackupError as exc:
        raise RdiffError(str(exc))


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch))


def _parse_datetime(value):
    """Epoch of an ISO 8601 date or date-time; without an offset it is local time, as rdiff-backup reads it."""
    text = value.strip()
    if text.endswith('Z'):
        text = text[:-1] + '+00:00'
    if re.match(r'^\d{4}-\d{2}-\d{2}$', text):
        text += 'T00:00:00'
    try:
        moment = datetime.datetime.strptime(text.replace(' ', 'T'), '%Y-%m-%dT%H:%M:%S%z') if re.search(
            r'[+-]\d{2}:?\d{2}$', text) else datetime.datetime.strptime(text.replace(' ', 'T'), '%Y-%m-%dT%H:%M:%S')
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return calendar.timegm(moment.utctimetuple())
    return int(time.mktime(moment.timetuple()))


def resolve_at(at, increments, now=None):
    """The epoch of the backup that ``at`` names: the newest one taken at or before that time.

    ``at``: None or ``now`` (newest), ``NB`` (N backups before the newest), epoch seconds,
    an ISO 8601 date/time, or an interval back from now (``3D``, ``2W``).
    """
    if not increments:
        raise RdiffError('the repository holds no backup')
    if at is None or str(at).strip() in ('', 'now'):
        return increments[-1]
    text = str(at).strip()
    match = _BACKUPS_AGO.match(text)
    if match:
        back = int(match.group(1))
        if back >= len(increments):
            raise RdiffError('at %r: the repository holds only %d backups' % (text, len(increments)))
        return increments[-1 - back]
    if text.isdigit() and len(text) >= 9:
        moment = int(text)
    else:
        moment = _parse_datetime(text)
        if moment is None:
            try:
                moment = int(now if now is not None else time.time()) - interval_seconds(text, 'at')
            except RdiffError:
                raise RdiffError('at %r: use now, NB (backups ago), epoch seconds, an ISO 8601 date/time '
                                 'or an interval such as 3D' % (text,))
    eligible = [epoch for epoch in increments if epoch <= moment]
    if not eligible:
        raise RdiffError('at %r (%s): no backup that old; the oldest is %s' % (text, iso(moment), iso(increments[0])))
    return eligible[-1]
