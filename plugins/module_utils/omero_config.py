# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Saving and loading an OMERO.server configuration profile with the real ``omero`` CLI.

Why this is more than ``omero config get > file``:

* ``config get`` masks every key ending in ``pass``/``password`` as ``********``;
  a backup taken that way restores a server that cannot log in to its database.
  Saves use ``--show-password`` and refuse any masked value.
* ``config load`` strips each line, skips ``#`` lines and joins lines ending in
  ``\\``, so values with line breaks, surrounding blanks or a trailing backslash
  do not survive a save/load round trip. Those keys are named, not silently mangled.
* The CLI serialises writers with ``flock`` on ``config.xml.lock`` and exits 112
  when another writer holds it; that becomes a plain "config is locked" error.
* ``config load`` echoes old and new values in its "Duplicate property" error,
  which may be passwords; conflicts are computed here first and reported by key name.
* Every ``config`` command, even ``config get``, rewrites ``config.xml`` (same properties,
  new "generated at" comment); comparisons of that file ignore the comment.
* A freshly installed OMERO.server has no ``config.xml`` until its first ``config``
  command creates it (and ``etc/grid/`` with it); a load treats that as an empty
  profile, and learns the installed version from ``omero version``, which creates nothing.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os
import pwd
import re
import stat

try:
    from shlex import quote as shell_quote
except ImportError:  # pragma: no cover - Python 2 is not supported by the CLI this drives
    from pipes import quote as shell_quote

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import ManifestError, manifest_path_for, read_manifest, write_manifest
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCliError

MASK = '*' * 8
DEFAULT_DEST = '/OMERO/backup/omero.config'
CONFIG_XML_SUFFIX = '.xml'
MANAGED_CONFIG_FILE = '99-omero-backup-restored.omero'
MANAGED_CONFIG_MODE = 0o640
BACKUP_KIND = 'omero-config'
# Exit codes of omero-py's `omero config` (omero/plugins/prefs.py); the shell sees them modulo 256.
RC_LOCKED = 112
RC_BAD_CONFIG = 113
RC_DUPLICATE = 502 % 256
_VALID_KEY = re.compile(r'^[A-Za-z0-9._-]+$')
_GENERATED_COMMENT = re.compile(br'This file was generated at [^\n]* by the OmeroConfig system\.')
_DUPLICATE = re.compile(r'Duplicate property: (\S+)')
# `version` prints the OMERO.py version first on stdout (the server's, when known, on stderr); key names hold no '='.
READ_SCRIPT = 'version\nconfig keys\nconfig get --show-password\n'


class ConfigError(OmeroBackupError):
    pass


class ConfigLocked(ConfigError):
    pass


def is_password_key(key):
    """The CLI's own rule for which keys `config get` masks."""
    lowered = key.lower()
    return lowered.endswith('pass') or lowered.endswith('password')


def masked_keys(props):
    return sorted(key for key, value in props.items() if is_password_key(key) and value == MASK)


def unloadable_keys(props):
    """Keys whose key=value line would come back different through `config load`."""
    problems = []
    for key, value in props.items():
        if not _VALID_KEY.match(key):
            problems.append(key)
        elif '\n' in value or '\r' in value or value != value.rstrip() or value.endswith('\\'):
            problems.append(key)
    return sorted(problems)


def render(props):
    """The text `config get --show-password` prints, which `config load` reads back."""
    return ''.join('%s=%s\n' % (key, props[key]) for key in sorted(props))


def parse_saved(text):
    """Properties of a saved file, read by the rules of `omero config load` (last line for a key wins)."""
    props = {}
    previous = None
    for raw in text.splitlines(True):
        line = (previous + raw) if previous else raw
        previous = None
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.endswith('\\'):
            previous = line[:-1]
            continue
        key, sep, value = line.partition('=')
        if not key:
            continue
        props[key] = value
    return props


def parse_get_output(keys, text):
    """Split `config get` output exactly, using the key list from `config keys`.

    A value may hold line breaks, so lines alone cannot say where a value ends;
    the sorted key list can: each value runs up to the next "\\n<next key>=".
    """
    props = {}
    keys = sorted(keys)
    position = 0
    for index, key in enumerate(keys):
        prefix = key + '='
        if not text.startswith(prefix, position):
            raise ConfigError('cannot read `omero config get` output: expected %s at offset %d' % (key, position))
        start = position + len(prefix)
        if index + 1 < len(keys):
            end = text.find('\n' + keys[index + 1] + '=', start)
            if end < 0:
                raise ConfigError('cannot read `omero config get` output: %s missing' % keys[index + 1])
            position = end + 1
        else:
            end = len(text) - 1 if text.endswith('\n') else len(text)
            position = len(text)
        props[key] = text[start:end]
    return props


