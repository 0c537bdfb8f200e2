# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OMERO.server log files: where they are, rotated-log housekeeping, relocating the log directory.

The log directory is the ``OMERO_LOGS`` variable of the grid application
descriptor. ``omero admin start`` regenerates ``etc/grid/(win)default.xml`` from
``etc/templates/grid/(win)default.xml``, so the templates are what lasts and
the generated files are what the running server used. Every reading and
writing of that variable goes through this file.

Housekeeping touches only rolled files (``NAME.log.N``) and their compressed
forms (``NAME.log.N.gz``, made by hand or by logrotate, and the files this
module makes); which names those are is the rule of names.py. The server's own rollover renames ``.1`` to ``.2`` and
so on and knows nothing of ``.gz`` files, so a compressed file is named after
the time its last line was written (``NAME.log.20261120T101500Z.gz``), a name
the rollover never produces and therefore never collides with.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import grp
import gzip
import hashlib
import os
import pwd
import re
import shutil
import stat
import time
import xml.etree.ElementTree as ET

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import TEMP_PREFIX, apply_owner, fsync_dir, publish, temp_sibling
from ansible_collections.omero.backup.plugins.module_utils.base.runner import CHUNK
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.names import LIVE_LOG, ROLLED_LOG, escape, escaped_list

DEFAULT_OMERODIR = '/opt/omero/server/OMERO.server'
DEFAULT_USER = 'omero-server'
DEFAULT_LOGS_VALUE = 'var/log/'
LOGS_VARIABLE = 'OMERO_LOGS'

TEMPLATE_DESCRIPTOR = 'etc/templates/grid/default.xml'
GENERATED_DESCRIPTOR = 'etc/grid/default.xml'
# The order in which descriptors are edited: the templates first, because they are what lasts.
DESCRIPTORS = (
    TEMPLATE_DESCRIPTOR,
    'etc/templates/grid/windefault.xml',
    GENERATED_DESCRIPTOR,
    'etc/grid/windefault.xml',
)

STAMP_FORMAT = '%Y%m%dT%H%M%SZ'
# NAME.log.N as the server rolls it, NAME.log.STAMP[-K] for a file whose compression was interrupted,
# each optionally .gz (ours, or compressed by hand / logrotate as NAME.log.N.gz): ASCII digits, no control
# character, anchored with \Z, so 'Blitz-0.log.7\n' or 'Blitz-0.log.\u0667' is some other file and kept.
ROLLED = ROLLED_LOG
LIVE = LIVE_LOG
GZIP_LEVEL = 6


class LogsError(OmeroBackupError):
    """A refusal or failure whose message is meant for the operator."""


# ---------------------------------------------------------------------------
# The grid descriptor
# ---------------------------------------------------------------------------

_MARKUP_NOT_TAGS = re.compile(r'<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>', re.DOTALL)
_VARIABLE_TAG = re.compile(r'<variable\b[^>]*>')
_ATTRIBUTE = re.compile(r'([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("[^"]*"|\'[^\']*\')')
_ENTITIES = {'&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&apos;': "'"}


def _unescape(value):
    def entity(match):
        text = match.group(0)
        if text in _ENTITIES:
            return _ENTITIES[text]
        if text.startswith('&#x'):
            return chr(int(text[3:-1], 16))
        return chr(int(text[2:-1]))
    return re.sub(r'&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);', entity, value)


def _escape(value, quote):
    value = value.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return value.replace('"', '&quot;') if quote == '"' else value.replace("'", '&apos;')


