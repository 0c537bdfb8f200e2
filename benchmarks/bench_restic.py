# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restic data dir engine against the rdiff-backup engine and a raw ``restic``, on stores of 100 k (and 1 M) files.

    python benchmarks/bench_restic.py [--files 100000] [--files 300000] [--parent /var/tmp] [--keep] [--repeat 3]
                                      [--systems rdiff-module,restic-module,restic-step,restic-raw]
                                      [--ops first,unchanged,changed,restore,fileset]

Measured numbers: benchmarks/README.md, "restic engine". A 1 M store takes this machine ~40 min for every system
and op; ``--files 1000000 --systems restic-module --ops first,fileset`` measures the one-fileset goal in ~4 min.

For each size it writes a data dir with ``omero_sandbox.many`` (many small files, a few big ones, filesets of
1-3 and 10-100 files; no database), reads it once to warm the page cache, and then, system by system, op by op:

1. first backup into a new repository;
2. re-run on the unchanged store (--repeat times, the median counts);
3. re-run after 1 % of the files were rewritten (same size, new bytes);
4. full restore of the newest backup into a new directory;
5. restore of one fileset (a ManagedRepository directory of 10-100 files).

The systems, each with its own repository of the same kind (a local path) so that every first backup starts
empty: ``rdiff-module`` (datadir_backup/datadir_restore, engine rdiff-backup, through ansible-playbook),
``restic-module`` (the same modules, engine restic), ``restic-step`` (the steps the modules wrap, called in this
process: the module minus ansible), ``restic-raw`` (``restic backup .`` from inside the data dir, as the engine
runs it, with the engine's excludes; ``restic restore``). The one-fileset restore is datadir_restore_paths with
``paths: [the fileset's directory]`` (raw: ``restic restore --include``). ``verify`` is off in the backups (it is a
separate cost).

Prints a table (seconds, entries/s), the ratios the issue sets goals for, the repositories' sizes (``du``), and the
load average during each op: on a shared machine it explains most of the spread. Goals are printed, never
asserted. Everything is made under one ``mkdtemp`` (mode 0700, owned by the user running this, root under
``make bench``) in --parent and removed at the end unless --keep.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, 'tools'))
sys.path.insert(0, os.path.join(REPO, 'tests'))

SYSTEMS = ('rdiff-module', 'restic-module', 'restic-step', 'restic-raw')
OPS = ('first', 'unchanged', 'changed', 'restore', 'fileset')
OP_LABELS = {'first': 'first backup', 'unchanged': 'unchanged re-run', 'changed': '1% changed re-run',
             'restore': 'full restore', 'fileset': 'one-fileset restore'}
CHANGED_FRACTION = 0.01
GOALS = {'unchanged_files_per_second': 100000, 'unchanged_vs_rdiff': 0.25, 'first_vs_rdiff': 0.5,
         'module_vs_raw': 1.05, 'fileset_seconds': 5.0}
RESTIC = 'restic'
RESTIC_COMMANDS = ('backup', 'cat', 'check', 'forget', 'init', 'list', 'ls', 'prune', 'restore', 'snapshots', 'unlock',
                   'version', 'stats', 'key')
# The modules run restic through this wrapper (their ``restic`` option), which logs each run's start, end and
# arguments (no secrets there: those travel in the environment): what the module spends outside restic is its
# wall time minus these.
TIMED_RESTIC = """#!/bin/sh
start=$(date +%%s.%%N)
%(restic)s "$@"
rc=$?
printf '%%s %%s %%s\n' "$start" "$(date +%%s.%%N)" "$*" >> %(log)s
exit $rc
"""
MODULE_TIMEOUT = 4 * 3600


def load():
    return os.getloadavg()[0]


def _collection_path():
    sys.path.insert(0, os.path.join(REPO, 'tests', 'unit'))
    # tests/unit/conftest puts an ansible_collections tree for this checkout on sys.path when imported.
    importlib.import_module('conftest')
    return [path for path in sys.path if os.path.isdir(os.path.join(path, 'ansible_collections'))][0]


