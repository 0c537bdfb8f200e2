# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every role variable is declared once, and each role's argument_specs says what its defaults say.

The shared names (omero_server_*, the hosts, the store, the database login, the
status file, the staging parent) live in roles/common, which the other roles
depend on; a second copy in another role's defaults is how `/OMERO` came to be
declared nine times and `omero_backup_dir` documented with another default.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES_DIR = os.path.join(REPO, 'roles')
ROLES = sorted(name for name in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, name)))
# Python types a default of each argument-spec type may have.
SPEC_TYPES = {
    'str': (str,), 'path': (str,), 'raw': (object,), 'bool': (bool,), 'int': (int,), 'float': (float, int),
    'list': (list,), 'dict': (dict,),
}


def load(role, *parts):
    path = os.path.join(ROLES_DIR, role, *parts)
    if not os.path.exists(path):
        return {}
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def templated(value):
    if isinstance(value, (list, tuple)):
        return any(templated(item) for item in value)
    if isinstance(value, dict):
        return any(templated(item) for item in value.values())
    return isinstance(value, str) and '{{' in value


def spec_options(role):
    """{variable: [(entry point, option spec), ...]} over every entry point of the role."""
    options = {}
    for entry, spec in (load(role, 'meta', 'argument_specs.yml').get('argument_specs') or {}).items():
        for name, option in (spec.get('options') or {}).items():
            options.setdefault(name, []).append((entry, option))
    return options


def test_the_roles_are_found():
    assert {'backup', 'common', 'maintenance', 'restore'} <= set(ROLES)


def test_each_variable_is_declared_once_across_roles():
    declared = {}
    for role in ROLES:
        for kind in ('defaults', 'vars'):
            for name in load(role, kind, 'main.yml'):
                declared.setdefault(name, []).append('%s/%s' % (role, kind))
    twice = dict((name, places) for name, places in declared.items() if len(places) > 1)
    assert not twice, twice


@pytest.mark.parametrize('role', ROLES)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = spec_options(role)
    problems = []
    for name, value in sorted(defaults.items()):
        if name not in options:
            problems.append('%s: in defaults/main.yml, not in meta/argument_specs.yml' % name)
            continue
        for entry, option in options[name]:
            where = '%s (entry point %s)' % (name, entry)
            allowed = SPEC_TYPES[option.get('type', 'str')]
            if templated(value):
                # A derived default is described in words ("Defaults to O(...)"); a literal would be a second,
                # stale copy of it (omero_backup_dir's /OMERO/backup).
                if 'default' in option:
                    problems.append('%s: defaults/main.yml derives it (%s), the spec states %r' % (where, value, option['default']))
            elif 'default' not in option:
                problems.append('%s: defaults/main.yml has %r, the spec states no default' % (where, value))
            elif option['default'] != value or type(option['default']) is not type(value):
                problems.append('%s: defaults/main.yml has %r, the spec %r' % (where, value, option['default']))
            elif not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                problems.append('%s: %r is not of the spec type %s' % (where, value, option.get('type', 'str')))
    assert not problems, problems


@pytest.mark.parametrize('role', ROLES)
def test_every_spec_default_is_a_default_of_the_same_role(role):
    defaults = load(role, 'defaults', 'main.yml')
    problems = ['%s (entry point %s): the spec states a default, defaults/main.yml has none' % (name, entry)
                for name, places in sorted(spec_options(role).items()) for entry, option in places
                if 'default' in option and name not in defaults]
    assert not problems, problems


def test_an_option_is_documented_by_the_role_that_declares_it():
    owner = {}
    for role in ROLES:
        for kind in ('defaults', 'vars'):
            for name in load(role, kind, 'main.yml'):
                owner[name] = role
    problems = ['%s documents %s, which %s declares' % (role, name, owner[name])
                for role in ROLES for name in sorted(spec_options(role)) if owner.get(name, role) != role]
    assert not problems, problems


@pytest.mark.parametrize('role', [role for role in ROLES if role != 'common'])
def test_the_roles_depend_on_common(role):
    dependencies = load(role, 'meta', 'main.yml').get('dependencies') or []
    names = [dep.get('role') if isinstance(dep, dict) else dep for dep in dependencies]
    assert 'omero.backup.common' in names, names
