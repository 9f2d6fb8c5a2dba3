"""Who a client's messages go to, decided when they are sent (the conversation structure of
:mod:`sim.world.conversations`, applied one message at a time).

A session has one thread: a reply to whoever last opened a thread towards the user within
``reply_window_s`` (with ``reply_probability``), else a live chat with the first of the user's
``live_contacts`` favourites who is online now (with ``live_conversation_fraction``), else a favourite
contact (Zipf over the contact list). "Online" is connected for a reason other than a push wake-up: a
phone woken for a notification is not in a conversation. Both definitions are the fast engine's
(:func:`sim.world.conversations.one_to_one`, which decides threads before wake-ups exist). A message goes to its session's thread with ``session_focus``, else to another contact; a group
message likewise to the session's group or another of the user's groups (its other members, capped,
muted members not pushed). Without a social graph recipients are uniform among active users.

The random parts are drawn for a whole day of the client's messages at once (one numpy call each);
only what depends on the world at send time (who wrote last, who is online) is decided then.
"""

from __future__ import annotations

import numpy as np

LIVE_POOL = 8


class RecipientsPlan:
    def __init__(self, world, client, sess: np.ndarray, group: np.ndarray, n_sessions: int) -> None:
        self.w = world
        sc = world.sc
        rng = client.rng
        self.social = social = world.pop.social
        mc = sc.messaging
        self.cv = mc.conversations
        m = sess.size
        u = np.full(max(n_sessions, 1), client.user, dtype=np.int64)
        self.focus = (rng.random(m) < self.cv.session_focus).tolist()
        self.thread: list[int | None] = [None] * n_sessions
        if social is not None:
            me = np.full(m, client.user, dtype=np.int64)
            self.fresh = social.partner(rng, me).tolist()
            self.primary = social.partner(rng, u).tolist()
            self.reply_coin = (rng.random(n_sessions) < self.cv.reply_probability).tolist()
            self.live_coin = (rng.random(n_sessions) < mc.live_conversation_fraction).tolist()
            if group.any():
                self.fresh_group = social.group(rng, me).tolist()
                self.primary_group = social.group(rng, u).tolist()
        else:
            ids = world.active_list
            self.fresh = [ids[i] for i in (rng.random(m) * len(ids)).astype(np.int64).tolist()] if ids else []
            self.live_coin = (rng.random(m) < mc.live_conversation_fraction).tolist()
            self.pool_pick = rng.integers(0, LIVE_POOL, m).tolist()
            if group.any():
                k = np.minimum(1 + rng.poisson(mc.group_recipients_mean - 1.0, m), mc.group_recipients_max)
                self.fanout = k.tolist()

    def resolve(self, client, s: int, is_group: bool, j: int) -> tuple[list[int], list[bool] | None]:
        """(recipients, muted flags) of message ``j`` of session ``s``."""
        w, me = self.w, client.user
        if self.social is None:
            return self._uniform(client, is_group, j)
        if is_group:
            g = self.primary_group[s] if self.focus[j] else self.fresh_group[j]
            if g >= 0:
                return w.group_members(g, me)
        if self.focus[j]:
            r = self.thread[s]
            if r is None:
                r = self.thread[s] = self._thread_partner(client, s)
                rc = w.clients[r] if r >= 0 else None
                if rc is not None:
                    rc.last_in = (me, w.env.now)  # a thread opened towards r: what r may answer
        else:
            r = self.fresh[j]
        if r < 0 or r == me:
            return [], None
        return [r], None

    def _thread_partner(self, client, s: int) -> int:
        w, cv, now = self.w, self.cv, self.w.env.now
        last = client.last_in
        if self.reply_coin[s] and last is not None and last[0] != client.user and now - last[1] <= cv.reply_window_s * 1000:
            return last[0]
        if self.live_coin[s] and cv.live_contacts > 0:
            c = self.social.contacts
            lo = int(c.off[client.user])
            hi = min(int(c.off[client.user + 1]), lo + cv.live_contacts)
            for r in c.items[lo:hi].tolist():
                rc = w.clients[r]
                if rc is not None and rc.connected and (getattr(rc, "screen", 1) > 0
                                                        or getattr(rc, "wake_until", 0) <= now):
                    return r
        return self.primary[s]

    def _uniform(self, client, is_group: bool, j: int) -> tuple[list[int], list[bool] | None]:
        w, me, ids = self.w, client.user, self.w.active_list
        if not ids:
            return [], None
        if is_group:
            rng = client.rng
            k = self.fanout[j]
            picks = (rng.random(k) * len(ids)).astype(np.int64).tolist()
            out = [ids[p] if ids[p] != me else ids[(p + 1) % len(ids)] for p in picks]
            return out, None
        r = self.fresh[j]
        if self.live_coin[j]:
            recent = w.recent_starters
            i = len(recent) - 1 - self.pool_pick[j]
            if i >= 0 and recent[i] != me:
                r = recent[i]
        if r == me:
            r = ids[(ids.index(r) + 1) % len(ids)] if len(ids) > 1 else r
        return ([r], None) if r != me else ([], None)
