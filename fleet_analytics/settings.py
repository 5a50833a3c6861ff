"""Connection settings, read once from the environment (see fleet_analytics/__init__.py)."""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from fleet_analytics.errors import CONFIG, ReportError

APP_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class App:
    name: str

    @property
    def database(self) -> str:
        return "openwebui_" + self.name.replace("-", "_")

    @property
    def role(self) -> str:
        """The app's read-only role, created by the app's bootstrap SQL."""
        return self.database + "_analytics"

    @property
    def password_variable(self) -> str:
        return "ANALYTICS_PASSWORD_" + self.name.replace("-", "_").upper()


@dataclass(frozen=True)
class Price:
    """Price per million tokens, in `Settings.currency`."""
    input: float
    output: float


@dataclass(frozen=True)
class Settings:
    apps: tuple[App, ...]
    passwords: Mapping[str, str] = field(repr=False)  # app name -> its analytics role's password
    prices: Mapping[str, Price] = field(default_factory=dict)
    currency: str = "USD"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        names = [a.strip() for a in env.get("ANALYTICS_APPS", "").split(",") if a.strip()]
        if not names:
            raise ReportError(CONFIG, "ANALYTICS_APPS is not set; give the apps to report on, e.g. chat,research")
        apps = tuple(App(n) for n in names)
        for app in apps:
            if not APP_NAME.match(app.name) or len(app.role) > 63:
                raise ReportError(CONFIG, f"ANALYTICS_APPS: {app.name!r} is not an app name "
                                          "([a-z][a-z0-9-]*, at most 43 characters)")
        if len({a.database for a in apps}) != len(apps):
            raise ReportError(CONFIG, "ANALYTICS_APPS lists an app twice")
        missing = [a.password_variable for a in apps if not env.get(a.password_variable)]
        if missing:
            raise ReportError(CONFIG, f"{', '.join(missing)} not set: each app's analytics role needs its password")
        currency = env.get("ANALYTICS_CURRENCY") or "USD"
        return cls(apps=apps, passwords={a.name: env[a.password_variable] for a in apps},
                   prices=parse_prices(env.get("ANALYTICS_PRICES") or "{}"), currency=currency)


def parse_prices(text: str) -> dict[str, Price]:
    """ANALYTICS_PRICES: {"<model id>": {"input": <per 1M tokens>, "output": <per 1M tokens>}, ...}."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise ReportError(CONFIG, f"ANALYTICS_PRICES is not JSON ({e.msg}); give "
                                  '{"<model>": {"input": 2.5, "output": 10}}') from None
    if not isinstance(raw, dict):
        raise ReportError(CONFIG, 'ANALYTICS_PRICES must be an object: {"<model>": {"input": 2.5, "output": 10}}')
    prices = {}
    for model, price in raw.items():
        if (not isinstance(price, dict) or set(price) != {"input", "output"}
                or not all(_is_price(v) for v in price.values())):
            raise ReportError(CONFIG, f"ANALYTICS_PRICES[{model!r}] = {price!r}: give "
                                      '{"input": <price per 1M input tokens>, "output": <per 1M output tokens>}')
        prices[model] = Price(float(price["input"]), float(price["output"]))
    return prices


def _is_price(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
