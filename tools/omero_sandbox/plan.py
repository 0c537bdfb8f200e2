"""What a sandbox holds, decided up front from (objects, orphans, seed).

The plan is pure data: the database loader and the data-dir writer both read it,
so rows and files agree by construction, and the same seed gives the same
sandbox byte for byte (uuids, ids, names and contents all come from the seed).
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import datetime
import hashlib
import random
import struct
import uuid
import zlib

from .idpath import id_to_relpath, id_dir_relpath

# Ids the id<->path rule is easy to get wrong for; every kind gets them when its count allows.
EDGE_IDS = (1, 999, 1000, 999001, 999999, 1000000, 1234567, 999999999, 1002003004)
ORPHAN_EDGE_IDS = (998, 999002, 999998, 1000001, 2345678, 1002003005)

LOW_BAND = (1, 1000)
MID_BAND = (1000, 999001)
THOUSAND_BAND = (999001, 1000000)
HIGH_START = 1000000

BASE_TIME = datetime.datetime(2023, 3, 1, 9, 0, 0)

EXPERIMENTERS = (
    # id, omename, firstname, lastname
    (0, 'root', 'root', 'root'),
    (1, 'guest', 'Guest', 'Account'),
    (2, 'user-1', 'Ada', 'Lovelace'),
    (3, 'user-2', 'Rosalind', 'Franklin'),
)
GROUPS = ((0, 'system'), (1, 'user'), (2, 'guest'), (3, 'lab'))
SESSION_COUNT = 4
EVENT_COUNT = 24

FILESET_FORMATS = (
    # (file names inside the fileset dir, mimetype); a '/' keeps the vendor's sub-directories
    (('image.tif',), 'image/tiff'),
    (('stack.ome.tiff',), 'image/tiff'),
    (('experiment.czi',), 'application/octet-stream'),
    (('cells.dv', 'cells.dv.log'), 'application/octet-stream'),
    (('plate/A1.tif', 'plate/A2.tif', 'plate/index.xml'), 'image/tiff'),
    (('scan.svs',), 'application/octet-stream'),
)
ATTACHMENT_NAMES = ('results.csv', 'protocol.pdf', 'table.h5', 'notes.txt', 'analysis.zip')


class Row(object):
    """One originalfile row; `relpath` is its data-dir path when it has bytes on disk."""
    __slots__ = ('id', 'path', 'name', 'repo', 'mimetype', 'size', 'hash', 'owner', 'relpath', 'kind', 'hasher')

    def __init__(self, id, path, name, repo, mimetype, size=None, hash=None, owner=0, relpath=None, kind=None, hasher=None):
        self.id = id
        self.path = path
        self.name = name
        self.repo = repo
        self.mimetype = mimetype
        self.size = size
        self.hash = hash
        self.owner = owner
        self.relpath = relpath
        self.kind = kind  # how its bytes are made: 'file', 'managed' or 'log' (None: no bytes on disk)
        self.hasher = hasher  # checksumalgorithm.value of `hash` (None: no hash)


class IdAllocator(object):
    """Unique ids for one table, spread over 1..999, 1000..999000, 999001..999999 and >= 1000000."""

    def __init__(self, rng):
        self.rng = rng
        self.used = set()

    def take(self, count, edges=()):
        picked = []
        for candidate in edges:
            if len(picked) == count:
                break
            if candidate not in self.used:
                picked.append(candidate)
                self.used.add(candidate)
        remaining = count - len(picked)
        if remaining <= 0:
            return sorted(picked)
        share = -(-remaining // 4)
        low = self._take_from_small_band(LOW_BAND, min(share, remaining))
        remaining -= len(low)
        thousand = self._take_from_small_band(THOUSAND_BAND, min(share, remaining))
        remaining -= len(thousand)
        mid_count = remaining // 2
        mid = self._take_from_large_band(MID_BAND[0], MID_BAND[1], mid_count)
        remaining -= len(mid)
        high = self._take_from_large_band(HIGH_START, HIGH_START + max(4 * remaining, 10000), remaining)
        return sorted(picked + low + thousand + mid + high)

    def _take_from_small_band(self, band, count):
        free = [i for i in range(band[0], band[1]) if i not in self.used]
        chosen = self.rng.sample(free, min(count, len(free)))
        self.used.update(chosen)
        return chosen

    def _take_from_large_band(self, start, stop, count):
        chosen = []
        while len(chosen) < count:
            need = count - len(chosen)
            for candidate in self.rng.sample(range(start, stop), min(stop - start, need + need // 8 + 8)):
                if candidate not in self.used:
                    self.used.add(candidate)
                    chosen.append(candidate)
                    if len(chosen) == count:
                        break
            if len(self.used) >= stop - start and len(chosen) < count:
                stop += max(count, 10000)
        return chosen


def seeded_uuid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def file_bytes(seed, kind, object_id, size):
    """Deterministic, incompressible-enough file content."""
    block = hashlib.sha256(('%s:%s:%s' % (seed, kind, object_id)).encode('ascii')).digest()
    return (block * (size // len(block) + 1))[:size]


def sha1_hex(data):
    return hashlib.sha1(data).hexdigest()


# Files/ rows cycle through the algorithms Python's standard library has (Murmur3 is the collection's own code,
# proven against OMERO's vectors in the unit tests); imports use OMERO's default, SHA1-160.
FILE_HASHERS = ('SHA1-160', 'MD5-128', 'CRC-32', 'Adler-32', 'File-Size-64')


def omero_hash(algorithm, data):
    """The text OMERO stores in originalfile.hash: Guava's HashCode.toString(), the 32/64-bit values little-endian."""
    if algorithm == 'SHA1-160':
        return hashlib.sha1(data).hexdigest()
    if algorithm == 'MD5-128':
        return hashlib.md5(data).hexdigest()
    if algorithm == 'CRC-32':
        return struct.pack('<I', zlib.crc32(data) & 0xffffffff).hex()
    if algorithm == 'Adler-32':
        return struct.pack('<I', zlib.adler32(data) & 0xffffffff).hex()
    if algorithm == 'File-Size-64':
        return struct.pack('<Q', len(data)).hex()
    raise ValueError(algorithm)


