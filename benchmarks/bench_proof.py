# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum proof against ``sha1sum``, and the missing-file report against a bare ``find``.

    python benchmarks/bench_proof.py [--root /var/tmp/proof-bench] [--files 64] [--file-mb 8] [--rows 1000000] [--rounds 3]

Builds a small sandbox under ROOT (when it holds none), then adds

* FILES Files/ rows of FILE_MB random bytes each, hashed SHA1-160 (OMERO's default), and
* ROWS more Files/ rows with an empty file each, for the missing-file report,

and alternates, after a warm-up of each (page cache warm: both sides read the same cached bytes, so the ratio is
CPU and parallelism, not the disk):

* ``sha1sum`` over the FILES files (one process, as an operator would run it) vs the proof (omero.backup.prove's
  step, ``jobs`` = every core) over the same files: throughput ratio, goal >= 0.9;
* ``find DATA/Files DATA/Pixels DATA/Thumbnails DATA/ManagedRepository`` vs the missing-file report: wall-time
  ratio, goal <= 1.5.

Medians are printed with their ratios; goals are printed, never asserted.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))
# conftest puts an ansible_collections tree of this checkout on sys.path.
import conftest  # noqa: E402,F401 pylint: disable=unused-import,wrong-import-position
import omero_sandbox  # noqa: E402
from omero_sandbox.idpath import id_to_relpath  # noqa: E402

from ansible_collections.omero.backup.plugins.module_utils import missing  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.proof import run as proof_run  # noqa: E402
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres  # noqa: E402

GOAL_PROOF = 0.9
GOAL_MISSING = 1.5
BIG_START = 5000000000  # ids of the benchmark's rows: above the sandbox's
EMPTY_START = 6000000000


def _args(description):
    pg = description['postgres']
    return dict(login_unix_socket=pg['host'], port=pg['port'], login_user=pg['superuser'], db=pg['dbname'],
                datadir=description['datadir'])


def _insert_rows(conn, start, count, hashes=None, size=0):
    with conn.cursor() as cursor:
        cursor.execute('SELECT id FROM public.checksumalgorithm WHERE value = %s', ('SHA1-160',))
        sha1 = cursor.fetchone()[0]
        cursor.execute('DELETE FROM public.originalfile WHERE id >= %s AND id < %s', (start, start + 10 ** 9))
        if hashes is not None:
            for offset, digest in enumerate(hashes):
                cursor.execute("INSERT INTO public.originalfile (id, permissions, name, path, size, hash, hasher, version, creation_id, "
                               "group_id, owner_id, update_id) VALUES (%s, -52, 'bench.bin', '/', %s, %s, %s, 0, 1, 3, 2, 1)",
                               (start + offset, size, digest, sha1))
        else:
            cursor.execute("INSERT INTO public.originalfile (id, permissions, name, path, size, hash, hasher, version, creation_id, "
                           "group_id, owner_id, update_id) SELECT g, -52, 'empty', '/', 0, NULL, NULL, 0, 1, 3, 2, 1 "
                           "FROM generate_series(%s::bigint, %s::bigint) AS g", (start, start + count - 1))
    conn.commit()


def _write(datadir, object_id, data):
    path = os.path.join(datadir, 'Files', id_to_relpath(object_id))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as handle:
        handle.write(data)
    return path


def prepare(root, files, file_mb, rows):
    marker = os.path.join(root, 'bench.done')
    if not os.path.exists(os.path.join(root, 'sandbox', 'sandbox.json')):
        print('building the sandbox under %s' % root)
        omero_sandbox.build(os.path.join(root, 'sandbox'), objects=60, orphans=0, seed=3)
    try:
        description = omero_sandbox.start(os.path.join(root, 'sandbox'))
    except omero_sandbox.SandboxError:  # already running (just built)
        description = omero_sandbox.describe(os.path.join(root, 'sandbox'))
    wanted = '%d %d %d\n' % (files, file_mb, rows)
    if os.path.exists(marker) and open(marker).read() == wanted:
        return description
    started = time.time()
    conn = postgres.connect(_args(description), description['postgres']['dbname'], autocommit=False)
    paths, hashes = [], []
    for index in range(files):
        data = os.urandom(file_mb << 20)
        hashes.append(hashlib.sha1(data).hexdigest())
        paths.append(_write(description['datadir'], BIG_START + index, data))
    _insert_rows(conn, BIG_START, files, hashes, file_mb << 20)
    _insert_rows(conn, EMPTY_START, rows)
    for index in range(rows):
        _write(description['datadir'], EMPTY_START + index, b'')
    conn.close()
    with open(marker, 'w') as handle:
        handle.write(wanted)
    print('prepared %d x %d MB and %d empty files in %.0f s' % (files, file_mb, rows, time.time() - started))
    return description


