# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one duration grammar of the collection (documented once, in plugins/doc_fragments/durations.py)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OmeroBackupError

# The one duration grammar of the collection (documented once, in plugins/doc_fragments/durations.py):
# rdiff-backup's units, so a value means the same here and there. Case matters for m/M only:
# m is minutes and M months, as rdiff-backup has them; every other unit may be written in either case.
_DURATION_UNITS = {
    's': 1, 'S': 1,
    'm': 60,
    'h': 3600, 'H': 3600,
    'd': 86400, 'D': 86400,
    'w': 7 * 86400, 'W': 7 * 86400,
    'M': 30 * 86400,
    'y': 365 * 86400, 'Y': 365 * 86400,
}
_DURATION = re.compile(r'\A(?:\s*[0-9]+\s*[smhdwMySHDWY])+\s*\Z')
_DURATION_PART = re.compile(r'([0-9]+)\s*([smhdwMySHDWY])')
DURATION_HELP = ('a number of seconds, or numbers with units s, m (minutes), h, d, w, M (months of 30 days), '
                 'y (years of 365 days), e.g. 90m, 20h, 1d12h, 8w, 6M')
# Every duration option of every module, as (module, option): each is read by parse_duration and nothing else
# (tests/unit/plugins/module_utils/test_durations.py holds every module's argument spec to this list).
DURATION_OPTIONS = (
    ('backup_set', 'keep_younger_than'),
    ('cleanse', 'min_age'),
    ('datadir_backup', 'keep_increments_for'),
    ('datadir_backup', 'lock_lease'),
    ('datadir_backup', 'skip_if_newer_than'),
    ('datadir_restore', 'lock_lease'),
    ('datadir_restore_paths', 'lock_lease'),
    ('db_dump', 'max_age'),
    ('db_dump', 'skip_if_newer_than'),
    ('layout_restore', 'lock_lease'),
    ('logs', 'older_than'),
    ('run_lock', 'lease'),
)


def parse_duration(text, what='duration'):
    """Seconds in a duration such as ``90m``, ``20h``, ``8W``, ``1d12h``, ``6M`` or ``90`` (seconds); None stays None.

    The one grammar (see _DURATION_UNITS): ``1m`` is one minute and ``1M`` thirty days, as rdiff-backup reads them.
    Spellings outside it (``1min``, ``2 months``, ``1.5h``, ``-1d``) are refused, never guessed.
    """
    if text is None:
        return None
    where = '' if what == 'duration' else ' (%s)' % what
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    value = text.strip() if isinstance(text, str) else None
    if value is not None and re.match(r'\A[0-9]+\Z', value):
        return int(value)
    if value is None or not _DURATION.match(value):
        hint = ''
        if value and re.search(r'[0-9]\s*(?:min|mon|mth|mo)', value, re.IGNORECASE):
            hint = '; minutes are m, months M'
        raise OmeroBackupError('cannot read duration %r%s: use %s%s' % (text, where, DURATION_HELP, hint))
    return sum(int(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(value))


def rdiff_backup_interval(seconds):
    """A duration as rdiff-backup's ``--older-than`` reads it, in seconds (``NNNs``), so the two cannot disagree."""
    return '%ds' % int(seconds)
