# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The log directory as the grid application descriptors name it (``OMERO_LOGS``); every reading and writing of it."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import os
import re
import xml.etree.ElementTree as ET

from ansible_collections.omero.backup.plugins.module_utils.logs.paths import LogsError


DEFAULT_LOGS_VALUE = 'var/log/'
LOGS_VARIABLE = 'OMERO_LOGS'

TEMPLATE_DESCRIPTOR = 'etc/templates/grid/default.xml'
GENERATED_DESCRIPTOR = 'etc/grid/default.xml'
# The order in which descriptors are edited: the templates first, because they are what lasts.
DESCRIPTORS = (
    TEMPLATE_DESCRIPTOR,
    'etc/templates/grid/windefault.xml',
    GENERATED_DESCRIPTOR,
    'etc/grid/windefault.xml',
)


_MARKUP_NOT_TAGS = re.compile(r'<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>', re.DOTALL)
_VARIABLE_TAG = re.compile(r'<variable\b[^>]*>')
_ATTRIBUTE = re.compile(r'([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("[^"]*"|\'[^\']*\')')
_ENTITIES = {'&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&apos;': "'"}


def _unescape(value):
    def entity(match):
        text = match.group(0)
        if text in _ENTITIES:
            return _ENTITIES[text]
        if text.startswith('&#x'):
            return chr(int(text[3:-1], 16))
        return chr(int(text[2:-1]))
    return re.sub(r'&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);', entity, value)


def _escape(value, quote):
    value = value.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
    return value.replace('"', '&quot;') if quote == '"' else value.replace("'", '&apos;')


class Descriptor(object):
    """One grid descriptor, checked with an XML parser and edited as text.

    The tree is parsed only to prove the file is well formed and to read the
    value; the edit replaces the characters of one attribute value, so
    comments, spacing, attribute order and the XML declaration stay as they are.
    """

    def __init__(self, path, relpath=None):
        self.path = path
        self.relpath = relpath or path
        try:
            with open(path, 'rb') as handle:
                self.raw = handle.read()
        except (IOError, OSError) as exc:
            raise LogsError('cannot read grid descriptor %s: %s' % (self.relpath, exc.strerror or exc))
        try:
            self.text = self.raw.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise LogsError('grid descriptor %s is not UTF-8 (byte %d); it was left untouched' % (self.relpath, exc.start))
        self.value = self._parsed_value(self.raw)
        self.value_start, self.value_end, self.quote = self._locate()
        if _unescape(self.text[self.value_start:self.value_end]) != self.value:
            raise LogsError('grid descriptor %s: the %s value found in the text differs from the parsed one; it was left untouched'
                            % (self.relpath, LOGS_VARIABLE))

    def _parsed_value(self, raw):
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as exc:
            line, column = getattr(exc, 'position', (0, 0))
            raise LogsError('grid descriptor %s is not well-formed XML (line %d, column %d: %s); it was left untouched, '
                            'repair it before changing the log directory' % (self.relpath, line, column + 1, _reason(exc)))
        found = [element for element in root.iter('variable') if element.get('name') == LOGS_VARIABLE]
        if len(found) != 1:
            raise LogsError('grid descriptor %s has %d <variable name="%s"> elements, expected exactly one; it was left untouched'
                            % (self.relpath, len(found), LOGS_VARIABLE))
        value = found[0].get('value')
        if value is None:
            raise LogsError('grid descriptor %s: <variable name="%s"> has no value attribute; it was left untouched'
                            % (self.relpath, LOGS_VARIABLE))
        return value

    def _locate(self):
        # Comments, CDATA and processing instructions may quote a <variable> tag; blank them out
        # (same length, so offsets still index the real text) before looking for the live one.
        masked = _MARKUP_NOT_TAGS.sub(lambda match: ' ' * len(match.group(0)), self.text)
        spans = []
        for tag in _VARIABLE_TAG.finditer(masked):
            attributes = dict((m.group(1), m) for m in _ATTRIBUTE.finditer(tag.group(0)))
            name = attributes.get('name')
            if name is None or _unescape(name.group(2)[1:-1]) != LOGS_VARIABLE or 'value' not in attributes:
                continue
            value = attributes['value']
            start = tag.start() + value.start(2) + 1
            spans.append((start, start + len(value.group(2)) - 2, value.group(2)[0]))
        if len(spans) != 1:
            raise LogsError('grid descriptor %s: could not find exactly one %s value to edit (found %d); it was left untouched'
                            % (self.relpath, LOGS_VARIABLE, len(spans)))
        return spans[0]

    def with_value(self, value):
        """The full new text with OMERO_LOGS set to ``value``, re-parsed to prove it reads back."""
        declared = re.match(r'<\?xml[^>]*encoding\s*=\s*["\']([^"\']+)', self.text)
        if declared and declared.group(1).lower().replace('_', '-') not in ('utf-8', 'utf8') and not _is_ascii(value):
            raise LogsError('grid descriptor %s declares encoding %s; a non-ASCII log directory cannot be written into it'
                            % (self.relpath, declared.group(1)))
        text = self.text[:self.value_start] + _escape(value, self.quote) + self.text[self.value_end:]
        if self._parsed_value(text.encode('utf-8')) != value:
            raise LogsError('grid descriptor %s: the edited text does not read back as %r; it was left untouched'
                            % (self.relpath, value))
        return text


