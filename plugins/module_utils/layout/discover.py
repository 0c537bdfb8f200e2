# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sources of an OMERO install: every directory a backup set must hold so that a restore brings back the
whole server, not only what lies below ``omero.data.dir``.

- the data dir (``omero.data.dir``), backed up by the data dir step as today;
- ``omero.managed.dir`` when it is outside the data dir (OMERO allows it anywhere);
- every directory a symlink inside those points to outside them (``ManagedRepository/volume-B -> /mnt/b``, the
  way extra volumes are added): a volume of its own; links inside the volumes are followed the same way;
- the certificates directory of omero-certificates (``omero.glacier2.IceSSL.DefaultDir``, default
  ``{omero.data.dir}/certs``) when it is outside the data dir;
- the extra sources the operator declares (the roots of in-place imports, for instance).

A link whose target lies outside every source (an in-place imported file, a dangling link) would come back
pointing at nothing: it is a problem unless its target is under one of the excluded paths (on purpose: the
operator backs it up elsewhere). The configuration is read from ``etc/grid/config.xml`` directly: it is a
read of a few keys, and unlike any ``omero config`` command it neither rewrites the file nor needs Ice.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import stat
from xml.etree import ElementTree

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError
from ansible_collections.omero.backup.plugins.module_utils.base.names import escape

MANAGED_KEY = 'omero.managed.dir'
DATA_KEY = 'omero.data.dir'
CERTS_KEY = 'omero.glacier2.IceSSL.DefaultDir'
# omero-certificates' own default (its update_config: os.path.join(omero.data.dir, "certs")).
CERTS_DEFAULT = 'certs'
# Files of omero-certificates that hold the server's private key (server.key; server.p12 bundles it).
PRIVATE_KEY_NAMES = re.compile(r'.*\.(key|p12|pfx)\Z')
MAX_LISTED = 20
KINDS = ('datadir', 'managed', 'volume', 'certs', 'extra')


class LayoutError(OmeroBackupError):
    """A refusal about the layout, with nothing changed."""


def read_config(omerodir, profile=None):
    """The properties of the active (or named) profile of ``<omerodir>/etc/grid/config.xml``; {} when there is none."""
    path = os.path.join(omerodir, 'etc', 'grid', 'config.xml')
    if not os.path.isfile(path):
        return {}
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise LayoutError('cannot read %s: %s' % (path, exc))
    sections = dict((node.get('id'), dict((prop.get('name'), prop.get('value') or '') for prop in node.findall('property')))
                    for node in root.findall('properties'))
    name = profile or sections.get('__ACTIVE__', {}).get('omero.config.profile') or 'default'
    return sections.get(name, {})


def inside(child, parent):
    """Whether ``child`` is ``parent`` or below it (paths as given, normalised)."""
    child = os.path.normpath(child).rstrip('/') + '/'
    parent = os.path.normpath(parent).rstrip('/') + '/'
    return child.startswith(parent)


def slug(path):
    """A source's name part from its path: a file and set-id safe word ([0-9A-Za-z_.-])."""
    text = re.sub(r'[^0-9A-Za-z_.-]+', '_', path.strip('/')).strip('_.-')
    return text[:80] or 'root'


class Source(object):
    """One directory a set must hold."""

    def __init__(self, kind, path, link=None, key=None, link_source=None):
        self.kind, self.path, self.link, self.key = kind, os.path.normpath(path), link, key
        # A volume's link: relative to the source that holds it (the data dir, managed.dir, another volume).
        self.link_source = link_source
        where = '%s_%s' % (link_source, link) if link and link_source != 'datadir' else link
        self.name = kind if kind in ('datadir', 'managed', 'certs') else '%s-%s' % (kind, slug(where or path))
        self.bytes = None
        self.files = None

    def as_dict(self):
        record = {'name': self.name, 'kind': self.kind, 'path': escape(self.path), 'bytes': self.bytes, 'files': self.files}
        if self.link:
            record['link'] = escape(self.link)
            record['link_source'] = self.link_source
        if self.key:
            record['key'] = self.key
        return record


