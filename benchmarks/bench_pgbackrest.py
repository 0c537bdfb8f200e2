# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest (physical backup + WAL archive) against db_dump/db_restore and community.postgresql on a sandbox of SIZE MB.

    python benchmarks/bench_pgbackrest.py [--root /var/tmp/omero-bench-pgbr] [--size-mb 1024] [--jobs 2]
                                          [--archive-timeout 30] [--rpo-samples 3] [--rounds 3] [--keep]

Builds the sandbox as benchmarks/bench_db.py does (same function, ``db_size_mb`` pads ``eventlog``), turns on
WAL archiving into a posix pgBackRest repository beside it (lz4, ``process-max`` JOBS; the sandbox cluster is
restarted once for ``archive_mode``), then measures, all on the same database and in the same run:

1. round trip: ``pgbackrest backup --type=full`` + ``pgbackrest restore --type=immediate`` into a scratch data
   dir, started on a scratch port until it accepts connections out of recovery, against ``db_dump format=directory
   jobs=N`` + ``db_restore jobs=N`` (through ansible-playbook) and against ``community.postgresql.postgresql_db``
   ``state=dump`` + ``state=present`` + ``state=restore``. Goal: pgBackRest <= 0.3x postgresql_db. The pgBackRest
   round trip, the cheapest, runs ROUNDS times (medians).
2. incremental: 1 % more ``eventlog`` rows (OMERO appends to it), then ``--type=incr``. Goal: <= 0.1x the full.
   pgBackRest 2.45 copies a changed relation segment file (up to 1 GB) whole, so the WAL of the change (what the
   archive ships between backups), 1 % of the rows updated spread over the table, and block incremental (beta in
   2.45: ``--beta --repo1-bundle --repo1-block``, a full and an incr of its own) are printed too.
   Last, the disaster path: the cluster stopped, ``restore --delta`` over it, started until out of recovery.
3. RPO: a commit at a random moment, then the time until the WAL segment holding it is in the repository, with
   ``archive_timeout`` ARCHIVE_TIMEOUT (pgBackRest ``archive-push`` as ``archive_command``). Goal: <= 60 s.

