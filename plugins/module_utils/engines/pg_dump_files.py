# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the pg_dump engine checks on a dump file before it counts as a backup or may be restored: the -Z value
for this client, the full read-through, the dump a source names, its sha256 against the set record's or its
manifest's. The dump destination's names, listing and retention are dumps.py's (it imports base only).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re

from ansible_collections.omero.backup.plugins.module_utils.base.manifest import (MANIFEST_SUFFIX, ManifestError, manifest_path_for,
                                                                                 read_manifest, verify_manifest_files)
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file
from ansible_collections.omero.backup.plugins.module_utils.dumps import list_dumps, tree_digest, tree_files
from ansible_collections.omero.backup.plugins.module_utils.engines.base import EngineError
from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import scrub, tool_path


class DbDumpError(EngineError):
    """A dump problem explained for the operator."""


class DbRestoreError(EngineError):
    """A restore problem explained for the operator; ``result`` holds what was done before it, if anything."""

    def __init__(self, message, result=None):
        super(DbRestoreError, self).__init__(message, result=result)


def compress_argument(compress, client_major):
    """The ``-Z`` value for pg_dump, or None to keep pg_dump's default.

    Accepts ``none``, a gzip level ``0``-``9``, ``gzip[:N]``, and on 16+ clients
    ``zstd[:N]`` and ``lz4[:N]``. PostgreSQL 15 takes only a level number.
    """
    if compress in (None, ''):
        return None
    text = str(compress).strip().lower()
    method, _sep, level = text.partition(':')
    if method.isdigit() and not level:
        method, level = 'gzip', method
    if method not in ('none', 'gzip', 'zstd', 'lz4'):
        raise DbDumpError('compress=%r: use none, a gzip level 0-9, gzip:N, or (client 16+) zstd[:N] / lz4[:N]' % (compress,))
    if level and not level.isdigit():
        raise DbDumpError('compress=%r: the level after ":" must be a number' % (compress,))
    if method == 'gzip' and level and not 0 <= int(level) <= 9:
        raise DbDumpError('compress=%r: gzip levels are 0-9' % (compress,))
    if method in ('zstd', 'lz4') and client_major < 16:
        raise DbDumpError('compress=%s needs a PostgreSQL 16 or newer pg_dump; this client is %d, which supports only gzip '
                          'levels 0-9 (or none)' % (text, client_major))
    if client_major < 16:
        if method == 'none':
            return '0'
        return level or '6'
    if method == 'none':
        return 'none'
    return method + (':' + level if level else '')


def read_through(runner, params, path, fmt):
    """Read every member of an archive (``pg_restore -f /dev/null``); raises DbDumpError when it is damaged."""
    argv = [tool_path(params, 'pg_restore'), '-F', 'd' if fmt == 'directory' else 'c', '-f', os.devnull, path]
    rc, out, err = runner(argv, env={'LC_MESSAGES': 'C'})
    if rc != 0:
        raise DbDumpError('the dump failed its read-through (%s): %s' % (' '.join(argv), scrub(err or out, params) or 'rc=%d' % rc))


def resolve_source(src, db=None):
    """(dump path, format, manifest path or None) for a dump, its manifest, or a directory of dumps."""
    src = src.rstrip('/') or '/'
    if src.endswith(MANIFEST_SUFFIX):
        manifest = src
        src = src[:-len(MANIFEST_SUFFIX)]
        if not os.path.exists(src):
            raise DbRestoreError('the manifest %s names a dump that is not there (%s)' % (manifest, src))
    if not os.path.exists(src):
        raise DbRestoreError('src %s does not exist' % src)
    if os.path.isdir(src) and not os.path.exists(os.path.join(src, 'toc.dat')):
        dumps = list_dumps(src, db) or list_dumps(src)
        complete = [item for item in dumps if item['complete']]
        if not complete:
            raise DbRestoreError('no complete dump in %s (found %d dump(s) without a complete manifest%s)'
                                 % (src, len(dumps), (': ' + ', '.join(item['name'] for item in dumps[:5])) if dumps else ''))
        src = complete[0]['path']
    fmt = 'directory' if os.path.isdir(src) else 'custom'
    manifest = manifest_path_for(src)
    return src, fmt, manifest if os.path.exists(manifest) else None


def dump_digest(path, fmt):
    """The sha256 db_dump records for a dump: of the file, or for a directory dump of its ``sha256  relpath`` listing."""
    if fmt == 'directory':
        return tree_digest([{'path': rel, 'sha256': sha256_file(os.path.join(path, rel))} for rel in tree_files(path)])
    return sha256_file(path)


_SHA256 = re.compile(r'\A[0-9a-f]{64}\Z')


def verify_source(path, fmt, manifest_path, verify, expected_sha256=None):
    """The manifest record (or {}) and the dump's sha256; raises DbRestoreError when it does not match.

    With ``expected_sha256`` (the backup set record's, read from the store) the dump's own bytes must have that
    digest, whatever a manifest beside it says: whoever can write beside a dump can write a matching manifest.
    The manifest is then read for its facts only (owner, sizes, versions), and must at least name the same sha256.
    """
    record = {}
    expected = (expected_sha256 or '').strip().lower() or None
    if expected is not None and not _SHA256.match(expected):
        raise DbRestoreError('expected_sha256 must be 64 hexadecimal digits, got %r. Nothing was changed.' % expected_sha256)
    if manifest_path:
        try:
            record = read_manifest(manifest_path)
        except ManifestError as exc:
            if verify and expected is None:
                raise DbRestoreError('%s; refusing to restore an unverifiable dump (verify=false skips this check)' % exc)
            record = {}
    if expected is not None:
        actual = dump_digest(path, fmt)
        if actual != expected:
            raise DbRestoreError('%s has sha256 %s, not the expected_sha256 %s named by the backup set record: it is not '
                                 'the dump that was backed up (damaged, or replaced by whoever can write there). '
                                 'Refusing to restore it. Nothing was changed.' % (path, actual, expected))
        if record.get('sha256') and record['sha256'] != expected:
            raise DbRestoreError('the manifest %s describes another dump (sha256 %s) than %s (sha256 %s, as expected): '
                                 'refusing to use its facts. Nothing was changed.'
                                 % (manifest_path, record['sha256'], path, expected))
        return record, actual
    if verify:
        if not manifest_path:
            raise DbRestoreError('%s has no manifest (%s): refusing to restore a dump that cannot be verified '
                                 '(verify=false skips this check)' % (path, manifest_path_for(path)))
        if record.get('complete') is not True:
            raise DbRestoreError('the manifest %s does not say complete: the dump was interrupted or is still being written; '
                                 'refusing to restore it (verify=false skips this check)' % manifest_path)
        problems = verify_manifest_files(os.path.dirname(path), record.get('files') or [])
        if not record.get('files'):
            problems.append('the manifest lists no files')
        if problems:
            raise DbRestoreError('%s does not match its manifest, the dump is damaged: %s. Nothing was changed.'
                                 % (path, '; '.join(problems[:5])))
        if record.get('sha256'):
            return record, record['sha256']
    return record, dump_digest(path, fmt)
