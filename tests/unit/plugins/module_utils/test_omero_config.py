# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""omero_config: the parsing rules against omero-py's, and save/load driven through the real `omero` CLI."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import fcntl
import json
import os
import pwd
import shutil
import stat
import tempfile

import pytest

from ansible_collections.omero.backup.plugins.module_utils.config import cli as config_cli
from ansible_collections.omero.backup.plugins.module_utils.config import load as config_load
from ansible_collections.omero.backup.plugins.module_utils.config import props as config_props
from ansible_collections.omero.backup.plugins.module_utils.config import save as config_save
from ansible_collections.omero.backup.plugins.module_utils.base.runner import subprocess_runner
from ansible_collections.omero.backup.plugins.module_utils.tools.omero_cli import OmeroCli
from ansible_collections.omero.backup.plugins.module_utils.config.cli import OmeroConfig
from ansible_collections.omero.backup.plugins.module_utils.config.props import (
    ConfigError, compare, masked_keys, masked_view, normalized_config_xml, parse_get_output, parse_saved, render, unloadable_keys)

OMERO = '/var/cache/omero-backup/venv/bin/omero'
USER = 'omero-server'


def _have_cli():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return os.access(OMERO, os.X_OK) and os.geteuid() == 0


needs_cli = pytest.mark.skipif(not _have_cli(), reason='needs root, the omero-server user and the omero CLI venv')


@pytest.mark.parametrize('key, secret', [
    ('omero.db.pass', True), ('omero.ldap.password', True), ('omero.mail.PASSWORD', True), ('omero.security.keyStorePassword', True),
    ('omero.db.passive', False), ('omero.db.user', False), ('omero.pass.word', False),
])
def test_password_keys_follow_the_cli_rule(key, secret):
    assert config_props.is_password_key(key) is secret


def test_parse_saved_reads_files_like_config_load():
    text = ('# comment\n\n  omero.a=1  \nomero.b=x=y\nomero.c=\nomero.d=con\\\ntinued\nomero.a=2\n'
            'omero.e\n=orphan\n')
    assert parse_saved(text) == {'omero.a': '2', 'omero.b': 'x=y', 'omero.c': '', 'omero.d': 'continued', 'omero.e': ''}


def test_render_then_parse_is_the_identity_for_loadable_values():
    props = {'omero.db.pass': 'p@ss w0rd #1', 'omero.x': ' leading kept', 'omero.json': '["a", "b=c"]', 'omero.empty': ''}
    assert unloadable_keys(props) == []
    assert parse_saved(render(props)) == props


def test_unloadable_values_are_named():
    props = {'omero.ml': 'a\nb', 'omero.cr': 'a\rb', 'omero.tail': 'v ', 'omero.bs': 'C:\\', 'omero.ok': 'fine',
             'bad key': 'x'}
    assert unloadable_keys(props) == sorted(['omero.ml', 'omero.cr', 'omero.tail', 'omero.bs', 'bad key'])


def test_get_output_is_split_by_the_key_list_even_with_embedded_lines():
    text = 'omero.a=1\nomero.ml=l1\nomero.zz=l2\nomero.z=last\n'
    assert parse_get_output(['omero.z', 'omero.ml', 'omero.a'], text) == {
        'omero.a': '1', 'omero.ml': 'l1\nomero.zz=l2', 'omero.z': 'last'}


def test_get_output_that_does_not_match_the_keys_is_an_error():
    with pytest.raises(ConfigError):
        parse_get_output(['omero.a', 'omero.b'], 'omero.a=1\n')


def test_masked_keys_and_view():
    props = {'omero.db.pass': '********', 'omero.ldap.password': 'real', 'omero.db.user': 'omero'}
    assert masked_keys(props) == ['omero.db.pass']
    view = masked_view({'omero.db.pass': 'new', 'omero.db.user': 'u', 'omero.mail.password': ''}, ['omero.db.pass'])
    assert view == 'omero.db.pass=******** (changed)\nomero.db.user=u\nomero.mail.password=\n'
    assert 'new' not in view


def test_compare_names_keys_only():
    assert compare({'a': '1', 'b': '2', 'c': '3'}, {'b': '2', 'c': '4', 'd': '5'}) == {
        'keys_added': ['d'], 'keys_removed': ['a'], 'keys_changed': ['c']}