def _timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def bench_proof(description, files, rounds):
    datadir = description['datadir']
    paths = [os.path.join(datadir, 'Files', id_to_relpath(BIG_START + index)) for index in range(files)]
    args = dict(_args(description), fail_on_problems=True)
    total = sum(os.path.getsize(path) for path in paths)

    def sha1sum():
        subprocess.run(['sha1sum'] + paths, check=True, stdout=subprocess.DEVNULL)

    def proof():
        conn = postgres.connect(args, args['db'])
        try:
            return _prove_from(proof_run.ProofOptions(dict(args, max_bytes=total)), conn)
        finally:
            conn.close()

    sha1sum()
    proof()
    tool, ours = [], []
    for _round in range(rounds):
        tool.append(_timed(sha1sum)[0])
        seconds, result = _timed(proof)
        ours.append(seconds)
        assert result['counts']['proven'] >= files, result['counts']
    tool_rate, our_rate = total / statistics.median(tool), total / statistics.median(ours)
    print('proof: %d files, %.0f MB (page cache), %d cores' % (files, total / 1e6, os.cpu_count()))
    print('  sha1sum           median %.3f s  %7.1f MB/s' % (statistics.median(tool), tool_rate / 1e6))
    print('  prove (jobs=%d)    median %.3f s  %7.1f MB/s' % (os.cpu_count(), statistics.median(ours), our_rate / 1e6))
    print('  ratio prove/sha1sum throughput %.2f (goal >= %.1f)' % (our_rate / tool_rate, GOAL_PROOF))
    print('  load average during the run: %s' % ' '.join('%.1f' % value for value in os.getloadavg()))


def _prove_from(options, conn):
    """The proof of the benchmark's big files only: a state file names a cursor just below their ids, and the
    byte budget (their total) stops the proof before the empty files of the missing-file benchmark."""
    state = os.path.join(os.path.dirname(options.datadir), 'bench-proof.state')
    if os.path.exists(state):
        os.unlink(state)
    options.state_file = state
    from ansible_collections.omero.backup.plugins.module_utils.proof import state as proof_state
    facts = postgres.omero_facts(conn)
    fresh = proof_state.fresh_state(facts['db_uuid'], options.datadir, time.time())
    fresh['cursor'] = BIG_START - 1
    proof_state.write_state(state, fresh)
    return proof_run.prove(options, conn)


def bench_missing(description, rows, rounds):
    datadir = description['datadir']
    args = dict(_args(description), fail_on_missing=False)
    dirs = [os.path.join(datadir, name) for name in ('Files', 'Pixels', 'Thumbnails', 'ManagedRepository')]

    def find():
        subprocess.run(['find'] + dirs, check=True, stdout=subprocess.DEVNULL)

    def report():
        conn = postgres.connect(args, args['db'])
        try:
            return missing.report(missing.MissingOptions(args), conn)
        finally:
            conn.close()

    def rows_alone():
        conn = postgres.connect(args, args['db'])
        try:
            return missing.load_rows(conn, missing.paths.managed_uuid(conn))
        finally:
            conn.close()

    def listing_alone():
        return [missing.area_names(directory) for directory in dirs[:3]] + [missing.managed_entries(dirs[3])]

    find()
    report()
    tool, ours, walks, alone = [], [], [], {'rows': [], 'listing': []}
    for _round in range(rounds):
        tool.append(_timed(find)[0])
        seconds, result = _timed(report)
        ours.append(seconds)
        walks.append(result['walk_duration'])
        alone['rows'].append(_timed(rows_alone)[0])
        alone['listing'].append(_timed(listing_alone)[0])
    print('missing-file report: %d rows in Files/ (+ the sandbox\'s)' % rows)
    print('  find              median %.3f s' % statistics.median(tool))
    print('  missing_files     median %.3f s (its directory listing %.3f s, the database read meanwhile)'
          % (statistics.median(ours), statistics.median(walks)))
    print('  alone: database read median %.3f s, directory listing median %.3f s'
          % (statistics.median(alone['rows']), statistics.median(alone['listing'])))
    print('  ratio missing_files/find %.2f (goal <= %.1f)' % (statistics.median(ours) / statistics.median(tool), GOAL_MISSING))
    print('  load average during the run: %s' % ' '.join('%.1f' % value for value in os.getloadavg()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--root', default='/var/tmp/proof-bench')
    parser.add_argument('--files', type=int, default=64)
    parser.add_argument('--file-mb', type=int, default=8)
    parser.add_argument('--rows', type=int, default=1000000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--keep', action='store_true', help='leave the sandbox running and on disk')
    options = parser.parse_args()
    description = prepare(os.path.abspath(options.root), options.files, options.file_mb, options.rows)
    try:
        bench_proof(description, options.files, options.rounds)
        bench_missing(description, options.rows, options.rounds)
    finally:
        if not options.keep:
            omero_sandbox.stop(os.path.join(os.path.abspath(options.root), 'sandbox'))


if __name__ == '__main__':
    main()
