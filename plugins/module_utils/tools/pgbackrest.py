# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest 2.45 (Debian 12): its configuration file, the commands the collection runs, its exit codes, and its
JSON and printed reports.

Secrets never go on the command line: the repository's cipher pass is written only into the configuration file
(``render_config``; 0640 root:postgres on the database host, 0600 for the repository user on a repository host),
which every command reads with ``--config``. The argv this adapter builds is logged as is (``commands``).

pgBackRest runs as the user that owns the cluster (archive-push, backup of a local cluster, restore) or the
repository (a repository host): when the module runs as root, ``PgBackRest`` prefixes its commands with
``runuser -u <os_user> --``; the runner's environment is passed on unchanged.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import json
import os
import re
import shutil
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail

PGBACKREST = 'pgbackrest'

# pgBackRest's exit codes are its error codes (src/build/error/error.yaml); the ones the collection explains.
RC_OK = 0
RC_CONFIG = 27
RC_OPTION_INVALID_VALUE = 32
RC_OPTION_REQUIRED = 37
RC_PG_RUNNING = 38
RC_PATH_NOT_EMPTY = 40
RC_FILE_OPEN = 41
RC_FILE_READ = 42
RC_ARCHIVE_MISMATCH = 44
RC_HOST_CONNECT = 49
RC_LOCK_ACQUIRE = 50
RC_BACKUP_MISMATCH = 51
RC_PATH_OPEN = 53
RC_FILE_MISSING = 55
RC_DB_CONNECT = 56
RC_DB_MISMATCH = 58
RC_STOP = 62
RC_TERM = 63
RC_FILE_WRITE = 64
RC_PATH_MISSING = 73
RC_BACKUP_SET_INVALID = 75
RC_ARCHIVE_TIMEOUT = 82
RC_ARCHIVE_DISABLED = 87
RC_CRYPTO = 95
RC_REPO_INVALID = 103
RC_COMMAND = 104
EXIT_NAMES = {
    RC_CONFIG: 'config', RC_OPTION_INVALID_VALUE: 'option-invalid-value', RC_OPTION_REQUIRED: 'option-required',
    RC_PG_RUNNING: 'pg-running', RC_PATH_NOT_EMPTY: 'path-not-empty', RC_FILE_OPEN: 'file-open', RC_FILE_READ: 'file-read',
    RC_ARCHIVE_MISMATCH: 'archive-mismatch', RC_HOST_CONNECT: 'host-connect', RC_LOCK_ACQUIRE: 'lock-acquire',
    RC_BACKUP_MISMATCH: 'backup-mismatch', RC_PATH_OPEN: 'path-open', RC_FILE_MISSING: 'file-missing',
    RC_DB_CONNECT: 'db-connect', RC_DB_MISMATCH: 'db-mismatch', RC_STOP: 'stop', RC_TERM: 'term', RC_FILE_WRITE: 'file-write',
    RC_PATH_MISSING: 'path-missing', RC_BACKUP_SET_INVALID: 'backup-set-invalid', RC_ARCHIVE_TIMEOUT: 'archive-timeout',
    RC_ARCHIVE_DISABLED: 'archive-disabled', RC_CRYPTO: 'crypto', RC_REPO_INVALID: 'repo-invalid', RC_COMMAND: 'command',
}
# What the operator can do about the common ones.
EXIT_HINTS = {
    RC_LOCK_ACQUIRE: 'another pgBackRest command holds the stanza lock (a backup still running?)',
    RC_PG_RUNNING: 'stop PostgreSQL first: a restore into a running cluster is refused',
    RC_ARCHIVE_TIMEOUT: 'WAL did not reach the repository in time: is archive_command failing (pg_stat_archiver)?',
    RC_ARCHIVE_DISABLED: 'archive_mode is off: run db_archive (and restart PostgreSQL)',
    RC_CRYPTO: 'the cipher pass does not open the repository',
    RC_HOST_CONNECT: 'the other host did not answer over ssh',
}

# info --output=json: status codes of a stanza (src/command/info/info.c).
STANZA_OK = 0
STANZA_MISSING = 1
STANZA_NO_BACKUP = 2
STANZA_NO_DATA = 3

