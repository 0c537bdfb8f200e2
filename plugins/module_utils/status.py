# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The outcome of backup runs, for people (a JSON status file) and for Prometheus
(a node_exporter textfile-collector file).

Both files are rewritten atomically: node_exporter reads the textfile directory
at every scrape and would report a half-written file as a scrape error.

A success is recorded per backup set: re-confirming the set that is already
recorded as the last success changes nothing, so a re-run that found every
backup recent enough (``skip_if_newer_than``) is not reported as a change.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re

from ansible_collections.omero.backup.plugins.module_utils.base.atomic import atomic_write
from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError

STATUS_FORMAT_VERSION = 1
_LABEL_VALUE = re.compile(r'^[A-Za-z0-9_.:/ -]*$')
_COMPONENT_KEYS = ('ok', 'bytes', 'duration', 'skipped')


def read_status(path):
    if not os.path.exists(path):
        return {}
    try:
        with open(path, 'rb') as handle:
            return json.loads(handle.read().decode('utf-8'))
    except (IOError, OSError) as exc:
        raise OmeroBackupError('cannot read status file %s: %s' % (path, exc.strerror or exc))
    except ValueError:
        # A status file is bookkeeping: a corrupt one is replaced, not fatal.
        return {}


def read_text(path):
    try:
        with open(path, 'r') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def parse_mode(text):
    if text in (None, ''):
        return 0o644
    try:
        return int(str(text), 8)
    except ValueError:
        raise OmeroBackupError('mode %r is not an octal file mode such as 0644' % (text,))


def normalise_components(components):
    clean = {}
    for name, values in sorted((components or {}).items()):
        if not isinstance(values, dict):
            raise OmeroBackupError('component %s: expected a dict with ok, bytes, duration, got %r' % (name, values))
        unknown = set(values) - set(_COMPONENT_KEYS)
        if unknown:
            raise OmeroBackupError('component %s: unknown key(s) %s (known: %s)'
                                   % (name, ', '.join(sorted(unknown)), ', '.join(_COMPONENT_KEYS)))
        entry = {'ok': bool(values.get('ok', False)), 'skipped': bool(values.get('skipped', False))}
        for key, cast in (('bytes', int), ('duration', float)):
            if values.get(key) is not None:
                try:
                    entry[key] = cast(values[key])
                except (TypeError, ValueError):
                    raise OmeroBackupError('component %s: %s must be a number, got %r' % (name, key, values[key]))
        clean[name] = entry
    return clean


def updated_status(previous, job, state, finished, started=None, set_id=None, components=None, error=None, details=None):
    """(new status dict, changed)."""
    status = dict(previous or {})
    jobs = dict(status.get('jobs') or {})
    record = dict(jobs.get(job) or {})
    run = {'state': state, 'started': started, 'finished': finished, 'set_id': set_id,
           'duration': (finished - started) if started is not None else None,
           'components': normalise_components(components), 'error': error, 'details': details or {}}
    if state == 'succeeded':
        last = record.get('last_success') or {}
        if set_id is not None and last.get('set_id') == set_id:
            return previous, False
        record['last_success'] = run
    else:
        record['last_failure'] = run
    record['last_run'] = run
    jobs[job] = record
    status['jobs'] = jobs
    status['format_version'] = STATUS_FORMAT_VERSION
    return status, True


def _label(value):
    text = str(value)
    if not _LABEL_VALUE.match(text):
        text = re.sub(r'[^A-Za-z0-9_.:/ -]', '_', text)
    return text


