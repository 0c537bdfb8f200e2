# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logs module's step: compress or delete rolled logs in the configured (or given) log directory."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import fsync_dir
from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape, escaped_list
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.logs.descriptor import configured_log_dir
from ansible_collections.omero.backup.plugins.module_utils.logs.paths import DEFAULT_OMERODIR, LogsError, refuse_repository_path
from ansible_collections.omero.backup.plugins.module_utils.logs.rolled import compress, delete, plan_housekeeping, scan_rolled, stamp


def argument_spec():
    """The logs module's options: the one place their defaults are written."""
    return dict(
        path=dict(type='path'),
        omerodir=dict(type='path', default=DEFAULT_OMERODIR),
        datadir=dict(type='path', default='/OMERO'),
        state=dict(type='str', choices=['compressed', 'absent'], default='compressed'),
        keep=dict(type='int', default=0),
        older_than=dict(type='str'),
    )


class HousekeepingOptions(object):
    """One housekeeping run, read once from params (defaults from argument_spec()): older_than in seconds."""

    def __init__(self, params):
        for key, value in given(argument_spec(), params).items():
            setattr(self, key, value)
        if self.state not in ('compressed', 'absent'):
            raise LogsError('state must be compressed or absent, got %r' % (self.state,))
        self.older_than_seconds = parse_duration(self.older_than)

    def log_dir(self):
        """(log directory, where it was read: 'path' or the descriptor), refused inside a binary repository."""
        path, source = self.path, 'path'
        if not path:
            path, source = configured_log_dir(self.omerodir)
        refuse_repository_path(path, self.datadir)
        if not os.path.isdir(path):
            raise LogsError('log directory %s does not exist (read from %s)' % (path, source))
        return path, source


def housekeeping(params, check_mode=False, now=None):
    """Compress or delete rolled logs. ``params``: path, omerodir, datadir, state, keep, older_than."""
    opts = HousekeepingOptions(params)
    state = opts.state
    path, source = opts.log_dir()
    plan = plan_housekeeping(scan_rolled(path), state, opts.keep, opts.older_than_seconds, now)

    result = {'path': path, 'path_source': source, 'state': state, 'logs': {}, 'bytes_freed': 0, 'changed': False,
              'diff': {'before': '', 'after': ''}}
    before, after = [], []
    for log, parts in plan.items():
        report = {'files': [], 'kept': [entry.name for entry in parts['kept']], 'bytes': 0, 'bytes_freed': 0,
                  'created': [], 'skipped': []}
        before.extend(entry.name for entry in parts['kept'])
        after.extend(entry.name for entry in parts['kept'])
        for entry in parts['act']:
            before.append(entry.name)
            if check_mode:
                report['files'].append(entry.name)
                report['bytes'] += entry.size
                if state == 'absent':
                    report['bytes_freed'] += entry.size
                else:
                    report['bytes_freed'] = None
                    after.append('%s.%s.gz' % (entry.log, stamp(entry.mtime)))
                continue
            if state == 'absent':
                reason = delete(entry)
                created, freed = None, entry.size
            else:
                created, freed, reason = compress(entry)
            if created:
                report['created'].append(created)
                after.append(created)
            if reason:
                report['skipped'].append({'name': entry.name, 'reason': reason})
                after.append(entry.name)
                continue
            report['files'].append(entry.name)
            report['bytes'] += entry.size
            report['bytes_freed'] += freed
        result['changed'] = result['changed'] or bool(report['files'] or report['created'])
        if report['bytes_freed'] is None:
            result['bytes_freed'] = None
        elif result['bytes_freed'] is not None:
            result['bytes_freed'] += report['bytes_freed']
        result['logs'][log] = report
    if not check_mode and state == 'absent' and result['changed']:
        fsync_dir(path)
    _show_names(result)
    result['diff'] = {'before': ''.join(escape(name) + '\n' for name in sorted(before)),
                      'after': ''.join(escape(name) + '\n' for name in sorted(set(after))),
                      'before_header': path, 'after_header': path}
    return result


def _show_names(result):
    """File names in the result as names.escape() shows them (a result cannot carry undecodable bytes, and a
    newline would be lost in a listing), with the exact bytes of each escaped one in ``names_b64``."""
    names_b64 = {}
    shown = {}
    for log, report in result['logs'].items():
        for key in ('files', 'kept', 'created'):
            report[key] = escaped_list(report[key], names_b64)
        for skipped in report['skipped']:
            skipped['name'] = escaped_list([skipped['name']], names_b64)[0]
        shown[escaped_list([log], names_b64)[0]] = report
    result['logs'] = shown
    result['names_b64'] = names_b64
