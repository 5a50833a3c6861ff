"""`analytics`: the scheduled usage report (fleet_analytics), written to the backup bucket."""

import re
from typing import Annotated

from pydantic import Field, Strict, field_validator

from components.config.types import Invalid, Model
from fleet_analytics.schedule import validate_cron

Tokens = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ModelPrice(Model):
    """Price per million tokens."""
    input: Tokens
    output: Tokens


class AnalyticsSpec(Model):
    """When the report runs, over how many days, and what each model's tokens cost."""
    schedule: str = "30 2 * * *"
    since_days: Annotated[int, Strict(), Field(ge=1, le=3660)] = 30
    prices: dict[str, ModelPrice] = {}  # keys are Open WebUI model ids, e.g. gpt-4o or llama3.1:8b
    currency: str = "USD"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, v: str) -> str:
        try:
            return validate_cron(v)  # the job's own check: what passes here, the job accepts
        except ValueError:
            raise Invalid("", f"{v!r} is not a 5-field cron expression (UTC); e.g. \"30 2 * * *\"") from None

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z$€£¥]{1,8}", v):
            raise Invalid("", f"{v!r} is not a currency label; give e.g. USD or EUR")
        return v
