# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks every module runs on its options right after AnsibleModule(), before it does anything.

Invariant: a module that called :func:`check_params` never sees an empty or relative path (a
module's working directory is wherever Ansible happened to start it; ``dest: ''`` there once meant
"delete the working directory"), nor more parallel jobs than the host can run.

Base layer: imports nothing of the collection.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

# More workers than this is a typing slip (jobs: 10000), not a tuning choice: each pg_dump/pg_restore
# job is a process and a database connection.
JOBS_PER_CPU = 4


def max_jobs(cpus=None):
    """The largest ``jobs`` accepted: 4 x the CPUs of this host, at least 1."""
    if cpus is None:
        cpus = os.cpu_count()
    return max(1, JOBS_PER_CPU * (cpus or 1))


def _show(value):
    # ascii(): a newline or undecodable byte in the value stays visible in the message.
    return ascii(value)


def path_problem(name, value):
    """Why ``value`` is not usable for the path option ``name`` (None when it is)."""
    if value is None:
        return None
    if not isinstance(value, str):
        return '%s must be a path, got %s' % (name, type(value).__name__)
    if value == '':
        return "%s is empty: give an absolute path (an empty path would mean the module's working directory)" % name
    if '\0' in value:
        return '%s %s contains a NUL byte, which no path can hold' % (name, _show(value))
    if not value.startswith('/'):
        return ("%s must be an absolute path, got %s (a relative path would be resolved against the module's "
                "working directory)" % (name, _show(value)))
    return None


def location_problem(name, value):
    """Like :func:`path_problem` for an rdiff-backup location: ``/abs/path`` or ``[user@]host::/abs/path``.

    Only the path part is checked here; rdiff.parse_location checks the host part when the module runs.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        return '%s must be a path or host::/path, got %s' % (name, type(value).__name__)
    if '::' not in value:
        return path_problem(name, value)
    host, path = value.split('::', 1)
    if path == '':
        return '%s %s names no path after "::": give host::/absolute/path' % (name, _show(value))
    if not path.startswith('/'):
        return ('%s %s: the path after "::" must be absolute (a relative one would be resolved against the remote '
                "user's working directory)" % (name, _show(value)))
    return None


def relative_problem(name, value, base_name):
    """For an option documented as relative to another option ``base_name`` (never to the working directory)."""
    if value is None:
        return None
    if isinstance(value, str) and value != '' and not value.startswith('/') and '\0' not in value:
        return None
    problem = path_problem(name, value)
    if problem and value == '':
        return "%s is empty: give an absolute path or one relative to %s" % (name, base_name)
    return problem


def jobs_problem(name, value, cpus=None):
    """Why ``value`` is not a usable number of parallel jobs (None when it is)."""
    if value is None:
        return None
    limit = max_jobs(cpus)
    if value < 1:
        return '%s must be 1 or more, got %d' % (name, value)
    if value > limit:
        return ('%s=%d is more than %d (%d x the %d CPUs of this host): each job is a process and a database '
                'connection; give %d or fewer' % (name, value, limit, JOBS_PER_CPU, limit // JOBS_PER_CPU, limit))
    return None


def _path_options(spec, params, prefix=''):
    """(name, value) of every type='path' option, list elements and sub-options included."""
    for name, option in sorted(spec.items()):
        value = (params or {}).get(name)
        label = prefix + name
        if option.get('type') == 'path':
            yield label, value
        elif option.get('type') == 'list' and option.get('elements') == 'path':
            for index, element in enumerate(value or []):
                yield '%s[%d]' % (label, index), element
        if option.get('options') and value:
            for index, item in enumerate(value if isinstance(value, list) else [value]):
                sub_prefix = '%s[%d].' % (label, index) if isinstance(value, list) else label + '.'
                yield from _path_options(option['options'], item, sub_prefix)


def problems(spec, params, locations=(), relative_to=None, jobs=(), cpus=None):
    """Every problem with ``params`` under ``spec``, as messages that name the option.

    ``locations``: str options that take ``/abs/path`` or ``host::/abs/path``. ``relative_to``: {option: other
    option} for the few path options documented as relative to another option. ``jobs``: int options that
    count parallel workers.
    """
    relative_to = relative_to or {}
    found = []
    for name, value in _path_options(spec, params):
        if name in relative_to:
            found.append(relative_problem(name, value, relative_to[name]))
        else:
            found.append(path_problem(name, value))
    for name in locations:
        found.append(location_problem(name, params.get(name)))
    for name in jobs:
        found.append(jobs_problem(name, params.get(name), cpus))
    return [problem for problem in found if problem]


def check_params(module, locations=(), relative_to=None, jobs=()):
    """Fail ``module`` with every problem found in its options; call it right after AnsibleModule()."""
    found = problems(module.argument_spec, module.params, locations=locations, relative_to=relative_to, jobs=jobs)
    if found:
        module.fail_json(msg='; '.join(found), changed=False)


def given(spec, params):
    """Every option of ``spec`` from ``params``: the value given, else the spec's default, the only place a
    default is written (a step's options object reads params through this once, with or without Ansible)."""
    values = {}
    for name, option in spec.items():
        value = (params or {}).get(name)
        if value is None:
            value = option.get('default')
            if isinstance(value, list):
                value = list(value)
        values[name] = value
    return values
