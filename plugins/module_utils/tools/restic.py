# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic 0.14 (Debian 12): repository locations, the sftp command, exit codes, and its JSON and printed reports.

Secrets never go on the command line: the repository password reaches restic as RESTIC_PASSWORD or
RESTIC_PASSWORD_FILE, S3 keys as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE, all
through the runner's environment (``env=``), which is never logged. The argv this adapter builds is logged as is.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import calendar
import collections
import json
import os
import re
import shlex
import time

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.locking import repository_lock_path
from ansible_collections.omero.backup.plugins.module_utils.base.ssh import HOST as SSH_HOST, ssh_argv
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail

RESTIC = 'restic'

# restic 0.14 exit codes (cmd/restic/main.go): 0 success, 1 fatal (nothing or not all done), 3 (backup only)
# a snapshot was written but some source files could not be read: it is incomplete.
RC_OK = 0
RC_FATAL = 1
RC_INCOMPLETE = 3

NO_REPOSITORY_MESSAGES = ('Is there a repository at the following location?', 'unable to open config file',
                          'repository does not exist', 'config: no such file', 'The specified bucket does not exist',
                          'Fatal: repository does not exist')
WRONG_PASSWORD_MESSAGE = 'wrong password or no key found'
LOCKED_MESSAGE = 'repository is already locked'
_URL = re.compile(r'^(https?)://([^/@]+)(/.*)?$')
_SUBSET = re.compile(r'^(?:\d+/\d+|\d+(?:\.\d+)?%|\d+(?:\.\d+)?[kKmMgGtT]?)$')
_READ_GROUP = re.compile(r'read group #(\d+) of (\d+) data packs \(out of total (\d+) packs in (\d+) groups\)')
_READ_SUBSET = re.compile(r'read (\d+) of (\d+) data packs')
_READ_ALL = re.compile(r'(\d+) / (\d+) packs')
_LOCKED_BY = re.compile(r'locked (?:exclusively )?by PID (\d+) on (\S+) by (.+?) \(UID')


class ResticError(OmeroBackupError):
    """restic could not do what was asked, or its answer could not be read."""


class Location(object):
    """A restic repository: a local path, ``sftp:[user@]host:/path``, ``rest:http(s)://...`` or
    ``s3:http(s)://host[:port]/bucket[/prefix]``.

    ``kind`` is 'local', 'sftp', 'rest' or 's3'; ``path`` the local or remote directory (for s3 ``bucket/prefix``);
    ``host`` the host of a remote one (with ``user@`` for sftp).
    """

    def __init__(self, kind, path, host=None, scheme=None):
        self.kind = kind
        self.path = path
        self.host = host
        self.scheme = scheme

    @property
    def is_remote(self):
        return self.kind != 'local'

    @property
    def spec(self):
        """The ``-r`` argument restic takes."""
        if self.kind == 'local':
            return self.path
        if self.kind == 'sftp':
            return 'sftp:%s:%s' % (self.host, self.path)
        return '%s:%s://%s%s' % (self.kind, self.scheme, self.host, self.path)

    def __eq__(self, other):
        return isinstance(other, Location) and self.spec == other.spec

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.spec)

    def __repr__(self):
        return 'Location(%r)' % self.spec

    def __str__(self):
        return self.spec


def parse_location(text, what='dest'):
    """Location from one of the four spellings; anything else (a relative path, credentials in a URL, another
    backend) is refused with the reason."""
    if not text or not str(text).strip():
        raise ResticError('%s is empty' % what)
    text = str(text).strip()
    if text.startswith('/'):
        return Location('local', os.path.normpath(text))
    if text.startswith('sftp:'):
        rest = text[len('sftp:'):]
        if rest.startswith('//'):
            raise ResticError('%s %r: write sftp repositories as sftp:[user@]host:/path (the URL form is not taken)'
                              % (what, text))
        host, sep, path = rest.partition(':')
        if not sep or not SSH_HOST.match(host):
            raise ResticError('%s %r: use sftp:[user@]host:/path; the host part may hold only letters, digits, '
                              '".", "-", "_" and one "user@"' % (what, text))
        if not path.startswith('/'):
            raise ResticError('%s %r: the sftp path must be absolute' % (what, text))
        return Location('sftp', os.path.normpath(path), host)
    for kind in ('rest', 's3'):
        if text.startswith(kind + ':'):
            match = _URL.match(text[len(kind) + 1:])
            if not match:
                if '@' in text:
                    raise ResticError('%s: credentials in the repository URL would stand on the command line; '
                                      'they are not taken (use a loopback or TLS client certificate setup for rest:, '
                                      's3_access_key_id/s3_secret_access_key for s3:)' % what)
                raise ResticError('%s %r: use %s:http(s)://host[:port]/%s' % (
                    what, text, kind, 'bucket[/prefix]' if kind == 's3' else 'path'))
            scheme, host, path = match.groups()
            path = (path or '/').rstrip('/') or '/'
            if kind == 's3' and path == '/':
                raise ResticError('%s %r: an s3 repository needs a bucket: s3:%s://%s/bucket[/prefix]'
                                  % (what, text, scheme, host))
            return Location(kind, path, host, scheme)
    raise ResticError('%s %r: a restic repository is an absolute path, sftp:[user@]host:/path, '
                      'rest:http(s)://host:port/path or s3:http(s)://host:port/bucket[/prefix]' % (what, text))


