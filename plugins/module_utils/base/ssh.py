# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one ssh command line the data dir engines hand to their tools (rdiff-backup's remote schema, restic's
sftp.command): both tools run it through a shell-like split, so no password can ever go here."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

CONNECT_TIMEOUT = 30
# A host part that is safe to hand to an ssh command line a tool runs through a shell.
HOST = re.compile(r'^(?:[A-Za-z0-9_.+-]+@)?[A-Za-z0-9_.-]+$')


def ssh_argv(ssh_user=None, ssh_key=None, ssh_port=None, ssh_options=None, compression=False):
    """``ssh`` and its options, up to (not including) the host.

    BatchMode makes a missing key fail at once instead of waiting for a password; ConnectTimeout comes last
    because ssh keeps the first value it sees for an option, so this default yields to one in ssh_options.
    """
    parts = ['ssh']
    if compression:
        parts.append('-C')
    parts += ['-o', 'BatchMode=yes']
    if ssh_port:
        parts += ['-p', str(int(ssh_port))]
    if ssh_key:
        parts += ['-i', ssh_key]
    if ssh_user:
        parts += ['-l', ssh_user]
    for option in ssh_options or []:
        parts += ['-o', option]
    return parts + ['-o', 'ConnectTimeout=%d' % CONNECT_TIMEOUT]
