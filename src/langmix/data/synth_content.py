"""What the synthetic world is made of: the argument values a request may name, the tools (their schemas and the
tool prompt), and the per-language template files in `templates/` (data, not code) the items are rendered from.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from langmix.errors import UserInputError

TEMPLATE_DIR = Path(__file__).parent / "templates"

# Argument values: large enough sets that no single memorised call scores, all written the same way in every
# language (Latin-script names and codes that the model must copy from the request).
CITIES = ["Paris", "Tokyo", "Nairobi", "Lima", "Berlin", "Cairo", "Delhi", "Sydney", "Bangkok", "Dhaka", "Madrid",
          "Rome", "Oslo", "Seoul", "Lagos", "Accra", "Quito", "Hanoi", "Manila", "Dakar", "Kyiv", "Vienna", "Prague",
          "Dublin", "Lisbon", "Athens", "Havana", "Tunis", "Perth", "Osaka"]
PEOPLE = ["Maria", "Kofi", "Amina", "Hiro", "Lena", "Omar", "Priya", "Tomas", "Ines", "Juma", "Mei", "Ravi",
          "Sofia", "Yusuf", "Elena", "Kwame", "Ana", "Chen", "Rosa", "Ali"]
CURRENCIES = ["USD", "EUR", "JPY", "KES", "INR", "THB", "BDT", "GBP", "CNY", "RUB", "BRL", "MXN"]
ROOMS = ["kitchen", "bedroom", "living_room"]
OPS = {"add": "+", "sub": "-", "mul": "*"}


def _tool(fname: str, description: str, /, **params: tuple[str, str] | tuple[str, str, list]) -> dict[str, Any]:
    props = {}
    for key, (typ, desc, *enum) in params.items():
        props[key] = {"type": typ, "description": desc, **({"enum": enum[0]} if enum else {})}
    return {"name": fname, "description": description,
            "parameters": {"type": "object", "required": list(params), "properties": props}}


TOOLS: list[dict[str, Any]] = [
    _tool("get_weather", "Current weather in a city.", city=("string", "city name"),
          unit=("string", "temperature unit", ["celsius", "fahrenheit"])),
    _tool("set_alarm", "Set an alarm at a time of day.", hour=("integer", "hour, 0-23"),
          minute=("integer", "minute, 0-59")),
    _tool("convert_currency", "Convert an amount between currencies.", amount=("number", "amount to convert"),
          source=("string", "ISO currency code to convert from"), target=("string", "ISO currency code to convert to")),
    _tool("get_time", "Local time in a city.", city=("string", "city name")),
    _tool("book_flight", "Book a flight.", origin=("string", "departure city"),
          destination=("string", "arrival city"), passengers=("integer", "number of passengers")),
    _tool("send_money", "Send money in dollars to a person.", recipient=("string", "person's name"),
          amount=("number", "amount in dollars")),
    _tool("set_timer", "Start a countdown timer.", minutes=("integer", "duration in minutes")),
    _tool("call_contact", "Phone a contact.", name=("string", "contact's name")),
    _tool("search_hotels", "Find hotels in a city.", city=("string", "city name"),
          nights=("integer", "number of nights")),
    _tool("set_lights", "Switch the light in a room on or off.", room=("string", "room", ROOMS),
          on=("boolean", "true to switch on, false to switch off")),
]
# The full schemas travel in each example's `tools`; the prompt names the tools only: it opens every API example,
# and with each tool's parameters it would be most of the task's tokens on the tiny model (and overflow the tests'
# short max_length). Argument names are learned from the training calls.
API_SYSTEM = "Tools: " + ", ".join(t["name"] for t in TOOLS) + ". Reply with one JSON call, or say that no tool fits."


class TemplateError(UserInputError):
    """A template file that is missing or lacks a field."""


@lru_cache(maxsize=None)
def load_templates(lang: str) -> dict[str, Any]:
    path = TEMPLATE_DIR / f"{lang}.yaml"
    if not path.exists():
        raise TemplateError(f"no synthetic templates for language {lang!r} (expected {path})")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("math", "api", "pretrain"):
        if key not in data:
            raise TemplateError(f"{path}: missing top-level key {key!r}")
    return data


def template_languages() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


# The irrelevant requests in the templates, in order, and the slot each one fills.
IRRELEVANT_SLOTS = ("city", "name", "city", "name")
