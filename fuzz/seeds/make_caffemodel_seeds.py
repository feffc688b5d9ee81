"""Writes tiny .caffemodel seeds (V2, V1, V0-in-V1) for the caffemodel fuzz target.

Protobuf is encoded by hand (field numbers from Caffe's caffe.proto) so no
dependency is needed; payloads are a few floats, not real weights.
"""
import os
import struct


def varint(v):
    out = b""
    v &= (1 << 64) - 1
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def s(num, text):
    return field(num, 2, text.encode())


def i(num, v):
    return field(num, 0, varint(v))


def blob_v2(dims, n):
    shape = field(1, 2, b"".join(varint(d) for d in dims))  # packed dim
    data = field(5, 2, struct.pack("<%df" % n, *([0.5] * n)))
    return field(7, 2, shape) + data


def blob_legacy(num, ch, h, w):
    n = num * ch * h * w
    return i(1, num) + i(2, ch) + i(3, h) + i(4, w) + field(5, 2, struct.pack("<%df" % n, *([0.25] * n)))


here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "caffemodel")
os.makedirs(here, exist_ok=True)

v2 = s(1, "tiny") + field(100, 2, s(1, "data") + s(2, "Input") + s(4, "data"))
v2 += field(100, 2, s(1, "conv1") + s(2, "Convolution") + s(3, "data") + s(4, "conv1")
            + field(7, 2, blob_v2([2, 3, 1, 1], 6)) + field(7, 2, blob_v2([2], 2)))
v2 += field(100, 2, s(1, "bn") + s(2, "BatchNorm") + s(3, "conv1") + s(4, "conv1")
            + field(7, 2, blob_v2([2], 2)) + field(7, 2, blob_v2([2], 2)) + field(7, 2, blob_v2([1], 1)))
open(os.path.join(here, "v2.caffemodel"), "wb").write(v2)

v1 = s(1, "tiny_v1") + field(2, 2, s(4, "ip") + i(5, 14) + s(2, "data") + s(3, "ip")
                              + field(6, 2, blob_legacy(1, 1, 2, 3)) + field(6, 2, blob_legacy(1, 1, 1, 2)))
open(os.path.join(here, "v1.caffemodel"), "wb").write(v1)

v0 = s(1, "tiny_v0") + field(2, 2, field(1, 2, s(1, "conv") + s(2, "conv") + field(50, 2, blob_legacy(2, 1, 1, 1))))
open(os.path.join(here, "v0.caffemodel"), "wb").write(v0)
