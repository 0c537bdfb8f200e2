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

The package, by concern: paths.py (defaults, LogsError, the repository rule), descriptor.py (OMERO_LOGS in the
grid descriptors), rolled.py (rolled logs: scan, plan, compress, delete), housekeeping.py (the logs module's step),
relocate.py (the log_dir module's step).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError


DEFAULT_OMERODIR = '/opt/omero/server/OMERO.server'
DEFAULT_USER = 'omero-server'


class LogsError(OmeroBackupError):
    """A refusal or failure whose message is meant for the operator."""


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