class Descriptor(object):
    """One grid descriptor, checked with an XML parser and edited as text.

    The tree is parsed only to prove the file is well formed and to read the
    value; the edit replaces the characters of one attribute value, so
    comments, spacing, attribute order and the XML declaration stay as they are.
    """

    def __init__(self, path, relpath=None):
        self.path = path
        self.relpath = relpath or path
        try:
            with open(path, 'rb') as handle:
                self.raw = handle.read()
        except (IOError, OSError) as exc:
            raise LogsError('cannot read grid descriptor %s: %s' % (self.relpath, exc.strerror or exc))
        try:
            self.text = self.raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise LogsError('grid descriptor %s is not UTF-8 (byte %d); it was left untouched' % (self.relpath, exc.start))
        self.value = self._parsed_value(self.raw)
        self.value_start, self.value_end, self.quote = self._locate()
        if _unescape(self.text[self.value_start:self.value_end]) != self.value:
            raise LogsError('grid descriptor %s: the %s value found in the text differs from the parsed one; it was left untouched'
                            % (self.relpath, LOGS_VARIABLE))

    def _parsed_value(self, raw):
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            line, column = getattr(exc, 'position', (0, 0))
            raise LogsError('grid descriptor %s is not well-formed XML (line %d, column %d: %s); it was left untouched, '
                            'repair it before changing the log directory' % (self.relpath, line, column + 1, _reason(exc)))
        found = [element for element in root.iter('variable') if element.get('name') == LOGS_VARIABLE]
        if len(found) != 1:
            raise LogsError('grid descriptor %s has %d <variable name="%s"> elements, expected exactly one; it was left untouched'
                            % (self.relpath, len(found), LOGS_VARIABLE))
        value = found[0].get('value')
        if value is None:
            raise LogsError('grid descriptor %s: <variable name="%s"> has no value attribute; it was left untouched'
                            % (self.relpath, LOGS_VARIABLE))
        return value

    def _locate(self):
        # Comments, CDATA and processing instructions may quote a <variable> tag; blank them out
        # (same length, so offsets still index the real text) before looking for the live one.
        masked = _MARKUP_NOT_TAGS.sub(lambda match: ' ' * len(match.group(0)), self.text)
        spans = []
        for tag in _VARIABLE_TAG.finditer(masked):
            attributes = dict((m.group(1), m) for m in _ATTRIBUTE.finditer(tag.group(0)))
            name = attributes.get('name')
            if name is None or _unescape(name.group(2)[1:-1]) != LOGS_VARIABLE or 'value' not in attributes:
                continue
            value = attributes['value']
            start = tag.start() + value.start(2) + 1
            spans.append((start, start + len(value.group(2)) - 2, value.group(2)[0]))
        if len(spans) != 1:
            raise LogsError('grid descriptor %s: could not find exactly one %s value to edit (found %d); it was left untouched'
                            % (self.relpath, LOGS_VARIABLE, len(spans)))
        return spans[0]

    def with_value(self, value):
        """The full new text with OMERO_LOGS set to ``value``, re-parsed to prove it reads back."""
        declared = re.match(r'<\?xml[^>]*encoding\s*=\s*["\']([^"\']+)', self.text)
        if declared and declared.group(1).lower().replace('_', '-') not in ('utf-8', 'utf8') and not _is_ascii(value):
            raise LogsError('grid descriptor %s declares encoding %s; a non-ASCII log directory cannot be written into it'
                            % (self.relpath, declared.group(1)))
        text = self.text[:self.value_start] + _escape(value, self.quote) + self.text[self.value_end:]
        if self._parsed_value(text.encode('utf-8')) != value:
            raise LogsError('grid descriptor %s: the edited text does not read back as %r; it was left untouched'
                            % (self.relpath, value))
        return text


def _is_ascii(text):
    return all(ord(char) < 128 for char in text)


def _reason(exc):
    message = str(exc)
    return message.split(':', maxsplit=1)[0]


def existing_descriptors(omerodir):
    """The grid descriptors present under ``omerodir``, as (relpath, path), in edit order."""
    return [(rel, os.path.join(omerodir, rel)) for rel in DESCRIPTORS if os.path.isfile(os.path.join(omerodir, rel))]


def resolve_logs_value(omerodir, value):
    """The directory a raw OMERO_LOGS value names. Relative values are relative to OMERODIR, the
    server's working directory; ``${OMERO_HOME}`` is OMERODIR too (the descriptor defines it as ``.``)."""
    resolved = value.replace('${OMERO_HOME}', '.')
    if '${' in resolved:
        raise LogsError('%s is %r, which uses a descriptor variable this module cannot resolve; set path explicitly'
                        % (LOGS_VARIABLE, value))
    if not os.path.isabs(resolved):
        resolved = os.path.join(omerodir, resolved)
    return os.path.normpath(resolved)


def configured_log_dir(omerodir):
    """(directory, source): where the server writes its logs.

    The generated descriptor is what the running server was started with, so it
    wins over the template; without either, the distribution's default applies.
    """
    for relpath in (GENERATED_DESCRIPTOR, TEMPLATE_DESCRIPTOR):
        path = os.path.join(omerodir, relpath)
        if os.path.isfile(path):
            return resolve_logs_value(omerodir, Descriptor(path, relpath).value), relpath
    if not os.path.isdir(omerodir):
        raise LogsError('OMERODIR %s does not exist; set omerodir, or path to the log directory' % omerodir)
    return resolve_logs_value(omerodir, DEFAULT_LOGS_VALUE), 'default'


