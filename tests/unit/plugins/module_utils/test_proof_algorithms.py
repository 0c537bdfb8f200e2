# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OMERO's checksum algorithms against OMERO's own test vectors.

The vectors are omero-common's (src/test/java/ome/util/checksum/*ChecksumProviderImplTest.java): ``abc``, the
empty input, and the files its AbstractChecksumProviderAlgorithmTest writes ("fake0".."fake9", .."fake99",
.."fake999"). They pin the rendering too: CRC-32, Adler-32, Murmur3-32 and File-Size-64 little-endian hex.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import pytest

from ansible_collections.omero.backup.plugins.module_utils.proof import algorithms
from ansible_collections.omero.backup.plugins.module_utils.proof.hashing import Budget

ABC, EMPTY = b'abc', b''
SMALL = ''.join('fake%d' % i for i in range(10)).encode('ascii')
MEDIUM = ''.join('fake%d' % i for i in range(100)).encode('ascii')
BIG = ''.join('fake%d' % i for i in range(1000)).encode('ascii')
INPUTS = (ABC, EMPTY, SMALL, MEDIUM, BIG)

OMERO_VECTORS = {
    'SHA1-160': ('a9993e364706816aba3e25717850c26c9cd0d89d', 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
                 'af35647108cada855e1ca08472c2a831cce91a29', 'a61d742dba0a4cd423de603e6c3890e0f856bb9c',
                 'b3987d3ffac6ad41fee258e8cc99fc89e29ae98f'),
    'MD5-128': ('900150983cd24fb0d6963f7d28e17f72', 'd41d8cd98f00b204e9800998ecf8427e', 'afedcd324960f93c20b726c81b8d216a',
                '5e44e9bc9e91274731b8541e3e1fd687', 'e96cd8050b7e09202c395530435f208d'),
    'Murmur3-32': ('fa93ddb3', '00000000', 'f87d658b', '1c9036cf', 'f9c16f3b'),
    'Murmur3-128': ('6778ad3f3f3f96b4522dca264174a23b', '00000000000000000000000000000000', '2a9db2bec362cb22bf016c06722b24d7',
                    '2858bd6075ed06228c0ba4ba75ae8ef9', '7535f4b378b3aec8dc3f4cffdc44ba6e'),
    'CRC-32': ('c2412435', '00000000', 'ef618578', 'b063fbf0', '1d3e3cb6'),
    'Adler-32': ('27014d02', '01000000', 'f4110fcc', '21c664bf', 'ed88e87d'),
    'File-Size-64': ('0300000000000000', '0000000000000000', '3200000000000000', '4e02000000000000', 'ea1a000000000000'),
}


def _hash(name, data, chunk=None, pure=True):
    hasher = algorithms.new(name, pure=pure)
    if chunk is None:
        hasher.update(data)
    else:
        for start in range(0, len(data), chunk):
            hasher.update(memoryview(data)[start:start + chunk])
    return hasher.hexdigest()


def test_every_omero_name_is_known():
    assert sorted(OMERO_VECTORS) == sorted(algorithms.NAMES)
    with pytest.raises(KeyError):
        algorithms.new('SHA-256')
    with pytest.raises(KeyError):
        algorithms.new('sha1-160')  # checksumalgorithm.value is matched exactly, as OMERO's mapper does


@pytest.mark.parametrize('name', sorted(OMERO_VECTORS))
def test_omero_vectors(name):
    assert tuple(_hash(name, data) for data in INPUTS) == OMERO_VECTORS[name]


@pytest.mark.parametrize('name', sorted(OMERO_VECTORS))
@pytest.mark.parametrize('chunk', [1, 3, 7, 16, 17, 1000])
def test_streaming_in_any_chunks_gives_the_same_hash(name, chunk):
    assert _hash(name, BIG, chunk) == OMERO_VECTORS[name][4]


@pytest.mark.parametrize('length', range(0, 34))
def test_murmur_tails_of_every_length(length):
    # Every tail length of both block sizes, whole and byte by byte: the tail and length handling must agree.
    data = bytes(range(length))
    for name in ('Murmur3-32', 'Murmur3-128'):
        assert _hash(name, data) == _hash(name, data, 1)


@pytest.mark.skipif(not algorithms.c_murmur(), reason='the mmh3 C module is not installed')
@pytest.mark.parametrize('name', ['Murmur3-32', 'Murmur3-128'])
def test_c_murmur_agrees_with_the_pure_python_one(name):
    for data in INPUTS + (bytes(range(256)) * 41,):
        assert _hash(name, data, pure=False) == _hash(name, data)


def test_budget_counts_what_it_hands_out():
    ticks = iter([0.0, 1.0, 2.0, 50.0])
    budget = Budget(max_bytes=100, max_seconds=10, clock=lambda: next(ticks))
    assert budget.take(60) and budget.take(60)  # the second starts under the limit; a file is never split
    assert not budget.take(1) and budget.reason == 'bytes'
    timed = Budget(max_seconds=10, clock=iter([0.0, 5.0, 11.0]).__next__)
    assert timed.take(10 ** 12)
    assert not timed.take(1) and timed.reason == 'time'