class Layout(object):
    """What ``discover`` found: the sources (the data dir first), the links, the problems and warnings."""

    def __init__(self, datadir):
        self.datadir = datadir
        self.sources = []
        self.links = {'total': 0, 'inside': 0, 'volumes': 0, 'excluded': 0, 'dangling': [], 'outside': []}
        self.problems = []
        # Links to nothing a set holds: a backup's problem; a restore gets the old links with the set.
        self.link_problems = []
        self.warnings = []
        self.covered = {}

    def owner_of(self, path):
        """The source ``path`` lies in (the innermost), or None."""
        best = None
        for source in self.sources:
            if inside(path, source.path) and (best is None or len(source.path) > len(best.path)):
                best = source
        return best

    def add(self, source):
        if not any(other.path == source.path for other in self.sources):
            self.sources.append(source)
        return source


class _Options(object):
    def __init__(self, params):
        self.omerodir = params.get('omerodir')
        self.profile = params.get('profile')
        self.datadir = params.get('datadir')
        self.managed_dir = params.get('managed_dir')
        self.certs_dir = params.get('certs_dir')
        self.extra_sources = list(params.get('extra_sources') or [])
        self.exclude = [os.path.normpath(path) for path in params.get('exclude') or []]
        self.sizes = params.get('sizes', True)
        # A restore target: a configured place that does not exist yet is where the restore will put the source.
        self.for_restore = params.get('set_sources') is not None


def discover(params):
    """The layout of the install ``params`` name (see the module layout_info); raises LayoutError when the data
    dir cannot be known."""
    options = _Options(params)
    props = read_config(options.omerodir, options.profile) if options.omerodir else {}
    datadir = options.datadir or props.get(DATA_KEY)
    if not datadir:
        raise LayoutError('no data dir: give datadir, or an omerodir whose config sets %s' % DATA_KEY)
    if not os.path.isabs(datadir):
        raise LayoutError('the data dir %s is not an absolute path' % escape(datadir))
    layout = Layout(os.path.normpath(datadir))
    layout.add(Source('datadir', datadir, key=DATA_KEY))
    _configured(layout, 'managed', options.managed_dir or props.get(MANAGED_KEY), MANAGED_KEY,
                os.path.join(datadir, 'ManagedRepository'), options.for_restore)
    _configured(layout, 'certs', options.certs_dir or props.get(CERTS_KEY), CERTS_KEY, os.path.join(datadir, CERTS_DEFAULT),
                options.for_restore)
    for path in options.extra_sources:
        if not os.path.isabs(path):
            raise LayoutError('extra source %s is not an absolute path' % escape(path))
        layout.add(Source('extra', path))
    if not options.for_restore:
        # A restore target is judged by its configured places; the set brings the old tree's links.
        _walk_all(layout, options)
    _check_overlaps(layout)
    _check_private_keys(layout)
    return layout


def _configured(layout, kind, path, key, default, for_restore):
    """managed.dir or the certificates directory: a source of its own only outside the data dir."""
    where = path or default
    if not os.path.isabs(where):
        # OMERO resolves a relative managed.dir against its working directory: nothing a backup can rely on.
        layout.problems.append('%s is %s, not an absolute path: set it to one' % (key, escape(where)))
        return
    layout.covered[kind] = {'path': escape(where), 'key': key, 'configured': bool(path)}
    if inside(where, layout.datadir):
        layout.covered[kind]['in'] = 'datadir'
        return
    if not os.path.isdir(where) and not (for_restore and path):
        if kind == 'managed' or path:
            layout.problems.append('%s is %s, outside the data dir, and it is not a directory here' % (key, escape(where)))
        return
    layout.add(Source(kind, where, key=key))


