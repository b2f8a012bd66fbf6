# Writes tests/golden/staging_segment_v2.bin (python3 staging_segment_v2.py OUT) from
# docs/format.md, "Staging segment", independently of backend/staging.cc: the golden file checks
# the doc against the code, and that later builds keep reading this version.
import struct, sys
T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    T.append(c)
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c = T[(c ^ x) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff
assert crc32c(b"123456789") == 0xE3069283
def rec(typ, seq, fields, payload=b""):
    body = struct.pack("<BQ", typ, seq) + b"".join(struct.pack("<Q", f) for f in fields) + payload
    return struct.pack("<I", crc32c(body)) + body
pattern = bytes((i * 7 + 3) % 251 for i in range(100))
tail = bytes((i * 5 + 1) % 253 for i in range(20))
out = b"SFSG" + struct.pack("<IQ", 2, 1)
out += rec(1, 1, [2, 0])                     # layer 1 of inode 2, over size 0
out += rec(2, 1, [0, 100, 1000], pattern)    # write [0, 100) at t=1000
out += rec(1, 2, [3, 10])                    # layer 2 of inode 3: no row, ignored
out += rec(2, 2, [0, 5, 1500], b"xxxxx")
out += rec(3, 1, [50, 2000])                 # truncate to 50 at t=2000
out += rec(2, 1, [200, 20, 3000], tail)      # write [200, 220) at t=3000
out += rec(4, 1, [4000])                     # mtime 4000
torn = rec(2, 1, [0, 30, 5000], b"y" * 30)   # cut short by a crash
out += torn[:len(torn) - 7]
open(sys.argv[1], "wb").write(out)
