# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""File-name rules, written once: what an object id, a ``Dir-NNN`` directory and a rolled log are, and how a
result shows a name that is not plain text.

File names are bytes. The rules take a name as ``os.listdir(str)`` gives it
(undecodable bytes as surrogate escapes, PEP 383) or as bytes, and accept only
what OMERO itself writes: ASCII digits (never ``\\d``, which takes ``١٢٣``),
anchored with ``\\Z`` (``$`` also matches before a final newline). Any other
name is not ours, and every module keeps it.

Results go out as JSON, which cannot carry a lone surrogate (Ansible fails the
task instead), and a newline or a trailing blank is invisible in a listing, so
names in results and messages go through ``escape()``.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import re

# PostgreSQL bigint, the type of every OMERO id column: a longer number is no id and must never reach a query.
MAX_ID = 2 ** 63 - 1
# ASCII digits without a leading zero. 0 is not an id: OMERO's id sequences start at 1 for Pixels,
# OriginalFile and Thumbnail, so a file named 0 (or 0997) was not made by the server and is kept.
_ID = r'[1-9][0-9]{0,18}'
OBJECT_ID = re.compile(_ID + r'\Z')
# <id>, <id>_pyramid, .<id>_pyramid.pyr_lock, .<id>_pyramid<anything but a newline>.tmp (cleanse's rule).
ENTRY = re.compile(r'(?:(%s)(?:_pyramid)?|\.(%s)_pyramid\.pyr_lock|\.(%s)_pyramid.*\.tmp)\Z' % (_ID, _ID, _ID))
# The directories the server makes under Pixels/, Files/, Thumbnails/: Dir-%03d, nothing else.
ID_DIRECTORY = re.compile(r'Dir-[0-9]{3}\Z')

# A log's name as the server makes it (Blitz-0.log): no slash, no control character. Rolled: NAME.log.N
# (the server's rollover), NAME.log.STAMP[-K] (a file whose compression by omero.backup.logs was
# interrupted), each optionally .gz (this module's NAME.log.STAMP.gz, or NAME.log.N.gz by hand or logrotate).
_LOG_NAME = r'[^/\x00-\x1f\x7f]+\.log'
LIVE_LOG = re.compile(_LOG_NAME + r'\Z')
ROLLED_LOG = re.compile(r'(?P<log>%s)\.(?P<generation>[0-9]+|[0-9]{8}T[0-9]{6}Z(?:-[0-9]+)?)(?P<gz>\.gz)?\Z' % _LOG_NAME)


def object_id(name):
    """The id a plain ``<id>`` name stands for, or None."""
    if not isinstance(name, str) or not OBJECT_ID.match(name):
        return None
    value = int(name)
    return value if value <= MAX_ID else None


def entry_id(name):
    """The object id a data-dir entry (``<id>``, ``<id>_pyramid``, pyramid lock or temp file) belongs to, or None."""
    if not isinstance(name, str):
        return None
    match = ENTRY.match(name)
    if not match:
        return None
    value = int(next(group for group in match.groups() if group is not None))
    return value if value <= MAX_ID else None


def is_id_directory(name):
    return isinstance(name, str) and ID_DIRECTORY.match(name) is not None


def rolled_log(name):
    """The match of a rolled log name (groups log, generation, gz), or None."""
    return ROLLED_LOG.match(name) if isinstance(name, str) else None


def is_live_log(name):
    return isinstance(name, str) and LIVE_LOG.match(name) is not None


# ---------------------------------------------------------------------------
# Showing names in results
# ---------------------------------------------------------------------------

_NAMED_ESCAPES = {'\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t'}


def to_bytes(name):
    """The name's bytes, whether it came as bytes or as a surrogate-escaped str."""
    if isinstance(name, bytes):
        return name
    return name.encode('utf-8', 'surrogateescape')


def escape(name):
    """How results and messages show a name: a printable UTF-8 name without a backslash as it is; in any other
    name each backslash, newline, tab and CR is written ``\\\\``, ``\\n``, ``\\t``, ``\\r``, each byte that is not
    UTF-8 ``\\xNN``, and each other unprintable character as the ``\\xNN`` of its UTF-8 bytes.

    One name, one form, and back (``unescape``): a plain name never holds a backslash. Every module shows
    names through this function (logs, log_dir, datadir_*, cleanse, quarantine), so a name reads alike in all.
    """
    if isinstance(name, bytes):
        name = name.decode('utf-8', 'surrogateescape')
    if name.isprintable() and '\\' not in name:
        return name
    out = []
    for char in name:
        code = ord(char)
        if char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif 0xdc80 <= code <= 0xdcff:
            out.append('\\x%02x' % (code - 0xdc00))
        elif char.isprintable():
            out.append(char)
        else:
            out.extend('\\x%02x' % byte for byte in char.encode('utf-8', 'surrogatepass'))
    return ''.join(out)


_ESCAPE = re.compile(r'\\(?:(\\)|([nrt])|x([0-9a-f]{2}))')


def unescape(text):
    """The bytes of the name ``escape()`` showed as ``text``."""
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position:match.start()].encode('utf-8')
        backslash, letter, byte = match.groups()
        if backslash:
            out += b'\\'
        elif letter:
            out += {'n': b'\n', 'r': b'\r', 't': b'\t'}[letter]
        else:
            out.append(int(byte, 16))
        position = match.end()
    out += text[position:].encode('utf-8')
    return bytes(out)


def b64(name):
    """The name's exact bytes in base64, for results that must let a program recover them."""
    return base64.b64encode(to_bytes(name)).decode('ascii')


def escaped_list(names, b64_map):
    """``escape()`` of each name; every name whose shown form differs from it is added to ``b64_map``
    (shown form -> base64 of its bytes)."""
    shown = []
    for name in names:
        text = escape(name)
        if not isinstance(name, str) or text != name:
            b64_map[text] = b64(name)
        shown.append(text)
    return shown
