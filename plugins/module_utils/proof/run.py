# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prove step: files of ManagedRepository and Files/ read back and compared with ``originalfile.hash``.

Rows come in id order, a page at a time (one query per PAGE rows, never one per file), joined
to ``checksumalgorithm`` for the algorithm name; files are hashed on every core
(proof/hashing.py); the cursor and the cycle live in the state file (proof/state.py); the
results, the report file and the metrics are proof/results.py's. Read-only on the data: the
only files written are the state, report and metrics files, and none in check mode.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import random
import time

from ansible_collections.omero.backup.plugins.module_utils.base.durations import parse_duration
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError, OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.params import given, max_jobs
from ansible_collections.omero.backup.plugins.module_utils.proof import paths, results, state as proof_state
from ansible_collections.omero.backup.plugins.module_utils.proof.hashing import Budget, Task, prove_all
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import postgres_argument_spec

PAGE = 5000

STEP_OPTIONS = dict(
    db=dict(type='str', default='omero'),
    datadir=dict(type='path', default='/OMERO'),
    managed_dir=dict(type='path'),
    state_file=dict(type='path'),
    restart=dict(type='bool', default=False),
    start=dict(type='str', default='resume', choices=['resume', 'random']),
    max_bytes=dict(type='int', default=0),
    max_time=dict(type='str'),
    jobs=dict(type='int'),
    report_file=dict(type='path'),
    metrics_file=dict(type='path'),
    max_listed=dict(type='int', default=100),
    fail_on_problems=dict(type='bool', default=True),
)

# Files of the data dir only: the managed repository's and Files/ (repo NULL); no directories or repository roots.
# Schema-qualified: connections run with search_path = pg_catalog (tools/postgres.py).
_ROWS = """
SELECT o.id, o.path, o.name, o.repo, o.size, o.hash, a.value
  FROM public.originalfile AS o LEFT JOIN public.checksumalgorithm AS a ON a.id = o.hasher
 WHERE o.id > %(after)s
   AND (o.repo IS NULL OR o.repo = %(managed)s)
   AND o.mimetype IS DISTINCT FROM 'Directory'
   AND o.mimetype IS DISTINCT FROM 'Repository'
 ORDER BY o.id LIMIT %(page)s
"""
_ID_RANGE = """
SELECT min(o.id), max(o.id) FROM public.originalfile AS o
 WHERE (o.repo IS NULL OR o.repo = %(managed)s)
   AND o.mimetype IS DISTINCT FROM 'Directory' AND o.mimetype IS DISTINCT FROM 'Repository'
"""


def argument_spec():
    spec = postgres_argument_spec()
    spec.update(STEP_OPTIONS)
    return spec


class ProofOptions(object):
    """One proof, read once from the params (defaults only in the argument spec, base/params.given)."""

    def __init__(self, params):
        for key, value in given(argument_spec(), params).items():
            setattr(self, key, value)
        self.connection = dict((key, getattr(self, key)) for key in postgres_argument_spec())
        self.max_seconds = parse_duration(self.max_time, 'max_time')
        if self.max_bytes < 0:
            raise OmeroBackupError('max_bytes must be 0 (no limit) or more, got %d' % self.max_bytes)
        if self.max_listed < 0:
            raise OmeroBackupError('max_listed must be 0 or more, got %d' % self.max_listed)
        if self.jobs is not None and not 1 <= self.jobs <= max_jobs():
            raise OmeroBackupError('jobs must be 1 to %d (unset: one per core), got %d' % (max_jobs(), self.jobs))
        self.jobs = self.jobs or os.cpu_count() or 1
        if self.start == 'random' and self.state_file:
            raise OmeroBackupError('start=random is for a sample (a drill); a state_file resumes where the last run '
                                   'stopped: give one or the other')
        self.datadir = self.datadir.rstrip('/') or '/'
        self.managed_dir = (self.managed_dir or os.path.join(self.datadir, 'ManagedRepository')).rstrip('/') or '/'

    @classmethod
    def of(cls, params):
        return params if isinstance(params, cls) else cls(params)