Prints a table with ratios; goals are printed, never asserted.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import pwd
import random
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
for _path in (HERE, os.path.join(REPO, 'tools'), os.path.join(REPO, 'tests')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import bench_db  # noqa: E402
import omero_sandbox  # noqa: E402
from omero_sandbox.system import as_user, free_port  # noqa: E402
from helpers.sandbox import connection_args, psycopg2_connect  # noqa: E402

GOAL_ROUND_TRIP_RATIO = 0.3
GOAL_INCR_RATIO = 0.1
GOAL_RPO_SECONDS = 60
STANZA = 'bench'


class Bench(object):
    """The sandbox cluster with archiving into a pgBackRest repository under ROOT/pgbackrest."""

    def __init__(self, root, description, jobs, archive_timeout):
        self.description = description
        self.postgres = description['postgres']
        self.user = self.postgres['os_user']
        self.base = os.path.join(root, 'pgbackrest')
        self.repo = os.path.join(self.base, 'repo')
        self.config = os.path.join(self.base, 'pgbackrest.conf')
        self.jobs = jobs
        self.archive_timeout = archive_timeout

    def setup(self):
        if os.path.exists(self.base):
            shutil.rmtree(self.base)
        entry = pwd.getpwnam(self.user)
        for path in (self.base, self.repo, os.path.join(self.base, 'log'), os.path.join(self.base, 'lock')):
            os.makedirs(path, 0o750)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        text = ('[global]\nrepo1-path=%s\nrepo1-retention-full=2\ncompress-type=lz4\nprocess-max=%d\n'
                'log-path=%s\nlock-path=%s\nlog-level-console=warn\nstart-fast=y\narchive-async=n\n\n'
                '[%s]\npg1-path=%s\npg1-port=%d\npg1-socket-path=%s\n'
                % (self.repo, self.jobs, os.path.join(self.base, 'log'), os.path.join(self.base, 'lock'), STANZA,
                   os.path.join(self.description['root'], 'pgdata'), self.postgres['port'], self.postgres['host']))
        fd = os.open(self.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, 'w') as handle:
            handle.write(text)
        os.chown(self.config, 0, entry.pw_gid)
        command = "pgbackrest --config=%s --stanza=%s archive-push %%p" % (self.config, STANZA)
        self.sql(["ALTER SYSTEM SET archive_mode = 'on'", "ALTER SYSTEM SET archive_command = %s" % _literal(command),
                  "ALTER SYSTEM SET archive_timeout = '%ds'" % self.archive_timeout])
        omero_sandbox.stop(self.description['root'])
        omero_sandbox.start(self.description['root'])
        self.pgbackrest('stanza-create')
        self.pgbackrest('check')

    def sql(self, statements, dbname='postgres', fetch=False):
        conn = psycopg2_connect(self.description, dbname=dbname)
        conn.autocommit = True
        rows = None
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
                if fetch:
                    rows = cursor.fetchall()
        finally:
            conn.close()
        return rows

    def pgbackrest(self, command, *args):
        argv = as_user(self.user, ['pgbackrest', '--config=' + self.config, '--stanza=' + STANZA] + list(args) + [command])
        started = time.time()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if proc.returncode != 0:
            raise SystemExit('pgbackrest %s failed (%d): %s' % (command, proc.returncode, (proc.stderr or proc.stdout).strip()))
        return time.time() - started, proc.stdout

    def newest(self):
        _seconds, out = self.pgbackrest('info', '--output=json')
        return json.loads(out)[0]['backup'][-1]

    def restore_and_start(self, scratch):
        """Restore the newest backup into ``scratch`` and start it on a free port until it answers out of recovery."""
        entry = pwd.getpwnam(self.user)
        os.makedirs(scratch, 0o700)
        os.chown(scratch, entry.pw_uid, entry.pw_gid)
        port = free_port()
        started = time.time()
        # archive-mode=off: a drill's copy must never push its WAL into the production stanza.
        restored, _out = self.pgbackrest('restore', '--pg1-path=' + scratch, '--type=immediate', '--target-action=promote',
                                         '--archive-mode=off')
        ctl = [os.path.join(self.postgres['bindir'], 'pg_ctl'), '-D', scratch, '-l', os.path.join(self.base, 'log', 'scratch.log'), '-w', '-t', '600',
               '-o', '-p %d -c archive_mode=off' % port, 'start']
        subprocess.run(as_user(self.user, ctl), stdout=subprocess.DEVNULL, check=True)
        while True:
            rows = _query(self.postgres['host'], port, 'SELECT pg_is_in_recovery(), (SELECT count(*) FROM (SELECT 1 FROM eventlog LIMIT 1) AS one)',
                          self.postgres['dbname'])
            if rows and not rows[0][0]:
                break
            time.sleep(0.2)
        seconds = time.time() - started
        subprocess.run(as_user(self.user, [os.path.join(self.postgres['bindir'], 'pg_ctl'), '-D', scratch, '-m', 'fast', '-w', 'stop']),
                       stdout=subprocess.DEVNULL, check=True)
        shutil.rmtree(scratch)
        return restored, seconds

    def delta_in_place(self):
        """The disaster path: stop the cluster, restore the newest backup over it with --delta (only files whose
        checksum differs are written), start it until it answers out of recovery."""
        root = self.description['root']
        started = time.time()
        omero_sandbox.stop(root)
        self.pgbackrest('restore', '--delta', '--type=immediate', '--target-action=promote')
        omero_sandbox.start(root)
        while True:
            rows = _query(self.postgres['host'], self.postgres['port'], 'SELECT pg_is_in_recovery()', 'postgres')
            if rows and not rows[0][0]:
                return time.time() - started
            time.sleep(0.2)

    def wal_bytes(self, since):
        rows = self.sql(["SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '%s')" % since], fetch=True)
        return int(rows[0][0])

    def lsn(self):
        return self.sql(['SELECT pg_current_wal_insert_lsn()'], fetch=True)[0][0]

    def wal_archived(self, segment):
        top = os.path.join(self.repo, 'archive', STANZA)
        for dirpath, _dirs, files in os.walk(top):
            if os.path.basename(dirpath) == segment[:16] and any(name.startswith(segment) for name in files):
                return True
        return False


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def _query(host, port, statement, dbname):
    import psycopg2
    try:
        conn = psycopg2.connect(host=host, port=port, user='postgres', dbname=dbname, connect_timeout=2)
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return cursor.fetchall()
    finally:
        conn.close()


def _append_rows(bench, fraction):
    """OMERO's growth: new eventlog rows at the end of the table, ``fraction`` of its rows."""
    rows = bench.sql(['SELECT count(*), max(id) FROM eventlog'], dbname=bench.postgres['dbname'], fetch=True)
    count, top = rows[0]
    extra = max(1, int(count * fraction))
    bench.sql(["INSERT INTO eventlog (id, permissions, action, entityid, entitytype, event) "
               "SELECT g, permissions, action, entityid, entitytype, event FROM eventlog "
               "JOIN generate_series(%d, %d) AS g ON eventlog.id = g - %d" % (top + 1, top + extra, top)],
              dbname=bench.postgres['dbname'])
    return extra


def _update_spread(bench, fraction):
    """The worst case for a file-level incremental: ``fraction`` of the rows updated, spread over the whole table."""
    step = max(1, int(round(1 / fraction)))
    bench.sql(["UPDATE eventlog SET entityid = entityid + 1 WHERE id %% %d = 0" % step], dbname=bench.postgres['dbname'])


def _rpo(bench, samples):
    """Seconds from a commit to its WAL segment in the repository, at random moments within archive_timeout."""
    lags = []
    rng = random.Random(15)
    for _sample in range(samples):
        time.sleep(rng.uniform(0, bench.archive_timeout))
        rows = bench.sql(["CREATE TABLE IF NOT EXISTS bench_rpo (at timestamptz)", "INSERT INTO bench_rpo VALUES (now())",
                          "SELECT pg_walfile_name(pg_current_wal_insert_lsn())"], dbname=bench.postgres['dbname'], fetch=True)
        committed = time.time()
        segment = rows[0][0]
        while not bench.wal_archived(segment):
            if time.time() - committed > 10 * bench.archive_timeout + 120:
                raise SystemExit('WAL segment %s never reached the repository' % segment)
            time.sleep(0.25)
        lags.append(time.time() - committed)
    return lags


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--root', default='/var/tmp/omero-bench-pgbr')
    parser.add_argument('--size-mb', type=int, default=1024)
    parser.add_argument('--jobs', type=int, default=2)
    parser.add_argument('--archive-timeout', type=int, default=30)
    parser.add_argument('--rpo-samples', type=int, default=3)
    parser.add_argument('--rounds', type=int, default=3, help='pgBackRest full backup + restore rounds (medians)')
    parser.add_argument('--keep', action='store_true', help='keep the sandbox for another run')
    options = parser.parse_args()

    sandbox_root = os.path.join(options.root, 'sandbox')
    description = bench_db._sandbox(sandbox_root, options.size_mb)  # pylint: disable=protected-access
    work = os.path.join(options.root, 'work')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    bench = Bench(options.root, description, options.jobs, options.archive_timeout)
    connection = connection_args(description)
    db = description['postgres']['dbname']
    rows = []
    try:
        bench.setup()
        # The count warms the cache for every contender alike, as in bench_db.
        bench.sql(['SELECT count(*) FROM eventlog'], dbname=db)
        db_bytes = bench.sql(['SELECT pg_database_size(current_database())'], dbname=db, fetch=True)[0][0]

        # The cheapest contender, so it runs ROUNDS times (medians): a shared machine moves single runs by tens of percent.
        fulls, restores, starts = [], [], []
        for _round in range(options.rounds):
            full_seconds, _out = bench.pgbackrest('backup', '--type=full')
            fulls.append(full_seconds)
            restore_only, restore_seconds = bench.restore_and_start(os.path.join(work, 'scratch'))
            restores.append(restore_only)
            starts.append(restore_seconds)
        full_seconds, restore_only, restore_seconds = (statistics.median(values) for values in (fulls, restores, starts))
        full = bench.newest()
        pgbr_round_trip = full_seconds + restore_seconds

        dump_wall, dumped = bench_db._module('db_dump', dict(connection, dest=os.path.join(work, 'directory'),  # pylint: disable=protected-access
                                                             format='directory', jobs=options.jobs))
        restore_wall, _restored = bench_db._module('db_restore', dict(connection, src=dumped['path'], db='bench_ours',  # pylint: disable=protected-access
                                                                      jobs=options.jobs))
        ours_round_trip = dump_wall + restore_wall
        bench_db._drop(description, 'bench_ours')  # pylint: disable=protected-access
        shutil.rmtree(os.path.join(work, 'directory'))

        target = os.path.join(work, 'community.pgc')
        cp_args = {'login_host': description['postgres']['host'], 'port': description['postgres']['port'],
                   'login_user': description['postgres']['superuser']}
        module = bench_db._module  # pylint: disable=protected-access
        cp_dump_wall, _cp = module('community.postgresql.postgresql_db', dict(cp_args, name=db, state='dump', target=target))
        cp_create_wall, _cp = module('community.postgresql.postgresql_db', dict(cp_args, name='bench_community', state='present'))
        cp_restore_wall, _cp = module('community.postgresql.postgresql_db',
                                      dict(cp_args, name='bench_community', state='restore', target=target))
        community_round_trip = cp_dump_wall + cp_create_wall + cp_restore_wall
        bench_db._drop(description, 'bench_community')  # pylint: disable=protected-access
        os.unlink(target)

        before = bench.lsn()
        appended = _append_rows(bench, 0.01)
        change_wal = bench.wal_bytes(before)
        incr_seconds, _out = bench.pgbackrest('backup', '--type=incr')
        incr = bench.newest()
        _update_spread(bench, 0.01)
        spread_seconds, _out = bench.pgbackrest('backup', '--type=incr')
        spread = bench.newest()
        # Block incremental (2.45: beta, needs --beta and bundling): only the changed blocks of a changed file.
        block = ('--beta', '--repo1-bundle', '--repo1-block')
        block_full_seconds, _out = bench.pgbackrest('backup', '--type=full', *block)
        block_full = bench.newest()
        _append_rows(bench, 0.01)
        block_incr_seconds, _out = bench.pgbackrest('backup', '--type=incr', *block)
        block_incr = bench.newest()
        lags = _rpo(bench, options.rpo_samples)
        delta_seconds = bench.delta_in_place()

        rows.append(('pgbackrest backup --type=full (median of %d)' % options.rounds, full_seconds, None,
                     full['info']['repository']['delta']))
        rows.append(('pgbackrest restore --type=immediate, scratch data dir (median)', restore_only, None, None))
        rows.append(('  the same + start on a scratch port until out of recovery', restore_seconds, None, None))
        rows.append(('pgBackRest round trip', pgbr_round_trip, pgbr_round_trip / community_round_trip, None))
        rows.append(('db_dump directory jobs=%d' % options.jobs, dump_wall, None, dumped['size']))
        rows.append(('db_restore jobs=%d' % options.jobs, restore_wall, None, None))
        rows.append(('db_dump + db_restore round trip', ours_round_trip, ours_round_trip / community_round_trip, None))
        rows.append(('postgresql_db round trip (dump, present, restore)', community_round_trip, 1.0, None))
        rows.append(('pgBackRest round trip vs db_dump + db_restore', pgbr_round_trip, pgbr_round_trip / ours_round_trip, None))
        rows.append(('incr after +1 %% rows (%d appended) vs full' % appended, incr_seconds, incr_seconds / full_seconds,
                     incr['info']['repository']['delta']))
        rows.append(('  the same change as WAL (archived continuously) vs full', 0, change_wal / full['info']['repository']['delta'],
                     change_wal))
        rows.append(('incr after 1 % rows updated, spread, vs full', spread_seconds, spread_seconds / full_seconds,
                     spread['info']['repository']['delta']))
        rows.append(('block incremental (beta): full', block_full_seconds, None, block_full['info']['repository']['delta']))
        rows.append(('block incremental (beta): incr after +1 % rows vs its full', block_incr_seconds,
                     block_incr_seconds / block_full_seconds, block_incr['info']['repository']['delta']))
        rows.append(('  its bytes vs its full', 0, block_incr['info']['repository']['delta'] / float(block_full['info']['repository']['delta']),
                     None))
        rows.append(('in place: stop, restore --delta, start until out of recovery', delta_seconds, delta_seconds / community_round_trip,
                     None))
        for index, lag in enumerate(lags):
            rows.append(('RPO sample %d (commit -> WAL in repository)' % (index + 1), lag, None, None))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            bench.sql(["ALTER SYSTEM RESET archive_command", "ALTER SYSTEM RESET archive_mode", "ALTER SYSTEM RESET archive_timeout"])
        except Exception:  # pylint: disable=broad-except
            pass  # the sandbox may be gone already; it is rebuilt on the next run
        if not options.keep:
            omero_sandbox.destroy(sandbox_root)
            shutil.rmtree(bench.base, ignore_errors=True)

    print('database: %d MB (pg_database_size), %d cores, archive_timeout %d s, process-max %d, lz4'
          % (db_bytes // 2 ** 20, os.cpu_count(), options.archive_timeout, options.jobs))
    print('%-66s %10s %8s %12s' % ('measurement', 'wall s', 'ratio', 'repo bytes'))
    for name, seconds, ratio, size in rows:
        print('%-66s %10s %8s %12s' % (name, '%.2f' % seconds if seconds else '', '%.3fx' % ratio if ratio is not None else '', size or ''))
    print('goals: round trip <= %.2fx postgresql_db; incr <= %.2fx full; RPO <= %d s (max of samples %.1f s)'
          % (GOAL_ROUND_TRIP_RATIO, GOAL_INCR_RATIO, GOAL_RPO_SECONDS, max(lags) if rows else -1))
    print(json.dumps({'database_bytes': db_bytes, 'rows': rows}))


if __name__ == '__main__':
    main()
