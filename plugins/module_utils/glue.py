# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible glue: how a module ends (results as given, diff only in diff mode)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def report_results_as_given(module):
    """Stop AnsibleModule from overwriting size/mode/owner/state in a result that has
    ``path`` or ``dest`` with a stat() of that path: these modules report what they
    did (a dump's size, a log cleanup's state), not the attributes of a directory."""
    module.add_path_info = lambda kwargs: kwargs


def exit_with_result(module, result):
    """exit_json with the module's ``diff`` kept only when diff mode was asked for."""
    diff = result.pop('diff', None)
    if module._diff and diff is not None:
        result['diff'] = diff
    module.exit_json(**result)
