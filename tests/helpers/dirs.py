# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Temporary directories with the mode a test needs (pytest's own tmp_path is private to the user running it)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def temp_dir(prefix, mode, parent=None):
    """A new directory of ``mode`` (for another user to reach, or a shared sticky one), removed afterwards."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent)
    os.chmod(path, mode)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