def _check_schema(conn):
    if not postgres.table_exists(conn, 'checksumalgorithm') or not postgres.table_exists(conn, 'originalfile'):
        raise OmeroBackupError('the database has no originalfile/checksumalgorithm table: not an OMERO 5 database')
    row = postgres.query_one(conn, "SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'public.originalfile'::regclass "
                                   "AND attname = 'hasher' AND NOT attisdropped")
    if not row[0]:
        raise OmeroBackupError('originalfile has no hasher column: not an OMERO 5 database')


def tasks(conn, options, managed, after):
    """Task per row after ``after``, in id order, a page per query."""
    while True:
        rows = postgres.query_all(conn, _ROWS, {'after': after, 'managed': managed, 'page': PAGE})
        for object_id, path, name, repo, size, expected, algorithm in rows:
            where = paths.row_file(options.datadir, options.managed_dir, 'originalfile', object_id, path, name, repo, managed)
            if expected is None or algorithm is None:
                algorithm = None
            yield Task(object_id, where[0], where[1], algorithm, expected, size)
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


def _random_start(conn, managed):
    low, high = postgres.query_one(conn, _ID_RANGE, {'managed': managed})
    if low is None:
        return 0
    return random.randint(low, high) - 1


def prove(options, conn, check_mode=False, now=None):
    """The proof's result dict; raises OperationFailed with it when the proof found bad news."""
    options = ProofOptions.of(options)
    now = time.time() if now is None else now
    if not os.path.isdir(options.datadir):
        raise OmeroBackupError('data directory %s does not exist' % options.datadir)
    _check_schema(conn)
    facts = postgres.omero_facts(conn)
    managed = paths.managed_uuid(conn)
    target = options.datadir
    state, warnings = proof_state.start_state(options.state_file, facts['db_uuid'], target, now, options.restart)
    after = state['cursor'] if options.start == 'resume' else _random_start(conn, managed)
    budget = Budget(options.max_bytes, options.max_seconds)
    tally = results.Tally(options.max_listed)
    started = time.monotonic()
    for outcome in prove_all(tasks(conn, options, managed, after), options.jobs, budget):
        tally.add(outcome)
    # Finished the cycle when the budget never stopped the walk: every row after the cursor was handed out.
    finished = budget.reason is None
    cursor = tally.last_id if tally.last_id is not None else after
    result = tally.result(time.monotonic() - started)
    result.update({'db_uuid': facts['db_uuid'], 'datadir': options.datadir, 'managed_dir': options.managed_dir,
                   'managed_repo_uuid': managed, 'jobs': options.jobs, 'start': options.start, 'first_id': tally.first_id,
                   'last_id': tally.last_id, 'stopped_by': budget.reason, 'cycle_complete': finished and options.start == 'resume',
                   'warnings': warnings})
    new_state = proof_state.advance(state, result['counts'], cursor, result['cycle_complete'], now)
    result['cursor'] = new_state['cursor']
    result['cycle'] = new_state['cycle']
    result['cycle_counts'] = new_state['cycle_counts'] if not result['cycle_complete'] else new_state['last_cycle_counts']
    result['oldest_unproven_age'] = proof_state.oldest_unproven_age(new_state, now) if options.state_file else None
    result['state_file'] = options.state_file
    result['changed'] = results.publish(options, new_state, result, check_mode, now)
    if options.fail_on_problems and not result['ok']:
        raise OperationFailed('checksum proof failed: ' + '; '.join(result['problems']), result)
    return result


def run(params, check_mode=False):
    options = ProofOptions.of(params)
    try:
        conn = postgres.connect(options.connection, options.db)
    except postgres.PostgresError as exc:
        raise OmeroBackupError(str(exc))
    try:
        return prove(options, conn, check_mode)
    finally:
        conn.close()