def masked_view(props, changed_secrets=()):
    """Text for diffs: secret values masked, a changed secret marked as such."""
    lines = []
    for key in sorted(props):
        value = props[key]
        if is_password_key(key) and value:
            value = MASK + (' (changed)' if key in changed_secrets else '')
        lines.append('%s=%s\n' % (key, value))
    return ''.join(lines)


def compare(before, after):
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(key for key in set(before) & set(after) if before[key] != after[key])
    return {'keys_added': added, 'keys_removed': removed, 'keys_changed': changed}


def make_diff(before, after, before_header, after_header):
    changes = compare(before, after)
    return {'before': masked_view(before), 'after': masked_view(after, changes['keys_changed']),
            'before_header': before_header, 'after_header': after_header}


def normalized_config_xml(data):
    """config.xml bytes without the timestamp every CLI call rewrites."""
    return _GENERATED_COMMENT.sub(b'This file was generated by the OmeroConfig system.', data)


def _sha256(data):
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    return hashlib.sha256(data).hexdigest()


def _read_bytes(path, what):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read %s %s: %s' % (what, path, exc.strerror or exc))


class OmeroConfig(object):
    """The active (or OMERO_CONFIG-named) profile, through the real CLI."""

    def __init__(self, cli):
        self.cli = cli
        # Values never to repeat in an error message (CLI errors may echo the arguments they choke on).
        self.secrets = set()

    def remember_secrets(self, props):
        self.secrets.update(value for key, value in props.items() if is_password_key(key) and len(value) > 2)

    def _redact(self, text):
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    @property
    def config_xml(self):
        return os.path.join(self.cli.omerodir, 'etc', 'grid', 'config.xml')

    def check(self, require_config_xml=True):
        if not os.path.isdir(self.cli.omerodir):
            raise ConfigError('OMERODIR %s does not exist (set omerodir to the OMERO.server directory)' % self.cli.omerodir)
        if not os.path.exists(self.cli.command):
            raise ConfigError('omero command %s not found (set omero_command or omerodir)' % self.cli.command)
        if require_config_xml and not os.path.isfile(self.config_xml):
            # Any CLI call would create an empty one; a missing file means a wrong OMERODIR, not an empty config.
            raise ConfigError('%s does not exist: is %s an OMERO.server directory?' % (self.config_xml, self.cli.omerodir))

    def config_xml_exists(self):
        return os.path.isfile(self.config_xml)

    def check_config_xml_creatable(self):
        """Refuse unless the CLI, run as the OMERO user, can create the missing config.xml (and etc/grid/ before it)."""
        if os.path.lexists(self.config_xml):
            raise ConfigError('%s exists but is not a regular file' % self.config_xml)
        directory = os.path.dirname(self.config_xml)
        # check() has made sure OMERODIR is a directory, so this stops there at the latest.
        while not os.path.isdir(directory):
            if os.path.lexists(directory):
                raise ConfigError('%s exists but is not a directory, so %s cannot be created' % (directory, self.config_xml))
            directory = os.path.dirname(directory)
        if not _writable_by(directory, self.cli.user):
            raise ConfigError('%s does not exist and cannot be created: %s is not writable by %s'
                              % (self.config_xml, directory, self.cli.user or 'the current user'))

    def _fail(self, what, rc, out, err):
        message = self._redact((err or out or '').strip())
        if rc == RC_LOCKED:
            raise ConfigLocked('config is locked: another `omero config` writer holds %s.lock (omero %s exited %d); '
                               'retry when it has finished' % (self.config_xml, what, rc))
        if 'config.xml.lock' in message and 'Permission denied' in message:
            raise ConfigLocked('config is locked: %s.lock is not writable by %s (left behind by another user?): %s'
                               % (self.config_xml, self.cli.user, message.splitlines()[-1]))
        duplicate = _DUPLICATE.search(message)
        if duplicate:
            # The CLI's message carries both values; only the key leaves this function.
            raise ConfigError('omero %s refused: %s already has a different value (Duplicate property); nothing was written'
                              % (what, duplicate.group(1)))
        last = message.splitlines()[-1] if message else 'no output'
        raise ConfigError('omero %s failed (rc=%d): %s' % (what, rc, last))

    def _run(self, what, args, data=None):
        try:
            rc, out, err = self.cli.run(*args, data=data, check=False)
        except OmeroCliError as exc:
            raise ConfigError(str(exc))
        if rc != 0:
            self._fail(what, rc, out, err)
        return out, err

    def read(self):
        """(properties, versions) from one CLI process: `version`, `config keys`, `config get --show-password`."""
        return self._script('config get', '')

    def read_versions(self):
        """The installed versions from `omero version` alone, which, unlike any `config` command, creates no config.xml."""
        out, err = self._run('version', ['load'], data='version\n')
        return _parse_read(out, err)[1]

    def _script(self, what, commands):
        """Run CLI command lines in one `omero load` process, then read the profile back in the same process."""
        out, err = self._run(what, ['load'], data=commands + READ_SCRIPT)
        return _parse_read(out, err)

    def apply(self, current, target):
        """Make the profile equal to ``target``; returns the profile read back afterwards.

        Every changed key is set first and extra keys are removed last, all in one CLI process, so the profile
        is never empty on the way: a failure half-way leaves every saved value set and at worst some extra keys.
        """
        script = ['config set -- %s %s\n' % (shell_quote(key), shell_quote(target[key]))
                  for key in sorted(target) if current.get(key) != target[key]]
        script += ['config set -- %s\n' % shell_quote(key) for key in sorted(set(current) - set(target))]
        props, _versions = self._script('config set', ''.join(script))
        return props