STANZA_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*\Z')
BACKUP_LABEL = re.compile(r'^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?\Z')
BACKUP_LABEL_IN_TEXT = re.compile(r'\b[0-9]{8}-[0-9]{6}F(?:_[0-9]{8}-[0-9]{6}[DI])?\b')
WAL_SEGMENT = re.compile(r'^[0-9A-F]{24}\Z')
BACKUP_TYPES = ('full', 'diff', 'incr')
CIPHER_TYPES = ('none', 'aes-256-cbc')
COMPRESS_TYPES = ('none', 'gz', 'lz4', 'zst', 'bz2')

_ERROR = re.compile(r'ERROR: \[(\d+)\]: (.*)')
_REPO_ERROR = re.compile(r'^\s+(repo\d+): \[(\w+)\] (.*)$')
_VERIFY_FILE = re.compile(r'INFO: ([a-z][a-z ]+?) \'([^\']+)\'\s*$')
_VERIFY_STATUS = re.compile(r'^status: (\S+)', re.M)
_VERIFY_BACKUP = re.compile(r'backup: (\S+), status: ([a-z-]+)')
_VERIFY_ARCHIVE = re.compile(r'archiveId: (\S+), total WAL checked: (\d+), total valid WAL: (\d+)')


class PgBackRestError(OmeroBackupError):
    """pgBackRest could not do what was asked, or its answer could not be read; ``rc`` its exit code."""

    def __init__(self, message, rc=None):
        super(PgBackRestError, self).__init__(message)
        self.rc = rc


# -- the configuration file ------------------------------------------------------------------------------------

SECRET_KEYS = ('repo1-cipher-pass',)
MASK = '********'


def render_config(global_options, stanza, stanza_options, comment=None):
    """The text of a pgBackRest configuration file: ``[global]`` then ``[stanza]``, keys in the order given
    (lists of (key, value) pairs; None values left out), so the same options always give the same bytes."""
    if not STANZA_NAME.match(stanza or ''):
        raise PgBackRestError('stanza %r: use letters, digits, ".", "_" and "-"' % (stanza,))
    lines = []
    if comment:
        lines += ['# ' + line for line in comment.splitlines()]
    for section, options in (('global', global_options), (stanza, stanza_options)):
        lines.append('[%s]' % section)
        for key, value in options:
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'y' if value else 'n'
            value = str(value)
            if '\n' in value or '\r' in value:
                raise PgBackRestError('pgBackRest option %s may not contain a line break' % key)
            lines.append('%s=%s' % (key, value))
        lines.append('')
    return '\n'.join(lines)


def masked_config(text):
    """The configuration text with its secrets replaced by ********, for diffs and messages."""
    out = []
    for line in (text or '').splitlines(True):
        key = line.split('=', 1)[0].strip()
        if key in SECRET_KEYS and '=' in line:
            line = '%s=%s\n' % (key, MASK)
        out.append(line)
    return ''.join(out)


def parse_config(text):
    """{section: {key: value}} of a configuration file (the last value of a repeated key)."""
    sections, current = {}, None
    for line in (text or '').splitlines():
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('[') and line.endswith(']'):
            current = sections.setdefault(line[1:-1], {})
        elif current is not None and '=' in line:
            key, value = line.split('=', 1)
            current[key.strip()] = value.strip()
    return sections


def archive_command(config, stanza, executable=PGBACKREST):
    """The archive_command PostgreSQL runs: archive-push with this configuration file (no secret in it)."""
    return '%s --config=%s --stanza=%s archive-push %%p' % (executable, config, stanza)


def restore_command(config, stanza, executable=PGBACKREST):
    return '%s --config=%s --stanza=%s archive-get %%f "%%p"' % (executable, config, stanza)


# -- pure readers of pgBackRest's output -------------------------------------------------------------------------

