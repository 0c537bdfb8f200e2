# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running the real ``omero`` CLI the way the server's own user would.

omero refuses to run as root, and files it writes (config.xml, its lock)
must stay owned by the OMERO system user, so commands are run as that user
through ``runuser`` when the module itself runs as root.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd

from ansible_collections.omero.backup.plugins.module_utils.base.output import tail

DEFAULT_OMERODIR = '/opt/omero/server/OMERO.server'
DEFAULT_USER = 'omero-server'


class OmeroCliError(Exception):
    pass


def omero_cli_argument_spec():
    return dict(
        omerodir=dict(type='path', default=DEFAULT_OMERODIR),
        omero_command=dict(type='path'),
        user=dict(type='str', default=DEFAULT_USER),
        profile=dict(type='str'),
    )


class OmeroCli(object):
    def __init__(self, runner, omerodir=DEFAULT_OMERODIR, omero_command=None, user=DEFAULT_USER, profile=None):
        self.runner = runner
        self.omerodir = omerodir
        self.command = omero_command or os.path.join(omerodir, 'bin', 'omero')
        self.user = user
        self.profile = profile

    def _switch_user(self):
        if not self.user or os.geteuid() != 0:
            return []
        try:
            target = pwd.getpwnam(self.user)
        except KeyError:
            raise OmeroCliError('OMERO system user %r does not exist on this host' % self.user)
        if target.pw_uid == os.geteuid():
            return []
        return ['runuser', '-u', self.user, '--']

    def argv(self, *args):
        return self._switch_user() + [self.command] + [str(arg) for arg in args]

    def env(self, extra=None):
        env = {'OMERODIR': self.omerodir}
        if self.user:
            try:
                env['HOME'] = pwd.getpwnam(self.user).pw_dir
            except KeyError:
                pass
        if self.profile:
            env['OMERO_CONFIG'] = self.profile
        env.update(extra or {})
        return env

    def check_installation(self):
        if not os.path.isdir(self.omerodir):
            raise OmeroCliError('OMERODIR %s does not exist' % self.omerodir)
        if not os.path.exists(self.command):
            raise OmeroCliError('omero command %s not found (set omero_command or omerodir)' % self.command)

    def run(self, *args, **kwargs):
        extra_env = kwargs.pop('extra_env', None)
        check = kwargs.pop('check', True)
        data = kwargs.pop('data', None)
        cwd = self.omerodir if os.path.isdir(self.omerodir) else None
        rc, out, err = self.runner(self.argv(*args), env=self.env(extra_env), data=data, cwd=cwd)
        if check and rc != 0:
            command = ' '.join(str(a) for a in args)
            raise OmeroCliError('omero %s failed (rc=%d): %s' % (command, rc, tail(err or out)))
        return rc, out, err
