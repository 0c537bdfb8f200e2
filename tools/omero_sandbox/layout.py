"""The parts of a real install that lie outside the data dir (issue 16, docs/layout.md): omero.managed.dir
elsewhere (the sandbox's ManagedRepository, filesets, import logs and in-place links, moved out of the data dir
and configured), a volume symlinked into it, the certificates directory of omero-certificates, and an OMERO.web
install with its own OMERODIR and config (written by the real omero CLI).

The description's ``checksums`` and ``symlinks`` keep their ``ManagedRepository/...`` keys: with ``layout`` they
are relative to ``layout.managed_dir`` instead of the data dir."""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import secrets
from xml.etree import ElementTree

from .system import chown_tree, run, user_env

VOLUME_LINK = 'volume-B'
VOLUME_FILES = {'user_2/2026-11/26/fileset-B1/plate.tif': 4096 + 17, 'user_2/2026-11/26/fileset-B1/plate.tif.log': 311,
                'user_3/2026-11/27/fileset-B2/stack.ome.tiff': 8192 + 5}
CERT_FILES = (('server.key', 0o600), ('server.pem', 0o644), ('server.p12', 0o600))


def _write_files(base, files, seed):
    for relpath, size in sorted(files.items()):
        path = os.path.join(base, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'wb') as handle:
            handle.write((('%s:%d:' % (relpath, seed)).encode() * (size // 8 + 1))[:size])


def set_config_keys(config_xml, keys):
    """Add ``keys`` to the active profile (and __ACTIVE__) of a config.xml, as `omero config set` would."""
    tree = ElementTree.parse(config_xml)
    for node in tree.getroot().findall('properties'):
        for name, value in keys:
            for prop in node.findall('property'):
                if prop.get('name') == name:
                    node.remove(prop)
            ElementTree.SubElement(node, 'property', {'name': name, 'value': value})
    tree.write(config_xml)


def add_layout(description, omero_command, user):
    """Build the extra sources beside the sandbox and record them in the description under ``layout``."""
    root, datadir = description['root'], description['datadir']
    managed = os.path.join(root, 'managed-elsewhere')
    os.rename(os.path.join(datadir, 'ManagedRepository'), managed)
    volume = os.path.join(root, 'volume-B')
    _write_files(volume, VOLUME_FILES, 1)
    os.symlink(volume, os.path.join(managed, VOLUME_LINK))
    certs = os.path.join(root, 'certs')
    os.makedirs(certs)
    for name, mode in CERT_FILES:
        path = os.path.join(certs, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, 'w') as handle:
            handle.write('-----BEGIN SANDBOX %s-----\n%s\n-----END-----\n' % (name, secrets.token_hex(32)))
        os.chmod(path, mode)
    for path in (volume, managed, certs):
        chown_tree(path, user)
    set_config_keys(description['omero_config'], [('omero.managed.dir', managed), ('omero.glacier2.IceSSL.DefaultDir', certs),
                                                  ('omero.glacier2.IceSSL.CertFile', 'server.p12'),
                                                  ('omero.glacier2.IceSSL.CAs', 'server.pem')])
    description['layout'] = {'volume': {'link': VOLUME_LINK, 'link_source': 'managed', 'target': volume, 'files': sorted(VOLUME_FILES),
                                        'bytes': sum(VOLUME_FILES.values())},
                             'managed_dir': managed, 'certs_dir': certs,
                             'web': add_web(root, omero_command, user)}
    return description


def add_web(root, omero_command, user):
    """An OMERO.web install: its own OMERODIR, bin/omero of its venv, and a config with a password key."""
    omerodir = os.path.join(root, 'OMERO.web')
    os.makedirs(os.path.join(omerodir, 'etc', 'grid'))
    os.makedirs(os.path.join(omerodir, 'bin'))
    os.makedirs(os.path.join(omerodir, 'var', 'log'))
    keys = [('omero.web.server_list', '[["localhost", 4064, "omero"]]'), ('omero.web.public.enabled', 'true'),
            ('omero.web.public.user', 'public'), ('omero.web.public.password', secrets.token_hex(12)),
            ('omero.web.prefix', '/omero')]
    web = {'omerodir': omerodir, 'omero_command': None, 'config': dict(keys)}
    chown_tree(omerodir, user)
    if not omero_command:
        return web
    os.symlink(omero_command, os.path.join(omerodir, 'bin', 'omero'))
    web['omero_command'] = os.path.join(omerodir, 'bin', 'omero')
    keys_file = os.path.join(omerodir, 'var', 'web-keys.omero')
    fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, 'w') as handle:
        for key, value in keys:
            handle.write("config set -- %s '%s'\n" % (key, value))
    chown_tree(keys_file, user)
    try:
        run([omero_command, 'load', keys_file], user=user, env=user_env(user, {'OMERODIR': omerodir}), what='omero load (OMERO.web config)')
    finally:
        os.unlink(keys_file)
    return web
