# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Some paths of an rdiff-backup increment into a staging directory (the granular restore of datadir/granular.py).

rdiff-backup restores a sub-path of a repository by itself: ``restore --at EPOCH REPO/relpath TARGET``, one run
per path. It does not restore the directories above that path: the ones this module makes in the staging tree
are reported in ``details['made_dirs']`` so that the step gives them the owner and mode of dest's directories.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.engines.base import RestoreOutcome
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import restore_problems


class RdiffPaths(object):
    """Granular restore through an RdiffBackupEngine (its adapter, its ssh schema, its command log)."""

    def __init__(self, engine):
        self.engine = engine

    def restore(self, repo, point, relpaths, into):
        """Each of ``relpaths`` (bytes, relative to the data dir) of ``point`` into ``into``; (root, RestoreOutcome)
        with root the directory of ``into`` that stands for the data dir (``into`` itself here)."""
        # The engine's adapter carries the ssh schema it built and checked for this repository.
        tool = self.engine._rdiff(repo)  # pylint: disable=protected-access
        problems, made, rc = [], [], 0
        for relpath in relpaths:
            parts = relpath.split(b'/')
            for depth in range(1, len(parts)):
                directory = os.path.join(os.fsencode(into), b'/'.join(parts[:depth]))
                if not os.path.isdir(directory):
                    os.mkdir(directory, 0o700)
                    made.append(b'/'.join(parts[:depth]))
            action = ['restore', '--at', str(point.epoch)]
            target = os.fsdecode(os.path.join(os.fsencode(into), relpath))
            outcome, argv = tool.run(action, [repo.child(os.fsdecode(relpath)), target])
            self.engine.commands.append(argv)
            rc = rc or outcome.rc
            problems.extend(restore_problems(outcome))
        return into, RestoreOutcome(point, problems, rc, details={'made_dirs': made})