def restic_engine_available():
    sys.path.insert(0, _collection_path())
    from ansible_collections.omero.backup.plugins.module_utils.datadir import common
    return 'restic' in common.ENGINES


def restic_excludes(src):
    """The restic exclusion patterns the engine passes for the default patterns (so raw restic skips the same)."""
    sys.path.insert(0, _collection_path())
    from ansible_collections.omero.backup.plugins.module_utils.engines.base import (
        LEFTOVER_PATTERNS, EngineError, engine_for, exclude_patterns)
    try:
        engine = engine_for('datadir', 'restic', None)
    except EngineError:
        # Before the engine lands: restic's --exclude takes absolute patterns, ** crossing directories.
        return [os.path.join(src, pattern) for pattern in exclude_patterns(None) + list(LEFTOVER_PATTERNS)]
    return list(engine.excludes(src, exclude_patterns(None)))


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


def warm_up_count_skipped(src):
    """Entries under BioFormatsCache (itself included), which every engine excludes."""
    cache = os.path.join(src, 'BioFormatsCache')
    return 1 + sum(len(dirs) + len(files) for _root, dirs, files in os.walk(cache)) if os.path.isdir(cache) else 0


def count_files(path):
    return sum(len(files) for _root, _dirs, files in os.walk(path))


def du_kib(path):
    proc = subprocess.run(['du', '-sk', path], stdout=subprocess.PIPE, universal_newlines=True, check=True)
    return int(proc.stdout.split()[0])


def run(argv, env=None, cwd=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    started = time.time()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=full_env,
                          cwd=cwd, check=False)
    elapsed = time.time() - started
    if proc.returncode != 0:
        raise SystemExit('%s failed (%d): %s' % (' '.join(argv[:3]), proc.returncode, proc.stderr[-2000:]))
    return elapsed, proc.stdout


class Measure(object):
    """One timed op: wall seconds, entries seen (backups), the tool's own seconds inside a module, load after."""

    def __init__(self, seconds, files=None, inner=None, note=''):
        self.seconds = seconds
        self.files = files
        self.inner = inner
        self.note = note
        self.load = load()