class Plan(object):
    """Everything the sandbox will contain. Build with `make_plan`."""

    def __init__(self, seed):
        self.seed = seed
        self.rng = random.Random(seed)
        self.db_uuid = None
        self.data_repo_uuid = None
        self.managed_repo_uuid = None
        self.experimenters = EXPERIMENTERS
        self.groups = GROUPS
        self.sessions = []            # (id, uuid, owner, started)
        self.events = []              # (id, experimenter, group, session, time)
        self.pixels = []              # [id, sizex, sizey, sha1, path, name, repo, owner, size]
        self.pixel_relpaths = {}      # id -> data-dir relpath of Pixels/<id>
        self.pyramids = []            # pixel ids with a finished <id>_pyramid
        self.pyramids_in_progress = []  # pixel ids with .<id>_pyramid.pyr_lock and a .tmp
        self.thumbnails = []          # (id, pixels_id, owner, size)
        self.files = []               # Row objects in Files/ (repo IS NULL)
        self.repository_rows = []     # Row objects with mimetype 'Repository'
        self.managed_rows = []        # Row objects (dirs, fileset files, import logs)
        self.filesets = []            # dicts: {dir, files: [relpath], log: relpath, owner}
        self.orphans = []             # (relpath, kind)
        self.kept_unknown = []        # relpaths cleanse must keep
        self.inplace_links = {}       # ManagedRepository relpath -> target relpath under ROOT
        self.file_allocator = None

    def event_for(self, object_id):
        return 1 + object_id % EVENT_COUNT

    def owner_for(self, object_id):
        return 2 + object_id % 2


def _size(rng):
    return rng.randint(64, 1024)


