# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ids the database knows: read once per table, in chunks, in a background thread."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import array
import bisect
import itertools
import operator
import sys
import threading

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.tools import postgres


ID_CHUNK = 1000000


def _is_strictly_increasing(ids):
    # C-level iteration: about 0.1 s per million ids.
    return all(map(operator.lt, ids, itertools.islice(ids, 1, None)))


def load_ids(conn, table, chunk=ID_CHUNK):
    """(every id of ``table`` as a sorted array('q'), number of queries).

    Each query returns up to ``chunk`` ids as one bytea of big-endian 8-byte
    values (int8send), turned into the array in C: no Python object per row,
    and at most one chunk in flight. Rows reach the aggregate in index order
    (no parallel plan); the order is still verified, never trusted.
    """
    ids = array.array('q')
    if ids.itemsize != 8:
        raise OmeroBackupError('this Python has no 8-byte array type')
    # Schema-qualified: connections run with search_path = pg_catalog (see postgres.py).
    name = 'public.' + postgres.quote_ident(conn, table)
    queries = 0
    last = None
    with conn.cursor() as cursor:
        cursor.execute('SET LOCAL max_parallel_workers_per_gather = 0')
        while True:
            where = '' if last is None else 'WHERE id > %(last)s '
            cursor.execute("SELECT count(*), string_agg(int8send(id), ''::bytea) FROM (SELECT id FROM %s %sORDER BY id "
                           "LIMIT %%(chunk)s) AS ids" % (name, where), {'last': last, 'chunk': chunk})
            queries += 1
            rows, blob = cursor.fetchone()
            if not rows:
                break
            part = array.array('q')
            part.frombytes(blob)
            if sys.byteorder == 'little':
                part.byteswap()
            if last is not None and part[0] <= last:
                raise OmeroBackupError('ids of table %s came back out of order' % table)
            ids.extend(part)
            if rows < chunk:
                break
            last = ids[-1]
    if not _is_strictly_increasing(ids):
        ids = array.array('q', sorted(set(ids)))
    return ids, queries


def id_lookup(sorted_ids, wanted):
    """A container answering ``object_id in container`` for every id of ``wanted``.

    Entries of one directory share an id range (Dir-123 holds 123000-123999),
    so one slice of the array turned into a set answers them all; scattered
    ids fall back to a binary search each.
    """
    if not wanted:
        return frozenset()
    low = bisect.bisect_left(sorted_ids, min(wanted))
    high = bisect.bisect_right(sorted_ids, max(wanted))
    if high - low <= 4 * len(wanted) + 2048:
        return set(sorted_ids[low:high])
    found = set()
    for object_id in wanted:
        index = bisect.bisect_left(sorted_ids, object_id, low, high)
        if index < high and sorted_ids[index] == object_id:
            found.add(object_id)
    return found


def _load_ids_or_explain(conn, table):
    try:
        return load_ids(conn, table)
    except Exception as exc:
        if postgres.psycopg2 is not None and isinstance(exc, postgres.psycopg2.Error):
            raise OmeroBackupError('cannot read the ids of table %s: %s' % (table, str(exc).strip()))
        raise


class IdLoader(object):
    """Reads the id tables, in order, in a background thread while the main thread walks.

    psycopg2 releases the GIL while the server works and the bytes are turned
    into arrays in C, so the reading of one table hides behind the walk of the
    previous directory. Only this thread uses the connection until join().
    """

    def __init__(self, conn, tables):
        self._results = {}
        self._ready = dict((table, threading.Event()) for table in tables)
        self._thread = threading.Thread(target=self._run, args=(conn, list(tables)), name='omero-cleanse-ids')
        self._thread.daemon = True
        self._thread.start()

    def _run(self, conn, tables):
        for table in tables:
            try:
                self._results[table] = (True, _load_ids_or_explain(conn, table))
            except Exception as exc:  # handed to the main thread, raised there
                for pending in tables[tables.index(table):]:
                    self._results[pending] = (False, exc)
                    self._ready[pending].set()
                return
            self._ready[table].set()

    def get(self, table):
        """(sorted ids, queries) of ``table``, waiting for it if needed."""
        self._ready[table].wait()
        loaded, value = self._results[table]
        if not loaded:
            raise value
        del self._results[table]
        return value

    def join(self):
        self._thread.join()