def sftp_command(host, ssh_user=None, ssh_key=None, ssh_port=None, ssh_options=None):
    """The ``sftp.command`` restic runs for an sftp repository (it splits it like a shell; no password can go
    here, BatchMode makes a missing key fail at once instead of waiting for one)."""
    user = None
    if '@' in host:
        user, host = host.split('@', 1)
    parts = ssh_argv(ssh_user or user, ssh_key, ssh_port, ssh_options) + [host, '-s', 'sftp']
    return ' '.join(shlex.quote(part) for part in parts)


def lock_path(location, lock_dir=None):
    """Where the collection's own lock for a repository lives: beside a local one (not inside it, where restic
    would find a file it does not know), else a file keyed by the spec in the root-owned lock directory."""
    try:
        return repository_lock_path('restic', location, lock_dir)
    except OSError as exc:
        raise ResticError('no lock directory for %s: %s' % (location.spec, exc.strerror or exc))


def glob_escape(path):
    r"""A literal path inside a restic pattern (Go's filepath.Match takes \ as the escape character)."""
    return re.sub(r'([\\*?\[\]])', r'\\\1', path)


def check_subset(text, what='verify_read_data'):
    """A ``--read-data-subset`` value restic 0.14 takes: ``n/t``, ``x%`` / ``x.y%`` or a size (k, M, G, T)."""
    value = str(text).strip()
    if not _SUBSET.match(value):
        raise ResticError('%s %r: use n/t, a percentage such as 5%% or a size such as 500M' % (what, text))
    if '/' in value:
        n, t = (int(part) for part in value.split('/'))
        if not 1 <= n <= t:
            raise ResticError('%s %r: n/t needs 1 <= n <= t' % (what, text))
    elif value.endswith('%') and not 0 < float(value[:-1]) <= 100:
        raise ResticError('%s %r: a percentage is above 0 and at most 100' % (what, text))
    return value


class Outcome(object):
    """What a restic exit code and its messages mean for us."""

    def __init__(self, action, rc, out, err):
        self.action = action
        self.rc = rc
        self.out = out or ''
        self.err = err or ''
        text = self.err + '\n' + self.out
        self.no_repository = rc != 0 and any(message in text for message in NO_REPOSITORY_MESSAGES)
        self.wrong_password = rc != 0 and WRONG_PASSWORD_MESSAGE in text
        self.locked = rc != 0 and LOCKED_MESSAGE in text
        self.incomplete = rc == RC_INCOMPLETE
        self.failed = rc != 0

    def messages(self):
        lines = [line.strip() for line in self.err.splitlines() if line.strip()]
        return [line for line in lines if not line.startswith(('using temporary cache', 'create exclusive lock',
                                                               'load indexes', 'check all packs', 'check snapshots',
                                                               '[', 'read all data', 'read group'))]

    def describe(self):
        detail = tail('; '.join(self.messages()[-12:]) or self.out.strip()) or 'no message'
        if self.wrong_password:
            detail = 'wrong repository password (%s)' % detail
        return 'restic %s exited %d: %s' % (self.action, self.rc, detail)