def test_normalized_config_xml_ignores_only_the_generation_time():
    one = b'<icegrid><!--\n\tThis file was generated at Thu Nov 26 08:20:41 2026 by the OmeroConfig system.\n--><p v="1"/></icegrid>'
    two = one.replace(b'08:20:41', b'09:01:02')
    assert normalized_config_xml(one) == normalized_config_xml(two)
    assert normalized_config_xml(one) != normalized_config_xml(two.replace(b'v="1"', b'v="2"'))


@pytest.mark.parametrize('recorded, installed, refused', [
    ({'omero_server': '5.6.9', 'omero_py': '5.19.0'}, {'omero_server': '5.6.9', 'omero_py': '5.23.0'}, False),
    ({'omero_server': '5.6.8', 'omero_py': '5.23.0'}, {'omero_server': '5.6.9', 'omero_py': '5.23.0'}, True),
    ({'omero_server': None, 'omero_py': '5.23.0'}, {'omero_server': None, 'omero_py': '5.23.0'}, False),
    ({'omero_server': None, 'omero_py': '5.22.0'}, {'omero_server': None, 'omero_py': '5.23.0'}, True),
    ({'omero_server': '5.6.9', 'omero_py': '5.23.0'}, {'omero_server': None, 'omero_py': '5.23.0'}, True),
])
def test_version_mismatch(recorded, installed, refused):
    assert bool(config_cli.version_mismatch(recorded, installed)) is refused


def test_managed_config_lines_are_shell_quoted_for_omero_load():
    text = config_load.managed_config_text({'omero.db.pass': "it's $secret", 'omero.a': 'x y'}, '/b/omero.config')
    lines = [line for line in text.splitlines() if not line.startswith('#')]
    assert lines == ["config set -- omero.a 'x y'", "config set -- omero.db.pass 'it'\"'\"'s $secret'"]


# Real CLI below: a fresh OMERODIR owned by omero-server is all `omero config` needs.

@pytest.fixture
def omerodir():
    # Not under pytest's tmp_path: its parents are 0700 root, and omero runs as omero-server.
    top = tempfile.mkdtemp(prefix='omero-config-unit-')
    os.chmod(top, 0o755)
    root = os.path.join(top, 'OMERO.server')
    os.makedirs(os.path.join(root, 'etc', 'grid'))
    user = pwd.getpwnam(USER)
    for path in (root, os.path.join(root, 'etc'), os.path.join(root, 'etc', 'grid')):
        os.chown(path, user.pw_uid, user.pw_gid)
    yield root
    shutil.rmtree(top, ignore_errors=True)


def _config(omerodir, profile=None):
    return OmeroConfig(OmeroCli(subprocess_runner, omerodir=omerodir, omero_command=OMERO, user=USER, profile=profile))


def _set(config, script):
    config._run('config set', ['load'], data=script)


@needs_cli
def test_save_load_round_trip_through_the_real_cli(omerodir, tmp_path):
    config = _config(omerodir)
    _set(config, "config set -- omero.db.pass 'S3cr=t #pass'\\''\"$HOME'\nconfig set -- omero.db.name omero\n"
                 "config set -- omero.ldap.password ''\nconfig set -- omero.x ' lead'\n")
    original, versions = config.read()
    assert original['omero.db.pass'] == 'S3cr=t #pass\'"$HOME'
    assert versions['omero_py']
    dest = str(tmp_path / 'backup' / 'omero.config')
    saved = config_save.save(config, dest)
    assert saved['changed'] and saved['key_count'] == 4 and saved['size'] == os.path.getsize(dest)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(dest + '.xml').st_mode) == 0o600
    manifest = json.load(open(dest + '.manifest.json'))
    assert manifest['complete'] is True and manifest['omero_py_version'] == versions['omero_py']
    assert 'S3cr=t' not in json.dumps(saved)
    assert config_save.save(config, dest)['changed'] is False

    _set(config, 'config drop default\n')
    loaded = config_load.load(config, dest, mode='merge')
    assert loaded['changed'] and loaded['keys_added'] == sorted(original)  # load() reads the profile back itself
    assert config_load.load(config, dest, mode='merge')['changed'] is False

    _set(config, "config set -- omero.db.pass other\nconfig set -- omero.extra 1\n")
    replaced = config_load.load(config, dest, mode='replace')
    assert replaced['keys_changed'] == ['omero.db.pass'] and replaced['keys_removed'] == ['omero.extra']
    assert config.read()[0] == original


