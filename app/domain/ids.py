"""Time-ordered ids (UUIDv7 layout), so rows made in one instant still sort in creation order."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = (0, 0)


def new_id() -> str:
    global _last
    with _lock:
        ms = time.time_ns() // 1_000_000
        last_ms, counter = _last
        if ms <= last_ms:
            ms, counter = last_ms, counter + 1
            if counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                ms, counter = ms + 1, 0
        else:
            counter = int.from_bytes(os.urandom(1), "big")  # random start, room to count up
        _last = (ms, counter)
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