def _writable_by(directory, user):
    """Whether ``user`` (the one OmeroCli runs omero as) may create entries in ``directory``, by its mode bits."""
    if not user or os.geteuid() != 0:
        return os.access(directory, os.W_OK | os.X_OK)
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError('OMERO system user %r does not exist on this host' % user)
    if account.pw_uid == 0:
        return True
    stats = os.stat(directory)
    if stats.st_uid == account.pw_uid:
        bits = stats.st_mode >> 6
    elif stats.st_gid in os.getgrouplist(user, account.pw_gid):
        bits = stats.st_mode >> 3
    else:
        bits = stats.st_mode
    return bits & (stat.S_IWOTH | stat.S_IXOTH) == (stat.S_IWOTH | stat.S_IXOTH)


def _parse_read(out, err):
    lines = out.split('\n')
    omero_py_version = lines[0].strip()
    if not re.match(r'^\d+\.\d+', omero_py_version):
        raise ConfigError('unexpected output from `omero version`: %r' % omero_py_version[:80])
    keys = []
    index = 1
    while index < len(lines) and lines[index] and '=' not in lines[index]:
        keys.append(lines[index])
        index += 1
    props = parse_get_output(keys, '\n'.join(lines[index:])) if keys else {}
    server_version = None
    err_lines = [line.strip() for line in (err or '').splitlines()]
    if 'OMERO.server version:' in err_lines:
        position = err_lines.index('OMERO.server version:') + 1
        if position < len(err_lines):
            server_version = err_lines[position] or None
    return props, {'omero_py': omero_py_version, 'omero_server': server_version}


def _version_of(versions):
    return versions.get('omero_server') or versions.get('omero_py')


def _version_mismatch(recorded, installed):
    """A message when the OMERO versions differ, None when they match."""
    if recorded.get('omero_server') and installed.get('omero_server'):
        if recorded['omero_server'] != installed['omero_server']:
            return 'OMERO.server %s, the backup came from OMERO.server %s' % (installed['omero_server'], recorded['omero_server'])
        return None
    if recorded.get('omero_server') or installed.get('omero_server'):
        return ('installed OMERO.server %s, backup OMERO.server %s: only one side is known'
                % (installed.get('omero_server') or 'unknown', recorded.get('omero_server') or 'unknown'))
    if recorded.get('omero_py') != installed.get('omero_py'):
        return 'OMERO.py %s, the backup came from OMERO.py %s' % (installed.get('omero_py'), recorded.get('omero_py'))
    return None


