# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/base/params.py, and every module of the collection: each path option is checked before anything runs.

The per-module tests run each module's real main() and real AnsibleModule in this process. Two seams only:
the AnsibleModule class is wrapped to read the argument spec the module builds, and check_params is wrapped so a
module whose options passed stops right there instead of going on to touch databases and files.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.omero.backup.plugins.module_utils.base import params
from ansible_collections.omero.backup.plugins.module_utils.base.params import location_problem, max_jobs, path_problem, problems, relative_problem
from helpers.modules import import_module, main_arguments, printed_result, set_module_args

MODULES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins', 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and not name.startswith('_'))

# str options that name an rdiff-backup repository, /abs/path or [user@]host::/abs/path.
LOCATIONS = {'datadir_backup': ['dest'], 'datadir_restore': ['src']}
# Path options documented as relative to another option (never to the working directory).
RELATIVE_TO = {'log_dir': {'path': 'omerodir'}}
# int options that count parallel workers.
JOBS = {'db_dump': ['jobs'], 'db_restore': ['jobs'], 'prove': ['jobs']}


# ---------------------------------------------------------------------------
# The helper
# ---------------------------------------------------------------------------

@pytest.mark.parametrize('value', [None, '/', '/OMERO', '/a b/\u00e9\n/x'])
def test_path_problem_accepts_absolute_paths_and_unset(value):
    assert path_problem('dest', value) is None


@pytest.mark.parametrize('value, words', [
    ('', ['dest is empty', "working directory"]),
    ('OMERO', ['dest must be an absolute path', "'OMERO'"]),
    ('./x', ['dest must be an absolute path']),
    (' /OMERO', ['dest must be an absolute path', "' /OMERO'"]),
    ('~user-that-does-not-exist/x', ['dest must be an absolute path']),
    ('/a\0b', ['dest', 'NUL']),
    ('new\nline', ['dest must be an absolute path', "'new\\nline'"]),
])
def test_path_problem_names_the_option_and_the_value(value, words):
    problem = path_problem('dest', value)
    for word in words:
        assert word in problem


@pytest.mark.parametrize('value', [None, '/srv/backup', 'store::/srv/backup', 'backup@store.example.org::/srv/b'])
def test_location_problem_accepts_absolute_local_and_remote_paths(value):
    assert location_problem('dest', value) is None


@pytest.mark.parametrize('value, words', [
    ('', ['dest is empty']),
    ('backup', ['dest must be an absolute path']),
    ('store::', ['dest', 'no path after "::"']),
    ('store::srv/backup', ['dest', 'must be absolute', "'store::srv/backup'"]),
    ('store::~/backup', ['dest', 'must be absolute']),
])
def test_location_problem_refuses_empty_and_relative_path_parts(value, words):
    problem = location_problem('dest', value)
    for word in words:
        assert word in problem


def test_relative_problem_accepts_a_path_relative_to_its_base_option_but_never_empty():
    assert relative_problem('path', 'var/log', 'omerodir') is None
    assert relative_problem('path', '/var/log/omero', 'omerodir') is None
    assert relative_problem('path', None, 'omerodir') is None
    assert 'path is empty' in relative_problem('path', '', 'omerodir')
    assert 'NUL' in relative_problem('path', 'var\0log', 'omerodir')


@pytest.mark.parametrize('cpus, limit', [(None, max(1, 4 * (os.cpu_count() or 1))), (0, 4), (1, 4), (2, 8), (64, 256)])
def test_max_jobs_is_four_per_cpu_at_least_one(cpus, limit):
    assert max_jobs(cpus) == limit


def test_jobs_problem_bounds():
    assert params.jobs_problem('jobs', None, cpus=2) is None
    assert params.jobs_problem('jobs', 1, cpus=2) is None
    assert params.jobs_problem('jobs', 8, cpus=2) is None
    assert params.jobs_problem('jobs', 9, cpus=2) == ('jobs=9 is more than 8 (4 x the 2 CPUs of this host): each job is a process '
                                                      'and a database connection; give 8 or fewer')
    assert params.jobs_problem('jobs', 0, cpus=2) == 'jobs must be 1 or more, got 0'
    assert 'jobs=10000 is more than' in params.jobs_problem('jobs', 10000)


