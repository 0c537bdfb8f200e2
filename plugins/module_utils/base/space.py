# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk space: what a tree uses and what a filesystem has free."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os


def directory_usage(path):
    """Bytes used by the regular files below ``path`` (links not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def free_bytes(path):
    """Free bytes for an unprivileged writer on the filesystem holding ``path``
    (or its nearest existing parent, so a destination yet to be made can be checked)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize
