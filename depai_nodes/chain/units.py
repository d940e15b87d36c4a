"""FLEET token amounts: one definition of the unit and of how amounts are written for people.

The token has 18 decimals (FleetToken is an OpenZeppelin ERC20). Amounts travel as integers of
base units (decimal strings on topics and services: a uint256 does not fit a ROS integer); only
what a person reads is converted, here, so every log line, table and CLI answer agrees.
"""

from __future__ import annotations

__all__ = ["TOKEN_DECIMALS", "TOKEN", "format_amount", "fleet", "fleet_rounded"]

TOKEN_DECIMALS = 18
TOKEN = 10**TOKEN_DECIMALS


def format_amount(units: int) -> str:
    """Exact: base units -> tokens with thousands separators, trailing zeros dropped
    (1_500_000 * TOKEN -> '1,500,000'; 3 -> '0.000000000000000003')."""
    sign = "-" if int(units) < 0 else ""
    whole, frac = divmod(abs(int(units)), TOKEN)
    if not frac:
        return f"{sign}{whole:,}"
    return f"{sign}{whole:,}." + f"{frac:0{TOKEN_DECIMALS}d}".rstrip("0")


def fleet(units: int) -> str:
    """Exact, with the unit: 2_500_000_000_000_000_000 -> '2.5 FLEET'."""
    return f"{format_amount(units)} FLEET"


def fleet_rounded(units: int | None) -> str:
    """For narrow table cells: at most 2 decimals, with the unit ('-' when unknown)."""
    if units is None:
        return "-"
    return f"{int(units) / TOKEN:.2f}".rstrip("0").rstrip(".") + " FLEET"
