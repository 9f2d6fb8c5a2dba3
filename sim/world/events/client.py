"""A client of the events engine: one SimPy process per user, holding a connection when it has a reason to.

Why this shape: a phone is connected while *something* wants it online - the app on screen (and a few
seconds after), an Android Doze maintenance window, a push wake-up, a call. :class:`Client` keeps that
as one rule: :meth:`Client.hold` asks to be online until a time; the connection opens (TCP + TLS, full
or resumed) when the first reason appears and closes when the last one ends. Reasons that overlap or
touch share one connection, which is what the fast engine's interval union does in bulk. On top of
it the connection lives its own life: a NAT kills an idle socket that heartbeats do not keep alive,
the client notices at its next heartbeat and reconnects after a back-off.

Subclass :class:`Client` and write :meth:`Client.run` (a SimPy generator) for a custom behaviour; the
default mobile chat client is :class:`sim.world.events.mobile.MobileClient`. Times are int ms on the
world's clock (``env.now``), which starts ``warmup_days`` before the billing period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import simpy

from sim.world.timeline import BACKGROUND, CALL, FOREGROUND, PUSH, RECONNECT

if TYPE_CHECKING:
    from sim.world.events.world import EventsWorld

#: Connection causes a client may give :meth:`Client.hold` (the ``connections_<cause>`` counts).
CAUSE = {"foreground": FOREGROUND, "background": BACKGROUND, "push": PUSH, "call": CALL, "reconnect": RECONNECT}
LATE = 2  # SimPy priority after NORMAL (1): "is anyone still holding?" runs after same-time requests


def _fire(ev: _Call) -> None:
    ev.fn()


class _Call(simpy.Event):
    """A triggered SimPy event whose one callback calls ``fn()``: a timer without a process."""

    def __init__(self, env: simpy.Environment, fn) -> None:
        self.env = env
        self._ok = True
        self._value = None
        self.fn = fn
        self.callbacks = [_fire]


def later(env: simpy.Environment, delay_ms: int, fn, priority: int = 1) -> None:
    """Call ``fn()`` ``delay_ms`` from now (``priority`` 0 before, 2 after the normal events of that instant)."""
    env.schedule(_Call(env, fn), priority, delay_ms)


class Client:
    """One user's device and app: connection state, and the calls a behaviour uses.

    Attributes a behaviour may read: ``user`` (id), ``env``, ``rng`` (the user's own numpy Generator),
    ``params`` (the scenario's ``clients[].params``), ``world`` (the :class:`EventsWorld`),
    :attr:`connected`. Class attribute ``heartbeat_s``: the client's keep-alive period while
    connected (None: the scenario's ``network.heartbeat_s``; a WebSocket client pinging every 25 s
    sets 25; ``params: {heartbeat_s: ...}`` overrides it per scenario). Keep-alives are counted and
    metered per connection, one exchange per heartbeat period of its life.
    """

    heartbeat_s: float | None = None

    def __init__(self, world: EventsWorld, user: int, rng, params: dict[str, Any] | None = None) -> None:
        self.world = world
        self.env = world.env
        self.user = int(user)
        self.rng = rng
        self.params = dict(params or {})
        self.connected = False      # the socket is up (what the server sees)
        self.until = 0              # held online until this time (ms)
        self.conn_start = 0
        self.conn_id = 0
        self.zombie = False         # held, but the socket died silently and no heartbeat notices
        self.last_end = -(1 << 60)  # end of the previous connection (TLS ticket age)
        hb = self.params.get("heartbeat_s", self.heartbeat_s)
        self.hb_ms = int(round((hb if hb is not None else world.sc.network.heartbeat_s) * 1000))
        # heartbeats shorter than the NAT's idle timeout keep the mapping; otherwise the socket dies silently
        # after the timeout and the next heartbeat (if any) notices
        nat = world.nat_timeout_ms
        self.nat_ms = None if 0 < self.hb_ms < nat else nat
        self.detect_ms = None if self.hb_ms == 0 else self.hb_ms - nat

    # -- what a behaviour calls ----------------------------------------------------------------------
    def run(self):
        """The behaviour: a SimPy generator. The base client does nothing."""
        return
        yield

    def sleep(self, seconds: float) -> simpy.Timeout:
        """``yield client.sleep(s)``: wait ``s`` seconds of simulated time."""
        return self.env.timeout(int(round(seconds * 1000)))

    def seconds_until(self, hour: float, utc_offset_h: float | None = None) -> float:
        """Seconds from now until the clock next shows ``hour`` (0-24) in the user's time zone (the
        population's ``timezones`` draw), or at ``utc_offset_h`` hours from UTC if given."""
        w = self.world
        tz_ms = int(w.pop.tz_ms[self.user]) if utc_offset_h is None else int(round(utc_offset_h * 3_600_000))
        day = 86_400_000
        local = (self.env.now + w.utc_at_zero + tz_ms) % day
        return ((int(round(hour * 3_600_000)) - local) % day) / 1000.0

    def hold(self, seconds: float, cause: str = "foreground") -> None:
        """Be online from now for ``seconds`` (connects now if offline; a held connection is extended)."""
        self.hold_until(self.env.now + int(round(seconds * 1000)), CAUSE[cause])

    def send(self, size_bytes: int, to: int | None = None, store: bool = True) -> None:
        """Send a 1:1 message now (to a contact of the conversation graph when ``to`` is None)."""
        self.world.server.send_custom(self, int(size_bytes), to, store)

    def push(self, t: int) -> None:
        """The server pushed a notification for a copy stored while this client was offline (default: ignore)."""

    def on_delivered(self, sender: int, sent: int, t: int, loud: bool) -> None:
        """A message copy sent at ``sent`` reached this client at ``t`` (``loud``: one its phone is notified
        of). Default: nothing; the mobile client reads it."""

    def ring(self, dur_ms: int) -> None:
        """An incoming call: the VoIP push wakes the phone, which is online for the call."""
        delay = int(self.world.sc.push.delay_s * 1000)
        later(self.env, delay, lambda: self.hold_until(self.env.now + dur_ms, CALL))

    # -- connection mechanics ------------------------------------------------------------------------
    def hold_until(self, end: int, cause: int) -> None:
        env = self.env
        now = env._now
        if end <= now:
            return
        if self.connected or self.zombie:
            if self.zombie and cause == PUSH:
                # a woken app writes to its socket, finds it dead and reconnects at once
                self.zombie = False
                self._open(RECONNECT)
            if end > self.until:
                self.until = end
            return
        self.until = end
        self._open(cause)
        env.schedule(_Call(env, self._check), LATE, end - now)

    def _check(self) -> None:
        now = self.env._now
        if now >= self.until:
            if self.connected:
                self._close(graceful_possible=True)
            self.zombie = False
        else:
            later(self.env, self.until - now, self._check, LATE)

    def _open(self, cause: int) -> None:
        w = self.world
        now = self.env._now
        if w.server.suspended_until > now and w.server.refuse_connect(now):
            # the server refuses connects (a suspension): retry when it ends, plus a back-off
            later(self.env, w.server.suspended_until - now + w.backoff_ms(self.rng), self._retry_open, 1)
            self.zombie = True
            return
        resumed = (w.tickets_on and now - self.last_end <= w.ticket_ms
                   and self.rng.random() < w.p_resume)
        self.connected = True
        self.zombie = False
        self.conn_start = now
        self.conn_id += 1
        w.on_open(self, now, cause, resumed)
        if self.nat_ms is not None:
            cid = self.conn_id
            later(self.env, self.nat_ms, lambda: self._nat_death(cid), 1)

    def _retry_open(self) -> None:
        if self.zombie and self.env.now < self.until:
            self.zombie = False
            self._open(RECONNECT)

    def _close(self, graceful_possible: bool) -> None:
        w = self.world
        now = self.env._now
        graceful = graceful_possible and w.p_graceful > 0 and self.rng.random() < w.p_graceful
        self.connected = False
        self.last_end = now
        w.on_close(self, self.conn_start, now, graceful)

    def _nat_death(self, cid: int) -> None:
        """The NAT forgot the idle mapping: the socket is dead, silently (heartbeats longer than the NAT
        timeout, or none)."""
        if not self.connected or cid != self.conn_id:
            return
        w = self.world
        w.count("nat_timeouts")
        self._close(graceful_possible=True)
        self.zombie = True
        if self.detect_ms is None:
            return  # no heartbeat: the client never notices; it stays offline while it holds
        later(self.env, self.detect_ms + w.backoff_ms(self.rng), self._retry_open, 1)

    def cut(self) -> None:
        """The server closed the connection (a suspension): reconnect after it, if still held."""
        if not self.connected:
            return
        self._close(graceful_possible=False)
        self.zombie = True
        w = self.world
        later(self.env, max(0, w.server.suspended_until - self.env.now) + w.backoff_ms(self.rng),
              self._retry_open, 1)


class Behaviour(Client):
    """A client whose behaviour is a plain generator function ``fn(client)`` (named in a scenario)."""

    fn = None

    def run(self):
        return type(self).fn(self)


def client_class(obj) -> type[Client]:
    """A :class:`Client` subclass for ``obj`` (a subclass itself, or a generator function)."""
    if isinstance(obj, type):
        return obj
    return type(f"Behaviour_{obj.__name__}", (Behaviour,), {"fn": staticmethod(obj)})
