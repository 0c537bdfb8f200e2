# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""output.tail: the end of a tool's output in an error, cut at a line or word boundary, saying what was cut."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import subprocess
import sys

from ansible_collections.omero.backup.plugins.module_utils.tools.postgres import scrub
from ansible_collections.omero.backup.plugins.module_utils.base.output import tail
from ansible_collections.omero.backup.plugins.module_utils.tools.rdiff import Outcome

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'plugins')
NOTE = re.compile(r'\A\.\.\. \((\d+) earlier characters cut\)\n')


def _words(count):
    return ' '.join('word%04d' % index for index in range(count))


def _lines(count):
    return '\n'.join('ERROR line %04d: something went wrong here' % index for index in range(count))


def _kept(text, result):
    """The kept part of a cut result, after checking the note counts exactly what was dropped."""
    note = NOTE.match(result)
    assert note, result[:80]
    kept = result[note.end():]
    assert text.strip().endswith(kept)
    assert int(note.group(1)) == len(text.strip()) - len(kept)
    return kept


def test_short_output_is_whole_and_stripped():
    assert tail('  pg_restore: error: bad header\n') == 'pg_restore: error: bad header'
    assert tail(None) == '' and tail('') == ''
    assert tail('x' * 2000) == 'x' * 2000


def test_long_output_starts_at_a_line():
    text = _lines(200)
    kept = _kept(text, tail(text))
    assert len(kept) <= 2000
    assert kept.startswith('ERROR line ')
    assert kept.endswith('ERROR line 0199: something went wrong here')
    assert len(kept) > 1000


def test_one_long_line_starts_at_a_word():
    text = _words(1000)
    kept = _kept(text, tail(text))
    assert len(kept) <= 2000 and len(kept) > 1900
    assert re.match(r'\Aword\d{4} ', kept), kept[:20]
    assert kept.endswith('word0999')


def test_a_word_longer_than_half_the_window_is_cut_and_the_note_says_so():
    text = 'start ' + 'x' * 5000
    kept = _kept(text, tail(text, limit=100))
    assert kept == 'x' * 100


def test_limit_is_a_parameter():
    text = _words(100)
    kept = _kept(text, tail(text, limit=50))
    assert len(kept) <= 50 and kept.startswith('word') and kept.endswith('word0099')


def test_utf8_and_odd_characters_survive():
    text = 'caf\u00e9 ' * 1000 + '\udcff end'
    kept = _kept(text, tail(text))
    assert kept.startswith('caf\u00e9 ') and kept.endswith('\udcff end')


def test_dbdump_scrub_cuts_at_a_boundary_after_hiding_the_password():
    secret = 'S3cret-pass'
    text = ('pg_dump: error: query failed for %s: ' % secret) + _words(600)
    result = scrub(text, {'login_password': secret})
    assert secret not in result
    kept = _kept(text.replace(secret, '********'), result)
    assert kept.startswith('word')


def test_rdiff_errors_quote_a_tail_that_starts_at_a_word():
    err = 'Traceback (most recent call last): ' + _words(800)
    described = Outcome('backup', 1, '', err).describe()
    assert described.startswith('rdiff-backup backup exited 1: ... (')
    assert NOTE.match(described[len('rdiff-backup backup exited 1: '):])
    assert re.search(r'cut\)\nword\d{4} ', described)


def test_real_tool_output_is_cut_at_a_line():
    # Real output of a real process: a Python traceback far longer than the window.
    proc = subprocess.run([sys.executable, '-c', 'import sys\nfor i in range(300): print("line %d of a failing tool" % i, file=sys.stderr)\n'
                           'raise SystemExit(3)'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
    assert proc.returncode == 3
    kept = _kept(proc.stderr, tail(proc.stderr))
    assert kept.startswith('line ') and kept.endswith('line 299 of a failing tool')


def test_no_module_cuts_text_with_a_bare_negative_slice():
    """Output quoted in errors goes through output.tail; a [-N:] slice would start mid-word again."""
    found = []
    for dirpath, dirnames, filenames in os.walk(PLUGINS):
        for name in filenames:
            if name.endswith('.py'):
                path = os.path.join(dirpath, name)
                with open(path) as handle:
                    for number, line in enumerate(handle, 1):
                        if re.search(r'\[-\s*\d{3,}\s*:\s*\]', line):
                            found.append('%s:%d: %s' % (os.path.relpath(path, PLUGINS), number, line.strip()))
    assert found == []