def save(config, dest, rely_on_config_xml=False, check_mode=False, owner=None, group=None):
    """Back up the profile to ``dest`` (+ ``dest.xml`` raw copy + manifest). Returns the result dict."""
    config.check()
    props, versions = config.read()
    config.remember_secrets(props)
    masked = masked_keys(props)
    if masked:
        raise ConfigError('the profile itself holds the mask %s as the value of %s (restored from a masked '
                          '`omero config get` backup?); set the real password(s) before saving' % (MASK, ', '.join(masked)))
    problems = unloadable_keys(props)
    if problems and not rely_on_config_xml:
        raise ConfigError('these values cannot round-trip through `omero config load` (line breaks, trailing blanks or '
                          'a trailing backslash): %s; set rely_on_config_xml=true to save them only in the config.xml copy'
                          % ', '.join(problems))
    saved = dict((key, value) for key, value in props.items() if key not in problems)
    text = render(saved)
    xml_bytes = _read_bytes(config.config_xml, 'OMERO config')
    xml_dest = dest + CONFIG_XML_SUFFIX
    manifest_path = manifest_path_for(dest)

    previous = {}
    previous_text = None
    if os.path.exists(dest):
        previous_text = _read_bytes(dest, 'existing backup').decode('utf-8', 'replace')
        previous = parse_saved(previous_text)
    previous_xml = _read_bytes(xml_dest, 'existing backup') if os.path.exists(xml_dest) else None
    try:
        previous_manifest = read_manifest(manifest_path) if os.path.exists(manifest_path) else {}
    except ManifestError:
        previous_manifest = {}

    record = {
        'kind': BACKUP_KIND,
        'created': iso_time(),
        'omerodir': config.cli.omerodir,
        'profile': config.cli.profile,
        'omero_server_version': versions['omero_server'],
        'omero_py_version': versions['omero_py'],
        'key_count': len(saved),
        'unloadable_keys': problems,
        'files': [
            {'path': os.path.basename(dest), 'sha256': _sha256(text), 'size': len(text.encode('utf-8'))},
            {'path': os.path.basename(xml_dest), 'sha256': _sha256(xml_bytes), 'size': len(xml_bytes)},
        ],
    }
    recorded_keys = ('kind', 'profile', 'omero_server_version', 'omero_py_version', 'unloadable_keys')
    same = (previous_text == text and previous_xml is not None
            and normalized_config_xml(previous_xml) == normalized_config_xml(xml_bytes)
            and previous_manifest.get('complete') is True
            and all(previous_manifest.get(key) == record[key] for key in recorded_keys))
    result = {'dest': dest, 'config_xml_dest': xml_dest, 'manifest': manifest_path, 'profile': config.cli.profile,
              'key_count': len(saved), 'sha256': record['files'][0]['sha256'], 'size': record['files'][0]['size'],
              'unloadable_keys': problems,
              'omero_version': _version_of(versions), 'omero_server_version': versions['omero_server'],
              'omero_py_version': versions['omero_py'], 'changed': not same,
              'diff': make_diff(previous, saved, dest if previous_text is not None else '(absent)', 'omero config get')}
    result.update(compare(previous, saved))
    if same or check_mode:
        return result

    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        ensure_private_dir(directory, owner=owner, group=group)
    # The old manifest stops vouching for the files before they change; 'complete' comes back only at the end.
    if previous_manifest:
        write_manifest(manifest_path, dict(previous_manifest), complete=False, owner=owner, group=group)
    atomic_write(dest, text, mode=0o600, owner=owner, group=group)
    atomic_write(xml_dest, xml_bytes, mode=0o600, owner=owner, group=group)
    write_manifest(manifest_path, record, complete=True, owner=owner, group=group)
    return result


def managed_config_text(props, src):
    lines = ['# Written by omero.backup.config_load from %s.\n' % src,
             '# The ome.omero_server role loads every *.omero file here at each start, in name order;\n',
             '# this file restores the loaded settings after that. Remove it to let the role own them again.\n']
    lines += ['config set -- %s %s\n' % (shell_quote(key), shell_quote(props[key])) for key in sorted(props)]
    return ''.join(lines)


def _write_managed(directory, name, props, src, user, check_mode):
    if not os.path.isdir(directory):
        raise ConfigError('managed_config_dir %s does not exist' % directory)
    path = os.path.join(directory, name)
    text = managed_config_text(props, src)
    existing = None
    if os.path.exists(path):
        existing = _read_bytes(path, 'managed config file').decode('utf-8', 'replace')
    group = None
    if user:
        try:
            group = pwd.getpwnam(user).pw_gid
        except KeyError:
            raise ConfigError('OMERO system user %r does not exist on this host' % user)
    changed = existing != text
    if existing is not None and not changed:
        stats = os.stat(path)
        changed = (stats.st_mode & 0o777) != MANAGED_CONFIG_MODE or (group is not None and os.geteuid() == 0 and stats.st_gid != group)
    if changed and not check_mode:
        # Readable by the service (group), not writable by it, secret to everyone else.
        atomic_write(path, text, mode=MANAGED_CONFIG_MODE, group=group if os.geteuid() == 0 else None)
    return {'path': path, 'changed': changed}


