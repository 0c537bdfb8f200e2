"""A data dir of N files, shaped like a real one, for the engines' benchmarks (the sandbox's file-count knob).

    python -m omero_sandbox.many DATADIR --files 100000 [--seed 0]

``build`` makes a whole sandbox (database rows and files that agree, about one file per object) and is too
slow at a million objects; the data dir engines only need the files. ``write_many`` writes just the data dir,
with OMERO's layout and a real ManagedRepository's shape: many small files, a few big ones, filesets of 1-3
files and of 10-100 files (a plate, a time series) under ``<user>_<id>/YYYY-MM/DD/HH-MM-SS.mmm/`` with their
import logs beside them, Pixels pyramids, Thumbnails and Files by the id to path rule, FullText, the
``repo_uuid`` markers and a BioFormatsCache (which every engine excludes).

Sizes are kept small on purpose so that the disk is not what a benchmark measures: the mean file is about
3 KiB (100 000 files ~ 0.3 GB, 1 000 000 ~ 3 GB); contents are random bytes (incompressible, unique per file,
so no engine gains from deduplication it would not get on real images). Same seed, same tree.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import argparse
import datetime
import json
import math
import os
import random
import sys
import time
import uuid

from .idpath import id_to_relpath

USERS = (('root', 0), ('user-1', 2), ('user-2', 3), ('user-3', 4), ('user-4', 5), ('user-5', 6))
START = datetime.datetime(2019, 1, 7, 8, 0, 0)
# Share of the files per top-level directory; ManagedRepository takes the rest.
SHARES = (('Thumbnails', 0.10), ('Pixels', 0.01), ('Files', 0.02), ('BioFormatsCache', 0.01))
BIG_SHARE = 0.0005           # of ManagedRepository's data files: 1-4 MiB each
SMALL = (128, 8192)          # the other data files, log-uniform
THUMBNAIL = (1024, 8192)
PYRAMID = (8192, 131072)
ATTACHMENT = (512, 16384)
MULTI_SHARE = 0.6            # filesets of 10-100 files; the others hold 1-3
SAMPLE_FILESETS = 50


def _log_uniform(rng, bounds):
    low, high = bounds
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


class _Writer(object):
    """Plain os calls (a million small files is syscall-bound); contents from one seeded stream."""

    def __init__(self, datadir, rng):
        self.datadir = datadir
        self.rng = rng
        self.made = set()
        self.files = 0
        self.bytes = 0

    def mkdir(self, reldir):
        if reldir and reldir not in self.made:
            os.makedirs(os.path.join(self.datadir, reldir), exist_ok=True)
            while reldir and reldir not in self.made:
                self.made.add(reldir)
                reldir = os.path.dirname(reldir)

    def write(self, relpath, size, text=False):
        self.mkdir(os.path.dirname(relpath))
        if text:
            line = ('%s imported\n' % relpath).encode('utf-8')
            data = (line * (size // len(line) + 1))[:size]
        else:
            data = self.rng.randbytes(size)
        fd = os.open(os.path.join(self.datadir, relpath), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += size


def _fileset_names(rng, count):
    if count <= 3:
        stem = rng.choice(('image', 'stack', 'experiment', 'scan'))
        return ['%s.%s' % (stem, ext) for ext in ('tif', 'companion.ome', 'log')[:count]]
    if rng.random() < 0.5:
        # A plate: one vendor subdirectory of well images and an index.
        wells = ['plate/%s%02d_s%d.tif' % ('ABCDEFGH'[i // 12 % 8], i % 12 + 1, i // 96 + 1) for i in range(count - 1)]
        return wells + ['plate/index.xml']
    return ['series_t%04d.tif' % index for index in range(count)]


def write_many(datadir, files, seed=0, progress=None):
    """Write about ``files`` files into ``datadir`` (absent or empty); returns a dict of facts (JSON-able)."""
    if isinstance(files, bool) or not isinstance(files, int) or files < 100:
        raise ValueError('files must be an integer >= 100, got %r' % (files,))
    if os.path.lexists(datadir) and (not os.path.isdir(datadir) or os.listdir(datadir)):
        raise ValueError('%s exists and is not an empty directory' % datadir)
    started = time.time()
    rng = random.Random(seed)
    writer = _Writer(datadir, rng)
    os.makedirs(datadir, exist_ok=True)
    db_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    writer.write('.omero/repository/%s/repo_uuid' % db_uuid, 36, text=True)
    writer.write('.omero/repository/%s/.lock' % db_uuid, 0)
    writer.write('ManagedRepository/.omero/repository/%s/repo_uuid' % db_uuid, 36, text=True)
    for name, size in (('_0.cfe', 299), ('_0.cfs', 4096), ('_0.si', 383), ('segments_2', 154), ('write.lock', 0)):
        writer.write('FullText/' + name, size)

    counts = dict((top, int(files * share)) for top, share in SHARES)
    for index in range(counts['Thumbnails']):
        writer.write('Thumbnails/' + id_to_relpath(index + 1), _log_uniform(rng, THUMBNAIL))
    for index in range(counts['Pixels']):
        writer.write('Pixels/' + id_to_relpath(index + 1) + '_pyramid', _log_uniform(rng, PYRAMID))
    for index in range(counts['Files']):
        writer.write('Files/' + id_to_relpath(index + 1), _log_uniform(rng, ATTACHMENT))
    if progress:
        progress('Thumbnails, Pixels, Files: %d files' % writer.files)

    budget = files - writer.files - counts['BioFormatsCache']
    when = START
    filesets = []
    sample = []
    while budget > 0:
        count = rng.randint(10, 100) if rng.random() < MULTI_SHARE else rng.randint(1, 3)
        count = max(1, min(count, budget - 1))
        user, user_id = USERS[len(filesets) % len(USERS)]
        when += datetime.timedelta(minutes=rng.randint(1, 90), seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
        day_dir = 'ManagedRepository/%s_%d/%s/%s/' % (user, user_id, when.strftime('%Y-%m'), when.strftime('%d'))
        time_name = when.strftime('%H-%M-%S.') + '%03d' % (when.microsecond // 1000)
        for name in _fileset_names(rng, count):
            big = rng.random() < BIG_SHARE
            writer.write(day_dir + time_name + '/' + name, rng.randint(1 << 20, 4 << 20) if big else _log_uniform(rng, SMALL))
        writer.write(day_dir + time_name + '.log', rng.randint(200, 2000), text=True)
        filesets.append(day_dir + time_name)
        if 10 <= count <= 100 and len(sample) < SAMPLE_FILESETS and rng.random() < 0.2:
            sample.append({'dir': day_dir + time_name, 'files': count})
        budget -= count + 1
        if progress and len(filesets) % 5000 == 0:
            progress('ManagedRepository: %d filesets, %d files' % (len(filesets), writer.files))
    # BioFormatsCache mirrors some filesets' first file (memo files); excluded by every engine.
    for directory in filesets[:counts['BioFormatsCache']]:
        writer.write('BioFormatsCache/%s/.memo.bfmemo' % directory, rng.randint(600, 1200))
    return {
        'datadir': os.path.abspath(datadir),
        'seed': seed,
        'files': writer.files,
        'bytes': writer.bytes,
        'directories': len(writer.made),
        'filesets': len(filesets),
        'db_uuid': db_uuid,
        'sample_filesets': sample,
        'seconds': round(time.time() - started, 1),
    }


def change_fraction(datadir, fraction, seed=1, skip_top=('BioFormatsCache',)):
    """Rewrite about ``fraction`` of the files under ``datadir`` (same size, new bytes, new mtime); returns how many.

    Spread over the whole tree, as a day's work on a real store is (new thumbnails, pyramids, re-imported files).
    """
    rng = random.Random(seed)
    changed = 0
    for top in sorted(os.listdir(datadir)):
        if top in skip_top:
            continue
        for directory, dirs, names in os.walk(os.path.join(datadir, top)):
            dirs.sort()
            for name in sorted(names):
                if rng.random() >= fraction:
                    continue
                path = os.path.join(directory, name)
                size = os.lstat(path).st_size
                with open(path, 'r+b') as handle:
                    handle.write(rng.randbytes(size))
                changed += 1
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m omero_sandbox.many', description=__doc__.splitlines()[0])
    parser.add_argument('datadir', metavar='DATADIR', help='absent or empty directory')
    parser.add_argument('--files', type=int, default=100000)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()

    def progress(message):
        sys.stderr.write('[many %6.1fs] %s\n' % (time.time() - started, message))

    try:
        facts = write_many(args.datadir, args.files, args.seed, progress)
    except ValueError as exc:
        sys.stderr.write('omero_sandbox.many: error: %s\n' % exc)
        return 1
    json.dump(facts, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