def logs_value_for(log_dir):
    """The OMERO_LOGS text for a directory: the descriptor builds each log file name as
    ``${OMERO_LOGS}NAME.log``, so the value must end with a slash."""
    if not log_dir or not log_dir.strip('/'):
        raise LogsError('log_dir %r is not a usable log directory' % (log_dir,))
    if '$' in log_dir or any(ord(char) < 32 for char in log_dir):
        raise LogsError('log_dir %r contains "$" or a control character, which the grid descriptor would not read back as a path'
                        % (log_dir,))
    return os.path.normpath(log_dir) + '/'


# ---------------------------------------------------------------------------
# Refusing repository paths
# ---------------------------------------------------------------------------

def refuse_repository_path(path, datadir):
    """Raise when ``path`` lies in an OMERO binary repository: import logs there are database
    objects (OriginalFiles), and deleting or renaming one breaks the fileset that owns it."""
    candidates = [os.path.abspath(path), os.path.realpath(path)]
    for candidate in candidates:
        if 'ManagedRepository' in candidate.split(os.sep):
            raise LogsError('refusing %s: it is inside a ManagedRepository, whose import logs are OMERO database objects; '
                            'server logs are in $OMERODIR/var/log or the OMERO_LOGS directory' % path)
    if datadir:
        managed = os.path.realpath(os.path.join(datadir, 'ManagedRepository'))
        real = os.path.realpath(path)
        if real == managed or real.startswith(managed.rstrip(os.sep) + os.sep):
            raise LogsError('refusing %s: it is inside %s, whose import logs are OMERO database objects' % (path, managed))
    probe = os.path.realpath(path)
    while True:
        if os.path.isdir(os.path.join(probe, '.omero', 'repository')):
            raise LogsError('refusing %s: %s is an OMERO repository (it holds .omero/repository), whose files are OMERO '
                            'database objects; server logs are never kept there' % (path, probe))
        parent = os.path.dirname(probe)
        if parent == probe:
            return
        probe = parent


# ---------------------------------------------------------------------------
# Housekeeping
# ---------------------------------------------------------------------------

class Rolled(object):
    """One rolled (or already compressed) log file seen by a scan."""

    def __init__(self, directory, name, match, st):
        self.directory = directory
        self.name = name
        self.path = os.path.join(directory, name)
        self.log = match.group('log')
        self.generation = match.group('generation')
        self.compressed = match.group('gz') is not None
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.identity = _identity(st)

    def sort_key(self):
        # Newest first; the rollover's .1 is newer than .2 when mtimes tie.
        order = int(self.generation) if self.generation.isascii() and self.generation.isdigit() else 0
        return (-self.mtime, order, self.name)


def _identity(st):
    return (st.st_dev, st.st_ino, st.st_size, int(st.st_mtime))


def scan_rolled(directory):
    """{log name: [Rolled, newest first]} for the regular files directly in ``directory``."""
    logs = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith(TEMP_PREFIX):
            continue
        match = ROLLED.match(name)
        if not match:
            continue
        st = os.lstat(os.path.join(directory, name))
        if not stat.S_ISREG(st.st_mode):
            continue
        entry = Rolled(directory, name, match, st)
        logs.setdefault(entry.log, []).append(entry)
    for entries in logs.values():
        entries.sort(key=Rolled.sort_key)
    return logs


def plan_housekeeping(logs, state, keep=0, older_than=None, now=None):
    """{log: {'act': [Rolled], 'kept': [Rolled]}}: the newest ``keep`` rolled generations of each log are
    left alone, and of the rest only those last written more than ``older_than`` seconds ago are acted on."""
    if keep is None or keep < 0:
        raise LogsError('keep must be 0 or more, got %r' % (keep,))
    now = time.time() if now is None else now
    plan = {}
    for log, entries in sorted(logs.items()):
        act, kept = [], []
        for index, entry in enumerate(entries):
            old_enough = older_than is None or entry.mtime <= now - older_than
            wanted = (state == 'absent') or not entry.compressed
            if index >= keep and old_enough and wanted:
                act.append(entry)
            else:
                kept.append(entry)
        plan[log] = {'act': act, 'kept': kept}
    return plan


def _unchanged(entry):
    try:
        return _identity(os.lstat(entry.path)) == entry.identity
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise


def _stamp(mtime):
    return time.strftime(STAMP_FORMAT, time.gmtime(mtime))


