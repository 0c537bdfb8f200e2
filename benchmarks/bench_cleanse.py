# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check-mode cleanse (database backend) against a bare ``find`` of the same directories.

    python benchmarks/bench_cleanse.py [--root /var/tmp/cleanse-bench/sandbox] [--objects 1760000] [--rounds 3]

Builds the sandbox when ROOT holds none (about 57 % of the objects land in
Pixels/, Files/ and Thumbnails/, so 1 760 000 objects give a million walked
entries), then alternates, after one warm-up of each:

* ``find DATA/Pixels DATA/Files DATA/Thumbnails -type f``
* the module_utils cleanse in check mode, in a child process, so its peak RSS
  (VmHWM of /proc/self/status; ru_maxrss would carry the parent's over fork
  and exec) is its own

and prints medians, the wall-time ratio (goal <= 1.5), the peak RSS (goal
<= 256 MB) and the SQL queries against the one query per 25 entries that
``omero admin cleanse`` makes. Goals are printed, never asserted.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GOAL_RATIO = 1.5
GOAL_RSS_MB = 256


def _collection_path():
    sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))
    import conftest  # noqa: F401  (puts an ansible_collections tree for this checkout on sys.path)
    return [path for path in sys.path if os.path.isdir(os.path.join(path, 'ansible_collections'))][0]


def child(params_file):
    """Run the cleanse once and print its result with this process's own peak RSS."""
    sys.path.insert(0, _collection_path())
    from ansible_collections.omero.backup.plugins.module_utils.cleanse.database import cleanse_database
    from ansible_collections.omero.backup.plugins.module_utils.cleanse.options import CleanseOptions
    with open(params_file) as handle:
        params = json.load(handle)
    started = time.time()
    result = cleanse_database(CleanseOptions.of(params), check_mode=True)
    result['wall'] = time.time() - started
    # VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss over fork and exec.
    with open('/proc/self/status') as handle:
        result['maxrss_kb'] = [int(line.split()[1]) for line in handle if line.startswith('VmHWM:')][0]
    result.pop('listed', None)
    result.pop('kept_unknown_listed', None)
    print(json.dumps(result))


def _sandbox(root, objects, orphans):
    sys.path.insert(0, os.path.join(REPO, 'tools'))
    import omero_sandbox
    if os.path.exists(os.path.join(root, '.omero-sandbox')) and os.path.exists(os.path.join(root, 'sandbox.json')):
        description = omero_sandbox.start(root)
        return description
    started = time.time()
    description = omero_sandbox.build(root, objects=objects, orphans=orphans, seed=11, checksums=False,
                                      progress=lambda message: sys.stderr.write('  sandbox: %s\n' % message))
    sys.stderr.write('sandbox built in %.0f s\n' % (time.time() - started))
    return description


def _time(argv, capture=True):
    started = time.time()
    completed = subprocess.run(argv, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE,
                               check=False)
    wall = time.time() - started
    if completed.returncode != 0:
        raise SystemExit('%s failed: %s' % (argv[0], completed.stderr.decode()[-2000:]))
    return wall, completed.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--root', default='/var/tmp/cleanse-bench/sandbox')
    parser.add_argument('--objects', type=int, default=1760000)
    parser.add_argument('--orphans', type=int, default=1000)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    description = _sandbox(args.root, args.objects, args.orphans)
    datadir = description['datadir']
    postgres = description['postgres']
    params = dict(login_unix_socket=postgres['host'], port=postgres['port'], login_user=postgres['superuser'],
                  login_password=postgres['superuser_password'], connect_timeout=10, db=postgres['dbname'],
                  datadir=datadir, min_age='0', max_id_margin=10 ** 12, max_listed=100)
    params_file = os.path.join(args.root, 'bench-cleanse-params.json')
    fd = os.open(params_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        json.dump(params, handle)

    find_argv = ['find'] + [os.path.join(datadir, name) for name in ('Pixels', 'Files', 'Thumbnails')] + ['-type', 'f']
    cleanse_argv = [sys.executable, os.path.abspath(__file__), '--child', params_file]

    _wall, out = _time(find_argv)  # warm the dentry and inode caches for both
    find_files = out.count(b'\n')
    _time(cleanse_argv)
    find_walls, cleanse_walls = [], []
    result = None
    for _round in range(args.rounds):
        find_walls.append(_time(find_argv, capture=False)[0])
        wall, out = _time(cleanse_argv)
        cleanse_walls.append(wall)
        result = json.loads(out.decode())

    find_median = statistics.median(find_walls)
    cleanse_median = statistics.median(cleanse_walls)
    entries = sum(stats['entries'] for stats in result['subdirectories'].values())
    ratio = cleanse_median / find_median
    rss_mb = result['maxrss_kb'] / 1024.0
    report = {
        'entries_walked': entries,
        'find_files': find_files,
        'orphans_found': result['orphans'],
        'orphans_injected': len(description['orphans']) if isinstance(description['orphans'], list) else description['orphans'],
        'find_wall_s': [round(value, 3) for value in find_walls],
        'cleanse_wall_s': [round(value, 3) for value in cleanse_walls],
        'cleanse_inner_wall_s': round(result['wall'], 3),
        'ratio_cleanse_over_find': round(ratio, 3),
        'cleanse_peak_rss_mb': round(rss_mb, 1),
        'sql_queries': result['queries'],
        'omero_admin_cleanse_queries': result['omero_equivalent_queries'],
    }
    print(json.dumps(report, indent=2))
    print('cleanse/find wall ratio %.2fx (goal <= %.1fx): %s' % (ratio, GOAL_RATIO, 'met' if ratio <= GOAL_RATIO else 'MISSED'))
    print('cleanse peak RSS %.0f MB (goal <= %d MB): %s' % (rss_mb, GOAL_RSS_MB, 'met' if rss_mb <= GOAL_RSS_MB else 'MISSED'))
    print('queries: %d SQL against %d for omero admin cleanse (1 per %d entries), %.0fx fewer'
          % (result['queries'], result['omero_equivalent_queries'], 25,
             result['omero_equivalent_queries'] / float(max(result['queries'], 1))))


if __name__ == '__main__':
    main()