@needs_cli
def test_multiline_value_is_refused_unless_config_xml_is_relied_on(omerodir, tmp_path):
    dest = str(tmp_path / 'omero.config')
    config = _config(omerodir)
    config.cli.run('config', 'set', 'omero.ml', 'l1\nomero.zz=l2')
    config.cli.run('config', 'set', 'omero.a', '1')
    with pytest.raises(ConfigError) as error:
        config_save.save(config, dest)
    assert 'omero.ml' in str(error.value) and not os.path.exists(dest)
    result = config_save.save(config, dest, rely_on_config_xml=True)
    assert result['unloadable_keys'] == ['omero.ml']
    assert parse_saved(open(dest).read()) == {'omero.a': '1'}
    assert b'value="l1&#10;omero.zz=l2"' in open(dest + '.xml', 'rb').read()


@needs_cli
def test_missing_omerodir_and_missing_config_xml_are_clear_errors(tmp_path, omerodir):
    with pytest.raises(ConfigError) as error:
        config_save.save(_config(str(tmp_path / 'nowhere')), str(tmp_path / 'c'))
    assert 'OMERODIR' in str(error.value) and 'does not exist' in str(error.value)
    with pytest.raises(ConfigError) as error:
        config_save.save(_config(omerodir), str(tmp_path / 'c'))
    assert 'config.xml does not exist' in str(error.value)
    assert not os.path.exists(os.path.join(omerodir, 'etc', 'grid', 'config.xml'))


def test_cli_errors_never_repeat_a_secret():
    config = OmeroConfig(OmeroCli(subprocess_runner, omerodir='/nonexistent', omero_command=OMERO, user=None))
    config.remember_secrets({'omero.db.pass': 'hunter22', 'omero.db.user': 'omero'})
    with pytest.raises(ConfigError) as error:
        config._fail('config set', 2, '', 'error: unrecognized arguments: hunter22 omero')
    assert 'hunter22' not in str(error.value) and 'omero' in str(error.value)
    with pytest.raises(ConfigError) as error:
        config._fail('config load', 246, '', "Duplicate property: omero.db.pass ('old-secret' => 'new-secret')")
    assert 'omero.db.pass' in str(error.value) and 'secret' not in str(error.value)


@needs_cli
def test_a_held_config_lock_is_reported_as_locked(omerodir):
    config = _config(omerodir)
    _set(config, 'config set -- omero.a 1\n')
    lock_path = os.path.join(omerodir, 'etc', 'grid', 'config.xml.lock')
    with open(lock_path, 'a+') as lock:
        user = pwd.getpwnam(USER)
        os.chown(lock_path, user.pw_uid, user.pw_gid)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(config_props.ConfigLocked) as error:
            config.read()
    assert 'config is locked' in str(error.value)
    os.chown(lock_path, 0, 0)
    with pytest.raises(config_props.ConfigLocked) as error:
        config.read()
    assert 'not writable by omero-server' in str(error.value)


def _unreached_config():
    """Refusals below happen before any CLI call; a CLI that cannot start proves it."""
    return OmeroConfig(OmeroCli(subprocess_runner, omerodir='/nonexistent', omero_command='/nonexistent/omero', user=None))


def _saved_file(tmp_path, text, manifest=None):
    src = str(tmp_path / 'omero.config')
    with open(src, 'w') as handle:
        handle.write(text)
    if manifest is not None:
        with open(src + '.manifest.json', 'w') as handle:
            json.dump(manifest, handle)
    return src


def test_load_refuses_a_masked_file_even_with_force(tmp_path):
    src = _saved_file(tmp_path, 'omero.db.name=omero\nomero.db.pass=********\n')
    with pytest.raises(ConfigError) as error:
        config_load.load(_unreached_config(), src, force=True)
    assert 'masked' in str(error.value) and 'omero.db.pass' in str(error.value)


def test_load_refuses_without_manifest_and_on_a_changed_or_incomplete_backup(tmp_path):
    src = _saved_file(tmp_path, 'omero.db.name=omero\n')
    with pytest.raises(ConfigError) as error:
        config_load.load(_unreached_config(), src)
    assert 'no manifest' in str(error.value) and 'force' in str(error.value)
    _saved_file(tmp_path, 'omero.db.name=omero\n', {'complete': True, 'files': [{'path': 'omero.config', 'sha256': '0' * 64}]})
    with pytest.raises(ConfigError) as error:
        config_load.load(_unreached_config(), src)
    assert 'changed after the backup' in str(error.value)
    _saved_file(tmp_path, 'omero.db.name=omero\n', {'complete': False, 'files': []})
    with pytest.raises(ConfigError) as error:
        config_load.load(_unreached_config(), src)
    assert 'not complete' in str(error.value)