class Restic(object):
    """Builds and runs restic command lines through a Runner; ``env`` holds the secrets (never logged)."""

    def __init__(self, runner, location, executable=RESTIC, env=None, options=(), cache_dir=None):
        self.runner = runner
        self.location = location
        self.executable = executable
        self.env = dict(env or {})
        self.options = list(options)
        self.cache_dir = cache_dir

    def argv(self, action, args=(), json_output=False, no_lock=False):
        argv = [self.executable, '-r', self.location.spec]
        for option in self.options:
            argv += ['-o', option]
        if self.cache_dir:
            argv += ['--cache-dir', self.cache_dir]
        if json_output:
            argv.append('--json')
        if no_lock:
            argv.append('--no-lock')
        return argv + list(action) + list(args)

    def run(self, action, args=(), json_output=False, no_lock=False, cwd=None):
        argv = self.argv(action, args, json_output, no_lock)
        env = {'LC_ALL': 'C.UTF-8', 'RESTIC_PROGRESS_FPS': '0.016'}
        env.update(self.env)
        rc, out, err = self.runner(argv, env=env, cwd=cwd)
        return Outcome(' '.join(a for a in action if not a.startswith('-')), rc, out, err), argv

    def version(self):
        rc, out, err = self.runner([self.executable, 'version'])
        match = re.search(r'restic\s+(\d+)\.(\d+)\.(\d+)', out or '')
        if rc != 0 or not match:
            raise ResticError('cannot run %s version (is restic 0.14 or newer installed?): %s'
                              % (self.executable, tail(err or out) or 'rc %d' % rc))
        version = tuple(int(part) for part in match.groups())
        if version < (0, 14):
            raise ResticError('restic %s is too old: 0.14 or newer is needed' % '.'.join(map(str, version)))
        return version


def parse_time(text):
    """Epoch seconds (float, microseconds kept) of restic's RFC 3339 time with nanoseconds."""
    match = re.match(r'^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$', text.strip())
    if not match:
        raise ResticError('cannot read the restic time %r' % text)
    day, clock, fraction, zone = match.groups()
    seconds = calendar.timegm(time.strptime(day + 'T' + clock, '%Y-%m-%dT%H:%M:%S'))
    if zone != 'Z':
        sign = 1 if zone[0] == '+' else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    micro = int((fraction or '0')[:6].ljust(6, '0'))
    return seconds + micro / 1e6


def _json(text, what):
    try:
        return json.loads(text)
    except ValueError:
        raise ResticError('cannot read the JSON of restic %s: %s' % (what, tail(text) or 'empty output'))


def _json_lines(text):
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('{'):
            try:
                yield json.loads(line)
            except ValueError:
                continue


def parse_snapshots(text):
    """``snapshots --json``: a list of dicts (id, short_id, epoch, time, host, paths, tags, tree), oldest first."""
    data = _json(text, 'snapshots') if (text or '').strip() else []
    if data is None:
        data = []
    snapshots = []
    for item in data:
        snapshots.append({'id': item['id'], 'short_id': item.get('short_id') or item['id'][:8],
                          'time': item['time'], 'epoch': parse_time(item['time']),
                          'host': item.get('hostname'), 'paths': list(item.get('paths') or []),
                          'tags': list(item.get('tags') or []), 'tree': item.get('tree'),
                          'parent': item.get('parent')})
    return sorted(snapshots, key=lambda snap: (snap['epoch'], snap['id']))


def parse_backup(text):
    """``backup --json`` output: (summary dict or None, [error dicts: path, op, errno, message])."""
    summary = None
    errors = []
    for item in _json_lines(text):
        kind = item.get('message_type')
        if kind == 'summary':
            summary = item
        elif kind == 'error':
            error = item.get('error') or {}
            errors.append({'path': item.get('item') or error.get('Path'), 'op': error.get('Op'),
                           'errno': error.get('Err'), 'during': item.get('during')})
    return summary, errors


def backup_counts(summary):
    """files, bytes, changed files of a backup summary (restic 0.14 names)."""
    if not summary:
        return None, None, None
    files = summary.get('total_files_processed')
    changed = (summary.get('files_new') or 0) + (summary.get('files_changed') or 0)
    return files, summary.get('total_bytes_processed'), changed


def parse_check(text):
    """``check [--read-data-subset]`` printed output: ok, errors (lines), packs read and total, groups."""
    found = {'ok': None, 'errors': [], 'packs_read': None, 'packs_total': None, 'group': None, 'groups': None}
    lines = (text or '').splitlines()
    for line in lines:
        stripped = line.strip()
        match = _READ_GROUP.search(stripped)
        if match:
            found['group'], found['packs_read'], found['packs_total'], found['groups'] = (
                int(value) for value in match.groups())
            continue
        match = _READ_SUBSET.search(stripped)
        if match:
            found['packs_read'], found['packs_total'] = int(match.group(1)), int(match.group(2))
            continue
        if stripped == 'no errors were found':
            found['ok'] = True
        elif stripped.startswith(('error', 'Pack ID does not match', 'pack ', 'Fatal:', 'tree ', 'blob ',
                                  'Load(', 'ReadFull(', 'decrypting', 'check successful')) \
                or 'ciphertext verification failed' in stripped or 'not referenced' in stripped \
                or 'does not match' in stripped:
            if stripped.startswith('check successful'):
                continue
            found['errors'].append(stripped)
    if found['packs_read'] is None:
        for line in lines:
            match = _READ_ALL.search(line)
            if match and 'read all data' in text:
                found['packs_read'] = found['packs_total'] = int(match.group(2))
    if found['errors'] and found['ok'] is None:
        found['ok'] = False
    return found


