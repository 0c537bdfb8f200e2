# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does a data directory belong to a database? The check after a restore or a drill.

A restored OMERO.server works only when three things agree: the database's
``omero.db.uuid`` has its ``.omero/repository/<uuid>/repo_uuid`` in the data
dir (else the server registers a new repository and every imported fileset is
lost to it), the schema version is the one the server expects, and the files
the rows point at are there. The last is checked on a random sample, so the
check stays fast on stores of millions of files.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.idpath import id_to_relpath

MAX_LISTED = 20

# Rows that are not files in the data dir: directories, repository roots, and
# files of other repositories (the script repository lives under lib/scripts).
# Tables schema-qualified: postgres.connect() pins search_path to pg_catalog.
_ORIGINALFILE_SAMPLE = """
SELECT id, path, name, repo FROM public.originalfile
 WHERE (repo IS NULL OR repo = %(managed)s)
   AND mimetype IS DISTINCT FROM 'Directory'
   AND mimetype IS DISTINCT FROM 'Repository'
 ORDER BY random() LIMIT %(limit)s
"""
_PIXELS_SAMPLE = """
SELECT id, path, name, repo FROM public.pixels
 WHERE repo IS NULL OR repo = %(managed)s
 ORDER BY random() LIMIT %(limit)s
"""


def read_text(path):
    try:
        with open(path, 'r') as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def repository_rows(conn):
    """{name: uuid} of the 'Repository' rows (the data dir root and ManagedRepository)."""
    rows = postgres.query_all(conn, "SELECT name, hash FROM public.originalfile WHERE mimetype = 'Repository'")
    return dict((name, uuid) for name, uuid in rows)


def managed_relpath(path, name):
    return os.path.join('ManagedRepository', (path or '').lstrip('/'), name)


def _sampled_relpath(root, row, managed_uuid):
    object_id, path, name, repo = row
    if repo is None:
        return os.path.join(root, id_to_relpath(object_id))
    if repo == managed_uuid:
        return managed_relpath(path, name)
    return None


def originalfile_relpath(row, managed_uuid):
    return _sampled_relpath('Files', row, managed_uuid)


def pixels_relpath(row, managed_uuid):
    # Pixels of an imported fileset are read from the original file in the
    # managed repository; only pixels written by the server live in Pixels/.
    return _sampled_relpath('Pixels', row, managed_uuid)


def check_files(datadir, relpaths, managed_dir=None):
    """(checked, missing, dangling_links) for data-dir relative paths; ``ManagedRepository/...`` below
    ``managed_dir`` when omero.managed.dir is outside the data dir (docs/layout.md)."""
    checked, missing, dangling = 0, [], []
    for relpath in relpaths:
        if relpath is None:
            continue
        checked += 1
        if managed_dir and relpath.startswith('ManagedRepository/'):
            full = os.path.join(managed_dir, relpath[len('ManagedRepository/'):])
        else:
            full = os.path.join(datadir, relpath)
        if os.path.islink(full) and not os.path.exists(full):
            # An in-place import: the link is restored, its target lives outside the store.
            dangling.append(relpath)
        elif not os.path.lexists(full):
            missing.append(relpath)
    return checked, missing, dangling


def verify(params, conn, datadir, sample=100, expected_schema=None, expected_db_uuid=None, managed_dir=None):
    """Facts and problems; ``ok`` is true only when no problem was found."""
    result = {'datadir': datadir, 'db': params.get('db')}
    facts = postgres.omero_facts(conn)
    result.update(facts)
    problems = _identity_problems(facts, datadir, expected_schema, expected_db_uuid)
    repos = {}
    result['repository'] = {'dir_exists': False, 'repo_uuid': None, 'matches_database': None,
                            'managed_repo_uuid': None, 'managed_matches_database': None}
    if facts['db_uuid'] and postgres.table_exists(conn, 'originalfile'):
        repos = repository_rows(conn)
        problems.extend(_repository_problems(result['repository'], repos, datadir, facts['db_uuid'], managed_dir))
    samples, missing, dangling = {}, [], []
    if sample > 0 and os.path.isdir(datadir):
        samples, missing, dangling = _sample_files(conn, datadir, repos.get('ManagedRepository'), sample, problems, managed_dir)
    if missing:
        problems.append('%d sampled file(s) the database lists are missing from %s, e.g. %s'
                        % (len(missing), datadir, ', '.join(missing[:3])))
    result['samples'] = samples
    result['missing'] = missing[:MAX_LISTED]
    result['dangling_links'] = dangling[:MAX_LISTED]
    result['problems'] = problems
    result['ok'] = not problems
    return result


