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

The package, by concern: props.py (a profile's properties: masking, rendering, parsing, comparing), cli.py
(OmeroConfig: the profile through the real omero CLI), save.py (config_save's step), load.py (config_load's step).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import re

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError


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


def sha256_text(data):
    if not isinstance(data, bytes):
        data = data.encode('utf-8')
    return hashlib.sha256(data).hexdigest()


def read_bytes(path, what):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise ConfigError('cannot read %s %s: %s' % (what, path, exc.strerror or exc))
