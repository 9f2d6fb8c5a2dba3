"""What the customer does with money: PAYG credit top-ups, the Free -> PAYG switch, invoice payment.

A plan says what usage costs; an *account* says how the bill is paid, and that changes what happens to
the application. The messaging seed (``../shared/seeds/000_13281a036d458080.txt``, "Pricing Notes")
runs PAYG on prepaid credit:

* "You can add PAYG credit balance as low as US$ 50 in your account whenever you need to" -- so a
  top-up (and the credit added at a switch) below $50 is an input error;
* "You can switch to PAYG plan anytime by adding the credit balance in your account" -- so a free
  account has no balance of its own: adding credit *is* the switch (``switch.credit``);
* FAQ: notices "at 50% and 75% of available credits in PAYG plan", and "We will throttle or temporarily
  disable your app only if you do not take any action after these notifications" -- ``top_up.when`` is
  that action (or its absence), ``grace`` how long the platform waits for it.

A scenario's ``accounts:`` maps a plan name to an :class:`Account`; the ledger that plays it out over
billing cycles is ``sim/pricing/ledger.py``. :class:`Payment` is the IoT seed's invoiced counterpart
(pay by the 28th, or be downgraded), only modelled here.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from sim.errors import InputError
from sim.strict import StrictModel

#: "You can add PAYG credit balance as low as US$ 50" (seed, "PAYG Credits").
MIN_TOP_UP = Decimal(50)
#: Largest amount of money an account may name (amounts stay exact Decimals far below 28 digits).
MAX_MONEY = Decimal(10) ** 12

_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|min|m|h|d)\s*$")
_SECONDS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def _money(value: Any) -> Decimal:
    """US$ amounts: numbers or numeric strings, finite, not negative, whole cents."""
    from sim.pricing.plan import non_negative_decimal

    d = non_negative_decimal(value, "an amount of money", MAX_MONEY, "the largest amount an account may name",
                             "a finite amount of at least 0")
    if d != d.quantize(Decimal("0.01")):
        raise ValueError(f"{value!r} is not a whole number of cents")
    return d + 0   # normalise -0 to 0


Money = Annotated[Decimal, BeforeValidator(_money)]


def _at_least_50(amount: Decimal | None) -> Decimal | None:
    if amount is not None and amount < MIN_TOP_UP:
        raise ValueError(f"{amount} is less than US$ 50: credit can be added 'as low as US$ 50' "
                         f"(seed, PAYG Credits)")
    return amount


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15min``, ``24h``, ``2d`` ... as a timedelta (a positive whole number of a unit)."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"duration {text!r} is not one of the forms 30s, 15min, 24h, 2d")
    n = int(match.group(1))
    if n <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=n * _SECONDS[match.group(2)])


class TopUp(StrictModel):
    """When the customer adds credit to a PAYG balance.

    * ``never``: never (the balance runs down, then goes negative: owed);
    * ``notified``: ``amount`` at each instant a 50 % / 75 % credit notification fires (the action the FAQ
      asks for);
    * ``below``: ``amount`` whenever the remaining credit (available credit - charges accrued so far)
      falls below ``below``, and at a cycle's end when the balance left after the deduction is below it.
    """

    when: Literal["notified", "below", "never"] = "never"
    amount: Money | None = Field(None, description="US$ added per top-up; at least 50")
    below: Money | None = Field(None, description="with when: below, top up when the remaining credit is below this")

    @field_validator("amount")
    @classmethod
    def _amount_50(cls, v: Decimal | None) -> Decimal | None:
        return _at_least_50(v)

    @model_validator(mode="after")
    def _consistent(self) -> TopUp:
        if self.when != "never" and self.amount is None:
            raise ValueError(f"amount is required when when is {self.when!r} (US$ added per top-up, at least 50)")
        if self.when == "below" and self.below is None:
            raise ValueError("below is required when when is 'below' (top up when the remaining credit is below it)")
        if self.when != "below" and self.below is not None:
            raise ValueError(f"below is only read when when is 'below', not {self.when!r}")
        return self


class Switch(StrictModel):
    """A free account's switch to PAYG: "You can switch to PAYG plan anytime by adding the credit balance
    ... Note that, you cannot switch back to a Free plan once switched to PAYG plan" (seed, Pricing Notes).

    ``when``: ``notified`` = at the first free-limit notification; ``exceeded`` = when a free limit is first
    exceeded; ``never`` = stay on Free. ``credit`` is the balance added at the switch (at least US$ 50).
    """

    to: str = Field(..., min_length=1, description="the PAYG plan switched to")
    when: Literal["notified", "exceeded", "never"] = "exceeded"
    credit: Money | None = Field(None, description="US$ added at the switch; at least 50")

    @field_validator("credit")
    @classmethod
    def _credit_50(cls, v: Decimal | None) -> Decimal | None:
        return _at_least_50(v)

    @model_validator(mode="after")
    def _consistent(self) -> Switch:
        if self.when != "never" and self.credit is None:
            raise ValueError(f"credit is required when when is {self.when!r}: the switch is made by adding "
                             f"credit (at least US$ 50)")
        return self


class Payment(StrictModel):
    """How an invoiced plan's bills are paid (IoT seed, "Billing terms"): on time, ``late_days`` after the
    due date, or never."""

    policy: Literal["on_time", "late", "never"] = "on_time"
    late_days: int = Field(0, ge=0, description="with policy: late, days after the due date")

    @model_validator(mode="after")
    def _consistent(self) -> Payment:
        if self.policy == "late" and self.late_days == 0:
            raise ValueError("late_days must be more than 0 when policy is 'late'")
        if self.policy != "late" and self.late_days:
            raise ValueError(f"late_days is only read when policy is 'late', not {self.policy!r}")
        return self


class Account(StrictModel):
    """One plan's account: its PAYG balance and top-ups, a free plan's switch, an invoiced plan's payments."""

    opening_balance: Money = Field(Decimal(0), description="US$ of PAYG credit at the first cycle's start")
    top_up: TopUp = Field(default_factory=TopUp)
    switch: Switch | None = None
    payment: Payment | None = None
    grace: str | None = Field(None, description="wait after the last credit notice before throttling, e.g. 24h; "
                                                "default: the plan's throttling grace")

    @field_validator("grace")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Account:
        if self.switch is not None and self.opening_balance:
            raise ValueError("opening_balance must be 0 with a switch: a free account holds no credit, adding "
                             "credit is the switch (give switch.credit)")
        if self.payment is not None and (self.opening_balance or self.top_up.when != "never"):
            raise ValueError("payment is for invoiced plans; opening_balance and top_up are for prepaid PAYG "
                             "credit: give one or the other")
        return self

    def grace_delta(self, plan_grace: timedelta) -> timedelta:
        """The throttling grace: this account's ``grace``, else the plan's."""
        return plan_grace if self.grace is None else parse_duration(self.grace)


def accounts_from_dict(raw: Any, source: str = "<scenario>", key: str = "accounts") -> dict[str, Account]:
    """A scenario's ``accounts:`` mapping (plan name -> account) validated; a problem is one
    :class:`InputError` naming the field, e.g. ``accounts.mesibo-cloud.top_up.amount``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(source, key, f"expected a mapping of plan name to account, got {raw!r}")
    out: dict[str, Account] = {}
    for name, doc in raw.items():
        try:
            out[str(name)] = Account.model_validate(doc if doc is not None else {})
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join([key, str(name), *(str(p) for p in err["loc"])])
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            elif err["type"] == "missing":
                msg = "required key is missing"
            raise InputError(source, loc, msg) from None
    return out