def make_plan(objects, orphans, seed, datadir):
    """Decide ids, rows and files. `datadir` is the absolute data-dir path (Repository rows record it)."""
    plan = Plan(seed)
    rng = plan.rng
    plan.db_uuid = seeded_uuid(rng)
    plan.data_repo_uuid = seeded_uuid(rng)
    plan.managed_repo_uuid = seeded_uuid(rng)

    for session_id in range(1, SESSION_COUNT + 1):
        started = BASE_TIME + datetime.timedelta(hours=session_id)
        plan.sessions.append((session_id, seeded_uuid(rng), EXPERIMENTERS[session_id % len(EXPERIMENTERS)][0], started))
    for event_id in range(1, EVENT_COUNT + 1):
        experimenter = EXPERIMENTERS[event_id % len(EXPERIMENTERS)][0]
        plan.events.append((event_id, experimenter, 3 if experimenter >= 2 else 0, 1 + event_id % SESSION_COUNT,
                            BASE_TIME + datetime.timedelta(minutes=7 * event_id)))

    pixel_count = max(3, objects * 20 // 100)
    pyramid_count = max(1, pixel_count // 10)
    thumbnail_count = max(3, objects * 20 // 100)
    file_count = max(3, objects * 15 // 100)
    managed_budget = max(4, objects - pixel_count - pyramid_count - thumbnail_count - file_count)

    pixel_ids = IdAllocator(rng)
    thumbnail_ids = IdAllocator(rng)
    plan.file_allocator = file_ids = IdAllocator(rng)

    for pixel_id in pixel_ids.take(pixel_count, EDGE_IDS):
        size = _size(rng)
        content = file_bytes(seed, 'pixels', pixel_id, size)
        plan.pixels.append([pixel_id, rng.choice((256, 512, 1024)), rng.choice((256, 512, 1024)), sha1_hex(content),
                            None, None, None, plan.owner_for(pixel_id), size])
        plan.pixel_relpaths[pixel_id] = 'Pixels/' + id_to_relpath(pixel_id)
    shuffled = [p[0] for p in plan.pixels]
    rng.shuffle(shuffled)
    plan.pyramids = sorted(shuffled[:pyramid_count])
    plan.pyramids_in_progress = sorted(shuffled[pyramid_count:pyramid_count + max(1, min(3, pixel_count // 20))])

    pixel_id_list = [p[0] for p in plan.pixels]
    for thumbnail_id in thumbnail_ids.take(thumbnail_count, EDGE_IDS):
        size = _size(rng) // 2 + 32
        plan.thumbnails.append((thumbnail_id, rng.choice(pixel_id_list), plan.owner_for(thumbnail_id), size))

    # Repository rows come first so they get small, stable ids, as on a fresh server.
    repo_row_ids = file_ids.take(2, (2, 3))
    parent = datadir.rstrip('/')
    plan.repository_rows.append(Row(repo_row_ids[0], parent.rsplit('/', 1)[0] + '/', parent.rsplit('/', 1)[1], None, 'Repository',
                                    hash=plan.data_repo_uuid))
    plan.repository_rows.append(Row(repo_row_ids[1], parent + '/', 'ManagedRepository', None, 'Repository',
                                    hash=plan.managed_repo_uuid))

    for file_id in file_ids.take(file_count, EDGE_IDS):
        size = _size(rng)
        content = file_bytes(seed, 'file', file_id, size)
        name = ATTACHMENT_NAMES[file_id % len(ATTACHMENT_NAMES)]
        hasher = FILE_HASHERS[len(plan.files) % len(FILE_HASHERS)]
        plan.files.append(Row(file_id, '/', name, None, 'application/octet-stream', size, omero_hash(hasher, content),
                              plan.owner_for(file_id), 'Files/' + id_to_relpath(file_id), 'file', hasher))

    _plan_managed_repository(plan, managed_budget)
    _plan_orphans(plan, orphans, pixel_ids, thumbnail_ids, file_ids)
    return plan


def _plan_managed_repository(plan, budget):
    rng = plan.rng
    repo = plan.managed_repo_uuid
    dir_rows = {}  # relative dir path ('a/b/') -> Row

    def ensure_dirs(relpath, owner):
        parts = relpath.strip('/').split('/')
        for depth in range(1, len(parts) + 1):
            path = '/'.join(parts[:depth - 1])
            key = '/'.join(parts[:depth]) + '/'
            if key not in dir_rows:
                row = Row(None, path + '/' if path else '', parts[depth - 1], repo, 'Directory', owner=owner)
                dir_rows[key] = row

    used = 0
    when = BASE_TIME
    fileset_index = 0
    while used < budget:
        owner_id, owner_name = ((2, 'user-1'), (3, 'user-2'), (0, 'root'))[fileset_index % 3]
        when += datetime.timedelta(minutes=rng.randint(1, 600), seconds=rng.randint(0, 59), milliseconds=rng.randint(0, 999))
        day_dir = '%s_%d/%s/%s/' % (owner_name, owner_id, when.strftime('%Y-%m'), when.strftime('%d'))
        time_name = when.strftime('%H-%M-%S.') + '%03d' % (when.microsecond // 1000)
        fileset_dir = day_dir + time_name + '/'
        names, mimetype = FILESET_FORMATS[fileset_index % len(FILESET_FORMATS)]
        entry = {'dir': fileset_dir, 'files': [], 'log': None, 'owner': owner_id}
        for name in names:
            full = fileset_dir + name
            ensure_dirs(full.rsplit('/', 1)[0] + '/', owner_id)
            path, base = full.rsplit('/', 1)
            row = Row(None, path + '/', base, repo, mimetype, owner=owner_id, relpath='ManagedRepository/' + full, kind='managed')
            plan.managed_rows.append(row)
            entry['files'].append(row.relpath)
        log_row = Row(None, day_dir, time_name + '.log', repo, 'text/plain', owner=owner_id,
                      relpath='ManagedRepository/' + day_dir + time_name + '.log', kind='log')
        plan.managed_rows.append(log_row)
        entry['log'] = log_row.relpath
        plan.filesets.append(entry)
        used += len(names) + 1
        fileset_index += 1

    # An in-place import: the repository holds a symlink to the file's original place.
    if len(plan.filesets) >= 4:
        victim = plan.filesets[1]['files'][0]
        plan.inplace_links[victim] = 'inplace-source/' + victim.rsplit('/', 1)[1]

    # Directory rows first (a parent's id is lower than its children's, as an import creates them).
    ordered_dirs = [dir_rows[key] for key in sorted(dir_rows)]
    ids = plan.file_allocator.take(len(ordered_dirs) + len(plan.managed_rows))
    rng.shuffle(ids)  # ids of one import are not contiguous on a busy server; keep the low ones for directories
    ids_iter = iter(sorted(ids[:len(ordered_dirs)]) + ids[len(ordered_dirs):])
    for row in ordered_dirs:
        row.id = next(ids_iter)
    for row in plan.managed_rows:
        row.id = next(ids_iter)
        row.size = _size(rng)
        content = row_content(plan, row)
        row.size = len(content)
        row.hash = sha1_hex(content)
        row.hasher = 'SHA1-160'
    plan.managed_rows = ordered_dirs + plan.managed_rows

    # Some images got a pixels pyramid server-side; their pixels rows point at the original file.
    for pixel, row in zip(plan.pixels[::3], [r for r in plan.managed_rows if r.relpath and r.mimetype != 'text/plain']):
        pixel[4], pixel[5], pixel[6] = row.path, row.name, row.repo


def row_content(plan, row):
    if row.kind == 'log':
        return _import_log(plan, row)
    return file_bytes(plan.seed, row.kind, row.id, row.size)


def pixels_content(plan, pixel):
    return file_bytes(plan.seed, 'pixels', pixel[0], pixel[8])


def thumbnail_content(plan, thumbnail):
    return file_bytes(plan.seed, 'thumbnail', thumbnail[0], thumbnail[3])


def _import_log(plan, row):
    lines = [
        '2023-03-01 09:00:00,000 INFO  [ ormats.importer.ImportLibrary] (l.Server-7) Import started for fileset in %s' % row.path,
        '2023-03-01 09:00:01,250 INFO  [ ormats.importer.ImportLibrary] (l.Server-7) Checksums verified (SHA1-160)',
        '2023-03-01 09:00:02,500 INFO  [ ormats.importer.ImportLibrary] (l.Server-7) Import done: log %d' % row.id,
    ]
    return ('\n'.join(lines) + '\n').encode('ascii')


def _plan_orphans(plan, count, pixel_ids, thumbnail_ids, file_ids):
    """Files cleanse would delete: every name form it knows, in every id band."""
    kinds = (
        ('Pixels', 'plain', pixel_ids), ('Pixels', 'pyramid', pixel_ids), ('Pixels', 'pyr_lock', pixel_ids),
        ('Pixels', 'tmp', pixel_ids), ('Files', 'plain', file_ids), ('Thumbnails', 'plain', thumbnail_ids),
    )
    edge_cursor = {}
    for index in range(count):
        top, kind, allocator = kinds[index % len(kinds)]
        cursor = edge_cursor.get(top, 0)
        edge_cursor[top] = cursor + 1
        edges = ORPHAN_EDGE_IDS[cursor:cursor + 1] if cursor < len(ORPHAN_EDGE_IDS) else ()
        object_id = allocator.take(1, edges)[0]
        plan.orphans.append((top + '/' + _entry_relpath(object_id, kind, plan.rng), kind))
    plan.kept_unknown = ['Files/README', 'Pixels/Dir-001/notanid', 'Pixels/12345.bak', 'Thumbnails/.DS_Store']


def _entry_relpath(object_id, kind, rng):
    directory = id_dir_relpath(object_id)
    prefix = directory + '/' if directory else ''
    if kind == 'plain':
        return prefix + str(object_id)
    if kind == 'pyramid':
        return prefix + '%d_pyramid' % object_id
    if kind == 'pyr_lock':
        return prefix + '.%d_pyramid.pyr_lock' % object_id
    if kind == 'tmp':
        return prefix + '.%d_pyramid%d.tmp' % (object_id, rng.randint(10 ** 17, 10 ** 18))
    raise ValueError(kind)


def companion_relpath(object_id, kind, rng):
    return 'Pixels/' + _entry_relpath(object_id, kind, rng)
