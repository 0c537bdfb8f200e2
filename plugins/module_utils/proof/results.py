# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a proof found (counts per algorithm, bounded lists for the task, every bad file for the report) and the
files it publishes: the state file, the 0600 report, the ``omero_backup_proof_*`` metrics."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.proof import state as proof_state
from ansible_collections.omero.backup.plugins.module_utils.status import render_proof_metrics

STATUSES = ('proven', 'mismatched', 'missing', 'unhashed', 'dangling')
# Bad news: the task fails on these. Unhashed files have nothing to be compared with; a dangling link's target lives
# outside the data dir (an in-place import), as verify reports it.
BAD = ('mismatched', 'missing')


def _entry(outcome):
    task = outcome.task
    entry = {'id': task.id, 'path': escape(task.relpath), 'algorithm': task.algorithm}
    if outcome.status == 'mismatched':
        entry.update(expected=task.expected, actual=outcome.actual, size_expected=task.size, size_actual=outcome.size)
    if outcome.error:
        entry['error'] = outcome.error
    return entry


class Tally(object):
    def __init__(self, max_listed):
        self.max_listed = max_listed
        self.counts = dict((status, 0) for status in STATUSES)
        self.by_algorithm = {}
        self.listed = dict((status, []) for status in STATUSES if status != 'proven')
        self.everything_bad = dict((status, []) for status in STATUSES if status != 'proven')
        self.bytes = 0
        self.first_id = self.last_id = None

    def add(self, outcome):
        status = outcome.status
        self.counts[status] += 1
        self.bytes += outcome.read
        algorithm = outcome.task.algorithm or 'none'
        per = self.by_algorithm.setdefault(algorithm, dict((key, 0) for key in STATUSES + ('bytes',)))
        per[status] += 1
        per['bytes'] += outcome.read
        if status != 'proven':
            entry = _entry(outcome)
            self.everything_bad[status].append(entry)
            if len(self.listed[status]) < self.max_listed:
                self.listed[status].append(entry)
        if self.first_id is None:
            self.first_id = outcome.task.id
        self.last_id = outcome.task.id

    def result(self, duration):
        counts = dict(self.counts, bytes=self.bytes)
        problems = []
        for status in BAD:
            if self.counts[status]:
                shown = ', '.join(entry['path'] for entry in self.listed[status][:3])
                problems.append('%d file(s) %s, e.g. %s' % (self.counts[status], status, shown))
        result = {'counts': counts, 'files': sum(self.counts.values()), 'bytes': self.bytes,
                  'by_algorithm': self.by_algorithm, 'duration': round(duration, 3),
                  'rate_bytes_per_second': int(self.bytes / duration) if duration > 0 else None,
                  'problems': problems, 'ok': not problems}
        for status, entries in self.listed.items():
            result[status] = entries
        result['_report_lists'] = self.everything_bad
        return result


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read().decode('utf-8')
    except (IOError, OSError):
        return None


def _write_if_changed(path, text, check_mode, mode=0o600):
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise OmeroBackupError('directory %s does not exist (for %s)' % (parent, path))
    if _read(path) == text:
        return False
    if not check_mode:
        atomic_write(path, text, mode=mode)
    return True


def publish(options, new_state, result, check_mode, now):
    """Writes the state, report and metrics files that were asked for (none in check mode); True when one changed."""
    lists = result.pop('_report_lists')
    changed = False
    if options.state_file:
        changed = True  # the cursor or the last run's time moved
        if not check_mode:
            proof_state.write_state(options.state_file, new_state)
    if options.report_file:
        report = dict((key, value) for key, value in result.items() if key not in lists and key != 'warnings')
        report.update(lists)
        report['finished'] = now
        changed = _write_if_changed(options.report_file, json.dumps(report, indent=1, sort_keys=True) + '\n', check_mode) or changed
        result['report_file'] = options.report_file
    if options.metrics_file:
        metrics = render_proof_metrics(result, now)
        changed = _write_if_changed(options.metrics_file, metrics, check_mode, mode=0o644) or changed
    return changed
