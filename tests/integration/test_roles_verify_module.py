# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero.backup.verify on real sandboxes: a matching pair passes, each kind of mismatch fails loudly."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import shutil

from helpers.ansible import run_module
from helpers.sandbox import connection_args, query


def verify_args(description, **extra):
    args = connection_args(description, via='tcp', role='owner')
    args.update(datadir=description['datadir'], sample=1000)
    args.update(extra)
    return args


def test_matching_database_and_datadir_pass(sandbox):
    result = run_module('verify', verify_args(sandbox, expected_schema='OMERO5.4__0', expected_db_uuid=sandbox['db_uuid']))
    assert not result['failed'], result['msg']
    assert result['ok'] and result['problems'] == []
    assert not result['changed']
    assert result['db_uuid'] == sandbox['db_uuid']
    assert result['repository']['matches_database'] and result['repository']['managed_matches_database']
    assert result['samples']['originalfile']['checked'] > 0 and result['samples']['pixels']['checked'] > 0
    assert sandbox['postgres']['owner_password'] not in str(result)


def test_wrong_schema_and_uuid_expectations_fail(sandbox):
    result = run_module('verify', verify_args(sandbox, expected_schema='OMERO5.5', expected_db_uuid='not-this-one'))
    assert result['failed']
    assert 'schema version is OMERO5.4, expected OMERO5.5' in result['msg']
    assert 'expected not-this-one' in result['msg']


def test_missing_files_then_a_datadir_of_another_database_fail(sandbox_factory):
    from omero_sandbox.idpath import id_to_relpath
    description = sandbox_factory(objects=20, orphans=0, seed=6)
    rows = query(description, "SELECT id FROM originalfile WHERE repo IS NULL AND mimetype <> 'Repository'")
    removed = []
    for (file_id,) in rows:
        relpath = os.path.join('Files', id_to_relpath(file_id))
        full = os.path.join(description['datadir'], relpath)
        if os.path.exists(full):
            os.unlink(full)
            removed.append(relpath)
    assert removed
    result = run_module('verify', verify_args(description))
    assert result['failed']
    assert result['missing'] and set(result['missing']) <= set(removed)
    assert result['samples']['originalfile']['missing'] == len([p for p in result['missing'] if p.startswith('Files/')])

    shutil.rmtree(os.path.join(description['datadir'], '.omero', 'repository', description['db_uuid']))
    result = run_module('verify', verify_args(description))
    assert result['failed']
    assert 'does not belong to this database' in result['msg']
    report = run_module('verify', verify_args(description, fail_on_problems=False))
    assert not report['failed'] and not report['ok']
    assert not report['repository']['dir_exists']


def test_unreachable_database_is_a_clear_failure(sandbox):
    args = verify_args(sandbox)
    args['login_password'] = 'wrong-password'
    result = run_module('verify', args)
    assert result['failed']
    assert 'cannot connect' in result['msg']
    assert 'wrong-password' not in str(result)
