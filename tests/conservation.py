"""Conservation laws the tests hold every run to: every message is delivered, stored, rejected or dropped, and
counted (one place, so that each law is written once)."""

from __future__ import annotations

import numpy as np


def iot_conserved(c: dict) -> None:
    """The IoT fleet: sent = delivered + dropped + rejected + discarded + still on the device; delivered = read +
    expired + still in the platform's buffers."""
    assert c["iot_messages_sent"] == (
        c["iot_delivered"] + c["iot_dropped"] + c["iot_rejected"] + c["iot_discarded"]
        + c["iot_pending_on_device_end"]
    )  # fmt: skip
    assert c["iot_delivered"] == c["iot_read"] + c["iot_expired"] + c["iot_in_buffer_end"]


def mobile_balance(c: dict) -> int:
    """Chat copies: stored at the start + sent - (delivered + stored + expired + dropped + rejected + discarded);
    0 when conserved."""
    return (c["stored_at_start"] + c["messages_sent"]
            - (c["delivered"] + c["stored"] + c["expired"] + c["dropped"] + c["rejected"] + c["discarded"]))


def same_books(a: tuple, b: tuple) -> None:
    """Two (MeterBook, meters) results are identical: meters, counts, every byte and series minute by minute."""
    (ba, ma), (bb, mb) = a, b
    assert ma == mb and ba.counts == bb.counts
    assert ba.bytes.keys() == bb.bytes.keys()
    assert all(np.array_equal(ba.bytes[k], bb.bytes[k]) for k in ba.bytes)
    assert ba.series.keys() == bb.series.keys()
    assert all(np.array_equal(ba.series[k], bb.series[k]) for k in ba.series)
