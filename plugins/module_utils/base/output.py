# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tool output quoted in an error message.

Invariant: a quote of a tool's output is at most ``limit`` characters of its end (plus a note), starts at a line
(else a word) boundary, and says when earlier output was cut, so no error starts in the middle of a word.

Base layer: imports nothing of the collection.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import re

TAIL_LIMIT = 2000

_SPACE = re.compile(r'\s+')


def tail(text, limit=TAIL_LIMIT):
    """The end of ``text`` (stripped) for an error: whole when short, else its last ``limit`` characters or fewer,
    starting at a line boundary when one lies in the first half of them, else at a word boundary found there, and
    led by ``... (N earlier characters cut)``. Only a word longer than half the window is cut inside."""
    text = (text or '').strip()
    if len(text) <= limit:
        return text
    start = len(text) - limit
    if text[start - 1] != '\n':
        # Dropping up to half the window for a whole first line reads better than a line torn at the start.
        newline = text.find('\n', start, start + limit // 2)
        if newline >= 0:
            start = newline + 1
        elif not text[start - 1].isspace():
            space = _SPACE.search(text, start, start + limit // 2)
            if space:
                start = space.end()
    kept = text[start:].lstrip()
    return '... (%d earlier characters cut)\n%s' % (len(text) - len(kept), kept)
