"""The binary repository (/OMERO): files for every planned row, companions, orphans and repository markers."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import os

from .idpath import id_to_relpath
from .plan import companion_relpath, file_bytes, pixels_content, row_content, thumbnail_content

TOP_LEVEL_DIRS = ('Files', 'Pixels', 'Thumbnails', 'ManagedRepository', 'FullText', 'BioFormatsCache', 'backup')
FULLTEXT_FILES = (('_0.cfe', 299), ('_0.cfs', 4096), ('_0.si', 383), ('segments_2', 154), ('write.lock', 0))
BFMEMO_LIMIT = 50


class DataDirWriter(object):
    """Writes files with plain os calls (a million small files is syscall-bound) and remembers their checksums."""

    def __init__(self, datadir, keep_checksums):
        self.datadir = datadir
        self.checksums = {} if keep_checksums else None
        self.made_dirs = set()
        self.files = 0
        self.bytes = 0

    def mkdir(self, reldir):
        if reldir in self.made_dirs:
            return
        os.makedirs(os.path.join(self.datadir, reldir), exist_ok=True)
        while reldir and reldir not in self.made_dirs:
            self.made_dirs.add(reldir)
            reldir = os.path.dirname(reldir)

    def write(self, relpath, data):
        self.mkdir(os.path.dirname(relpath))
        fd = os.open(os.path.join(self.datadir, relpath), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.files += 1
        self.bytes += len(data)
        if self.checksums is not None:
            self.checksums[relpath] = hashlib.sha256(data).hexdigest()


def write_datadir(root, datadir, plan, keep_checksums, progress=None):
    """Create the data dir; returns a dict of facts for the description."""
    writer = DataDirWriter(datadir, keep_checksums)
    os.makedirs(datadir)
    for name in TOP_LEVEL_DIRS:
        writer.mkdir(name)

    # repo_uuid ties each directory to this database; ManagedRepository's matches its 'Repository' row's hash.
    writer.write('.omero/repository/%s/repo_uuid' % plan.db_uuid, plan.data_repo_uuid.encode('ascii'))
    writer.write('ManagedRepository/.omero/repository/%s/repo_uuid' % plan.db_uuid, plan.managed_repo_uuid.encode('ascii'))

    for pixel in plan.pixels:
        writer.write(plan.pixel_relpaths[pixel[0]], pixels_content(plan, pixel))
    if progress:
        progress('data dir: %d Pixels files' % len(plan.pixels))
    pyramid_relpaths = []
    for pixel_id in plan.pyramids:
        relpath = plan.pixel_relpaths[pixel_id] + '_pyramid'
        writer.write(relpath, file_bytes(plan.seed, 'pyramid', pixel_id, 2048))
        pyramid_relpaths.append(relpath)
    in_progress = []
    for pixel_id in plan.pyramids_in_progress:
        for kind in ('pyr_lock', 'tmp'):
            relpath = companion_relpath(pixel_id, kind, plan.rng)
            writer.write(relpath, b'' if kind == 'pyr_lock' else file_bytes(plan.seed, 'pyramid-tmp', pixel_id, 700))
            in_progress.append(relpath)

    for thumbnail in plan.thumbnails:
        writer.write('Thumbnails/' + id_to_relpath(thumbnail[0]), thumbnail_content(plan, thumbnail))
    for row in plan.files:
        writer.write(row.relpath, row_content(plan, row))
    if progress:
        progress('data dir: Thumbnails and Files written')

    symlinks = {}
    for row in plan.managed_rows:
        if not row.relpath:
            writer.mkdir('ManagedRepository/' + row.path + row.name)
            continue
        if row.relpath in plan.inplace_links:
            target = os.path.join(root, plan.inplace_links[row.relpath])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, 'wb') as handle:
                handle.write(row_content(plan, row))
            writer.mkdir(os.path.dirname(row.relpath))
            os.symlink(target, os.path.join(datadir, row.relpath))
            symlinks[row.relpath] = target
            continue
        writer.write(row.relpath, row_content(plan, row))
    if progress:
        progress('data dir: ManagedRepository written (%d filesets)' % len(plan.filesets))

    for name, size in FULLTEXT_FILES:
        writer.write('FullText/' + name, file_bytes(plan.seed, 'fulltext', name, size))
    bfmemos = 0
    for fileset in plan.filesets[:BFMEMO_LIMIT]:
        first = fileset['files'][0]
        directory, name = first.rsplit('/', 1)
        writer.write('BioFormatsCache/%s/.%s.bfmemo' % (directory, name), file_bytes(plan.seed, 'bfmemo', first, 900))
        bfmemos += 1

    orphan_paths = []
    for relpath, kind in plan.orphans:
        writer.write(relpath, b'' if kind == 'pyr_lock' else file_bytes(plan.seed, 'orphan', relpath, 333))
        orphan_paths.append(relpath)
    for relpath in plan.kept_unknown:
        writer.write(relpath, ('not an OMERO object: %s\n' % relpath).encode('ascii'))

    return {
        'checksums': writer.checksums,
        'symlinks': symlinks,
        'orphans': orphan_paths,
        'kept_unknown': list(plan.kept_unknown),
        'pyramids': pyramid_relpaths,
        'pyramids_in_progress': in_progress,
        'files_written': writer.files,
        'bytes_written': writer.bytes,
        'directories': len(writer.made_dirs),
        'bfmemos': bfmemos,
    }