def _gzip_digest(path):
    digest = hashlib.sha256()
    size = 0
    with gzip.open(path, 'rb') as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def compress(entry):
    """Gzip one rolled file beside itself; returns (gz name or None, bytes freed, reason skipped or None).

    The .gz is written to a temporary sibling with the original's mode, owner and
    mtime, fsynced, read back and compared with what was read, and only then
    published under a name no other file holds; the original is removed last,
    and only if it is still the same file (the server may have rolled in the meantime).
    """
    try:
        source = open(entry.path, 'rb')
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None, 0, 'gone before it could be compressed'
        raise
    tmp = None
    try:
        st = os.fstat(source.fileno())
        if _identity(st) != entry.identity:
            return None, 0, 'changed since the scan (the server rolled its logs?)'
        tmp = temp_sibling(entry.path, suffix='.gz')
        digest = hashlib.sha256()
        with open(tmp, 'wb') as raw:
            with gzip.GzipFile(filename=entry.name, mode='wb', fileobj=raw, compresslevel=GZIP_LEVEL,
                               mtime=int(st.st_mtime)) as zipped:
                while True:
                    block = source.read(CHUNK)
                    if not block:
                        break
                    digest.update(block)
                    zipped.write(block)
            raw.flush()
            os.fsync(raw.fileno())
        if _gzip_digest(tmp) != (digest.hexdigest(), st.st_size):
            raise LogsError('compressed copy of %s does not read back as the original; the original was kept'
                            % escape(entry.path))
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        _keep_owner(tmp, st)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        gz_name, duplicate = _publish_compressed(tmp, entry, digest.hexdigest(), st)
        if duplicate:
            os.unlink(tmp)
        tmp = None
        gz_size = 0 if duplicate else os.lstat(os.path.join(entry.directory, gz_name)).st_size
    finally:
        source.close()
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    if not _unchanged(entry):
        return gz_name, 0, 'compressed, but the original changed meanwhile and was kept'
    os.unlink(entry.path)
    fsync_dir(entry.directory)
    return gz_name, entry.size - gz_size, None


def _keep_owner(path, st):
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        apply_owner(path, st.st_uid, st.st_gid)


def _publish_compressed(tmp, entry, digest, st):
    """(name, duplicate): the first free NAME.log.STAMP[-K].gz, or an existing one holding the same bytes
    (a run interrupted between publishing and removing the original)."""
    stem = '%s.%s' % (entry.log, _stamp(st.st_mtime))
    for attempt in range(1, 1000):
        name = '%s.gz' % stem if attempt == 1 else '%s-%d.gz' % (stem, attempt)
        final = os.path.join(entry.directory, name)
        if os.path.lexists(final):
            try:
                if _gzip_digest(final) == (digest, st.st_size):
                    return name, True
            except (IOError, OSError, EOFError):
                pass
            continue
        publish(tmp, final)
        return name, False
    raise LogsError('no free name for the compressed copy of %s' % escape(entry.path))


def _delete(entry):
    if not _unchanged(entry):
        return 'changed or gone since the scan (the server rolled its logs?)'
    os.unlink(entry.path)
    return None


def housekeeping(params, check_mode=False, now=None):
    """Compress or delete rolled logs. ``params``: path, omerodir, datadir, state, keep, older_than."""
    state = params.get('state') or 'compressed'
    if state not in ('compressed', 'absent'):
        raise LogsError('state must be compressed or absent, got %r' % (state,))
    older_than = parse_duration(params.get('older_than'))
    path = params.get('path')
    source = 'path'
    if not path:
        path, source = configured_log_dir(params.get('omerodir') or DEFAULT_OMERODIR)
    refuse_repository_path(path, params.get('datadir'))
    if not os.path.isdir(path):
        raise LogsError('log directory %s does not exist (read from %s)' % (path, source))
    plan = plan_housekeeping(scan_rolled(path), state, params.get('keep') or 0, older_than, now)

    result = {'path': path, 'path_source': source, 'state': state, 'logs': {}, 'bytes_freed': 0, 'changed': False,
              'diff': {'before': '', 'after': ''}}
    before, after = [], []
    for log, parts in plan.items():
        report = {'files': [], 'kept': [entry.name for entry in parts['kept']], 'bytes': 0, 'bytes_freed': 0,
                  'created': [], 'skipped': []}
        before.extend(entry.name for entry in parts['kept'])
        after.extend(entry.name for entry in parts['kept'])
        for entry in parts['act']:
            before.append(entry.name)
            if check_mode:
                report['files'].append(entry.name)
                report['bytes'] += entry.size
                if state == 'absent':
                    report['bytes_freed'] += entry.size
                else:
                    report['bytes_freed'] = None
                    after.append('%s.%s.gz' % (entry.log, _stamp(entry.mtime)))
                continue
            if state == 'absent':
                reason = _delete(entry)
                created, freed = None, entry.size
            else:
                created, freed, reason = compress(entry)
            if created:
                report['created'].append(created)
                after.append(created)
            if reason:
                report['skipped'].append({'name': entry.name, 'reason': reason})
                after.append(entry.name)
                continue
            report['files'].append(entry.name)
            report['bytes'] += entry.size
            report['bytes_freed'] += freed
        result['changed'] = result['changed'] or bool(report['files'] or report['created'])
        if report['bytes_freed'] is None:
            result['bytes_freed'] = None
        elif result['bytes_freed'] is not None:
            result['bytes_freed'] += report['bytes_freed']
        result['logs'][log] = report
    if not check_mode and state == 'absent' and result['changed']:
        fsync_dir(path)
    _show_names(result)
    result['diff'] = {'before': ''.join(escape(name) + '\n' for name in sorted(before)),
                      'after': ''.join(escape(name) + '\n' for name in sorted(set(after))),
                      'before_header': path, 'after_header': path}
    return result


