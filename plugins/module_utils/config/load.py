# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config_load step: a saved file loaded into the profile, checked against its manifest and versions."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import pwd
from shlex import quote as shell_quote

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import manifest_path_for, ManifestError, read_manifest
from ansible_collections.omero.backup.plugins.module_utils.config.cli import version_mismatch, version_of
from ansible_collections.omero.backup.plugins.module_utils.config.props import (compare, ConfigError, make_diff, MANAGED_CONFIG_FILE, MANAGED_CONFIG_MODE,
                                                                                MASK, masked_keys, parse_saved, read_bytes, sha256_text)


def managed_config_text(props, src):
    lines = ['# Written by omero.backup.config_load from %s.\n' % src,
             '# The ome.omero_server role loads every *.omero file here at each start, in name order;\n',
             '# this file restores the loaded settings after that. Remove it to let the role own them again.\n']
    lines += ['config set -- %s %s\n' % (shell_quote(key), shell_quote(props[key])) for key in sorted(props)]
    return ''.join(lines)


def _write_managed(directory, name, props, src, user, check_mode):
    if not os.path.isdir(directory):
        raise ConfigError('managed_config_dir %s does not exist' % directory)
    path = os.path.join(directory, name)
    text = managed_config_text(props, src)
    existing = None
    if os.path.exists(path):
        existing = read_bytes(path, 'managed config file').decode('utf-8', 'replace')
    group = None
    if user:
        try:
            group = pwd.getpwnam(user).pw_gid
        except KeyError:
            raise ConfigError('OMERO system user %r does not exist on this host' % user)
    changed = existing != text
    if existing is not None and not changed:
        stats = os.stat(path)
        changed = (stats.st_mode & 0o777) != MANAGED_CONFIG_MODE or (group is not None and os.geteuid() == 0 and stats.st_gid != group)
    if changed and not check_mode:
        # Readable by the service (group), not writable by it, secret to everyone else.
        atomic_write(path, text, mode=MANAGED_CONFIG_MODE, group=group if os.geteuid() == 0 else None)
    return {'path': path, 'changed': changed}


def load(config, src, mode='merge', force=False, managed_config_dir=None, managed_config_file=MANAGED_CONFIG_FILE,
         check_mode=False):
    """Load a saved file into the profile. Returns the result dict."""
    if mode not in ('merge', 'replace'):
        raise ConfigError('mode must be merge or replace, not %r' % mode)
    wanted, manifest = _saved(src, force)
    config.remember_secrets(wanted)
    current, versions, config_xml_absent = _current(config)
    backup_versions = {}
    if manifest is not None:
        backup_versions = {'omero_server': manifest.get('omero_server_version'), 'omero_py': manifest.get('omero_py_version')}
        mismatch = version_mismatch(backup_versions, versions)
        if mismatch and not force:
            raise ConfigError('refusing to load %s into a different OMERO version (%s); restore the config into the '
                              'version it was saved from, or set force=true' % (src, mismatch))
    target = _target(mode, current, wanted, src)

    changes = compare(current, target)
    changed = current != target
    before_header = 'profile %s' % (config.cli.profile or '(active)')
    if config_xml_absent:
        before_header += ' (%s absent)' % config.config_xml
    result = {'src': src, 'mode': mode, 'profile': config.cli.profile, 'key_count': len(target),
              'omero_version': version_of(versions), 'backup_omero_version': version_of(backup_versions) if manifest else None,
              'changed': changed, 'managed_config': None,
              'diff': make_diff(current, target, before_header, src)}
    result.update(changes)
    if changed and not check_mode:
        after = config.apply(current, target)
        if after != target:
            wrong = compare(target, after)
            raise ConfigError('after loading %s the profile differs from it (added %s, removed %s, changed %s)'
                              % (src, wrong['keys_added'], wrong['keys_removed'], wrong['keys_changed']))
    if managed_config_dir:
        managed = _write_managed(managed_config_dir, managed_config_file, wanted, src, config.cli.user, check_mode)
        result['managed_config'] = managed
        result['changed'] = result['changed'] or managed['changed']
    return result


def _saved(src, force):
    """(properties of the saved file ``src``, its manifest or None), checked against the manifest's sha256."""
    data = read_bytes(src, 'saved config')
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise ConfigError('saved config %s is not UTF-8 text' % src)
    wanted = parse_saved(text)
    masked = masked_keys(wanted)
    if masked:
        raise ConfigError('%s holds masked passwords (%s = %s): it was saved with a plain `omero config get` and would '
                          'restore a server that cannot reach its database; save with omero.backup.config_save instead'
                          % (src, ', '.join(masked), MASK))
    manifest_path = manifest_path_for(src)
    if not os.path.exists(manifest_path):
        if not force:
            raise ConfigError('no manifest %s beside %s records which OMERO version it came from; a config is restored only '
                              'into a matching version: set force=true to load it anyway' % (manifest_path, src))
        return wanted, None
    try:
        manifest = read_manifest(manifest_path)
    except ManifestError as exc:
        raise ConfigError(str(exc))
    if manifest.get('complete') is not True and not force:
        raise ConfigError('manifest %s is not complete: the save that wrote %s did not finish' % (manifest_path, src))
    recorded = dict((entry['path'], entry['sha256']) for entry in manifest.get('files', []))
    expected = recorded.get(os.path.basename(src))
    if expected and expected != sha256_text(data) and not force:
        raise ConfigError('%s does not match the sha256 in %s: it changed after the backup' % (src, manifest_path))
    return wanted, manifest


def _current(config):
    """(current properties, installed versions, whether config.xml is absent)."""
    config.check(require_config_xml=False)
    config_xml_absent = not config.config_xml_exists()
    if config_xml_absent:
        # A reinstalled OMERO.server before its first `config` command: an empty profile. No `config` command may
        # run before the load itself, as any of them would create the file (and check mode must create nothing).
        config.check_config_xml_creatable()
        current, versions = {}, config.read_versions()
    else:
        current, versions = config.read()
    config.remember_secrets(current)
    return current, versions, config_xml_absent


def _target(mode, current, wanted, src):
    """The profile after the load: merge refuses to change an existing value, as `omero config load` would."""
    if mode == 'replace':
        return dict(wanted)
    conflicts = sorted(key for key in wanted if key in current and current[key] != wanted[key])
    if conflicts:
        raise ConfigError('merge would change existing value(s) of %s, which `omero config load` refuses '
                          '(Duplicate property); nothing was written. Use mode=replace to make the profile equal '
                          'to %s' % (', '.join(conflicts), src))
    target = dict(current)
    target.update(wanted)
    return target