def parse_error(text):
    """(code, message) of the first ``ERROR: [NNN]: ...`` of pgBackRest's output, or (None, tail of text).

    A command that works on several repositories (archive-push, archive-get, check) says ``... encountered
    error(s):`` and lists one ``repoN: [ErrorClass] message`` line per repository after it: they are the message.
    """
    lines = (text or '').splitlines()
    for index, line in enumerate(lines):
        match = _ERROR.search(line)
        if match:
            message = match.group(2).strip()
            details = [found.groups() for found in (_REPO_ERROR.match(rest) for rest in lines[index + 1:]) if found]
            if details:
                message = '%s %s' % (message, '; '.join('%s: %s (%s)' % (repo, text_, kind) for repo, kind, text_ in details))
            return int(match.group(1)), message
    return None, tail(text or '')


def parse_archive_errors(text):
    """Every archive-push/archive-get failure in a PostgreSQL server log (archive_command's output lands there):
    a list of {code, repo, kind, message}, oldest first; the repository lines of each error, one entry per line."""
    found = []
    lines = (text or '').splitlines()
    for index, line in enumerate(lines):
        match = _ERROR.search(line)
        if not match or not re.search(r'archive-(push|get)', match.group(2)):
            continue
        repos = [item.groups() for item in (_REPO_ERROR.match(rest) for rest in lines[index + 1:index + 9]) if item]
        for repo, kind, message in repos or [(None, None, match.group(2).strip())]:
            found.append({'code': int(match.group(1)), 'repo': repo, 'kind': kind, 'message': message})
    return found


def explain(command, rc, out, err):
    """A one-line explanation of a failed command, with pgBackRest's own message and a hint when there is one."""
    code, message = parse_error((err or '') + '\n' + (out or ''))
    code = code if code is not None else rc
    name = EXIT_NAMES.get(code)
    text = 'pgbackrest %s failed (rc %s%s): %s' % (command, code, ', ' + name if name else '', message or 'no message')
    if code in EXIT_HINTS:
        text += ' (%s)' % EXIT_HINTS[code]
    return text


def parse_info(text):
    """pgBackRest's ``info --output=json``: a list of stanzas, each a dict with

    ``name``, ``status`` (code), ``message``, ``cipher``, ``backup_locked`` (a backup is running), ``archive_min`` /
    ``archive_max`` (WAL segment names of the current database, None when none is archived), ``archive_id``, and
    ``backups``: oldest first, each {label, type, prior, start, stop (epochs), wal_start, wal_stop, lsn_start,
    lsn_stop, size, delta, repo_size, repo_delta, error, reference}.
    """
    try:
        data = json.loads(text or '')
    except ValueError as exc:
        raise PgBackRestError('pgbackrest info printed no JSON (%s): %s' % (exc, tail(text or '')))
    if not isinstance(data, list):
        raise PgBackRestError('pgbackrest info: expected a list of stanzas, got %s' % type(data).__name__)
    stanzas = []
    for item in data:
        status = item.get('status') or {}
        archives = item.get('archive') or []
        current_db = max((db.get('id') or 0 for db in item.get('db') or []), default=None)
        current = [archive for archive in archives if (archive.get('database') or {}).get('id') == current_db] or archives
        archive = current[-1] if current else {}
        backups = []
        for backup in item.get('backup') or []:
            info = backup.get('info') or {}
            repository = info.get('repository') or {}
            wal = backup.get('archive') or {}
            lsn = backup.get('lsn') or {}
            stamp = backup.get('timestamp') or {}
            backups.append({
                'label': backup.get('label'), 'type': backup.get('type'), 'prior': backup.get('prior'),
                'start': stamp.get('start'), 'stop': stamp.get('stop'),
                'wal_start': wal.get('start'), 'wal_stop': wal.get('stop'),
                'lsn_start': lsn.get('start'), 'lsn_stop': lsn.get('stop'),
                'size': info.get('size'), 'delta': info.get('delta'),
                'repo_size': repository.get('size'), 'repo_delta': repository.get('delta'),
                'error': bool(backup.get('error')), 'reference': backup.get('reference') or [],
            })
        backups.sort(key=lambda backup: (backup['stop'] or 0, backup['label'] or ''))
        stanzas.append({
            'name': item.get('name'), 'status': status.get('code'), 'message': status.get('message'),
            'cipher': item.get('cipher'),
            'backup_locked': bool(((status.get('lock') or {}).get('backup') or {}).get('held')),
            'archive_id': archive.get('id'), 'archive_min': archive.get('min'), 'archive_max': archive.get('max'),
            'backups': backups,
        })
    return stanzas


