# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""db_dump / db_restore against the raw tools and community.postgresql on a sandbox database of SIZE MB.

    python benchmarks/bench_db.py [--root /var/tmp/omero-bench-db] [--size-mb 1024] [--jobs 2] [--rounds 3] [--keep]

Builds the sandbox when ROOT holds none (the sandbox's ``db_size_mb`` knob pads
``eventlog``, the table that is huge on real servers), then measures, all on the
same database and in the same run:

1. raw ``pg_dump -Fc -f FILE omero`` against ``omero.backup.db_dump`` (format custom) run
   through ``ansible-playbook``, alternating, ROUNDS times each (medians compared):
   total wall, its pg_dump phase, and its full read-through (``pg_restore -f
   /dev/null``) reported separately. Goal: total wall <= 1.05x of raw without the
   read-through.
2. round trip ``db_dump format=directory jobs=N`` + ``db_restore jobs=N`` against
   ``community.postgresql.postgresql_db`` ``state=dump`` (``target: X.pgc``, its
   custom format) + ``state=present`` + ``state=restore`` into a new database. Goal: <= 0.6x wall.
   The round trip is measured again with ``compress: gzip:1`` (larger dump, much less CPU).

Prints a table with ratios; goals are printed, never asserted.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for _path in (os.path.join(REPO, 'tools'), os.path.join(REPO, 'tests')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import omero_sandbox  # noqa: E402
from helpers.ansible import run_module  # noqa: E402
from helpers.sandbox import connection_args, psycopg2_connect  # noqa: E402

GOAL_DUMP_RATIO = 1.05
GOAL_ROUND_TRIP_RATIO = 0.6


def _sandbox(root, size_mb):
    if os.path.exists(os.path.join(root, 'sandbox.json')):
        return omero_sandbox.start(root)
    started = time.time()
    description = omero_sandbox.build(root, objects=200, orphans=0, seed=7, omero_cli=False, db_size_mb=size_mb,
                                      progress=lambda message: sys.stderr.write('[sandbox] %s\n' % message))
    built_mb = description['counts']['db_size_bytes'] // 2 ** 20
    sys.stderr.write('[bench] sandbox of %d MB built in %.0f s\n' % (built_mb, time.time() - started))
    return description


def _env(description):
    postgres = description['postgres']
    return dict(os.environ, PGHOST=postgres['host'], PGPORT=str(postgres['port']), PGUSER=postgres['superuser'])


def _timed(argv, env):
    started = time.time()
    subprocess.check_call(argv, env=env)
    return time.time() - started


def _drop(description, *names):
    conn = psycopg2_connect(description, dbname='postgres')
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            for name in names:
                cursor.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    finally:
        conn.close()


def _module(name, args):
    started = time.time()
    result = run_module(name, args, timeout=7200)
    wall = time.time() - started
    if result.get('failed'):
        raise SystemExit('%s failed: %s' % (name, result.get('msg')))
    return wall, result


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(d, f)) for d, _dirs, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--root', default='/var/tmp/omero-bench-db')
    parser.add_argument('--size-mb', type=int, default=1024)
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=3, help='alternating rounds of raw pg_dump and db_dump custom')
    parser.add_argument('--keep', action='store_true', help='keep the sandbox for another run')
    options = parser.parse_args()

    description = _sandbox(os.path.join(options.root, 'sandbox'), options.size_mb)
    work = os.path.join(options.root, 'work')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    env = _env(description)
    connection = connection_args(description)
    db = description['postgres']['dbname']
    rows = []
    try:
        conn = psycopg2_connect(description)
        with conn.cursor() as cursor:
            cursor.execute('SELECT pg_database_size(current_database())')
            db_bytes = cursor.fetchone()[0]
            cursor.execute('SELECT count(*) FROM eventlog')  # warm the cache for every contender alike
        conn.close()

        # Alternate the contenders so that the load of a shared machine hits both alike; medians are compared.
        raw_file = os.path.join(work, 'raw.pg_dump')
        raw_times, ours_walls, ours_results = [], [], []
        for _round in range(options.rounds):
            raw_times.append(_timed(['pg_dump', '-Fc', '-f', raw_file, db], env))
            raw_bytes = _size(raw_file)
            os.unlink(raw_file)
            wall, result = _module('db_dump', dict(connection, dest=os.path.join(work, 'custom')))
            ours_walls.append(wall)
            ours_results.append(result)
            shutil.rmtree(os.path.join(work, 'custom'))
        raw = statistics.median(raw_times)
        ours_wall = statistics.median(ours_walls)
        ours = {key: statistics.median(result[key] for result in ours_results)
                for key in ('duration', 'dump_seconds', 'verify_seconds', 'size')}
        rows.append(('raw pg_dump -Fc (median of %d)' % options.rounds, raw, None, raw_bytes))
        rows.append(('db_dump custom via ansible-playbook, total wall', ours_wall, ours_wall / raw, ours['size']))
        rows.append(('db_dump custom, wall without read-through', ours_wall - ours['verify_seconds'],
                     (ours_wall - ours['verify_seconds']) / raw, None))
        inside = ours['duration'] - ours['verify_seconds']
        rows.append(('db_dump custom, in-module time without read-through', inside, inside / raw, None))
        rows.append(('  of which pg_dump', ours['dump_seconds'], ours['dump_seconds'] / raw, None))
        rows.append(('  of which read-through pg_restore -f /dev/null', ours['verify_seconds'], ours['verify_seconds'] / raw, None))

        dump_wall, dumped = _module('db_dump', dict(connection, dest=os.path.join(work, 'directory'), format='directory',
                                                    jobs=options.jobs))
        restore_wall, _restored = _module('db_restore', dict(connection, src=dumped['path'], db='bench_ours', jobs=options.jobs))
        ours_round_trip = dump_wall + restore_wall
        _drop(description, 'bench_ours')
        shutil.rmtree(os.path.join(work, 'directory'))

        # The same round trip with gzip level 1: pg_dump's default level spends most of the dump compressing.
        fast_dump_wall, fast = _module('db_dump', dict(connection, dest=os.path.join(work, 'fast'), format='directory',
                                                       jobs=options.jobs, compress='gzip:1'))
        fast_restore_wall, _restored = _module('db_restore', dict(connection, src=fast['path'], db='bench_fast',
                                                                  jobs=options.jobs))
        fast_round_trip = fast_dump_wall + fast_restore_wall
        _drop(description, 'bench_fast')
        shutil.rmtree(os.path.join(work, 'fast'))

        target = os.path.join(work, 'community.pgc')
        cp_args = {'login_host': description['postgres']['host'], 'port': description['postgres']['port'],
                   'login_user': description['postgres']['superuser']}
        cp_dump_wall, _cp = _module('community.postgresql.postgresql_db', dict(cp_args, name=db, state='dump', target=target))
        cp_bytes = _size(target)
        # postgresql_db restores only into an existing database: creating it is part of its round trip.
        cp_create_wall, _cp = _module('community.postgresql.postgresql_db', dict(cp_args, name='bench_community', state='present'))
        cp_restore_wall, _cp = _module('community.postgresql.postgresql_db',
                                       dict(cp_args, name='bench_community', state='restore', target=target))
        cp_restore_wall += cp_create_wall
        community_round_trip = cp_dump_wall + cp_restore_wall
        _drop(description, 'bench_community')
        rows.append(('postgresql_db dump (.pgc)', cp_dump_wall, None, cp_bytes))
        rows.append(('postgresql_db state=present + restore (.pgc)', cp_restore_wall, None, None))
        rows.append(('postgresql_db round trip', community_round_trip, None, None))
        rows.append(('db_dump directory jobs=%d' % options.jobs, dump_wall, None, dumped['size']))
        rows.append(('db_restore jobs=%d' % options.jobs, restore_wall, None, None))
        rows.append(('db_dump + db_restore round trip', ours_round_trip, ours_round_trip / community_round_trip, None))
        rows.append(('same with compress=gzip:1: dump', fast_dump_wall, None, fast['size']))
        rows.append(('same with compress=gzip:1: restore', fast_restore_wall, None, None))
        rows.append(('same with compress=gzip:1: round trip', fast_round_trip, fast_round_trip / community_round_trip, None))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not options.keep:
            omero_sandbox.destroy(os.path.join(options.root, 'sandbox'))

    print('database: %d MB (pg_database_size), %d cores' % (db_bytes // 2 ** 20, os.cpu_count()))
    print('%-56s %10s %8s %12s' % ('measurement', 'wall s', 'ratio', 'bytes'))
    for name, seconds, ratio, size in rows:
        print('%-56s %10.2f %8s %12s' % (name, seconds, '%.2fx' % ratio if ratio is not None else '', size or ''))
    print('goals: db_dump custom (without read-through) <= %.2fx raw pg_dump; round trip <= %.2fx postgresql_db'
          % (GOAL_DUMP_RATIO, GOAL_ROUND_TRIP_RATIO))
    print(json.dumps({'database_bytes': db_bytes, 'rows': rows}))


if __name__ == '__main__':
    main()
