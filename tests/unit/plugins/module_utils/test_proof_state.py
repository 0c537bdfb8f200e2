# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proof's state: cursor, cycles, the age of the oldest unproven file, and a state file that is not ours."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import stat

import pytest

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.proof import state as proof_state

COUNTS = {'proven': 3, 'mismatched': 0, 'missing': 0, 'unhashed': 1, 'dangling': 0, 'bytes': 300}


def test_cycle_goes_on_from_the_cursor_then_starts_over(tmp_path):
    path = str(tmp_path / 'proof.state')
    state, warnings = proof_state.start_state(path, 'db-1', '/OMERO', 1000.0)
    assert state['cursor'] == 0 and warnings == []
    state = proof_state.advance(state, COUNTS, 42, False, 1000.0)
    proof_state.write_state(path, state)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    state, warnings = proof_state.start_state(path, 'db-1', '/OMERO', 2000.0)
    assert state['cursor'] == 42 and state['cycle_counts']['proven'] == 3
    # Never proven yet: the oldest unproven file counts from the first run.
    assert proof_state.oldest_unproven_age(state, 2000.0) == 1000.0
    state = proof_state.advance(state, COUNTS, 99, True, 2000.0)
    assert state['cursor'] == 0 and state['cycle'] == 2 and state['last_cycle_counts']['proven'] == 6
    assert proof_state.oldest_unproven_age(state, 2500.0) == 1500.0  # since the completed cycle started
    state = proof_state.advance(state, COUNTS, 10, False, 3000.0)
    assert proof_state.oldest_unproven_age(state, 3000.0) == 2000.0


def test_state_of_another_database_starts_a_new_proof_with_a_warning(tmp_path):
    path = str(tmp_path / 'proof.state')
    proof_state.write_state(path, proof_state.advance(proof_state.fresh_state('db-1', '/OMERO', 1.0), COUNTS, 7, False, 1.0))
    state, warnings = proof_state.start_state(path, 'db-2', '/OMERO', 5.0)
    assert state['cursor'] == 0 and state['db_uuid'] == 'db-2' and 'db-1' in warnings[0]
    state, warnings = proof_state.start_state(path, 'db-1', '/OMERO', 5.0, restart=True)
    assert state['cursor'] == 0 and warnings == []


@pytest.mark.parametrize('content', [b'not json', b'[]', b'{"format_version": 99, "cursor": 1}'])
def test_a_file_that_is_not_a_state_file_is_refused(tmp_path, content):
    path = tmp_path / 'proof.state'
    path.write_bytes(content)
    with pytest.raises(OmeroBackupError, match='remove it to start the proof over'):
        proof_state.start_state(str(path), 'db-1', '/OMERO', 1.0)
