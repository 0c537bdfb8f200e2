# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The other sources the official OMERO backup procedure names (edited grid descriptors and templates,
lib/scripts, the role-managed config/*.omero, certificates), archived as one tar.gz beside the config backup.

The archive is reproducible: members in the order given and, below a directory, sorted (tarfile's own walk),
GNU format, and a gzip header without a file name or time stamp. So unchanged sources give the same bytes, an
unchanged archive is left alone and reported unchanged, and a changed one replaces the old atomically
(base/atomic). The sources are configuration and scripts, small enough to build in memory, which also lets
check mode compare without writing anything.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import gzip
import hashlib
import io
import os
import tarfile

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file


class OtherSourcesOptions(object):
    """The module's options, read once."""

    def __init__(self, params):
        self.paths = list(params['paths'])
        self.dest = params['dest']


def build(paths):
    """(archive bytes, members archived, paths missing): members are the paths without their leading '/'."""
    members, missing = [], []
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode='w', format=tarfile.GNU_FORMAT) as tar:
        for path in paths:
            if not os.path.lexists(path):
                missing.append(path)
                continue
            member = path.lstrip('/')
            tar.add(path, arcname=member, recursive=True)
            members.append(member)
    packed = io.BytesIO()
    with gzip.GzipFile(filename='', mode='wb', fileobj=packed, mtime=0) as zipped:
        zipped.write(raw.getvalue())
    return packed.getvalue(), members, missing


def archive(params, check_mode=False):
    options = OtherSourcesOptions(params)
    relative = [path for path in options.paths if not os.path.isabs(path)]
    if relative:
        raise OmeroBackupError('paths must be absolute: %s' % ', '.join(escape(path) for path in relative))
    data, members, missing = build(options.paths)
    digest = hashlib.sha256(data).hexdigest()
    unchanged = os.path.isfile(options.dest) and sha256_file(options.dest) == digest
    if not unchanged and not check_mode:
        if not os.path.isdir(os.path.dirname(options.dest) or '.'):
            raise OmeroBackupError('%s: its directory does not exist' % escape(options.dest))
        atomic_write(options.dest, data, mode=0o600)
    return {'changed': not unchanged, 'path': options.dest, 'size': len(data), 'sha256': digest,
            'sources': [escape(member) for member in members], 'missing': [escape(path) for path in missing]}
