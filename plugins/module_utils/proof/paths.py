# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an OMERO row's bytes live: the rules the proof and the missing-file report share.

* ``originalfile`` with ``repo`` NULL: ``<datadir>/Files/<id path>`` (tools/idpath: Dir-NNN groups);
* ``originalfile`` (or ``pixels``) with ``repo`` = the ManagedRepository's uuid (the ``hash`` of its
  ``Repository`` row): ``<managed dir>/<path><name>``, ``path`` relative to the repository root;
* ``pixels`` with ``repo`` NULL: ``<datadir>/Pixels/<id path>`` (or ``<id>_pyramid`` beside it);
* ``thumbnail``: ``<datadir>/Thumbnails/<id path>``.

Rows of other repositories (the script repository under lib/scripts) have no place in the data dir.
Paths are bytes: the database holds UTF-8, the file system any bytes.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import id_to_relpath

AREAS = {'originalfile': 'Files', 'pixels': 'Pixels', 'thumbnail': 'Thumbnails'}


def managed_uuid(conn):
    """The uuid of the ManagedRepository's Repository row, or None (no managed repository yet)."""
    row = postgres.query_one(conn, "SELECT hash FROM public.originalfile WHERE mimetype = 'Repository' "
                                   "AND name = 'ManagedRepository' ORDER BY id LIMIT 1")
    return row[0] if row else None


def to_bytes(text):
    return text if isinstance(text, bytes) else (text or '').encode('utf-8', 'surrogateescape')


def managed_relpath(path, name):
    """``<path><name>`` under the managed repository, as bytes (``path`` ends in '/' or is empty)."""
    path = to_bytes(path).lstrip(b'/')
    if path and not path.endswith(b'/'):
        path += b'/'
    return path + to_bytes(name)


def id_relpath(table, object_id):
    return ('%s/%s' % (AREAS[table], id_to_relpath(object_id))).encode('ascii')


def row_file(datadir, managed_dir, table, object_id, path, name, repo, managed):
    """(absolute path as bytes, shown relpath as bytes) of a row's file, or None when it is not in the data dir."""
    if repo is None:
        relpath = id_relpath(table, object_id)
        return os.path.join(to_bytes(datadir), relpath), relpath
    if managed is not None and repo == managed:
        relpath = managed_relpath(path, name)
        return os.path.join(to_bytes(managed_dir), relpath), b'ManagedRepository/' + relpath
    return None