def stanza_info(stanzas, name):
    """The entry of stanza ``name`` in parse_info's list (None when pgBackRest does not list it)."""
    for stanza in stanzas:
        if stanza['name'] == name:
            return stanza
    return None


def parse_repo_ls(text):
    """``repo-ls --output=json``: {relative name: {type, size, time}}, without the ``.`` entry."""
    try:
        data = json.loads(text or '')
    except ValueError as exc:
        raise PgBackRestError('pgbackrest repo-ls printed no JSON (%s): %s' % (exc, tail(text or '')))
    return dict((name, entry) for name, entry in data.items() if name != '.')


def newest_wal(entries):
    """(segment, epoch) of the newest archived WAL segment in repo-ls entries of an archive id (recursive), by
    segment name (timeline, then position); None when there is none. ``.backup`` and ``.history`` files are no
    segment."""
    best = None
    for name, entry in entries.items():
        base = name.rsplit('/', 1)[-1]
        segment = base.split('-', 1)[0]
        if entry.get('type') != 'file' or not WAL_SEGMENT.match(segment) or '.' in segment:
            continue
        if best is None or segment > best[0]:
            best = (segment, entry.get('time'))
    return best


def tree_size(entries):
    return sum(entry.get('size') or 0 for entry in entries.values() if entry.get('type') == 'file')


def parse_verify(text):
    """``verify --output=text`` with console logging at info: {ok, status, damaged (repository paths), backups
    ({label: status}), archives ({id: (checked, valid)}), problems (lines naming a damaged file)}.

    pgBackRest 2.45's verify exits 0 even when it finds damage: its printed status is what counts.
    """
    text = text or ''
    statuses = _VERIFY_STATUS.findall(text)
    damaged, problems = [], []
    for line in text.splitlines():
        match = _VERIFY_FILE.search(line)
        if match and match.group(1) not in ('verify command begin', 'verify command end'):
            damaged.append(match.group(2))
            problems.append('%s %s' % (match.group(1), match.group(2)))
    backups = dict(_VERIFY_BACKUP.findall(text))
    archives = dict((archive, (int(checked), int(valid))) for archive, checked, valid in _VERIFY_ARCHIVE.findall(text))
    status = statuses[-1] if statuses else None
    return {'ok': status == 'ok' and not damaged, 'status': status, 'damaged': damaged, 'backups': backups,
            'archives': archives, 'problems': problems}


def epoch_of_target(text):
    """Epoch seconds (float) of an ISO 8601 time (``2026-12-03T10:30:00Z``, ``2026-12-03 10:30:00.25+00:00``);
    a time without a zone is UTC. Raises PgBackRestError when it is not one."""
    value = (text or '').strip()
    match = re.match(r'^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z', value)
    if not match:
        raise PgBackRestError('target_time %r is not an ISO 8601 time such as 2026-12-03T10:30:00Z' % (text,))
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction = float(match.group(7) or 0)
    zone = match.group(8) or 'Z'
    offset = 0
    if zone != 'Z':
        sign = -1 if zone[0] == '-' else 1
        digits = zone[1:].replace(':', '')
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    try:
        base = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        raise PgBackRestError('target_time %r is not a valid time' % (text,))
    return base + fraction - offset


def target_text(epoch):
    """The ``--target`` pgBackRest hands PostgreSQL's recovery_target_time: UTC with microseconds and ``+00``."""
    whole = int(epoch // 1)
    micro = int(round((epoch - whole) * 1000000))
    if micro >= 1000000:
        whole, micro = whole + 1, micro - 1000000
    return '%s.%06d+00' % (time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(whole)), micro)


def iso(epoch):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(epoch)) if epoch is not None else None


# -- the adapter ------------------------------------------------------------------------------------------------

