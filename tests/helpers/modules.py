# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's real main() in the test process: what it hands to AnsibleModule, and the JSON it exits with."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import importlib
import json

import pytest

from ansible.module_utils import basic


class _SpecRead(Exception):
    """Stops main() inside AnsibleModule(), once its arguments are seen."""


def import_module(name):
    return importlib.import_module('ansible_collections.omero.backup.plugins.modules.' + name)


def main_arguments(name, monkeypatch):
    """What the module's main() hands to AnsibleModule: argument_spec (built by helpers such as
    postgres_argument_spec) and the other keywords (required_if ...)."""
    module = import_module(name)
    seen = []

    class Reading(basic.AnsibleModule):
        def __init__(self, argument_spec, **kwargs):
            seen.append(dict(kwargs, argument_spec=argument_spec))
            raise _SpecRead()

    monkeypatch.setattr(module, 'AnsibleModule', Reading)
    with pytest.raises(_SpecRead):
        module.main()
    monkeypatch.undo()
    return seen[0]


def set_module_args(monkeypatch, args):
    """The arguments the next AnsibleModule reads, as Ansible passes them (the legacy profile where ansible-core has
    profiles, so that plain dicts and strings come through)."""
    monkeypatch.setattr(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    if hasattr(basic, '_ANSIBLE_PROFILE'):
        monkeypatch.setattr(basic, '_ANSIBLE_PROFILE', 'legacy')


def printed_result(out):
    """The result a module printed to stdout (after anything else that was printed)."""
    return json.loads(out[out.index('{'):])
