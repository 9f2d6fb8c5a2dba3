"""Example custom clients for the events engine (name them in a scenario's ``clients`` list).

    engine: events
    clients:
      - {behaviour: sim.world.events.examples:Bot, share: 0.01, params: {interval_s: 10}}
      - {behaviour: sim.world.events.examples:Poller, share: 0.2, params: {every_s: 300}}
      - {behaviour: sim.world.events.examples:WebSocketTab, share: 0.1, params: {heartbeat_s: 25}}

Each is a few lines: a :class:`~sim.world.events.client.Client` subclass whose :meth:`run` is a SimPy
generator using ``hold`` (be online), ``sleep`` (wait), ``send`` (a 1:1 message). The world meters and
prices what they do exactly like the default mobile client.
"""

from __future__ import annotations

from sim.world.events.client import Client

DAY_S = 86_400


class Bot(Client):
    """Always connected; sends a ``size_bytes`` (200) message every ``interval_s`` (10) seconds."""

    def run(self):
        interval = float(self.params.get("interval_s", 10))
        size = int(self.params.get("size_bytes", 200))
        self.hold(self.world.total_days * DAY_S + 1)  # online for the whole run
        while True:
            yield self.sleep(interval)
            self.send(size)


class Poller(Client):
    """No push: connects every ``every_s`` (300) seconds for ``stay_s`` (2) to fetch what waits for it."""

    def run(self):
        every = float(self.params.get("every_s", 300))
        stay = float(self.params.get("stay_s", 2))
        yield self.sleep(float(self.rng.random()) * every)  # devices do not poll in step
        while True:
            self.hold(stay)
            yield self.sleep(every)

    def push(self, t: int) -> None:
        """Pollers do not register for push notifications."""


class WebSocketTab(Client):
    """A browser tab kept open ``hours`` (8) a day from ``start_hour`` (9) on the user's local clock (or at
    ``utc_offset_h`` if given), pinging every ``heartbeat_s`` (25 s, a common WebSocket keep-alive)."""

    heartbeat_s = 25.0

    def run(self):
        hours = float(self.params.get("hours", 8))
        start = float(self.params.get("start_hour", 9))
        yield self.sleep(self.seconds_until(start, self.params.get("utc_offset_h")))
        while True:
            self.hold(hours * 3600)
            yield self.sleep(DAY_S)


def every_minute(client):
    """A generator-function behaviour: connect for 5 s every minute (wrapped into a Client)."""
    while True:
        client.hold(5)
        yield client.sleep(60)
