# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A set's sources against the layout of the host it is restored to.

Each source of the set (other than the data dir, which the data dir restore puts wherever the target's data dir
is) goes to its recorded path, or to the path ``path_map`` gives it (``{old: new}``, the longest matching old
prefix wins: a new host with other paths). It is unmatched, and the restore refused before anything changed,
when:

- the target keeps a source of the same kind (``omero.managed.dir``, the certificates directory) elsewhere;
- its destination would lie inside the target's data dir (the data dir restore would overwrite it), or its
  parent does not exist (a volume not mounted where the set expects it);

and a source of the target (managed.dir or the certificates outside its data dir, an extra source) that no
source of the set goes to is unmatched as well: a restore would leave it as it is, from another time.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.names import escape
from ansible_collections.omero.backup.plugins.module_utils.layout.discover import LayoutError, inside

SINGLE_KINDS = ('managed', 'certs')


def check_path_map(path_map):
    """The map as normalised pairs, longest old prefix first; refuses relative paths."""
    pairs = []
    for old, new in sorted((path_map or {}).items()):
        if not (isinstance(old, str) and isinstance(new, str) and os.path.isabs(old) and os.path.isabs(new)):
            raise LayoutError('path_map maps absolute paths to absolute paths, got %s: %s' % (ascii(old), ascii(new)))
        pairs.append((os.path.normpath(old), os.path.normpath(new)))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def mapped(path, pairs):
    """(``path`` through the map, the old prefix used or None)."""
    path = os.path.normpath(path)
    for old, new in pairs:
        if inside(path, old):
            rest = path[len(old):].lstrip('/')
            return (os.path.join(new, rest) if rest else new), old
    return path, None


def match(set_sources, target, path_map):
    """(plan, unmatched, warnings): where each of the set's sources goes, and why the set does not fit the
    target ``target`` (a discover.Layout)."""
    pairs = check_path_map(path_map)
    plan, unmatched, warnings, used = [], [], [], set()
    by_kind = dict((source.kind, source) for source in target.sources if source.kind in SINGLE_KINDS)
    reached = set()
    for source in set_sources:
        if not isinstance(source, dict) or not source.get('name') or not os.path.isabs(source.get('path') or ''):
            raise LayoutError('the set lists a source that is not one: %s' % ascii(source)[:200])
        if source.get('kind') in ('datadir', 'web'):
            # The data dir goes where this host's is; OMERO.web's config is loaded by the config step.
            continue
        dest, old = mapped(source['path'], pairs)
        used.add(old)
        reached.add(dest)
        entry = dict(source, dest=dest, mapped=old is not None)
        plan.append(entry)
        why = _why_unmatched(source, dest, target, by_kind)
        if why:
            unmatched.append({'name': source['name'], 'kind': source.get('kind'), 'path': source['path'], 'dest': escape(dest),
                              'reason': why})
    # managed.dir or certs of the set that went elsewhere were named above, with the place this host keeps them.
    named = set(source.get('kind') for source in set_sources if source.get('kind') in SINGLE_KINDS)
    for source in target.sources:
        if source.kind not in ('datadir', 'volume') and source.kind not in named and source.path not in reached:
            unmatched.append({'name': source.name, 'kind': source.kind, 'path': escape(source.path), 'dest': None,
                              'reason': 'this host keeps %s at %s outside its data dir, and the set holds nothing for it'
                              % (source.key or source.kind, escape(source.path))})
    warnings += ['path_map entry %s is used by no source of the set' % escape(old) for old, _new in pairs if old not in used]
    return plan, unmatched, warnings


def _why_unmatched(source, dest, target, by_kind):
    kind = source.get('kind')
    there = by_kind.get(kind)
    if kind in SINGLE_KINDS and there is not None and there.path != dest:
        return ('the set holds %s from %s; this host keeps it at %s: map it (omero_restore_path_map: {%s: %s})'
                % (kind, source['path'], escape(there.path), source['path'], escape(there.path)))
    if inside(dest, target.datadir):
        return 'it would be restored to %s, inside the data dir %s, which the data dir restore replaces' % (
            escape(dest), escape(target.datadir))
    parent = os.path.dirname(dest.rstrip('/')) or '/'
    if not os.path.isdir(parent):
        return 'its place %s does not exist on this host (mount the volume, or map it with omero_restore_path_map)' % escape(parent)
    return None


def refusal(unmatched):
    """The message naming each unmatched source."""
    return ('the set does not match this host\'s layout, nothing changed: %s'
            % '; '.join('%s (%s): %s' % (item['name'], item['path'], item['reason']) for item in unmatched))
