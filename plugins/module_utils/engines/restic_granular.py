# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Some paths of a restic snapshot into a staging directory (the granular restore of datadir/granular.py).

A snapshot's tree root is the data dir (the engine backs it up as ``.``), so a path relative to the data dir is
``/<relpath>`` in the snapshot, and ``restic restore --include /<relpath>`` writes it, with the directories above
it and their recorded owner, mode and times, under the target. The set's dump and config ride in the same
snapshot at their absolute paths: a request whose first component is the first component of one of the
snapshot's paths could name them instead of the data dir, and is refused.

Only what was asked is read: ``restic ls`` of ``/.omero/repository`` (restic 0.14 skips the subtrees a
directory filter does not reach) instead of a listing of the whole snapshot, so the cost of restoring one
fileset does not grow with the store.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.engines.base import EngineError
from ansible_collections.omero.backup.plugins.module_utils.tools.restic import parse_ls

REPOSITORY_DIR = '/.omero/repository'


class ResticPaths(object):
    """Granular restore through a ResticEngine (its secrets, its lock rule, its command log)."""

    def __init__(self, engine):
        self.engine = engine

    def _extra_tops(self, point):
        """First components of the snapshot's own paths (the data dir's, the dump's, the config's)."""
        return set(path.strip('/').split('/')[0] for path in point.details.get('paths') or [] if path.strip('/'))

    def restore(self, repo, point, relpaths, into):
        """Each of ``relpaths`` (bytes, relative to the data dir) of ``point`` into ``into``; (root, RestoreOutcome)
        with root the directory of ``into`` that stands for the data dir (``into`` itself)."""
        tops = self._extra_tops(point)
        clash = [path for path in relpaths if os.fsdecode(path.split(b'/')[0]) in tops]
        if clash:
            raise EngineError('%s: the snapshot %s holds paths outside the data dir under the same top-level name '
                              '(%s: the set\'s dump or config); restore those with omero.backup.datadir_restore or '
                              'restic itself' % (', '.join(escape(path) for path in clash), point.id[:8],
                                                 ', '.join(sorted(tops))))
        includes = ['/' + os.fsdecode(path) for path in relpaths]
        return into, self.engine.restore_paths(repo, point, into, includes)

    def repository_uuids(self, repo, point):
        """Names of the ``.omero/repository/<uuid>`` dirs holding a ``repo_uuid`` in ``point``, from a listing of
        that directory only."""
        # The engine's runner carries the password environment, the stale-lock rule and the wrong-password message.
        outcome = self.engine._run(repo, ['ls'], [point.id, REPOSITORY_DIR, '--recursive'],  # pylint: disable=protected-access
                                   json_output=True, no_lock=True)
        if outcome.failed:
            raise EngineError('cannot list %s of snapshot %s in %s: %s'
                              % (REPOSITORY_DIR, point.id[:8], repo.spec, outcome.describe()))
        uuids = set()
        for node in parse_ls(outcome.out)[1]:
            parts = node['path'].split('/')
            if len(parts) == 5 and parts[1:3] == ['.omero', 'repository'] and parts[4] == 'repo_uuid':
                uuids.add(parts[3])
        return sorted(uuids)
