# -*- coding: utf-8 -*-
# Copyright: (c) 2026, omero.backup contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OMERO's checksum algorithms, by their ``checksumalgorithm.value`` names, rendered as OMERO stores them.

OMERO computes every hash with Guava (omero-common ``ome.util.checksum``) and stores
``HashCode.toString()``: lowercase hex of ``HashCode.asBytes()``. For the 32-bit hashes
(CRC-32, Adler-32, Murmur3-32) and File-Size-64 (``HashCode.fromLong(size)``) those bytes
are the number **little-endian**: CRC-32 of ``abc`` (0x352441c2) is stored ``c2412435``.
Murmur3-128 is Guava's ``murmur3_128()`` (seed 0): h1 then h2, each little-endian, which is
the reference MurmurHash3_x64_128 byte output. The vectors of omero-common's own tests are
in tests/unit/plugins/module_utils/test_proof_algorithms.py.

Murmur3 is written here in pure Python (target hosts have no ``mmh3``); the ``mmh3`` C
module is used when it is importable and offers streaming hashers (mmh3 >= 5). Every hasher
has ``update(bytes)`` and ``hexdigest()``; hashlib's and zlib's release the GIL on large
buffers, so a thread pool uses every core.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import hashlib
import struct
import zlib

try:  # optional C implementation; never required
    import mmh3 as _mmh3
    if not (hasattr(_mmh3, 'mmh3_32') and hasattr(_mmh3, 'mmh3_x64_128')):
        _mmh3 = None
except ImportError:
    _mmh3 = None

SHA1 = 'SHA1-160'
MD5 = 'MD5-128'
MURMUR32 = 'Murmur3-32'
MURMUR128 = 'Murmur3-128'
CRC32 = 'CRC-32'
ADLER32 = 'Adler-32'
FILE_SIZE = 'File-Size-64'

NAMES = (SHA1, MD5, MURMUR32, MURMUR128, CRC32, ADLER32, FILE_SIZE)

_M32 = 0xffffffff
_M64 = 0xffffffffffffffff


class _Zlib32(object):
    """CRC-32 / Adler-32 through zlib (C, releases the GIL on large buffers), stored little-endian."""

    def __init__(self, function, start):
        self._function, self._value = function, start

    def update(self, data):
        self._value = self._function(data, self._value)

    def hexdigest(self):
        return struct.pack('<I', self._value & _M32).hex()


class FileSize(object):
    """File-Size-64: the byte count as Guava's HashCode.fromLong renders it (8 bytes, little-endian)."""

    def __init__(self):
        self.size = 0

    def update(self, data):
        self.size += len(data)

    def hexdigest(self):
        return struct.pack('<Q', self.size & _M64).hex()


class Murmur3x86_32(object):
    """MurmurHash3_x86_32, seed 0, streaming. Pure Python: about 9 MB/s on one core (docs/verify.md)."""

    def __init__(self, seed=0):
        self._h, self._tail, self._length = seed & _M32, b'', 0

    def update(self, data):
        self._length += len(data)
        if self._tail:
            data = self._tail + bytes(data)
        whole = len(data) - len(data) % 4
        h = self._h
        for (k,) in struct.iter_unpack('<I', memoryview(data)[:whole]):
            k = (k * 0xcc9e2d51) & _M32
            k = ((k << 15) | (k >> 17)) & _M32
            h ^= (k * 0x1b873593) & _M32
            h = ((h << 13) | (h >> 19)) & _M32
            h = (h * 5 + 0xe6546b64) & _M32
        self._h, self._tail = h, bytes(data[whole:])

    def hexdigest(self):
        h = self._h
        if self._tail:
            k = int.from_bytes(self._tail, 'little')
            k = (k * 0xcc9e2d51) & _M32
            k = ((k << 15) | (k >> 17)) & _M32
            h ^= (k * 0x1b873593) & _M32
        h ^= self._length & _M32
        h ^= h >> 16
        h = (h * 0x85ebca6b) & _M32
        h ^= h >> 13
        h = (h * 0xc2b2ae35) & _M32
        h ^= h >> 16
        return struct.pack('<I', h).hex()