def load(config, src, mode='merge', force=False, managed_config_dir=None, managed_config_file=MANAGED_CONFIG_FILE,
         check_mode=False):
    """Load a saved file into the profile. Returns the result dict."""
    if mode not in ('merge', 'replace'):
        raise ConfigError('mode must be merge or replace, not %r' % mode)
    data = _read_bytes(src, 'saved config')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigError('saved config %s is not UTF-8 text' % src)
    wanted = parse_saved(text)
    masked = masked_keys(wanted)
    if masked:
        raise ConfigError('%s holds masked passwords (%s = %s): it was saved with a plain `omero config get` and would '
                          'restore a server that cannot reach its database; save with omero.backup.config_save instead'
                          % (src, ', '.join(masked), MASK))
    manifest_path = manifest_path_for(src)
    manifest = None
    if os.path.exists(manifest_path):
        try:
            manifest = read_manifest(manifest_path)
        except ManifestError as exc:
            raise ConfigError(str(exc))
        if manifest.get('complete') is not True and not force:
            raise ConfigError('manifest %s is not complete: the save that wrote %s did not finish' % (manifest_path, src))
        recorded = dict((entry['path'], entry['sha256']) for entry in manifest.get('files', []))
        expected = recorded.get(os.path.basename(src))
        if expected and expected != _sha256(data) and not force:
            raise ConfigError('%s does not match the sha256 in %s: it changed after the backup' % (src, manifest_path))
    elif not force:
        raise ConfigError('no manifest %s beside %s records which OMERO version it came from; a config is restored only '
                          'into a matching version: set force=true to load it anyway' % (manifest_path, src))

    config.remember_secrets(wanted)
    config.check(require_config_xml=False)
    config_xml_absent = not config.config_xml_exists()
    if config_xml_absent:
        # A reinstalled OMERO.server before its first `config` command: an empty profile. No `config` command may
        # run before the load itself, as any of them would create the file (and check mode must create nothing).
        config.check_config_xml_creatable()
        current, versions = {}, config.read_versions()
    else:
        current, versions = config.read()
    config.remember_secrets(current)
    backup_versions = {}
    if manifest is not None:
        backup_versions = {'omero_server': manifest.get('omero_server_version'), 'omero_py': manifest.get('omero_py_version')}
        mismatch = _version_mismatch(backup_versions, versions)
        if mismatch and not force:
            raise ConfigError('refusing to load %s into a different OMERO version (%s); restore the config into the '
                              'version it was saved from, or set force=true' % (src, mismatch))

    if mode == 'merge':
        conflicts = sorted(key for key in wanted if key in current and current[key] != wanted[key])
        if conflicts:
            raise ConfigError('merge would change existing value(s) of %s, which `omero config load` refuses '
                              '(Duplicate property); nothing was written. Use mode=replace to make the profile equal '
                              'to %s' % (', '.join(conflicts), src))
        target = dict(current)
        target.update(wanted)
    else:
        target = dict(wanted)

    changes = compare(current, target)
    changed = current != target
    before_header = 'profile %s' % (config.cli.profile or '(active)')
    if config_xml_absent:
        before_header += ' (%s absent)' % config.config_xml
    result = {'src': src, 'mode': mode, 'profile': config.cli.profile, 'key_count': len(target),
              'omero_version': _version_of(versions), 'backup_omero_version': _version_of(backup_versions) if manifest else None,
              'changed': changed, 'managed_config': None,
              'diff': make_diff(current, target, before_header, src)}
    result.update(changes)
    if changed and not check_mode:
        after = config.apply(current, target)
        if after != target:
            wrong = compare(target, after)
            raise ConfigError('after loading %s the profile differs from it (added %s, removed %s, changed %s)'
                              % (src, wrong['keys_added'], wrong['keys_removed'], wrong['keys_changed']))
    if managed_config_dir:
        managed = _write_managed(managed_config_dir, managed_config_file, wanted, src, config.cli.user, check_mode)
        result['managed_config'] = managed
        result['changed'] = result['changed'] or managed['changed']
    return result
