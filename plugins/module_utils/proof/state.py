# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a budgeted proof stopped, so that a store too big for one night is proven over N nights.

The proof walks ``originalfile`` rows in id order. The state file holds the cursor (every row
with an id up to it was proven in the current cycle), when the cycle started, when the last
cycle completed, and the counts of the cycle so far. Invariant: the cursor only moves past a
row once its file was read (or found missing or unhashed), so a killed run at worst proves a
few files twice, never skips one. Written through base/atomic (temp + fsync + rename), 0600.

The age of the oldest unproven file: a row past the cursor was last proven in the previous
cycle, at the latest when that cycle started; with no completed cycle it was never proven and
its age counts from the first run.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError

STATE_FORMAT = 1
COUNT_KEYS = ('proven', 'mismatched', 'missing', 'unhashed', 'dangling', 'bytes')


def fresh_state(db_uuid, target, now):
    return {'format_version': STATE_FORMAT, 'db_uuid': db_uuid, 'target': target, 'cursor': 0,
            'first_run': now, 'cycle': 1, 'cycle_started': now, 'previous_cycle_started': None,
            'last_cycle_completed': None, 'last_run': None, 'cycle_counts': dict((key, 0) for key in COUNT_KEYS)}


def read_state(path):
    """The state dict, or None when there is no state file yet. A file that is not ours is an error, not a reset:
    silently starting over would hide that a big store is never proven to its end."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        if getattr(exc, 'errno', None) == 2:
            return None
        raise OmeroBackupError('cannot read the proof state file %s: %s' % (path, exc.strerror or exc))
    try:
        state = json.loads(data.decode('utf-8'))
    except ValueError:
        raise OmeroBackupError('%s is not a proof state file (not JSON); remove it to start the proof over' % path)
    if not isinstance(state, dict) or state.get('format_version') != STATE_FORMAT or not isinstance(state.get('cursor'), int):
        raise OmeroBackupError('%s is not a proof state file of format %d; remove it to start the proof over' % (path, STATE_FORMAT))
    return state


def start_state(path, db_uuid, target, now, restart=False):
    """(state, warnings): the saved state when it is about this database and target, else a fresh one."""
    warnings = []
    state = None if (path is None or restart) else read_state(path)
    if state is not None and (state.get('db_uuid') != db_uuid or state.get('target') != target):
        warnings.append('the proof state file %s is about database %s at %s; starting a new proof of %s at %s'
                        % (path, state.get('db_uuid'), state.get('target'), db_uuid, target))
        state = None
    if state is None:
        state = fresh_state(db_uuid, target, now)
    return state, warnings


def advance(state, counts, cursor, finished, now):
    """The state after a run that proved every row up to ``cursor``; ``finished``: no row is left in the cycle."""
    state = dict(state)
    cycle_counts = dict(state['cycle_counts'])
    for key in COUNT_KEYS:
        cycle_counts[key] = cycle_counts.get(key, 0) + counts.get(key, 0)
    state['last_run'] = now
    if finished:
        state['last_cycle_completed'] = now
        state['last_cycle_counts'] = cycle_counts
        state['previous_cycle_started'] = state['cycle_started']
        state['cycle'] = state.get('cycle', 1) + 1
        state['cycle_started'] = now
        state['cursor'] = 0
        state['cycle_counts'] = dict((key, 0) for key in COUNT_KEYS)
    else:
        state['cursor'] = cursor
        state['cycle_counts'] = cycle_counts
    return state


def oldest_unproven_age(state, now):
    """Seconds since the oldest file not yet proven was last proven (or since the first run: never proven)."""
    # Rows past the cursor were last proven in the previous cycle, at the latest when it started (just after a
    # completed cycle the cursor is 0 and that cycle is the previous one).
    since = state.get('previous_cycle_started') or state['first_run']
    return max(0.0, now - since)


def write_state(path, state):
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OmeroBackupError('directory %s does not exist (for the proof state file %s)' % (parent, path))
    atomic_write(path, json.dumps(state, indent=1, sort_keys=True) + '\n', mode=0o600)