class PgBackRest(object):
    """pgBackRest for one stanza and configuration file, through an injected runner ``runner(argv, env=None)`` ->
    (rc, out, err). ``os_user``: run as that user (via runuser when this process is root and another user);
    ``commands`` logs every argv run."""

    def __init__(self, runner, config, stanza, os_user=None, executable=PGBACKREST):
        self.runner = runner
        self.config = config
        self.stanza = stanza
        self.os_user = os_user
        self.executable = executable
        self.commands = []

    def argv(self, command, options=(), args=()):
        argv = [self.executable, '--config=%s' % self.config, '--stanza=%s' % self.stanza] + list(options) + [command]
        return as_user(self.os_user, argv + list(args))

    def run(self, command, *options, **kwargs):
        """(rc, out, err) of one command; ``args``: its arguments after the command; ``check``: raise
        PgBackRestError explained when rc is not 0."""
        argv = self.argv(command, options, kwargs.get('args', ()))
        self.commands.append(argv)
        rc, out, err = self.runner(argv, env={'LC_ALL': 'C'})
        if kwargs.get('check', True) and rc != RC_OK:
            raise PgBackRestError(explain(command, rc, out, err), rc)
        return rc, out, err

    def version(self):
        argv = as_user(self.os_user, [self.executable, 'version'])
        self.commands.append(argv)
        rc, out, err = self.runner(argv)
        if rc != 0 or not (out or '').startswith('pgBackRest '):
            raise PgBackRestError('cannot run %s version: %s' % (self.executable, tail(err or out) or 'rc=%d' % rc), rc)
        return out.split()[1]

    def info(self):
        """This stanza's entry of parse_info (status STANZA_MISSING when pgBackRest knows no such stanza)."""
        unused_rc, out, unused_err = self.run('info', '--output=json')
        found = stanza_info(parse_info(out), self.stanza)
        if found is None:
            raise PgBackRestError('pgbackrest info does not list stanza %s' % self.stanza)
        return found

    def repo_ls(self, path, recurse=False):
        options = ['--output=json'] + (['--recurse'] if recurse else [])
        rc, out, err = self.run('repo-ls', *options, args=[path], check=False)
        if rc != RC_OK:
            code, unused_message = parse_error(err or out)
            if code == RC_PATH_MISSING:
                return {}
            raise PgBackRestError(explain('repo-ls', rc, out, err), rc)
        return parse_repo_ls(out)

    def archive_newest(self, archive_id):
        """(segment, epoch when it reached the repository) of the newest archived WAL of ``archive_id``, or None."""
        if not archive_id:
            return None
        return newest_wal(self.repo_ls('archive/%s/%s' % (self.stanza, archive_id), recurse=True))

    def stanza_create(self):
        return self.run('stanza-create')

    def check(self, archive_timeout=None):
        """(ok, explanation): pgbackrest check (archiving works end to end, the configuration matches the cluster)."""
        options = ['--archive-timeout=%d' % archive_timeout] if archive_timeout else []
        rc, out, err = self.run('check', *options, check=False)
        return rc == RC_OK, (None if rc == RC_OK else explain('check', rc, out, err))

    def backup(self, backup_type, options=()):
        if backup_type not in BACKUP_TYPES:
            raise PgBackRestError('backup type %r: use one of %s' % (backup_type, ', '.join(BACKUP_TYPES)))
        return self.run('backup', '--type=%s' % backup_type, *options)

    def expire(self, options=()):
        return self.run('expire', *options)

    def verify(self, label=None):
        """parse_verify of ``verify`` (of one backup label, or the whole repository)."""
        options = ['--output=text', '--verbose', '--log-level-console=info'] + (['--set=%s' % label] if label else [])
        unused_rc, out, err = self.run('verify', *options)
        return parse_verify((out or '') + '\n' + (err or ''))

    def restore(self, options):
        return self.run('restore', *options)


def as_user(user, argv):
    """``argv`` run as ``user``: through runuser when this process is root and ``user`` is another account."""
    if not user or os.geteuid() != 0 or user == 'root':
        return list(argv)
    runuser = shutil.which('runuser') or '/usr/sbin/runuser'
    return [runuser, '-u', user, '--'] + list(argv)