def test_problems_walks_lists_and_suboptions_and_reports_every_problem():
    spec = {
        'datadir': {'type': 'path'},
        'extra': {'type': 'list', 'elements': 'path'},
        'target': {'type': 'dict', 'options': {'key': {'type': 'path'}, 'name': {'type': 'str'}}},
        'many': {'type': 'list', 'elements': 'dict', 'options': {'dir': {'type': 'path'}}},
        'name': {'type': 'str'},
        'dest': {'type': 'str'},
        'jobs': {'type': 'int'},
    }
    found = problems(spec, {'datadir': '/ok', 'extra': ['/ok', 'rel'], 'target': {'key': '', 'name': 'rel'},
                            'many': [{'dir': '/ok'}, {'dir': 'x'}], 'name': 'relative-is-fine-here', 'dest': 'h::rel',
                            'jobs': 10 ** 6},
                     locations=['dest'], jobs=['jobs'], cpus=1)
    assert len(found) == 5
    assert found[0].startswith('extra[1] must be an absolute path')
    assert found[1].startswith('many[1].dir must be an absolute path')
    assert found[2].startswith('target.key is empty')
    assert found[3].startswith("dest 'h::rel': the path after")
    assert found[4].startswith('jobs=1000000 is more than 4')
    assert problems(spec, {'datadir': None, 'extra': None, 'target': None}, locations=['dest'], jobs=['jobs']) == []


class _Failed(Exception):
    pass


class _FakeModule(object):
    """Only what check_params reads and calls; the real AnsibleModule is exercised below, per module."""

    def __init__(self, spec, values):
        self.argument_spec = spec
        self.params = values
        self.failed_with = None

    def fail_json(self, **kwargs):
        self.failed_with = kwargs
        raise _Failed()


def test_check_params_fails_once_with_every_problem_and_changed_false():
    module = _FakeModule({'src': {'type': 'path'}, 'dest': {'type': 'path'}}, {'src': '', 'dest': 'x'})
    with pytest.raises(_Failed):
        params.check_params(module)
    assert module.failed_with['changed'] is False
    assert module.failed_with['msg'].startswith('dest must be an absolute path')
    assert '; src is empty' in module.failed_with['msg']


# ---------------------------------------------------------------------------
# Every module
# ---------------------------------------------------------------------------

class _Passed(Exception):
    """check_params found nothing; the module would go on to do its work."""


def _value(option):
    if option.get('type') == 'dict':
        return {}  # backup_set's component facts: what is in them is the step's to check, not check_params'
    return option['choices'][0] if option.get('choices') else '/nonexistent/omero-backup-test'


def _valid_args(spec):
    """Values for the required options (required_if included) that pass every check."""
    options = spec['argument_spec']
    args = {}
    for option_name, option in options.items():
        if option.get('required'):
            args[option_name] = _value(option)
    for rule in spec.get('required_if') or []:
        key, value, needed = rule[0], rule[1], rule[2]
        if args.get(key, options[key].get('default')) == value:
            for option_name in needed[:1] if len(rule) > 3 and rule[3] else needed:
                args.setdefault(option_name, _value(options[option_name]))
    for group in (spec.get('required_one_of') or []):
        if not any(option_name in args for option_name in group):
            args[group[0]] = _value(options[group[0]])
    return args


def _run(name, args, monkeypatch, capsys):
    """Run the module's main(); the JSON it failed with, or None when check_params passed it."""
    module = import_module(name)
    calls = []

    def checking(ansible_module, *a, **kw):
        calls.append(ansible_module)
        params.check_params(ansible_module, *a, **kw)
        raise _Passed()

    monkeypatch.setattr(module, 'check_params', checking)
    set_module_args(monkeypatch, args)
    capsys.readouterr()
    try:
        module.main()
    except _Passed:
        monkeypatch.undo()
        return None
    except SystemExit:
        monkeypatch.undo()
        assert len(calls) == 1, 'the module failed before check_params ran: %s' % capsys.readouterr().out
        return printed_result(capsys.readouterr().out)
    raise AssertionError('%s main() returned without failing or reaching check_params' % name)


