"""The OMERO server's object id to path rule, kept independent of plugins/module_utils/tools/idpath.py.

A second implementation on purpose: the sandbox lays out files with it and the
collection's tests check the collection's copy against what the sandbox made.
"""
from __future__ import (absolute_import, division, print_function)
__metaclass__ = type


def id_to_dirs(object_id):
    """Directory names for an id: the id without its last three digits, cut into groups of three."""
    if object_id < 1:
        raise ValueError('object ids start at 1, got %r' % (object_id,))
    dirs = []
    rest = object_id // 1000
    while rest > 0:
        dirs.append('Dir-%03d' % (rest % 1000))
        rest //= 1000
    dirs.reverse()
    return dirs


def id_to_relpath(object_id):
    return '/'.join(id_to_dirs(object_id) + [str(object_id)])


def id_dir_relpath(object_id):
    return '/'.join(id_to_dirs(object_id))
