# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config_save step: the profile saved to a file, its config.xml copy and a manifest."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write, ensure_private_dir
from ansible_collections.omero.backup.plugins.module_utils.base.manifest import manifest_path_for, ManifestError, read_manifest, write_manifest
from ansible_collections.omero.backup.plugins.module_utils.base.runner import iso_time
from ansible_collections.omero.backup.plugins.module_utils.config.cli import version_of
from ansible_collections.omero.backup.plugins.module_utils.config.props import (BACKUP_KIND, compare, CONFIG_XML_SUFFIX, ConfigError, make_diff, MASK,
                                                                                masked_keys, normalized_config_xml, parse_saved, read_bytes, render,
                                                                                sha256_text, unloadable_keys)


def save(config, dest, rely_on_config_xml=False, check_mode=False, owner=None, group=None):
    """Back up the profile to ``dest`` (+ ``dest.xml`` raw copy + manifest). Returns the result dict."""
    versions, saved, problems = _profile(config, rely_on_config_xml)
    text = render(saved)
    xml_bytes = read_bytes(config.config_xml, 'OMERO config')
    xml_dest = dest + CONFIG_XML_SUFFIX
    manifest_path = manifest_path_for(dest)
    previous, previous_text, previous_xml, previous_manifest = _previous(dest, xml_dest, manifest_path)

    record = {
        'kind': BACKUP_KIND,
        'created': iso_time(),
        'omerodir': config.cli.omerodir,
        'profile': config.cli.profile,
        'omero_server_version': versions['omero_server'],
        'omero_py_version': versions['omero_py'],
        'key_count': len(saved),
        'unloadable_keys': problems,
        'files': [
            {'path': os.path.basename(dest), 'sha256': sha256_text(text), 'size': len(text.encode('utf-8'))},
            {'path': os.path.basename(xml_dest), 'sha256': sha256_text(xml_bytes), 'size': len(xml_bytes)},
        ],
    }
    recorded_keys = ('kind', 'profile', 'omero_server_version', 'omero_py_version', 'unloadable_keys')
    same = (previous_text == text and previous_xml is not None
            and normalized_config_xml(previous_xml) == normalized_config_xml(xml_bytes)
            and previous_manifest.get('complete') is True
            and all(previous_manifest.get(key) == record[key] for key in recorded_keys))
    result = {'dest': dest, 'config_xml_dest': xml_dest, 'manifest': manifest_path, 'profile': config.cli.profile,
              'key_count': len(saved), 'sha256': record['files'][0]['sha256'], 'size': record['files'][0]['size'],
              'unloadable_keys': problems,
              'omero_version': version_of(versions), 'omero_server_version': versions['omero_server'],
              'omero_py_version': versions['omero_py'], 'changed': not same,
              'diff': make_diff(previous, saved, dest if previous_text is not None else '(absent)', 'omero config get')}
    result.update(compare(previous, saved))
    if same or check_mode:
        return result

    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        ensure_private_dir(directory, owner=owner, group=group)
    # The old manifest stops vouching for the files before they change; 'complete' comes back only at the end.
    if previous_manifest:
        write_manifest(manifest_path, dict(previous_manifest), complete=False, owner=owner, group=group)
    atomic_write(dest, text, mode=0o600, owner=owner, group=group)
    atomic_write(xml_dest, xml_bytes, mode=0o600, owner=owner, group=group)
    write_manifest(manifest_path, record, complete=True, owner=owner, group=group)
    return result


def _profile(config, rely_on_config_xml):
    """(versions, the properties to save, the keys left to the config.xml copy); refuses a masked profile."""
    config.check()
    props, versions = config.read()
    config.remember_secrets(props)
    masked = masked_keys(props)
    if masked:
        raise ConfigError('the profile itself holds the mask %s as the value of %s (restored from a masked '
                          '`omero config get` backup?); set the real password(s) before saving' % (MASK, ', '.join(masked)))
    problems = unloadable_keys(props)
    if problems and not rely_on_config_xml:
        raise ConfigError('these values cannot round-trip through `omero config load` (line breaks, trailing blanks or '
                          'a trailing backslash): %s; set rely_on_config_xml=true to save them only in the config.xml copy'
                          % ', '.join(problems))
    return versions, dict((key, value) for key, value in props.items() if key not in problems), problems


def _previous(dest, xml_dest, manifest_path):
    """(properties, text, config.xml bytes, manifest) of the backup already at ``dest`` ({}/None when absent)."""
    previous = {}
    previous_text = None
    if os.path.exists(dest):
        previous_text = read_bytes(dest, 'existing backup').decode('utf-8', 'replace')
        previous = parse_saved(previous_text)
    previous_xml = read_bytes(xml_dest, 'existing backup') if os.path.exists(xml_dest) else None
    try:
        previous_manifest = read_manifest(manifest_path) if os.path.exists(manifest_path) else {}
    except ManifestError:
        previous_manifest = {}
    return previous, previous_text, previous_xml, previous_manifest