def _path_options(spec):
    return sorted(option_name for option_name, option in spec['argument_spec'].items() if option.get('type') == 'path')


def _documented_options(name):
    return yaml.safe_load(import_module(name).DOCUMENTATION).get('options') or {}


@pytest.mark.parametrize('name', MODULES)
def test_every_module_passes_its_defaults_and_required_options(name, monkeypatch, capsys):
    spec = main_arguments(name, monkeypatch)
    assert _run(name, _valid_args(spec), monkeypatch, capsys) is None


@pytest.mark.parametrize('name', MODULES)
def test_every_path_option_of_every_module_refuses_empty_and_relative(name, monkeypatch, capsys):
    spec = main_arguments(name, monkeypatch)
    paths = _path_options(spec)
    assert paths, '%s has no path option: is its spec read right?' % name
    for option_name in paths:
        failed = _run(name, dict(_valid_args(spec), **{option_name: ''}), monkeypatch, capsys)
        assert failed and failed['failed'] and failed['changed'] is False, (name, option_name)
        assert failed['msg'].startswith('%s is empty' % option_name), (name, failed['msg'])

        relative = _run(name, dict(_valid_args(spec), **{option_name: 'relative/dir'}), monkeypatch, capsys)
        if option_name in RELATIVE_TO.get(name, {}):
            assert relative is None, (name, option_name, relative)
        else:
            assert relative and relative['msg'] == ("%s must be an absolute path, got 'relative/dir' (a relative path would be "
                                                    "resolved against the module's working directory)" % option_name)


@pytest.mark.parametrize('name', sorted(LOCATIONS))
@pytest.mark.parametrize('value, start', [('', '%s is empty'), ('store', '%s must be an absolute path'),
                                          ('store::', "%s 'store::' names no path"),
                                          ('store::srv/backup', "%s 'store::srv/backup': the path after")])
def test_repository_locations_refuse_empty_and_relative_paths(name, value, start, monkeypatch, capsys):
    spec = main_arguments(name, monkeypatch)
    for option_name in LOCATIONS[name]:
        assert spec['argument_spec'][option_name]['type'] == 'str'
        failed = _run(name, dict(_valid_args(spec), **{option_name: value}), monkeypatch, capsys)
        assert failed['failed'] and failed['msg'].startswith(start % option_name), failed['msg']
        assert _run(name, dict(_valid_args(spec), **{option_name: 'backup@store::/srv/backup'}), monkeypatch, capsys) is None


@pytest.mark.parametrize('name', MODULES)
def test_every_str_option_documented_as_an_absolute_path_is_checked_as_a_location(name):
    documented = _documented_options(name)
    for option_name, option in documented.items():
        text = ' '.join(option.get('description') or [])
        if option.get('type', 'str') == 'str' and 'absolute' in text:
            assert option_name in LOCATIONS.get(name, []), (name, option_name)
    for option_name in LOCATIONS.get(name, []):
        assert 'absolute' in ' '.join(documented[option_name]['description'])


@pytest.mark.parametrize('name', MODULES)
def test_every_parallelism_option_is_bounded(name, monkeypatch, capsys):
    spec = main_arguments(name, monkeypatch)
    counted = sorted(option_name for option_name in spec['argument_spec'] if option_name in ('jobs', 'workers', 'parallel', 'threads'))
    assert counted == JOBS.get(name, [])
    for option_name in counted:
        failed = _run(name, dict(_valid_args(spec), **{option_name: 10000}), monkeypatch, capsys)
        assert failed['msg'].startswith('%s=10000 is more than %d' % (option_name, max_jobs())), failed['msg']
        assert _run(name, dict(_valid_args(spec), **{option_name: max_jobs()}), monkeypatch, capsys) is None
        assert _run(name, dict(_valid_args(spec), **{option_name: 0}), monkeypatch, capsys)['msg'] == '%s must be 1 or more, got 0' % option_name