def _number(value):
    if isinstance(value, bool):
        return '1' if value else '0'
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def render_metrics(status):
    """Prometheus text exposition of every job in the status."""
    families = [
        ('omero_backup_last_run_timestamp_seconds', 'gauge', 'End of the last run (success or failure).'),
        ('omero_backup_last_run_success', 'gauge', '1 when the last run succeeded, 0 when it failed.'),
        ('omero_backup_last_success_timestamp_seconds', 'gauge', 'End of the last successful run.'),
        ('omero_backup_last_failure_timestamp_seconds', 'gauge', 'End of the last failed run.'),
        ('omero_backup_last_success_duration_seconds', 'gauge', 'Duration of the last successful run.'),
        ('omero_backup_component_bytes', 'gauge', 'Size of each component of the last successful backup set.'),
        ('omero_backup_component_duration_seconds', 'gauge', 'Duration of each component in the last successful run.'),
        ('omero_backup_component_success', 'gauge', '1 when the component succeeded in the last run.'),
    ]
    samples = dict((name, []) for name, _kind, _help in families)
    for job, record in sorted((status.get('jobs') or {}).items()):
        labels = 'job="%s"' % _label(job)
        last_run = record.get('last_run') or {}
        success = record.get('last_success') or {}
        failure = record.get('last_failure') or {}
        if last_run.get('finished') is not None:
            samples['omero_backup_last_run_timestamp_seconds'].append((labels, last_run['finished']))
            samples['omero_backup_last_run_success'].append((labels, last_run.get('state') == 'succeeded'))
        if success.get('finished') is not None:
            samples['omero_backup_last_success_timestamp_seconds'].append((labels, success['finished']))
            if success.get('duration') is not None:
                samples['omero_backup_last_success_duration_seconds'].append((labels, success['duration']))
        if failure.get('finished') is not None:
            samples['omero_backup_last_failure_timestamp_seconds'].append((labels, failure['finished']))
        for name, component in sorted((success.get('components') or {}).items()):
            component_labels = '%s,component="%s"' % (labels, _label(name))
            if component.get('bytes') is not None:
                samples['omero_backup_component_bytes'].append((component_labels, component['bytes']))
            if component.get('duration') is not None:
                samples['omero_backup_component_duration_seconds'].append((component_labels, component['duration']))
        for name, component in sorted((last_run.get('components') or {}).items()):
            component_labels = '%s,component="%s"' % (labels, _label(name))
            samples['omero_backup_component_success'].append((component_labels, component.get('ok', False)))
    families += _pgbackrest_samples(status, samples)
    lines = []
    for name, kind, help_text in families:
        if not samples[name]:
            continue
        lines.append('# HELP %s %s' % (name, help_text))
        lines.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples[name]:
            lines.append('%s{%s} %s' % (name, labels, _number(value)))
    return '\n'.join(lines) + '\n'


# The health db_archive (state=health) reports, passed on in a run's details as ``pgbackrest``: (metric, help, fact).
_PGBACKREST_FAMILIES = (
    ('omero_backup_pgbackrest_health_timestamp_seconds', 'When the pgBackRest health below was read.', 'checked_at_epoch'),
    ('omero_backup_pgbackrest_repo_bytes', 'Bytes the stanza takes in the pgBackRest repository.', 'repo_size_bytes'),
    ('omero_backup_pgbackrest_archive_failures', 'pg_stat_archiver.failed_count: failed archive_command runs.',
     'archive_failed_count'),
    ('omero_backup_pgbackrest_archive_failing', '1 when the last WAL archive attempt failed.', 'archive_failing'),
    ('omero_backup_pgbackrest_check_success', '1 when pgbackrest check passed, 0 when it failed.', 'check_ok'),
)


def _pgbackrest_samples(status, samples):
    """The families of the pgBackRest health each job's last run carries (``details.pgbackrest``), added to samples."""
    families = [(name, 'gauge', help_text) for name, help_text, unused_fact in _PGBACKREST_FAMILIES] + [
        ('omero_backup_pgbackrest_last_backup_timestamp_seconds', 'gauge', 'End of the newest pgBackRest backup, by type.'),
        ('omero_backup_pgbackrest_last_backup_age_seconds', 'gauge', 'Age of the newest pgBackRest backup, by type, when read.'),
        ('omero_backup_wal_archive_age_seconds', 'gauge',
         'Age of the newest archived WAL when read: source pgbackrest (in the repository) or postgresql (pg_stat_archiver).'),
    ]
    for name, unused_kind, unused_help in families:
        samples.setdefault(name, [])
    for job, record in sorted((status.get('jobs') or {}).items()):
        health = ((record.get('last_run') or {}).get('details') or {}).get('pgbackrest')
        if not isinstance(health, dict):
            continue
        labels = 'job="%s",stanza="%s"' % (_label(job), _label(health.get('stanza') or ''))
        for name, unused_help, fact in _PGBACKREST_FAMILIES:
            if health.get(fact) is not None:
                samples[name].append((labels, health[fact]))
        for kind in ('full', 'diff', 'incr'):
            typed = '%s,type="%s"' % (labels, kind)
            if health.get('last_%s_epoch' % kind) is not None:
                samples['omero_backup_pgbackrest_last_backup_timestamp_seconds'].append((typed, health['last_%s_epoch' % kind]))
            if health.get('last_%s_age_seconds' % kind) is not None:
                samples['omero_backup_pgbackrest_last_backup_age_seconds'].append((typed, health['last_%s_age_seconds' % kind]))
        for source, fact in (('pgbackrest', 'wal_archive_age_seconds'), ('postgresql', 'pg_wal_archive_age_seconds')):
            if health.get(fact) is not None:
                samples['omero_backup_wal_archive_age_seconds'].append(('%s,source="%s"' % (labels, source), health[fact]))
    return families