def _is_ascii(text):
    return all(ord(char) < 128 for char in text)


def _reason(exc):
    message = str(exc)
    return message.split(':', maxsplit=1)[0]


def existing_descriptors(omerodir):
    """The grid descriptors present under ``omerodir``, as (relpath, path), in edit order."""
    return [(rel, os.path.join(omerodir, rel)) for rel in DESCRIPTORS if os.path.isfile(os.path.join(omerodir, rel))]


def resolve_logs_value(omerodir, value):
    """The directory a raw OMERO_LOGS value names. Relative values are relative to OMERODIR, the
    server's working directory; ``${OMERO_HOME}`` is OMERODIR too (the descriptor defines it as ``.``)."""
    resolved = value.replace('${OMERO_HOME}', '.')
    if '${' in resolved:
        raise LogsError('%s is %r, which uses a descriptor variable this module cannot resolve; set path explicitly'
                        % (LOGS_VARIABLE, value))
    if not os.path.isabs(resolved):
        resolved = os.path.join(omerodir, resolved)
    return os.path.normpath(resolved)


def configured_log_dir(omerodir):
    """(directory, source): where the server writes its logs.

    The generated descriptor is what the running server was started with, so it
    wins over the template; without either, the distribution's default applies.
    """
    for relpath in (GENERATED_DESCRIPTOR, TEMPLATE_DESCRIPTOR):
        path = os.path.join(omerodir, relpath)
        if os.path.isfile(path):
            return resolve_logs_value(omerodir, Descriptor(path, relpath).value), relpath
    if not os.path.isdir(omerodir):
        raise LogsError('OMERODIR %s does not exist; set omerodir, or path to the log directory' % omerodir)
    return resolve_logs_value(omerodir, DEFAULT_LOGS_VALUE), 'default'


def logs_value_for(log_dir):
    """The OMERO_LOGS text for a directory: the descriptor builds each log file name as
    ``${OMERO_LOGS}NAME.log``, so the value must end with a slash."""
    if not log_dir or not log_dir.strip('/'):
        raise LogsError('log_dir %r is not a usable log directory' % (log_dir,))
    if '$' in log_dir or any(ord(char) < 32 for char in log_dir):
        raise LogsError('log_dir %r contains "$" or a control character, which the grid descriptor would not read back as a path'
                        % (log_dir,))
    return os.path.normpath(log_dir) + '/'
