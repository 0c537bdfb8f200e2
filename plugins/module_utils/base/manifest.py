# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifests: the JSON record beside each backup artefact.

A backup counts only when its manifest says ``complete: true``; that key is
written last, in the same atomic replace that publishes the final manifest.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.runner import sha256_file

MANIFEST_SUFFIX = '.manifest.json'
FORMAT_VERSION = 1


class ManifestError(Exception):
    pass


def manifest_path_for(artefact_path):
    return artefact_path.rstrip('/') + MANIFEST_SUFFIX


def write_manifest(path, data, complete, owner=None, group=None):
    record = dict(data)
    record['format_version'] = FORMAT_VERSION
    record.pop('complete', None)
    # json.dumps keeps insertion order: 'complete' is the last key in the file.
    record['complete'] = bool(complete)
    atomic_write(path, json.dumps(record, indent=2, sort_keys=False) + '\n', mode=0o600, owner=owner, group=group)
    return record


def read_manifest(path):
    try:
        with open(path, 'rb') as handle:
            return json.loads(handle.read().decode('utf-8'))
    except (IOError, OSError) as exc:
        raise ManifestError('cannot read manifest %s: %s' % (path, exc.strerror or exc))
    except ValueError as exc:
        raise ManifestError('manifest %s is not valid JSON: %s' % (path, exc))


def is_complete(path):
    try:
        return read_manifest(path).get('complete') is True
    except ManifestError:
        return False


def file_entries(base, relpaths):
    """[{path, size, sha256}] for files relative to ``base``."""
    entries = []
    for rel in sorted(relpaths):
        full = os.path.join(base, rel)
        entries.append({'path': rel, 'size': os.path.getsize(full), 'sha256': sha256_file(full)})
    return entries


def verify_manifest_files(base, entries):
    """List of problems (empty when every file matches size and sha256)."""
    problems = []
    for entry in entries:
        full = os.path.join(base, entry['path'])
        if not os.path.exists(full):
            problems.append('%s: missing' % entry['path'])
            continue
        size = os.path.getsize(full)
        if size != entry['size']:
            problems.append('%s: size %d, manifest says %d' % (entry['path'], size, entry['size']))
            continue
        digest = sha256_file(full)
        if digest != entry['sha256']:
            problems.append('%s: sha256 %s, manifest says %s' % (entry['path'], digest, entry['sha256']))
    return problems