class Store(object):
    """The data dir under test, its fileset to restore alone, and the work directory the repositories live in."""

    def __init__(self, work, files, seed):
        from omero_sandbox.many import write_many
        self.work = work
        self.src = os.path.join(work, 'OMERO')
        started = time.time()
        self.facts = write_many(self.src, files, seed)
        self.build_seconds = time.time() - started
        sample = sorted(self.facts['sample_filesets'], key=lambda item: abs(item['files'] - 50))[0]
        self.fileset = sample['dir']
        self.fileset_files = sample['files']
        self.entries = None
        self.password_file = os.path.join(work, 'restic-password')
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            handle.write(os.urandom(24).hex() + '\n')
        self.restic_log = os.path.join(work, 'restic-runs.log')
        self.timed_restic = os.path.join(work, 'restic-timed')
        fd = os.open(self.timed_restic, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
        with os.fdopen(fd, 'w') as handle:
            handle.write(TIMED_RESTIC % {'restic': shutil.which(RESTIC), 'log': self.restic_log})

    def restic_runs(self):
        """[(subcommand, seconds)] of the runs the wrapper logged since the last call (the log is emptied)."""
        if not os.path.exists(self.restic_log):
            return []
        with open(self.restic_log, 'rb') as handle:
            lines = handle.read().decode('utf-8', 'replace').splitlines()
        os.unlink(self.restic_log)
        runs = []
        for line in lines:
            start, end, args = (line.split(' ', 2) + [''])[:3]
            command = [word for word in args.split() if word in RESTIC_COMMANDS][:1] or ['?']
            runs.append((command[0], float(end) - float(start)))
        return runs

    def repository(self, system):
        return os.path.join(self.work, 'repo-' + system)

    def scratch(self, system, op):
        return tempfile.mkdtemp(prefix='%s-%s.' % (op, system), dir=self.work)


class RdiffModule(object):
    name = 'rdiff-module'

    def __init__(self, store):
        self.store = store
        self.repo = store.repository(self.name)

    def backup(self, op):
        from helpers.ansible import run_module
        started = time.time()
        result = run_module('datadir_backup', {'src': self.store.src, 'dest': self.repo, 'verify': False},
                            timeout=MODULE_TIMEOUT)
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_backup (rdiff-backup, %s) failed: %s' % (op, result.get('msg')))
        return Measure(elapsed, result.get('files'), result.get('backup_duration'))

    def restore(self, into):
        from helpers.ansible import run_module
        started = time.time()
        result = run_module('datadir_restore', {'src': self.repo, 'dest': into}, timeout=MODULE_TIMEOUT)
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_restore (rdiff-backup) failed: %s' % result.get('msg'))
        return Measure(elapsed)

    def fileset(self, relpath, into):
        from helpers.ansible import run_module
        started = time.time()
        result = run_module('datadir_restore_paths', {'src': self.repo, 'dest': into, 'paths': [relpath]},
                            timeout=MODULE_TIMEOUT)
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_restore_paths (rdiff-backup) failed: %s' % result.get('msg'))
        return Measure(elapsed, count_files(into))


class ResticModule(object):
    """datadir_backup/datadir_restore with engine restic, through ansible-playbook."""

    name = 'restic-module'

    def __init__(self, store):
        self.store = store
        self.repo = store.repository(self.name)

    def backup_args(self):
        return {'engine': 'restic', 'src': self.store.src, 'dest': self.repo, 'verify': False,
                'password_file': self.store.password_file, 'restic': self.store.timed_restic}

    def restore_args(self, into, paths=None):
        args = {'engine': 'restic', 'src': self.repo, 'dest': into, 'password_file': self.store.password_file,
                'restic': self.store.timed_restic}
        if paths:
            args['paths'] = paths
        return args

    def call(self, module, args):
        from helpers.ansible import run_module
        return run_module(module, args, timeout=MODULE_TIMEOUT)

    def measure(self, elapsed, files=None, inner=None):
        """The op's Measure, its note saying how long its restic runs took (the rest is the module's own)."""
        runs = self.store.restic_runs()
        spent = sum(seconds for _command, seconds in runs)
        return Measure(elapsed, files, inner, note='%d restic runs %.2fs (%s), outside restic %.2fs' % (
            len(runs), spent, ' '.join('%s %.2f' % run for run in runs), elapsed - spent))

    def backup(self, op):
        started = time.time()
        result = self.call('datadir_backup', self.backup_args())
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_backup (restic, %s) via %s failed: %s' % (op, self.name, result.get('msg')))
        return self.measure(elapsed, result.get('files'), result.get('backup_duration'))

    def restore(self, into):
        started = time.time()
        result = self.call('datadir_restore', self.restore_args(into))
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_restore (restic) via %s failed: %s' % (self.name, result.get('msg')))
        return self.measure(elapsed)

    def fileset(self, relpath, into):
        started = time.time()
        result = self.call('datadir_restore_paths', self.restore_args(into, paths=[relpath]))
        elapsed = time.time() - started
        if result.get('failed'):
            raise SystemExit('datadir_restore_paths (restic) via %s failed: %s' % (self.name, result.get('msg')))
        return self.measure(elapsed, count_files(into))


class ResticStep(ResticModule):
    """The steps the modules wrap, called in this process with a subprocess runner: the module minus ansible."""

    name = 'restic-step'

    def call(self, module, args):
        sys.path.insert(0, _collection_path())
        from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
        from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
        if module == 'datadir_backup':
            from ansible_collections.omero.backup.plugins.module_utils.datadir.backup import backup_datadir as step
        elif module == 'datadir_restore_paths':
            from ansible_collections.omero.backup.plugins.module_utils.datadir.granular import restore_paths as step
        else:
            from ansible_collections.omero.backup.plugins.module_utils.datadir.restore import restore_datadir as step
        try:
            return step(args, subprocess_runner)
        except OperationFailed as exc:
            return dict(getattr(exc, 'result', None) or {}, failed=True, msg=str(exc))


class ResticRaw(object):
    """restic itself: the engine's excludes, a local repository, the same password file."""

    name = 'restic-raw'

    def __init__(self, store):
        self.store = store
        self.repo = store.repository(self.name)
        self.env = {'RESTIC_PASSWORD_FILE': store.password_file, 'RESTIC_REPOSITORY': self.repo}
        self.excludes = restic_excludes(store.src)

    def backup(self, op):
        seconds = 0.0
        if op == 'first':
            # A new repository is part of a first backup for the module too (it inits when missing).
            seconds, _out = run([RESTIC, 'init', '-q'], self.env)
        # As the engine does: from inside the data dir, as '.', so the snapshot's root is the data dir.
        argv = [RESTIC, 'backup', '--json', '-q']
        for pattern in self.excludes:
            argv += ['--exclude', pattern]
        elapsed, out = run(argv + ['.'], self.env, cwd=self.store.src)
        summary = [json.loads(line) for line in out.splitlines() if '"summary"' in line][-1]
        files = summary['total_files_processed'] + summary['dirs_new'] + summary['dirs_changed'] + summary['dirs_unmodified']
        return Measure(seconds + elapsed, files, summary['total_duration'],
                       note='init %.1fs' % seconds if seconds else '')

    def restore(self, into):
        elapsed, _out = run([RESTIC, 'restore', 'latest', '-q', '--target', into], self.env)
        return Measure(elapsed)

    def fileset(self, relpath, into):
        elapsed, _out = run([RESTIC, 'restore', 'latest', '-q', '--target', into, '--include', '/' + relpath], self.env)
        return Measure(elapsed, count_files(into))


SYSTEM_CLASSES = {'rdiff-module': RdiffModule, 'restic-module': ResticModule, 'restic-step': ResticStep,
                  'restic-raw': ResticRaw}


def measure_size(store, systems, ops, results, say, repeat=1):
    """The ops for every system on one store; results[(system, op)] = Measure (of the unchanged re-runs, the
    median of ``repeat``: on a shared machine one run can land on a burst of someone else's load)."""
    runs = {}

    def each(op, action, order):
        if op not in ops:
            return
        for system in order:
            measure = action(system)
            runs.setdefault((system.name, op), []).append(measure)
            done = sorted(runs[(system.name, op)], key=lambda one: one.seconds)
            results[(system.name, op)] = done[(len(done) - 1) // 2]
            say('  %-14s %-20s %8.2fs%s  load %.2f%s' % (
                system.name, OP_LABELS[op], measure.seconds,
                '  %d entries' % measure.files if measure.files else '', measure.load,
                '  (%s)' % measure.note if measure.note else ''))

    each('first', lambda system: system.backup('first'), systems)
    # Reversed order for the re-runs, so no system always runs right after another's heavy first backup.
    for index in range(repeat):
        each('unchanged', lambda system: system.backup('unchanged'), list(reversed(systems)) if index % 2 == 0 else systems)
    if 'changed' in ops:
        from omero_sandbox.many import change_fraction
        started = time.time()
        changed = change_fraction(store.src, CHANGED_FRACTION)
        say('  changed %d files (%.0f%%) in %.1fs' % (changed, CHANGED_FRACTION * 100, time.time() - started))
    each('changed', lambda system: system.backup('changed'), systems)

    def restore(system):
        into = store.scratch(system.name, 'restore')
        os.rmdir(into)  # the modules restore into a missing or empty dest; raw restic makes it
        try:
            return system.restore(into)
        finally:
            shutil.rmtree(into, ignore_errors=True)

    def fileset(system):
        into = store.scratch(system.name, 'fileset')
        os.rmdir(into)
        try:
            measure = system.fileset(store.fileset, into)
        finally:
            shutil.rmtree(into, ignore_errors=True)
        if measure.files != store.fileset_files:
            measure.note = (measure.note + '; ' if measure.note else '') + 'restored %s files, expected %d' % (
                measure.files, store.fileset_files)
        return measure

    each('restore', restore, systems)
    each('fileset', fileset, systems)
    return dict((system.name, du_kib(system.repo)) for system in systems)


def fixed_costs(store, systems, say):
    """What every run pays whatever the store holds, and a bare walk of the store: what the re-runs are made of."""
    from helpers.ansible import run_module
    started = time.time()
    run_module('ansible.builtin.ping', {})
    say('  fixed costs: ansible-playbook with one no-op task %.2fs' % (time.time() - started))
    raw = [system for system in systems if system.name == 'restic-raw']
    if raw:
        opened, _out = run([RESTIC, 'cat', 'config'], raw[0].env)
        listed, _out = run([RESTIC, 'ls', 'latest', '-q'], raw[0].env)
        say('  fixed costs: restic opens the repository (key derivation, config) %.2fs; restic ls latest (every tree '
            'of the snapshot) %.2fs' % (opened, listed))
    started = time.time()
    subprocess.run(['find', store.src, '-printf', ''], check=True)
    say('  a bare walk of the store (find, lstat of every entry) %.2fs' % (time.time() - started))


def ratio(results, top, bottom, op, inner=False):
    one = results.get((top, op))
    other = results.get((bottom, op))
    if not one or not other:
        return None
    if inner:
        return (one.inner or one.seconds) / (other.inner or other.seconds)
    return one.seconds / other.seconds


def _fmt(value, pattern='%.2f'):
    return pattern % value if value is not None else '-'


def report(files, store, systems, results, sizes, say):
    names = [system.name for system in systems]
    say('')
    say('%d files (%d entries with directories, %.0f MiB, %d filesets; fileset restored alone: %d files)' % (
        store.facts['files'], store.facts['files'] + store.facts['directories'], store.facts['bytes'] / 2.0 ** 20,
        store.facts['filesets'], store.fileset_files))
    say('| op | ' + ' | '.join(names) + ' | restic-module / rdiff | restic-raw / rdiff | module / raw | step / raw |')
    say('|---|' + '---:|' * (len(names) + 4))
    for op in OPS:
        if not any((name, op) in results for name in names):
            continue
        cells = []
        for name in names:
            measure = results.get((name, op))
            cells.append(_fmt(measure.seconds if measure else None) + ' s' if measure else '-')
        say('| %s | %s | %s | %s | %s | %s |' % (
            OP_LABELS[op], ' | '.join(cells),
            _fmt(ratio(results, 'restic-module', 'rdiff-module', op)),
            _fmt(ratio(results, 'restic-raw', 'rdiff-module', op)),
            _fmt(ratio(results, 'restic-module', 'restic-raw', op)),
            _fmt(ratio(results, 'restic-step', 'restic-raw', op))))
    rates = []
    for name in names:
        measure = results.get((name, 'unchanged'))
        rates.append(_fmt(store.entries / measure.seconds if measure else None, '%.0f'))
    say('| unchanged entries/s (wall) | %s | | | | |' % ' | '.join(rates))
    say('| repository (du) | %s | %s | %s | | |' % (
        ' | '.join('%.0f MiB' % (sizes[name] / 1024.0) for name in names),
        _fmt(sizes['restic-module'] / float(sizes['rdiff-module']) if 'restic-module' in sizes and 'rdiff-module' in sizes else None),
        _fmt(sizes['restic-raw'] / float(sizes['rdiff-module']) if 'restic-raw' in sizes and 'rdiff-module' in sizes else None)))
    loads = [measure.load for measure in results.values()]
    say('load average (1 min) after each op: min %.2f, max %.2f; store written in %.0fs' % (
        min(loads), max(loads), store.build_seconds))
    say('')
    goals(files, store.entries, results, say)


def goals(files, entries, results, say):
    def line(text, value, goal, better_low=True):
        if value is None:
            return
        met = value <= goal if better_low else value >= goal
        say('%-58s %10.2f  (goal %s %s: %s)' % (text, value, '<=' if better_low else '>=', goal, 'met' if met else 'MISSED'))

    for system in ('restic-module', 'restic-step', 'restic-raw'):
        measure = results.get((system, 'unchanged'))
        if measure:
            line('unchanged re-run entries/s, %s (wall)' % system, entries / measure.seconds,
                 GOALS['unchanged_files_per_second'], better_low=False)
            if measure.inner:
                line('unchanged re-run entries/s, %s (restic backup alone)' % system, entries / measure.inner,
                     GOALS['unchanged_files_per_second'], better_low=False)
    for system in ('restic-module', 'restic-raw'):
        line('unchanged re-run %s / rdiff-module' % system, ratio(results, system, 'rdiff-module', 'unchanged'),
             GOALS['unchanged_vs_rdiff'])
        line('first backup %s / rdiff-module' % system, ratio(results, system, 'rdiff-module', 'first'), GOALS['first_vs_rdiff'])
    for op in ('first', 'unchanged', 'changed', 'restore', 'fileset'):
        line('module overhead, %s: restic-module / restic-raw' % OP_LABELS[op],
             ratio(results, 'restic-module', 'restic-raw', op), GOALS['module_vs_raw'])
        line('step overhead, %s: restic-step / restic-raw' % OP_LABELS[op],
             ratio(results, 'restic-step', 'restic-raw', op), GOALS['module_vs_raw'])
    for system in ('restic-module', 'restic-step', 'restic-raw'):
        measure = results.get((system, 'fileset'))
        if measure:
            line('one-fileset restore seconds of %d files, %s' % (files, system), measure.seconds, GOALS['fileset_seconds'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--files', type=int, action='append', help='store size, repeatable (default 100000)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--parent', default='/var/tmp', help='where the private work directory is made')
    parser.add_argument('--systems', default=','.join(SYSTEMS), help='comma-separated subset of %s' % ', '.join(SYSTEMS))
    parser.add_argument('--ops', default=','.join(OPS),
                        help='comma-separated subset of %s (first is always run: the others need it)' % ', '.join(OPS))
    parser.add_argument('--repeat', type=int, default=3, help='unchanged re-runs per system, the median is reported')
    parser.add_argument('--keep', action='store_true', help='keep the store and the repositories')
    args = parser.parse_args(argv)
    wanted = [name for name in args.systems.split(',') if name]
    unknown = [name for name in wanted if name not in SYSTEM_CLASSES]
    if unknown:
        parser.error('unknown system(s) %s: use %s' % (', '.join(unknown), ', '.join(SYSTEMS)))
    ops = ['first'] + [op for op in args.ops.split(',') if op in OPS and op != 'first']
    if not restic_engine_available():
        dropped = [name for name in wanted if name != 'rdiff-module']
        print('the restic engine is not in datadir_backup yet: measuring rdiff-module and raw restic only (%s dropped)'
              % ', '.join(name for name in dropped if name != 'restic-raw'))
        wanted = [name for name in wanted if name in ('rdiff-module', 'restic-raw')]

    def say(text):
        print(text)
        sys.stdout.flush()

    for files in args.files or [100000]:
        # mkdtemp: mode 0700, owned by whoever runs this (root under make bench), a name nobody can guess.
        work = tempfile.mkdtemp(prefix='omero-bench-restic-%d.' % files, dir=args.parent)
        try:
            say('== %d files in %s (load %.2f, %d cpus)' % (files, work, load(), os.cpu_count() or 0))
            store = Store(work, files, args.seed)
            # restic's cache (one directory per repository) goes with the work directory, for every system alike:
            # the modules and the steps inherit this environment.
            os.environ['RESTIC_CACHE_DIR'] = os.path.join(work, 'restic-cache')
            entries = warm_up(store.src)
            # What a backup goes through: every file, directory and link but the excluded cache (rdiff-backup's
            # SourceFiles); the same count for every system, so their rates compare.
            store.entries = entries - warm_up_count_skipped(store.src)
            say('  store: %d files, %d entries (%d backed up), %.0f MiB, written in %.0fs, warmed (load %.2f)' % (
                store.facts['files'], entries, store.entries, store.facts['bytes'] / 2.0 ** 20, store.build_seconds,
                load()))
            systems = [SYSTEM_CLASSES[name](store) for name in wanted]
            results = {}
            sizes = measure_size(store, systems, ops, results, say, args.repeat)
            fixed_costs(store, systems, say)
            report(files, store, systems, results, sizes, say)
        finally:
            if args.keep:
                say('kept %s' % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