def _walk_all(layout, options):
    """Walk every source once (sizes and links); a link to a directory outside every source adds a volume, which
    is walked in turn."""
    index = 0
    while index < len(layout.sources):
        source = layout.sources[index]
        index += 1
        if os.path.isdir(source.path):
            _walk(layout, source, options)
        elif source.kind != 'datadir' and not options.for_restore:
            layout.problems.append('source %s (%s) is not a directory' % (source.name, escape(source.path)))


def _walk(layout, source, options):
    files = size = 0
    stack = [source.path]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            layout.warnings.append('cannot read %s: %s' % (escape(directory), exc.strerror))
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISLNK(info.st_mode):
                files += 1
                _link(layout, source, entry.path, options)
            elif stat.S_ISDIR(info.st_mode):
                # Another source below this one (managed.dir inside a volume) is counted once, as itself.
                if not any(other is not source and other.path == entry.path for other in layout.sources):
                    stack.append(entry.path)
            else:
                files += 1
                size += info.st_size if options.sizes else 0
    source.files = files
    source.bytes = size if options.sizes else None


def _link(layout, source, path, options):
    layout.links['total'] += 1
    try:
        target = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    except OSError:
        return
    if layout.owner_of(target) is not None:
        layout.links['inside'] += 1
        return
    if any(inside(target, excluded) for excluded in options.exclude):
        layout.links['excluded'] += 1
        return
    if not os.path.exists(target):
        # Already broken here: the set reproduces the link as it is, and no source could hold its target.
        layout.links['dangling'].append({'link': escape(path), 'target': escape(target)})
        return
    if os.path.isdir(target) and not os.path.islink(target):
        layout.links['volumes'] += 1
        layout.add(Source('volume', target, link=os.path.relpath(path, source.path), link_source=source.name))
        return
    layout.links['outside'].append({'link': escape(path), 'target': escape(target)})


def _check_overlaps(layout):
    dangling = layout.links['dangling']
    if dangling:
        layout.warnings.append('%d link(s) point at nothing on this host and are kept as they are: %s%s'
                               % (len(dangling), ', '.join('%s -> %s' % (item['link'], item['target']) for item in dangling[:5]),
                                  ', ...' if len(dangling) > 5 else ''))
        layout.links['dangling'] = dangling[:MAX_LISTED]
    outside = layout.links['outside']
    if outside:
        listed = ', '.join('%s -> %s' % (item['link'], item['target']) for item in outside[:5])
        layout.link_problems.append(
            '%d link(s) point outside every source and would be restored pointing at nothing: %s%s. Declare their '
            'targets as extra sources (omero_backup_layout_extra_sources), or exclude them on purpose '
            '(omero_backup_layout_exclude)' % (len(outside), listed, ', ...' if len(outside) > 5 else ''))
        layout.links['outside'] = outside[:MAX_LISTED]
    for source in layout.sources:
        for other in layout.sources:
            if other is not source and source.kind != 'datadir' and inside(other.path, source.path) and other.path != source.path:
                layout.problems.append('source %s (%s) contains %s (%s): a restore of one would overwrite the other'
                                       % (source.name, escape(source.path), other.name, escape(other.path)))


def _check_private_keys(layout):
    """The server's private key: a warning when others may read it (the backup keeps the modes it finds)."""
    certs = layout.covered.get('certs')
    where = certs and certs['path']
    if not where or not os.path.isdir(where):
        return
    keys = []
    for name in sorted(os.listdir(where)):
        full = os.path.join(where, name)
        if PRIVATE_KEY_NAMES.match(name) and os.path.isfile(full):
            mode = stat.S_IMODE(os.lstat(full).st_mode)
            keys.append({'name': escape(name), 'mode': '%04o' % mode})
            if mode & 0o077:
                layout.warnings.append('the private key %s is mode %04o: make it 0600 (the backup and the restore keep '
                                       'the mode it has)' % (escape(full), mode))
    certs['private_keys'] = keys