def _identity_problems(facts, datadir, expected_schema, expected_db_uuid):
    """The data dir exists, the database is an OMERO one, with the uuid and schema expected."""
    problems = []
    db_uuid = facts['db_uuid']
    if not os.path.isdir(datadir):
        problems.append('data directory %s does not exist' % datadir)
    if not db_uuid:
        problems.append('the database has no omero.db.uuid in its configuration table: not an OMERO database, or an empty one')
    if expected_db_uuid and db_uuid and db_uuid != expected_db_uuid:
        problems.append('omero.db.uuid is %s, expected %s' % (db_uuid, expected_db_uuid))
    if facts['schema_version'] is None:
        problems.append('the database has no dbpatch row: the OMERO schema is missing')
    elif expected_schema:
        wanted = expected_schema.split('__')
        found = [facts['schema_version']] + ([str(facts['schema_patch'])] if len(wanted) > 1 else [])
        if found != wanted:
            problems.append('schema version is %s, expected %s' % ('__'.join(found), expected_schema))
    return problems


def _repository_problems(repository, repos, datadir, db_uuid, managed_dir=None):
    """Fill ``repository`` (the repo_uuid files against the Repository rows); returns the problems found."""
    problems = []
    repo_dir = os.path.join(datadir, '.omero', 'repository', db_uuid)
    repository['dir_exists'] = os.path.isdir(repo_dir)
    repository['repo_uuid'] = read_text(os.path.join(repo_dir, 'repo_uuid'))
    repository['managed_repo_uuid'] = read_text(os.path.join(managed_dir or os.path.join(datadir, 'ManagedRepository'), '.omero',
                                                             'repository', db_uuid, 'repo_uuid'))
    root_uuids = set(uuid for name, uuid in repos.items() if name != 'ManagedRepository')
    if not repository['dir_exists']:
        problems.append('%s is missing: the data directory does not belong to this database '
                        '(OMERO.server would register a new repository and lose every imported fileset)' % repo_dir)
    elif repository['repo_uuid'] is None:
        problems.append('%s/repo_uuid is missing or unreadable' % repo_dir)
    else:
        repository['matches_database'] = repository['repo_uuid'] in root_uuids
        if not repository['matches_database']:
            problems.append('%s/repo_uuid holds %s, which no Repository row of the database has'
                            % (repo_dir, repository['repo_uuid']))
    if 'ManagedRepository' in repos:
        repository['managed_matches_database'] = repository['managed_repo_uuid'] == repos['ManagedRepository']
        if not repository['managed_matches_database']:
            problems.append('ManagedRepository/.omero/repository/%s/repo_uuid holds %s, the database says %s'
                            % (db_uuid, repository['managed_repo_uuid'], repos['ManagedRepository']))
    return problems


def _sample_files(conn, datadir, managed, sample, problems, managed_dir=None):
    """(per-table counts, missing relpaths, dangling links) of a sample of the files the database lists."""
    samples, missing, dangling = {}, [], []
    for table, sql, to_relpath in (('originalfile', _ORIGINALFILE_SAMPLE, originalfile_relpath),
                                   ('pixels', _PIXELS_SAMPLE, pixels_relpath)):
        if not postgres.table_exists(conn, table):
            problems.append('table %s is missing' % table)
            continue
        rows = postgres.query_all(conn, sql, {'managed': managed, 'limit': sample})
        checked, table_missing, table_dangling = check_files(datadir, [to_relpath(row, managed) for row in rows], managed_dir)
        samples[table] = {'checked': checked, 'missing': len(table_missing)}
        missing.extend(table_missing)
        dangling.extend(table_dangling)
    return samples, missing, dangling


def run(params):
    conn = postgres.connect(params, params['db'])
    try:
        return verify(params, conn, params['datadir'], sample=params['sample'],
                      expected_schema=params.get('expected_schema'), expected_db_uuid=params.get('expected_db_uuid'),
                      managed_dir=params.get('managed_dir'))
    finally:
        conn.close()
