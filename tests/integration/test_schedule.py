# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/schedule.yml (omero.backup.schedule) against real podman hosts, and the scheduled backups it installs.

The hosts come from scripts/build_systemd_image.sh (the molecule image plus systemd, cron and ansible-core in
/opt/ansible). One boots systemd as PID 1 (podman run --systemd=always IMAGE /sbin/init); the other runs
`sleep infinity` as PID 1, so Ansible finds no systemd there and the schedule falls back to cron. Each host gets
the collection under test (the installed copy the integration phase uses) in /usr/share/ansible/collections and
a site inventory in /etc/omero-backup whose database does not answer: a scheduled run really starts
ansible-playbook omero.backup.backup on the host, reaches the role's preflight, fails there and records the
failed run in the status file. A complete backup from a schedule is not run here (it needs an OMERO database
and the omero CLI inside the host; extensions/molecule/three_hosts proves the backup itself on podman hosts).
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import subprocess
import time

import pytest

from helpers.ansible import REPO_ROOT, collections_path, run_playbook
from helpers.podman import podman, podman_env, run_script

HOST_ANSIBLE_PLAYBOOK = '/opt/ansible/bin/ansible-playbook'
HOST_COLLECTIONS = '/usr/share/ansible/collections/ansible_collections/omero/backup'
SITE_NAME = 'omero1.example.org'  # the host's name in its own inventory, not its container name
COMMAND = '/usr/local/sbin/omero-backup-scheduled'
LOCK = '/run/omero-backup/schedule.lock'  # the collection's root-only lock directory
SERVICE = '/etc/systemd/system/omero-backup.service'
TIMER = '/etc/systemd/system/omero-backup.timer'
CRON_FILE = '/etc/cron.d/omero-backup'
CRON_LOG = '/var/log/omero-backup-scheduled.log'
STATUS_FILE = '/var/lib/omero-backup/status.json'
RUNS_FILE = '/var/tmp/omero-backup-runs'  # one line per backup run that really started (a start hook writes it)
STARTED = '/run/omero-backup-started'
RELEASE = '/run/omero-backup-release'

# The start hook records the run and, when the test asks for it, holds the run (and so the schedule's lock)
# until the test lets it go.
HOLD_HOOK = ('echo started >> %s; touch %s; while [ -e /run/omero-backup-hold ] && [ ! -e %s ]; do sleep 0.2; done'
             % (RUNS_FILE, STARTED, RELEASE))
SITE_INVENTORY = {
    'all': {
        'children': {'omero_server': {'hosts': {SITE_NAME: {
            'ansible_connection': 'local', 'ansible_python_interpreter': '/usr/bin/python3'}}}},
        'vars': {
            # Nothing listens on port 9: the backup fails in its preflight, after the role has started.
            'omero_server_dbhost': '127.0.0.1', 'omero_server_dbport': 9,
            'omero_backup_status_file': STATUS_FILE,
            'omero_backup_hooks_start': [{'command': ['sh', '-c', HOLD_HOOK]}],
        },
    },
}


def host_sh(container, script, check=True):
    return podman('exec', container, 'sh', '-c', script, check=check)


def host_exists(container, path):
    return host_sh(container, 'test -e %s' % path, check=False).returncode == 0