def damaged_packs(errors):
    """Pack ids named in check's errors (``Pack ID does not match, want <id>``, ``pack <id>: ...``)."""
    packs = set()
    for line in errors:
        match = re.search(r'Pack ID does not match, want ([0-9a-f]{64})', line) or re.search(
            r'^pack ([0-9a-f]{8,64})', line)
        if match:
            packs.add(match.group(1))
    return sorted(packs)


def parse_stats(text):
    """``stats --json``: total_size, total_file_count, snapshots_count (and whatever else restic prints)."""
    return _json(text, 'stats')


def parse_lock_ids(text):
    """``list locks``: the lock ids, one a line."""
    return [line.strip() for line in (text or '').splitlines() if re.match(r'^[0-9a-f]{64}$', line.strip())]


def parse_lock(text, lock_id=None, now=None):
    """``cat lock <id>``: time, epoch, age (seconds), exclusive, hostname, username, pid."""
    data = _json(text, 'cat lock')
    epoch = parse_time(data['time'])
    now = time.time() if now is None else now
    return {'id': lock_id, 'time': data['time'], 'epoch': epoch, 'age': max(0.0, round(now - epoch, 1)),
            'exclusive': bool(data.get('exclusive')), 'hostname': data.get('hostname'),
            'username': data.get('username'), 'pid': data.get('pid')}


def parse_locked_message(text):
    """(pid, host, user) from restic's "repository is already locked by PID ... on HOST by USER" message."""
    match = _LOCKED_BY.search(text or '')
    if not match:
        return None
    return int(match.group(1)), match.group(2), match.group(3)


def parse_ls(text):
    """``ls --json <snapshot>``: (snapshot dict, [node dicts: path, type, size, ...]); paths start with '/'.

    restic's JSON writes each byte of a name that is not UTF-8 as U+FFFD (Go's encoding/json), so a name read here
    may differ from the name on disk: compare with ls_name() of the disk's name, never the raw bytes.
    """
    snapshot = None
    nodes = []
    for item in _json_lines(text):
        if item.get('struct_type') == 'snapshot':
            snapshot = item
        elif item.get('struct_type') == 'node':
            nodes.append(item)
    return snapshot, nodes


def ls_name(relpath):
    """The form of a path (bytes or surrogate-escaped str, relative to the tree root) that parse_ls gives: a
    leading '/', U+FFFD for bytes that are not UTF-8, runs of U+FFFD collapsed on both sides (Go replaces each
    bad byte, Python a maximal bad sequence)."""
    if not isinstance(relpath, bytes):
        relpath = relpath.encode('utf-8', 'surrogateescape')
    name = relpath.decode('utf-8', 'replace')
    return collapse_replacement('/' + name.lstrip('/'))


def collapse_replacement(name):
    return re.sub(u'\ufffd+', u'\ufffd', name)


def ls_counter(paths):
    """Counter of ls paths, with runs of U+FFFD collapsed (see ls_name)."""
    return collections.Counter(collapse_replacement(path) for path in paths)


def parse_forget(text):
    """``forget --json [--dry-run]``: (keep ids, remove ids) over every group."""
    data = _json(text, 'forget') if (text or '').strip() else []
    keep, remove = [], []
    for group in data or []:
        keep += [snap['id'] for snap in group.get('keep') or []]
        remove += [snap['id'] for snap in group.get('remove') or []]
    return keep, remove


def parse_restore_problems(outcome):
    """Lines of a restore that put its result in doubt (restic prints "ignoring error for ..." and goes on)."""
    problems = [line.strip() for line in outcome.err.splitlines()
                if line.strip().startswith(('ignoring error', 'Fatal', 'error', 'There were'))]
    if outcome.rc != 0 and not problems:
        problems.append(outcome.describe())
    return problems
