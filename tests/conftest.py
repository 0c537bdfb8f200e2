# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by every test: sandboxes (real PostgreSQL, real files) and a free port.

`sandbox` is one small sandbox for the whole session: tests must not damage it.
Tests that break things build their own with `sandbox_factory(**knobs)`.
Set OMERO_SANDBOX_KEEP=1 to leave sandboxes on disk after the run for debugging.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import sys

import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)
for _path in (os.path.join(REPO_ROOT, 'tools'), TESTS_DIR):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import omero_sandbox  # noqa: E402  (needs the sys.path entry above)
from helpers.sandbox import free_tcp_port  # noqa: E402

SESSION_SANDBOX_KNOBS = {'objects': 60, 'orphans': 12, 'seed': 1}


def _keep():
    return os.environ.get('OMERO_SANDBOX_KEEP') == '1'


@pytest.fixture(scope='session')
def sandbox(tmp_path_factory):
    """Description (dict) of a small session-wide sandbox; read-only for tests."""
    root = str(tmp_path_factory.mktemp('sandbox'))
    description = omero_sandbox.build(root, **SESSION_SANDBOX_KNOBS)
    yield description
    if not _keep():
        omero_sandbox.destroy(root)


@pytest.fixture
def sandbox_factory(tmp_path_factory):
    """Build throw-away sandboxes: `sandbox_factory(objects=30, orphans=6, seed=2)` -> description."""
    roots = []

    def make(**knobs):
        root = str(tmp_path_factory.mktemp('sandbox'))
        roots.append(root)
        knobs.setdefault('objects', 30)
        knobs.setdefault('orphans', 6)
        return omero_sandbox.build(root, **knobs)

    yield make
    if not _keep():
        for root in roots:
            omero_sandbox.destroy(root)


@pytest.fixture
def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_tcp_port()
