# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Ansible glue: how every module of the collection ends, failed or not.

A module builds its AnsibleModule, checks its params and calls ``run_step(module, step, ...)``. The step returns
a result dict or raises; nothing below this file calls exit_json or fail_json. The rules, once:

* the result is reported as the step gives it: AnsibleModule would otherwise overwrite size/mode/owner/state
  of a result that has ``path`` or ``dest`` with a stat() of that path (a dump's size, a log cleanup's state);
* ``warnings`` in a result become task warnings (and, with keep_warnings, also the ``warnings_list`` field);
* ``diff`` is kept only when diff mode was asked for, on success and on failure alike;
* OperationFailed fails with its message and its result (``changed`` as the result says, else false);
  any other OmeroBackupError fails with its message and changed=false. Only the operator's messages reach the
  task: an unexpected exception stays a traceback.

Imports: base/ only (errors). Steps and engines never import this file.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError, OperationFailed

__all__ = ('OmeroBackupError', 'OperationFailed', 'run_step', 'finish', 'fail', 'report_results_as_given')


def report_results_as_given(module):
    """Stop AnsibleModule from overwriting size/mode/owner/state in a result that has
    ``path`` or ``dest`` with a stat() of that path: these modules report what they
    did (a dump's size, a log cleanup's state), not the attributes of a directory."""
    module.add_path_info = lambda kwargs: kwargs


def _shape(module, result, keep_warnings):
    result = dict(result)
    warnings = result.pop('warnings', None) or []
    for warning in warnings:
        module.warn(warning)
    if keep_warnings:
        result['warnings_list'] = list(warnings)
    diff = result.pop('diff', None)
    if module._diff and diff:
        result['diff'] = diff
    return result


def finish(module, result, keep_warnings=False):
    """exit_json with the rules above."""
    report_results_as_given(module)
    module.exit_json(**_shape(module, result, keep_warnings))


def fail(module, exc, keep_warnings=False):
    """fail_json for an OmeroBackupError (an OperationFailed with its result)."""
    report_results_as_given(module)
    result = _shape(module, getattr(exc, 'result', None) or {}, keep_warnings)
    result.pop('msg', None)
    result.pop('failed', None)
    result.setdefault('changed', False)
    module.fail_json(msg=str(exc), **result)


def run_step(module, step, *args, **kwargs):
    """``step(*args, **kwargs)`` -> result dict, then finish(); its OmeroBackupError -> fail().

    ``keep_warnings`` (keyword, default false): also report warnings as ``warnings_list`` (the data dir modules
    document that field). ``errors``: further exception classes whose message is the operator's (OSError of a
    step that reports what it could not read, for instance).
    """
    keep_warnings = kwargs.pop('keep_warnings', False)
    errors = (OmeroBackupError,) + tuple(kwargs.pop('errors', ()))
    try:
        result = step(*args, **kwargs)
    except errors as exc:
        fail(module, exc, keep_warnings)
        return  # fail_json exits; a stand-in module in a test may not
    finish(module, result, keep_warnings)
