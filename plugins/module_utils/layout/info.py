# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The step of the module layout_info: the sources of an install, their sizes and problems; given a set's sources,
whether the set fits this host (and where each of its sources goes)."""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

from ansible_collections.omero.backup.plugins.module_utils.base.errors import OperationFailed
from ansible_collections.omero.backup.plugins.module_utils.base.params import given
from ansible_collections.omero.backup.plugins.module_utils.layout.discover import discover
from ansible_collections.omero.backup.plugins.module_utils.layout.match import match, refusal


def argument_spec():
    return dict(
        datadir=dict(type='path'),
        omerodir=dict(type='path'),
        profile=dict(type='str'),
        managed_dir=dict(type='path'),
        certs_dir=dict(type='path'),
        extra_sources=dict(type='list', elements='path', default=[]),
        exclude=dict(type='list', elements='path', default=[]),
        sizes=dict(type='bool', default=True),
        set_sources=dict(type='list', elements='dict'),
        path_map=dict(type='dict', default={}),
        fail_on_problems=dict(type='bool', default=True),
    )


class LayoutFailed(OperationFailed):
    """The layout has problems, or a set does not fit it: the result says which."""


def layout_info(params):
    """The module's result; LayoutFailed (with the result) on problems when ``fail_on_problems``."""
    values = given(argument_spec(), params)
    layout = discover(values)
    sources = [source.as_dict() for source in layout.sources]
    result = {'changed': False, 'datadir': layout.datadir, 'sources': sources, 'extra_sources': sources[1:],
              'links': layout.links, 'covered': layout.covered, 'problems': layout.problems + layout.link_problems,
              'warnings': list(layout.warnings), 'total_bytes': sum(source['bytes'] or 0 for source in sources)}
    if values['set_sources'] is not None:
        plan, unmatched, warnings = match(values['set_sources'], layout, values['path_map'])
        result.update(plan=plan, unmatched=unmatched)
        result['warnings'] += warnings
        # A restore is judged by this host's configured places: the links of the old tree come with the set.
        result['problems'] = list(layout.problems)
        if unmatched:
            result['problems'].append(refusal(unmatched))
    result['ok'] = not result['problems']
    if values['fail_on_problems'] and result['problems']:
        raise LayoutFailed('; '.join(result['problems']), result)
    return result