_C1 = 0x87c37b91114253d5
_C2 = 0x4cf5ad432745937f


def _fmix64(k):
    k ^= k >> 33
    k = (k * 0xff51afd7ed558ccd) & _M64
    k ^= k >> 33
    k = (k * 0xc4ceb9fe1a85ec53) & _M64
    return k ^ (k >> 33)


class Murmur3x64_128(object):
    """MurmurHash3_x64_128, seed 0, streaming; digest h1 then h2, little-endian (Guava's murmur3_128)."""

    def __init__(self, seed=0):
        self._h1 = self._h2 = seed & _M64
        self._tail, self._length = b'', 0

    def update(self, data):
        self._length += len(data)
        if self._tail:
            data = self._tail + bytes(data)
        whole = len(data) - len(data) % 16
        h1, h2 = self._h1, self._h2
        for k1, k2 in struct.iter_unpack('<QQ', memoryview(data)[:whole]):
            k1 = (k1 * _C1) & _M64
            k1 = ((k1 << 31) | (k1 >> 33)) & _M64
            h1 ^= (k1 * _C2) & _M64
            h1 = ((h1 << 27) | (h1 >> 37)) & _M64
            h1 = ((h1 + h2) * 5 + 0x52dce729) & _M64
            k2 = (k2 * _C2) & _M64
            k2 = ((k2 << 33) | (k2 >> 31)) & _M64
            h2 ^= (k2 * _C1) & _M64
            h2 = ((h2 << 31) | (h2 >> 33)) & _M64
            h2 = ((h2 + h1) * 5 + 0x38495ab5) & _M64
        self._h1, self._h2, self._tail = h1, h2, bytes(data[whole:])

    def hexdigest(self):
        h1, h2, tail = self._h1, self._h2, self._tail
        if len(tail) > 8:
            k2 = (int.from_bytes(tail[8:], 'little') * _C2) & _M64
            k2 = ((k2 << 33) | (k2 >> 31)) & _M64
            h2 ^= (k2 * _C1) & _M64
        if tail:
            k1 = (int.from_bytes(tail[:8], 'little') * _C1) & _M64
            k1 = ((k1 << 31) | (k1 >> 33)) & _M64
            h1 ^= (k1 * _C2) & _M64
        h1 ^= self._length & _M64
        h2 ^= self._length & _M64
        h1 = (h1 + h2) & _M64
        h2 = (h2 + h1) & _M64
        h1, h2 = _fmix64(h1), _fmix64(h2)
        h1 = (h1 + h2) & _M64
        h2 = (h2 + h1) & _M64
        return struct.pack('<QQ', h1, h2).hex()


class _Mmh3(object):
    """The mmh3 C module's streaming hasher; its digest() bytes are the reference byte output."""

    def __init__(self, factory):
        self._hasher = factory()

    def update(self, data):
        self._hasher.update(data)

    def hexdigest(self):
        return self._hasher.digest().hex()


def new(name, pure=False):
    """A fresh hasher for an OMERO algorithm name; KeyError for a name OMERO does not have.

    ``pure``: never the optional mmh3 C module (the tests compare both).
    """
    if name == SHA1:
        return hashlib.sha1()
    if name == MD5:
        return hashlib.md5()
    if name == CRC32:
        return _Zlib32(zlib.crc32, 0)
    if name == ADLER32:
        return _Zlib32(zlib.adler32, 1)
    if name == FILE_SIZE:
        return FileSize()
    if name == MURMUR32:
        return _Mmh3(_mmh3.mmh3_32) if _mmh3 is not None and not pure else Murmur3x86_32()
    if name == MURMUR128:
        return _Mmh3(_mmh3.mmh3_x64_128) if _mmh3 is not None and not pure else Murmur3x64_128()
    raise KeyError(name)


def reads_content(name):
    """False for File-Size-64: its proof is the size, the bytes need not be read."""
    return name != FILE_SIZE


def c_murmur():
    """Whether Murmur3 runs in C here (the mmh3 module) rather than in pure Python."""
    return _mmh3 is not None


def hexdigest(name, data):
    hasher = new(name)
    hasher.update(data)
    return hasher.hexdigest()
