# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""datadir_backup (the real module through ansible) against a raw ``rdiff-backup backup`` of the same store.

    python benchmarks/bench_datadir.py [--root /var/tmp/omero-bench-datadir] [--objects 100000] [--keep]

Builds a sandbox (about 1 file per object: --objects 100000 gives ~100 000 files
and ~34 000 directories) unless ROOT already holds one, warms the page cache by
reading every file once, then times, each into its own new repository:

1. raw ``rdiff-backup backup`` with the same options the module passes
   (``--print-statistics --no-file-statistics`` and the default excludes);
2. ``omero.backup.datadir_backup`` with ``verify: false`` (the same work plus the
   module's checks, symlink scan, lock and ansible's own start-up);
3. both again on the unchanged store (module first this time, to even out caching);
4. ``rdiff-backup verify`` of the module's repository, for what ``verify: true`` adds.

Prints wall times, the module/raw ratio (goal <= 1.05) and unchanged re-run
files/s (goal >= 5000), measured by the module (rdiff-backup's run) and by wall
clock (the whole task). Goals are printed, never asserted. The load average is
printed too: on a shared machine it explains most of the spread.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests'))

GOAL_RATIO = 1.05
GOAL_FILES_PER_SECOND = 5000
DEFAULT_EXCLUDES = ('BioFormatsCache', '.omero/**/.lock', 'ManagedRepository/.omero/**/.lock')


def load():
    return '%.1f' % os.getloadavg()[0]


def sandbox_datadir(root, objects, seed):
    import omero_sandbox
    description_file = os.path.join(root, 'sandbox.json')
    if os.path.exists(description_file):
        with open(description_file) as handle:
            return json.load(handle), False
    started = time.time()
    description = omero_sandbox.build(root, objects=objects, orphans=50, seed=seed, omero_cli=False, checksums=False)
    # The database is not needed: stop it so it takes no memory or CPU from the timings.
    omero_sandbox.stop(root)
    print('built sandbox with %d files in %.0fs' % (description['counts']['datadir_files'], time.time() - started))
    return description, True


def warm_up(path):
    """Read every file once, so the first timed run does not pay for a cold page cache alone."""
    count = 0
    for root, dirs, files in os.walk(path):
        count += len(dirs) + len(files)
        for name in files:
            full = os.path.join(root, name)
            if not os.path.islink(full):
                with open(full, 'rb') as handle:
                    while handle.read(1 << 20):
                        pass
    return count


def raw_backup(src, dest):
    argv = ['rdiff-backup', 'backup', '--print-statistics', '--no-file-statistics']
    for pattern in DEFAULT_EXCLUDES:
        argv += ['--exclude', src.rstrip('/') + '/' + pattern]
    started = time.time()
    proc = subprocess.run(argv + [src, dest], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False)
    elapsed = time.time() - started
    if proc.returncode != 0:
        raise SystemExit('raw rdiff-backup failed (%d): %s' % (proc.returncode, proc.stderr[-2000:]))
    files = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith('SourceFiles ')][0]
    return elapsed, files


def module_backup(src, dest):
    from helpers.ansible import run_module
    started = time.time()
    result = run_module('datadir_backup', {'src': src, 'dest': dest, 'verify': False}, timeout=7200)
    elapsed = time.time() - started
    if result.get('failed'):
        raise SystemExit('datadir_backup failed: %s' % result.get('msg'))
    return elapsed, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default='/var/tmp/omero-bench-datadir', help='sandbox root (reused when it exists)')
    parser.add_argument('--objects', type=int, default=100000)
    parser.add_argument('--seed', type=int, default=3)
    parser.add_argument('--keep', action='store_true', help='keep the sandbox and the repositories')
    args = parser.parse_args(argv)

    description, built = sandbox_datadir(args.root, args.objects, args.seed)
    src = description['datadir']
    work = os.path.join(args.root, 'bench-repositories')
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    raw_repo = os.path.join(work, 'raw')
    module_repo = os.path.join(work, 'module')
    try:
        entries = warm_up(src)
        print('store: %s, %d entries (%d files); load average %s' % (src, entries, description['counts']['datadir_files'], load()))

        raw_first, raw_files = raw_backup(src, raw_repo)
        print('raw rdiff-backup backup, new repository:  %8.1fs  (%d entries, load %s)' % (raw_first, raw_files, load()))
        module_first, first = module_backup(src, module_repo)
        print('datadir_backup, new repository:          %8.1fs  (rdiff-backup %.1fs, load %s)'
              % (module_first, first['backup_duration'], load()))

        module_again, again = module_backup(src, module_repo)
        print('datadir_backup, unchanged store:         %8.1fs  (rdiff-backup %.1fs, load %s)'
              % (module_again, again['backup_duration'], load()))
        raw_again, _files = raw_backup(src, raw_repo)
        print('raw rdiff-backup backup, unchanged store: %8.1fs  (load %s)' % (raw_again, load()))

        started = time.time()
        verify = subprocess.run(['rdiff-backup', 'verify', module_repo], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                check=False)
        verify_seconds = time.time() - started
        print('rdiff-backup verify (what verify: true adds): %.1fs, rc %d' % (verify_seconds, verify.returncode))

        print('')
        print('ratio datadir_backup / raw, new repository: %.3f  (goal <= %.2f)' % (module_first / raw_first, GOAL_RATIO))
        print('ratio datadir_backup / raw, unchanged:      %.3f  (goal <= %.2f)' % (module_again / raw_again, GOAL_RATIO))
        # On a shared machine the load moves between runs; what the module adds is its wall time minus the
        # rdiff-backup run inside it, measured in the same run.
        for label, wall, inner in (('new repository', module_first, first['backup_duration']),
                                   ('unchanged', module_again, again['backup_duration'])):
            print('module overhead, %-15s %.1fs over its rdiff-backup run (%.3fx)' % (label + ':', wall - inner, wall / inner))
        print('unchanged re-run files/s, module-reported:  %.0f  (goal >= %d)' % (again['files_per_second'], GOAL_FILES_PER_SECOND))
        print('unchanged re-run files/s, task wall clock:  %.0f' % (again['files'] / module_again))
        print('unchanged re-run files/s, raw rdiff-backup: %.0f' % (raw_files / raw_again))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if built:
                import omero_sandbox
                omero_sandbox.destroy(args.root)
    return 0


if __name__ == '__main__':
    sys.exit(main())
