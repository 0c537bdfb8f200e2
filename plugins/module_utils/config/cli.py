# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A profile read and written through the real ``omero`` CLI (OmeroConfig), and the versions it reports."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
import re
import stat
from shlex import quote as shell_quote

from ansible_collections.omero.backup.plugins.module_utils.config.props import (_DUPLICATE, ConfigError, ConfigLocked, is_password_key, MASK,
                                                                                parse_get_output, RC_LOCKED, READ_SCRIPT)
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCliError


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


def version_of(versions):
    return versions.get('omero_server') or versions.get('omero_py')


def version_mismatch(recorded, installed):
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