def wait_for(predicate, what, limit=300):
    """Poll until predicate() holds; the limit only keeps a broken run from hanging."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError('gave up waiting for %s' % what)
        time.sleep(0.3)


@pytest.fixture(scope='module')
def image():
    return run_script(os.path.join(REPO_ROOT, 'scripts', 'build_systemd_image.sh'))


@pytest.fixture
def start_host(image):
    started = []

    def start(kind, *command):
        name = 'omero-backup-schedule-%s-%d' % (kind, os.getpid())
        podman('rm', '--force', '--time', '0', name, check=False)
        podman('run', '--detach', '--name', name, '--hostname', 'omero1', *(list(command) or [image]))
        started.append(name)
        return name

    yield start
    for name in started:
        podman('rm', '--force', '--time', '0', name, check=False)


def install_site(container, with_collection=True):
    """What an operator puts on the host before scheduling: the site inventory and the collection."""
    podman('exec', '-i', container, 'sh', '-c', 'mkdir -p /etc/omero-backup && cat > /etc/omero-backup/inventory.yml',
           input=json.dumps(SITE_INVENTORY, indent=1))
    if with_collection:
        install_collection(container)


def install_collection(container):
    source = os.path.join(collections_path(), 'ansible_collections', 'omero', 'backup')
    pack = subprocess.Popen(['tar', '-C', source, '--exclude=.git', '--exclude=tests/output', '--exclude=__pycache__',
                             '-cf', '-', '.'], stdout=subprocess.PIPE)
    unpack = subprocess.run(['podman', 'exec', '-i', container, 'sh', '-c',
                             'mkdir -p %s && tar -C %s -xf -' % (HOST_COLLECTIONS, HOST_COLLECTIONS)],
                            stdin=pack.stdout, env=podman_env(), stderr=subprocess.PIPE, universal_newlines=True, check=False)
    pack.stdout.close()
    assert pack.wait() == 0 and unpack.returncode == 0, unpack.stderr


def schedule(tmp_path, container, extra_vars, check=False):
    """ansible-playbook omero.backup.schedule from this machine, over the podman connection."""
    inventory = tmp_path / 'hosts.ini'
    # An absolute remote_tmp spares the podman connection one `podman exec` (echo ~) per task; not under /tmp,
    # which systemd containers mount as a tmpfs that the connection's file copies (podman mount) do not see.
    inventory.write_text('[omero_server]\n%s ansible_connection=containers.podman.podman '
                         'ansible_python_interpreter=/usr/bin/python3 ansible_remote_tmp=/root/.ansible/tmp\n' % container)
    result = run_playbook('omero.backup.schedule', extra_vars=extra_vars, inventory=str(inventory), check=check,
                          diff=check, env={'CONTAINERS_CONF': podman_env()['CONTAINERS_CONF']})
    result['host_stats'] = result['stats'].get(container, {})
    return result


def failure_message(result):
    return ' '.join(task['hosts'][host].get('msg', '') for play in result['plays'] for task in play['tasks']
                    for host in task['hosts'] if task['hosts'][host].get('failed'))


def runs_started(container):
    return len(host_sh(container, 'cat %s 2>/dev/null || true' % RUNS_FILE).stdout.splitlines())


def last_backup_run(container):
    return json.loads(host_sh(container, 'cat %s' % STATUS_FILE).stdout)['jobs']['backup']['last_run']


def service_properties(container):
    out = podman('exec', container, 'systemctl', 'show', '-p', 'ActiveState,Result,ExecMainStatus,InvocationID,InactiveExitTimestamp',
                 'omero-backup.service').stdout
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def invocation_journal(container, run, expect):
    """The journal of one run of the service (``run``: its service_properties()), once it holds ``expect``.

    journald may store a short run's last lines a moment after systemctl has returned, and for a process that has
    already exited it may not find the invocation id in its cgroup at all: then the run's lines are read by unit
    (which the service's stdout stream names itself) from the moment the run started.
    """
    def by_invocation():
        return podman('exec', container, 'journalctl', '--no-pager', '-o', 'cat',
                      '_SYSTEMD_INVOCATION_ID=%s' % run['InvocationID']).stdout

    def by_unit():
        return podman('exec', container, 'journalctl', '--no-pager', '-o', 'cat', '-u', 'omero-backup.service',
                      '--since', run['InactiveExitTimestamp']).stdout

    try:
        wait_for(lambda: expect in by_invocation() or expect in by_unit(), 'the journal to hold %r' % expect, limit=30)
    except AssertionError:
        pass  # the caller's assertion shows what the journal holds
    text = by_invocation()
    return text if expect in text else by_unit()


SCHEDULE_VARS = {'omero_backup_schedule': '*-*-* 02:30:00', 'omero_backup_schedule_ansible_playbook': HOST_ANSIBLE_PLAYBOOK,
                 'omero_backup_schedule_limit': SITE_NAME}


def test_systemd_timer_runs_the_backup_under_a_lock_and_is_removed(start_host, image, tmp_path):
    host = start_host('systemd', '--systemd=always', image, '/sbin/init')
    wait_for(lambda: host_sh(host, 'systemctl is-system-running', check=False).stdout.strip() in ('running', 'degraded'),
             'systemd to finish booting in %s' % host)

    # Refused while the host cannot run the backup (no collection): nothing is installed.
    install_site(host, with_collection=False)
    refused = schedule(tmp_path, host, SCHEDULE_VARS)
    assert refused['rc'] != 0
    message = failure_message(refused)
    assert 'cannot run the scheduled backup' in message and 'omero.backup.backup' in message, message
    assert not any(host_exists(host, path) for path in (SERVICE, TIMER, COMMAND))
    install_collection(host)

    # Check mode says what would change and writes nothing.
    preview = schedule(tmp_path, host, SCHEDULE_VARS, check=True)
    assert preview['rc'] == 0, preview['stdout'][-4000:]
    assert preview['host_stats']['changed'] >= 3
    assert not any(host_exists(host, path) for path in (SERVICE, TIMER, COMMAND))

    installed = schedule(tmp_path, host, SCHEDULE_VARS)
    assert installed['rc'] == 0, installed['stdout'][-4000:]
    assert installed['host_stats']['changed'] >= 4
    service = host_sh(host, 'cat %s' % SERVICE).stdout
    assert 'ExecStart=%s\n' % COMMAND in service and 'SuccessExitStatus=75\n' in service
    timer = host_sh(host, 'cat %s' % TIMER).stdout
    assert 'OnCalendar=*-*-* 02:30:00\n' in timer and 'Persistent=true\n' in timer
    command = host_sh(host, 'cat %s' % COMMAND).stdout
    # "$@": the pgBackRest type the second timer passes (-e omero_backup_pgbackrest_type=...), nothing otherwise.
    assert "exec %s -i \"$inventory\" \\\n  --limit %s \"$@\" omero.backup.backup\n" % (HOST_ANSIBLE_PLAYBOOK, SITE_NAME) in command
    verify = podman('exec', host, 'systemd-analyze', 'verify', SERVICE, TIMER, check=False)
    assert verify.returncode == 0 and 'omero-backup' not in verify.stdout + verify.stderr, verify.stderr
    assert podman('exec', host, 'systemctl', 'is-enabled', 'omero-backup.timer').stdout.strip() == 'enabled'
    assert podman('exec', host, 'systemctl', 'is-active', 'omero-backup.timer').stdout.strip() == 'active'
    timers = podman('exec', host, 'systemctl', 'list-timers', '--all').stdout
    assert 'omero-backup.timer' in timers and 'omero-backup.service' in timers, timers

    again = schedule(tmp_path, host, SCHEDULE_VARS)
    assert again['rc'] == 0 and again['host_stats']['changed'] == 0, again['stdout'][-4000:]

    # The service runs the scheduled command: ansible-playbook omero.backup.backup for this host. The start
    # hook holds it; meanwhile the same command by hand finds the lock held, exits 75 and does nothing.
    host_sh(host, 'touch /run/omero-backup-hold')
    podman('exec', host, 'systemctl', 'start', '--no-block', 'omero-backup.service')
    wait_for(lambda: host_exists(host, STARTED), 'the scheduled backup to start')
    second = podman('exec', host, COMMAND, check=False)
    assert second.returncode == 75, second.stdout + second.stderr
    assert 'another run holds %s; this one is skipped' % LOCK in second.stderr
    assert service_properties(host)['ActiveState'] == 'activating'
    host_sh(host, 'touch %s' % RELEASE)
    wait_for(lambda: service_properties(host)['ActiveState'] not in ('activating', 'active'), 'the scheduled backup to end')
    ran = service_properties(host)
    # The database does not answer: the backup failed in its preflight, as ansible-playbook exit 2.
    assert (ran['ActiveState'], ran['Result'], ran['ExecMainStatus']) == ('failed', 'exit-code', '2'), ran
    assert runs_started(host) == 1
    status = last_backup_run(host)
    assert status['state'] == 'failed'
    assert status['error'].startswith('Check the database is reachable'), status['error']
    journal = invocation_journal(host, ran, 'PLAY RECAP')
    assert 'PLAY [Back up OMERO.server]' in journal and '%s ' % SITE_NAME in journal and 'PLAY RECAP' in journal, journal

    # The timer firing while a run by hand holds the lock: the service does nothing and is not a failure.
    host_sh(host, 'rm -f /run/omero-backup-hold')
    podman('exec', '--detach', host, 'flock', LOCK, 'sh', '-c', 'echo $$ > /run/lock-holder.pid; exec sleep 600')
    wait_for(lambda: host_exists(host, '/run/lock-holder.pid'), 'the lock to be taken')
    podman('exec', host, 'systemctl', 'start', 'omero-backup.service')
    skipped = service_properties(host)
    assert (skipped['ActiveState'], skipped['Result'], skipped['ExecMainStatus']) == ('inactive', 'success', '75'), skipped
    journal = invocation_journal(host, skipped, 'this one is skipped')
    assert 'another run holds %s; this one is skipped' % LOCK in journal and 'PLAY' not in journal, journal
    assert runs_started(host) == 1
    host_sh(host, 'kill "$(cat /run/lock-holder.pid)"')

    # A new schedule reaches systemd.
    moved = schedule(tmp_path, host, dict(SCHEDULE_VARS, omero_backup_schedule='daily'))
    assert moved['rc'] == 0 and moved['host_stats']['changed'] == 1, moved['stdout'][-4000:]
    calendar = podman('exec', host, 'systemctl', 'show', '-p', 'TimersCalendar', 'omero-backup.timer').stdout
    assert 'OnCalendar=*-*-* 00:00:00' in calendar, calendar

    removed = schedule(tmp_path, host, {'omero_backup_schedule': ''})
    assert removed['rc'] == 0 and removed['host_stats']['changed'] >= 2, removed['stdout'][-4000:]
    assert not any(host_exists(host, path) for path in (SERVICE, TIMER, COMMAND, CRON_FILE))
    assert 'omero-backup' not in podman('exec', host, 'systemctl', 'list-timers', '--all').stdout
    assert podman('exec', host, 'systemctl', 'is-enabled', 'omero-backup.timer', check=False).returncode != 0


def test_cron_entry_where_systemd_is_not_the_service_manager(start_host, tmp_path):
    host = start_host('cron')  # the image's command: sleep infinity as PID 1
    install_site(host)

    # The default /usr/bin/ansible-playbook is not on this host: refused, nothing installed.
    refused = schedule(tmp_path, host, {'omero_backup_schedule': 'daily', 'omero_backup_schedule_limit': SITE_NAME})
    assert refused['rc'] != 0
    assert 'no executable /usr/bin/ansible-playbook' in failure_message(refused), failure_message(refused)
    assert not host_exists(host, COMMAND) and not host_exists(host, CRON_FILE)

    cron_vars = dict(SCHEDULE_VARS, omero_backup_schedule='daily', omero_backup_schedule_cron_minute='15',
                     omero_backup_schedule_cron_hour='3')
    installed = schedule(tmp_path, host, cron_vars)
    assert installed['rc'] == 0, installed['stdout'][-4000:]
    entry = host_sh(host, 'cat %s' % CRON_FILE).stdout
    assert entry == ('# Managed by omero.backup: one run of playbooks/backup.yml for this host.\n'
                     'SHELL=/bin/sh\n'
                     '15 3 * * * root %s >>%s 2>&1\n' % (COMMAND, CRON_LOG)), entry
    assert host_sh(host, 'stat -c %a ' + CRON_FILE).stdout.strip() == '644'
    assert not host_exists(host, SERVICE) and not host_exists(host, TIMER)
    again = schedule(tmp_path, host, cron_vars)
    assert again['rc'] == 0 and again['host_stats']['changed'] == 0, again['stdout'][-4000:]

    # What cron runs, the way it runs it (/bin/sh -c, root, the entry's command).
    job = entry.splitlines()[-1].split(None, 6)[6]
    assert host_sh(host, job, check=False).returncode == 2  # the backup's preflight failed
    log = host_sh(host, 'cat %s' % CRON_LOG).stdout
    assert 'PLAY [Back up OMERO.server]' in log and 'PLAY RECAP' in log, log
    assert runs_started(host) == 1 and last_backup_run(host)['state'] == 'failed'
    # A cron start while another run holds the lock does nothing.
    podman('exec', '--detach', host, 'flock', LOCK, 'sh', '-c', 'echo $$ > /run/lock-holder.pid; exec sleep 600')
    wait_for(lambda: host_exists(host, '/run/lock-holder.pid'), 'the lock to be taken')
    assert host_sh(host, job, check=False).returncode == 75
    assert host_sh(host, 'tail -n 1 %s' % CRON_LOG).stdout == 'omero-backup: another run holds %s; this one is skipped\n' % LOCK
    assert runs_started(host) == 1
    host_sh(host, 'kill "$(cat /run/lock-holder.pid)"')

    removed = schedule(tmp_path, host, {'omero_backup_schedule': ''})
    assert removed['rc'] == 0 and removed['host_stats']['changed'] >= 1, removed['stdout'][-4000:]
    assert not host_exists(host, CRON_FILE) and not host_exists(host, COMMAND)
    removed_again = schedule(tmp_path, host, {'omero_backup_schedule': ''})
    assert removed_again['rc'] == 0 and removed_again['host_stats']['changed'] == 0