def render_proof_metrics(proof, now):
    """Prometheus text of one checksum proof (the prove module's result): ``omero_backup_proof_*``.

    Files per result and algorithm and bytes read in the run, the age of the oldest file not yet proven
    (when a state file tracks the cycle) and the proof's position, so an alert can say "a file has not been
    proven for 40 days" as well as "a file no longer matches its hash".
    """
    lines = []

    def family(name, help_text, samples):
        if samples:
            lines.append('# HELP %s %s' % (name, help_text))
            lines.append('# TYPE %s gauge' % name)
            lines.extend('%s%s %s' % (name, '{%s}' % labels if labels else '', _number(value)) for labels, value in samples)

    target = 'target="%s"' % _label(proof.get('datadir') or '')
    family('omero_backup_proof_last_run_timestamp_seconds', 'End of the last checksum proof run.', [(target, now)])
    family('omero_backup_proof_success', '1 when the last proof run found no mismatched or missing file.',
           [(target, bool(proof.get('ok')))])
    family('omero_backup_proof_files', 'Files the last proof run checked, by result and algorithm.',
           [('%s,algorithm="%s",result="%s"' % (target, _label(algorithm), result), count)
            for algorithm, counts in sorted((proof.get('by_algorithm') or {}).items())
            for result, count in sorted(counts.items()) if result != 'bytes'])
    family('omero_backup_proof_bytes', 'Bytes the last proof run read and hashed.', [(target, proof.get('bytes') or 0)])
    family('omero_backup_proof_duration_seconds', 'Duration of the last proof run.', [(target, proof.get('duration') or 0)])
    if proof.get('oldest_unproven_age') is not None:
        family('omero_backup_proof_oldest_unproven_age_seconds',
               'Time since the oldest file not yet proven in this cycle was last proven (or since the first run).',
               [(target, proof['oldest_unproven_age'])])
        family('omero_backup_proof_cursor_id', 'The originalfile id up to which the current cycle has proven every file.',
               [(target, proof.get('cursor') or 0)])
        family('omero_backup_proof_cycle', 'Number of the current proof cycle (1 until the first full pass completes).',
               [(target, proof.get('cycle') or 1)])
    return '\n'.join(lines) + '\n'


def record(params, now, check_mode=False):
    """Update the status (and metrics) files; returns the module result."""
    status_file = params['status_file']
    metrics_file = params.get('metrics_file')
    mode = parse_mode(params.get('mode'))
    if params['state'] not in ('succeeded', 'failed'):
        raise OmeroBackupError('state must be succeeded or failed, got %r' % (params['state'],))
    # The status file's own directory is ours to make (one level, so a missing
    # volume is not papered over); the metrics directory is node_exporter's, and
    # a missing one means a wrong path.
    status_dir = os.path.dirname(os.path.abspath(status_file))
    make_status_dir = not os.path.isdir(status_dir) and os.path.isdir(os.path.dirname(status_dir))
    for path in [status_file] + ([metrics_file] if metrics_file else []):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent) and not (make_status_dir and parent == status_dir):
            raise OmeroBackupError('directory %s does not exist (for %s)' % (parent, path))
    previous = read_status(status_file)
    status, changed = updated_status(previous, params['job'], params['state'], now, started=params.get('started'),
                                     set_id=params.get('set_id'), components=params.get('components'),
                                     error=params.get('error'), details=params.get('details'))
    metrics = render_metrics(status)
    if metrics_file and not changed:
        # The status already records this set; the metrics file may still be missing
        # (first run with metrics enabled, or deleted by an operator).
        changed = read_text(metrics_file) != metrics
    if make_status_dir:
        changed = True
        if not check_mode:
            os.mkdir(status_dir, 0o755)
            os.chmod(status_dir, 0o755)  # whatever the umask: monitoring agents read the files
    if changed and not check_mode:
        atomic_write(status_file, json.dumps(status, indent=2, sort_keys=True) + '\n', mode=mode,
                     owner=params.get('owner'), group=params.get('group'))
        if metrics_file:
            atomic_write(metrics_file, metrics, mode=mode, owner=params.get('owner'), group=params.get('group'))
    return {'changed': changed, 'status': status, 'status_file': status_file, 'metrics_file': metrics_file,
            'status_dir_created': make_status_dir}
