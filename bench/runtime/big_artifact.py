"""Store one large artifact in a step and load it in the next.

The value is a `bytes` of `mb` million bytes (default 500 MB): the lowercase hex
digits of seeded pseudo-random bytes, so 16 symbols at 4 bits of entropy per byte. A
compressor has real work to do (gzip and zstd shrink it to a bit over half, rather
than to nothing as they would zeros or a repeated block), making it costs under 2 s,
and it is the same on every run, so the benchmark knows its SHA-256 in advance.

Runs unchanged under Metaflow (`python big_artifact.py run`) and under flowc
(`flowc run big_artifact.py`).
"""

import binascii
import hashlib
import json
import os
import random

from metaflow import FlowSpec, Parameter, step


def make_payload(mb, seed=20240):
    """`mb` million bytes: the hex digits of seeded pseudo-random bytes."""
    rng = random.Random(seed)
    # `randbytes` takes at most 2**31 bits at once, so the bytes come in 500 kB pieces.
    raw = b"".join(rng.randbytes(500_000) for _ in range(mb))
    return binascii.hexlify(raw)


class BigArtifactFlow(FlowSpec):
    mb = Parameter("mb", type=int, default=500, help="artifact size in millions of bytes")

    @step
    def start(self):
        self.payload = make_payload(self.mb)
        self.next(self.load)

    @step
    def load(self):
        # Touch every byte, so the load cannot be lazy or partial.
        data = self.payload
        self.length = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.next(self.end)

    @step
    def end(self):
        out = os.environ.get("BENCH_RESULT_FILE")
        if out:
            with open(out, "w") as f:
                json.dump({"length": self.length, "sha256": self.sha256}, f)


if __name__ == "__main__":
    BigArtifactFlow()