def test_load_of_an_unreadable_file_names_it(tmp_path):
    with pytest.raises(ConfigError) as error:
        config_load.load(_unreached_config(), str(tmp_path / 'absent.config'))
    assert 'cannot read saved config' in str(error.value) and 'absent.config' in str(error.value)


@needs_cli
def test_save_refuses_a_profile_that_already_holds_the_mask(omerodir, tmp_path):
    config = _config(omerodir)
    _set(config, "config set -- omero.db.pass '********'\n")
    with pytest.raises(ConfigError) as error:
        config_save.save(config, str(tmp_path / 'omero.config'))
    assert 'omero.db.pass' in str(error.value) and not os.path.exists(str(tmp_path / 'omero.config'))


def _saved_with_manifest(config, tmp_path, script):
    """A saved file with its manifest, taken from a scratch OMERODIR's profile by save() itself."""
    _set(config, script)
    dest = str(tmp_path / 'backup' / 'omero.config')
    config_save.save(config, dest)
    return dest, config.read()[0]


@needs_cli
def test_load_into_a_reinstalled_server_without_config_xml(omerodir, tmp_path):
    """A fresh OMERO.server has etc/grid/ but no config.xml: an empty profile, which the load fills."""
    origin = tempfile.mkdtemp(prefix='omero-config-unit-origin-')
    try:
        os.chmod(origin, 0o755)
        os.chown(origin, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
        src, original = _saved_with_manifest(_config(origin), tmp_path, "config set -- omero.db.pass 'S3cret x'\nconfig set -- omero.db.name omero\n")
    finally:
        shutil.rmtree(origin, ignore_errors=True)
    config_xml = os.path.join(omerodir, 'etc', 'grid', 'config.xml')
    config = _config(omerodir)

    checked = config_load.load(config, src, mode='replace', check_mode=True)
    assert checked['changed'] and checked['keys_added'] == sorted(original) and checked['keys_removed'] == []
    assert checked['diff']['before'] == '' and 'omero.db.pass=********\n' in checked['diff']['after']
    assert config_xml in checked['diff']['before_header'] and 'S3cret' not in json.dumps(checked)
    assert os.listdir(os.path.join(omerodir, 'etc', 'grid')) == []

    loaded = config_load.load(config, src, mode='replace')
    assert loaded['changed'] and loaded['keys_added'] == sorted(original)
    assert os.stat(config_xml).st_uid == pwd.getpwnam(USER).pw_uid
    assert config.read()[0] == original
    assert config_load.load(config, src, mode='replace')['changed'] is False


@needs_cli
def test_missing_config_xml_needs_a_grid_dir_the_omero_user_can_create(omerodir, tmp_path):
    src = _saved_file(tmp_path, 'omero.db.name=omero\n')
    shutil.rmtree(os.path.join(omerodir, 'etc'))
    os.chown(omerodir, 0, 0)  # root's 0755: omero-server cannot create etc/ there
    with pytest.raises(ConfigError) as error:
        config_load.load(_config(omerodir), src, force=True)
    assert 'config.xml does not exist' in str(error.value) and 'not writable by omero-server' in str(error.value)
    assert os.listdir(omerodir) == []

    os.chown(omerodir, pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid)
    loaded = config_load.load(_config(omerodir), src, force=True)
    assert loaded['changed'] and loaded['keys_added'] == ['omero.db.name']
    assert os.path.isfile(os.path.join(omerodir, 'etc', 'grid', 'config.xml'))


def test_load_into_a_missing_omerodir_is_still_a_clear_error(tmp_path):
    src = _saved_file(tmp_path, 'omero.db.name=omero\n')
    config = OmeroConfig(OmeroCli(subprocess_runner, omerodir=str(tmp_path / 'nowhere'), omero_command=OMERO, user=None))
    with pytest.raises(ConfigError) as error:
        config_load.load(config, src, force=True)
    assert 'OMERODIR %s does not exist' % (tmp_path / 'nowhere') in str(error.value)
    assert not os.path.exists(str(tmp_path / 'nowhere'))