def _show_names(result):
    """File names in the result as names.escape() shows them (a result cannot carry undecodable bytes, and a
    newline would be lost in a listing), with the exact bytes of each escaped one in ``names_b64``."""
    names_b64 = {}
    shown = {}
    for log, report in result['logs'].items():
        for key in ('files', 'kept', 'created'):
            report[key] = escaped_list(report[key], names_b64)
        for skipped in report['skipped']:
            skipped['name'] = escaped_list([skipped['name']], names_b64)[0]
        shown[escaped_list([log], names_b64)[0]] = report
    result['logs'] = shown
    result['names_b64'] = names_b64


# ---------------------------------------------------------------------------
# Relocation
# ---------------------------------------------------------------------------

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
        _keep_owner(tmp, st)
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


def relocate(params, check_mode=False):
    """Point OMERO_LOGS at ``params['path']`` in every grid descriptor, create the directory for the
    OMERO system user and optionally move the existing logs there.

    Everything is checked before anything is changed: every descriptor parses and
    can be edited, the directory is usable by the user, no log to move is open
    and no name clashes. Then the directory is made, the logs moved, the
    descriptors written (templates first), each write atomic.
    """
    omerodir = params.get('omerodir') or DEFAULT_OMERODIR
    user = params.get('user') or DEFAULT_USER
    mode = params.get('mode')
    try:
        mode = 0o750 if mode in (None, '') else (int(mode, 8) if isinstance(mode, str) else int(mode))
    except ValueError:
        raise LogsError('mode %r is not an octal permission such as 0750' % (mode,))
    if not 0 <= mode <= 0o7777:
        raise LogsError('mode %04o is not a permission' % mode)
    value = logs_value_for(params['path'])
    target = resolve_logs_value(omerodir, value)
    refuse_repository_path(target, params.get('datadir'))

    descriptors = existing_descriptors(omerodir)
    if TEMPLATE_DESCRIPTOR not in [rel for rel, path in descriptors]:
        raise LogsError('%s has no %s: not an OMERO.server directory (set omerodir)' % (omerodir, TEMPLATE_DESCRIPTOR))
    parsed = [Descriptor(path, rel) for rel, path in descriptors]
    edits = [(descriptor, descriptor.with_value(value)) for descriptor in parsed if descriptor.value != value]
    previous_dir, previous_source = configured_log_dir(omerodir)

    uid, gid = _user_ids(user)
    if os.path.lexists(target) and not os.path.isdir(target):
        raise LogsError('%s exists and is not a directory; nothing was changed' % target)
    create = not os.path.isdir(target)
    if not create and not _writable_by(target, uid, gid):
        raise LogsError('log directory %s exists but user %s cannot write to it; fix its ownership or mode, nothing was changed'
                        % (target, user))

    moves = []
    if params.get('move_logs') and os.path.isdir(previous_dir) and os.path.realpath(previous_dir) != os.path.realpath(target):
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
                                  'after': {'state': 'directory', 'owner': user, 'mode': '%04o' % mode}})
    if check_mode or not result['changed']:
        return result

    if create:
        _make_log_dir(target, mode, uid, gid)
    for name, source, destination, duplicate in moves:
        if duplicate:
            os.unlink(source)
            fsync_dir(previous_dir)
        else:
            _move_file(source, destination)
    for descriptor, text in edits:
        st = os.stat(descriptor.path)
        tmp = temp_sibling(descriptor.path)
        try:
            with open(tmp, 'wb') as handle:
                handle.write(text.encode('utf-8'))
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            _keep_owner(tmp, st)
            publish(tmp, descriptor.path)
            tmp = None
        finally:
            if tmp is not None and os.path.lexists(tmp):
                os.unlink(tmp)
    return result


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
