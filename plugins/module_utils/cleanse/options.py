# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Orphan cleanse of an OMERO binary repository (Pixels/, Files/, Thumbnails/).

Two backends decide what is an orphan:

* ``database`` reads the ids of ``pixels``, ``originalfile`` and ``thumbnail``
  once per table (one query per million ids, kept as sorted 8-byte arrays,
  read in a background thread) and streams the directory walk against them: no per-file query, memory bounded by the row
  count, and no OMERO.server or session needed.
* ``omero`` runs the real ``omero admin cleanse`` and parses what it prints.

Both share the interlocks that keep a cleanse from eating a restored server,
the data dir lock (one cleanse at a time per data dir), and the result shape.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed, OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import omero_cli_argument_spec
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec

SUBDIRECTORIES = ('Pixels', 'Files', 'Thumbnails')
TABLES = {'Pixels': 'pixels', 'Files': 'originalfile', 'Thumbnails': 'thumbnail'}
# omero admin cleanse asks the server about this many ids per query.
OMERO_QUERY_BATCH = 25
# The cleanse step's own options, as the module declares them: the one place their defaults are written.
STEP_OPTIONS = dict(
    state=dict(type='str', default='cleansed', choices=['cleansed', 'restored']),
    datadir=dict(type='path', default='/OMERO'),
    db=dict(type='str', default='omero'),
    backend=dict(type='str', default='database', choices=['database', 'omero']),
    subdirectories=dict(type='list', elements='str', choices=list(SUBDIRECTORIES), default=list(SUBDIRECTORIES)),
    managed_repository_empty_dirs=dict(type='bool', default=False),
    quarantine_dir=dict(type='path'),
    min_age=dict(type='str', default='1h'),
    max_id_margin=dict(type='int', default=1000),
    force=dict(type='bool', default=False),
    max_listed=dict(type='int', default=100),
    report_file=dict(type='path'),
    omero_host=dict(type='str', default='localhost'),
    omero_port=dict(type='int', default=4064),
    omero_user=dict(type='str', default='root'),
    omero_password=dict(type='str', no_log=True),
    session_idle_timeout=dict(type='int', default=3600),
    lock_dir=dict(type='path'),
)


def argument_spec():
    """The cleanse module's argument spec: PostgreSQL access, the omero CLI, and STEP_OPTIONS."""
    spec = postgres_argument_spec()
    spec.update(omero_cli_argument_spec())
    spec.update(STEP_OPTIONS)
    return spec


class CleanseRefused(OperationFailed):
    """An interlock fired; nothing was removed."""

    def __init__(self, reasons, result, what='refusing to cleanse, nothing was removed'):
        super(CleanseRefused, self).__init__(what + ': ' + ' '.join(reasons), result)
        self.reasons = reasons


def check_subdirectories(subdirectories):
    chosen = list(subdirectories or SUBDIRECTORIES)
    unknown = [name for name in chosen if name not in SUBDIRECTORIES]
    if unknown:
        raise OmeroBackupError('unknown subdirectories %s: choose from %s' % (', '.join(unknown), ', '.join(SUBDIRECTORIES)))
    # The order of the walk is fixed so reports compare across runs.
    return [name for name in SUBDIRECTORIES if name in chosen]


class CleanseOptions(object):
    """One cleanse, read once from the module's params: durations in seconds, subdirectories checked and ordered.

    A key a caller outside Ansible (a test, a benchmark) leaves out takes the argument spec's default (base/params.py
    given()), so the defaults stay written once, in argument_spec(). ``connection`` is the dict the PostgreSQL adapter reads.
    """

    def __init__(self, params):
        for key, value in given(argument_spec(), params).items():
            setattr(self, key, value)
        self.connection = dict((key, getattr(self, key)) for key in postgres_argument_spec())
        self.min_age_seconds = parse_duration(self.min_age, 'min_age')
        self.subdirectories = check_subdirectories(self.subdirectories)

    @classmethod
    def of(cls, params):
        """``params`` as CleanseOptions (unchanged when it is one already)."""
        return params if isinstance(params, cls) else cls(params)

    def cli_options(self):
        return dict(omerodir=self.omerodir, omero_command=self.omero_command, user=self.user, profile=self.profile)
