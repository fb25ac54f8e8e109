"""Converting one submitted value to the type its component declares, and checking its rules.

Each rule is the one form-js applies in the browser (``Validator.js``, unchanged from form-js
1.11, the version behind Camunda 8.6, to 1.23), so a form behaves the same in the panel as in
Tasklist; the messages are the panel's own, in the participant's language.

The rules look at the text as typed, with JavaScript's semantics: a ``pattern`` is a
JavaScript regular expression tested on the whole value (:mod:`panel_core.feel.jsregex`),
and ``minLength``/``maxLength`` count the UTF-16 code units of the value with JavaScript's
``trim()`` applied, as ``value.trim().length`` does. The answer kept is the text trimmed; so
that a required answer is never empty, a text of spaces alone does not count as given (form-js
would accept it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from panel_core.feel._js import JS_SPACE, utf16_length
from panel_core.feel.jsregex import JsRegex, JsRegexError, compile_js
from panel_core.forms.schema import (
    FORM_ZONE,
    MULTIPLE_TYPES,
    Option,
    display_text,
    feel_number,
    find_option,
    js_number,
    options_of,
    shown_text,
    token_of,
)
from panel_core.i18n import gettext as _
from panel_core.i18n import ngettext

# form-js' own patterns (packages/form-js-viewer/src/core/Validator.js), tested with
# RegExp.test: a search, anchored only where the pattern itself says so.
EMAIL_PATTERN = compile_js(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
PHONE_PATTERN = compile_js(
    r"(\+|00)(297|93|244|1264|358|355|376|971|54|374|1684|1268|61|43|994|257|32|229|226|880|"
    r"359|973|1242|387|590|375|501|1441|591|55|1246|673|975|267|236|1|61|41|56|86|225|237|243|"
    r"242|682|57|269|238|506|53|5999|61|1345|357|420|49|253|1767|45|1809|1829|1849|213|593|20|"
    r"291|212|34|372|251|358|679|500|33|298|691|241|44|995|44|233|350|224|590|220|245|240|30|"
    r"1473|299|502|594|1671|592|852|504|385|509|36|62|44|91|246|353|98|964|354|972|39|1876|44|"
    r"962|81|76|77|254|996|855|686|1869|82|383|965|856|961|231|218|1758|423|94|266|370|352|"
    r"371|853|590|212|377|373|261|960|52|692|389|223|356|95|382|976|1670|258|222|1664|596|230|"
    r"265|60|262|264|687|227|672|234|505|683|31|47|977|674|64|968|92|507|64|51|63|680|675|48|"
    r"1787|1939|850|351|595|970|689|974|262|40|7|250|966|249|221|65|500|4779|677|232|503|378|"
    r"252|508|381|211|239|597|421|386|46|268|1721|248|963|1649|235|228|66|992|690|993|670|676|"
    r"1868|216|90|688|886|255|256|380|598|1|998|3906698|379|1784|58|1284|1340|84|678|681|685|"
    r"967|27|260|263)(9[976]\d|8[987530]\d|6[987]\d|5[90]\d|42\d|3[875]\d|2[98654321]\d|9[8543210]|"
    r"8[6421]|6[6543210]|5[87654321]|4[987654310]|3[9643210]|2[70]|7|1)\d{4,20}$"
)

_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)")
# Thousands separators people type: spaces, no-break spaces, narrow no-break spaces.
_SEPARATORS = re.compile(r"[ \u00a0\u202f]")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(
    r"(\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}(?::?\d{2})?)?", re.IGNORECASE
)
TIME_FORMAT_OFFSET = "utc_offset"
TIME_FORMAT_UTC = "utc_normalized"


def compile_pattern(pattern: str) -> JsRegex:
    """A ``validate.pattern`` as form-js builds it: ``new RegExp(pattern)``, without flags.

    Raises :class:`~panel_core.feel.jsregex.JsRegexError` for what JavaScript refuses and
    for what the server cannot evaluate with JavaScript's meaning.
    """
    return compile_js(pattern)


def js_length(text: str) -> int:
    """``text.trim().length``: JavaScript's trim, then UTF-16 code units."""
    return utf16_length(text.strip(JS_SPACE))


def field_label(component: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """How messages name a field: its label, else its date or time label, else its key."""
    for attribute in ("label", "dateLabel", "timeLabel"):
        text = shown_text(component.get(attribute), context).strip()
        if text:
            return text
    return str(component.get("key", ""))


def _rules(component: Mapping[str, Any]) -> Mapping[str, Any]:
    validate = component.get("validate")
    return validate if isinstance(validate, Mapping) else {}


def _scalar(raw: Any) -> str:
    """One text value; a field sent more than once counts by its first value."""
    if isinstance(raw, list):
        raw = next((item for item in raw if item is not None), None)
    if raw is None or isinstance(raw, Mapping | list):
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | Decimal):
        return js_number(raw)
    return str(raw)


def convert(
    component: Mapping[str, Any],
    raw: Any,
    *,
    context: Mapping[str, Any] | None = None,
    variables: Mapping[str, Any] | None = None,
    today: date | None = None,
) -> tuple[Any, str | None]:
    """(value, error) for one field; the value is None when the field was left empty.

    ``context`` is the FEEL context of the field's scope (for FEEL rules and option lists),
    ``variables`` the task's variables (for ``valuesKey``), ``today`` the date
    ``disallowPassedDates`` compares with.
    """
    context = context or {}
    kind = component.get("type")
    label = field_label(component, context)
    required = bool(_rules(component).get("required"))
    if kind == "filepicker":
        # The upload code answers for file pickers.
        return None, None
    if kind == "checkbox":
        checked = raw is True or _scalar(raw).lower() in {"true", "on", "1"}
        if required and not checked:
            return checked, _("Select “%(label)s” to continue.", label=label)
        return checked, None
    if kind in {"select", "radio", "checklist", "taglist"}:
        options = options_of(component, variables or {}, context)
        if kind in MULTIPLE_TYPES:
            return _choices(options, raw, label, required)
        return _choice(options, raw, label, required)
    if kind == "textarea":
        typed = _scalar(raw).replace("\r\n", "\n").replace("\r", "\n")
    else:
        # form-js turns line breaks in a one-line field into spaces.
        typed = re.sub(r"[\r\n\t]", " ", _scalar(raw))
    text = typed.strip()
    if kind in {"textfield", "textarea"} and typed:
        error = _text_rules(component, typed, label, context)
        if error:
            return text or None, error
    if not text:
        if required:
            return None, _("Enter “%(label)s”.", label=label)
        return None, None
    if kind == "number":
        return _number(component, text, label, context)
    if kind == "datetime":
        return _datetime(component, text, label, today)
    return text, None


def file_answer(
    component: Mapping[str, Any], ids: Sequence[str], *, context: Mapping[str, Any] | None = None
) -> tuple[list[str] | None, str | None]:
    """(answer, error) of a file picker: the ids of the documents uploaded to it (the last
    one alone when it takes a single file); ``validate.required`` as form-js has it, unless
    the field is disabled, which form-js does not validate."""
    if ids:
        return (list(ids) if component.get("multiple", True) else list(ids[-1:])), None
    if _rules(component).get("required") and not component.get("disabled"):
        label = field_label(component, context or {})
        return None, _("Add “%(label)s”.", label=label)
    return None, None


def _choice(options: list[Option], raw: Any, label: str, required: bool) -> tuple[Any, str | None]:
    if isinstance(raw, list):
        raw = next((item for item in raw if item not in (None, "")), None)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, (_("Choose “%(label)s”.", label=label) if required else None)
    option = find_option(options, raw)
    if option is None:
        return _scalar(raw), _("Choose one of the options for “%(label)s”.", label=label)
    return option.value, None


def _choices(options: list[Option], raw: Any, label: str, required: bool) -> tuple[Any, str | None]:
    items = raw if isinstance(raw, list) else ([] if raw in (None, "") else [raw])
    chosen: list[Any] = []
    tokens: set[str] = set()
    for item in items:
        if isinstance(item, str) and not item:
            continue
        option = find_option(options, item)
        if option is None:
            return [], _("Choose one of the options for “%(label)s”.", label=label)
        if option.token not in tokens:
            tokens.add(option.token)
            chosen.append(option.value)
    if required and not chosen:
        return chosen, _("Select at least one option for “%(label)s”.", label=label)
    return chosen, None


def _number(
    component: Mapping[str, Any], text: str, label: str, context: Mapping[str, Any]
) -> tuple[Any, str | None]:
    compact = _SEPARATORS.sub("", text)
    if not _NUMBER.fullmatch(compact):
        return text, _("“%(label)s” must be a number.", label=label)
    try:
        number = Decimal(compact.replace(",", "."))
    except InvalidOperation:
        return text, _("“%(label)s” must be a number.", label=label)
    digits = component.get("decimalDigits")
    if isinstance(digits, int | str) and str(digits).isdigit():
        allowed = int(digits)
        exponent = number.normalize().as_tuple().exponent
        decimals = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        if decimals > allowed:
            if allowed == 0:
                return text, _("“%(label)s” must be a whole number.", label=label)
            return text, ngettext(
                "“%(label)s” can have at most %(num)s decimal place.",
                "“%(label)s” can have at most %(num)s decimal places.",
                allowed,
                label=label,
            )
    step = feel_number(component.get("increment"), context)
    if step is not None and step > 0 and number % step != 0:
        lower = (number / step).to_integral_value(rounding=ROUND_FLOOR) * step
        return text, _(
            "Enter a valid value for “%(label)s”: the two nearest are %(lower)s and %(upper)s.",
            label=label,
            lower=_plain(lower),
            upper=_plain(lower + step),
        )
    rules = _rules(component)
    minimum = feel_number(rules.get("min"), context)
    if minimum is not None and number < minimum:
        return text, _("“%(label)s” must be at least %(min)s.", label=label, min=_plain(minimum))
    maximum = feel_number(rules.get("max"), context)
    if maximum is not None and number > maximum:
        return text, _("“%(label)s” must be at most %(max)s.", label=label, max=_plain(maximum))
    if component.get("serializeToString"):
        return format(number, "f"), None
    if number == number.to_integral_value():
        return int(number), None
    return float(number), None


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f") if number != 0 else "0"


def _text_rules(
    component: Mapping[str, Any], typed: str, label: str, context: Mapping[str, Any]
) -> str | None:
    """The first rule the text, as typed, breaks: form-js' checks in its order."""
    rules = _rules(component)
    pattern = rules.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            matched = compile_pattern(pattern).test(typed)
        except JsRegexError:
            # Refused when the form is checked; a form deployed around the check is not
            # judged by a rule the server cannot read.
            matched = True
        if not matched:
            message = rules.get("patternErrorMessage")
            if isinstance(message, str) and message.strip():
                return message.strip()
            return _("“%(label)s” is not in the expected format.", label=label)
    minimum = feel_number(rules.get("minLength"), context)
    if minimum is not None and js_length(typed) < minimum:
        return _(
            "“%(label)s” must be at least %(min)s characters.", label=label, min=_plain(minimum)
        )
    maximum = feel_number(rules.get("maxLength"), context)
    if maximum is not None and js_length(typed) > maximum:
        return _(
            "“%(label)s” must be %(max)s characters or fewer.", label=label, max=_plain(maximum)
        )
    kind = rules.get("validationType")
    if kind == "phone" and not PHONE_PATTERN.test(typed):
        return _(
            "Enter “%(label)s” as an international phone number without spaces, like +48601234567.",
            label=label,
        )
    if kind == "email" and not EMAIL_PATTERN.test(typed):
        return _("Enter “%(label)s” as an email address, like name@example.com.", label=label)
    return None


# Dates and times.


def parse_date(text: str) -> date | None:
    match = _DATE.fullmatch(text.strip())
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def parse_time(text: str) -> tuple[int, int | None] | None:
    """Minutes after midnight and the UTC offset in minutes, if the text has one."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    if hour > 23 or minute > 59:
        return None
    offset = None
    if match[3]:
        sign = -1 if match[3].startswith("-") else 1
        digits = re.sub(r"\D", "", match[3])
        offset = (
            0 if match[3].upper() == "Z" else sign * (int(digits[:2]) * 60 + int(digits[2:] or 0))
        )
    return hour * 60 + minute, offset


def local_datetime(on: date, minutes: int, offset: int | None) -> tuple[date, int]:
    """A date and time written with an offset, as the wall clock in the panel's zone."""
    if offset is None:
        return on, minutes
    written = datetime.combine(on, time(0), tzinfo=timezone(timedelta(minutes=offset)))
    local = (written + timedelta(minutes=minutes)).astimezone(FORM_ZONE)
    return local.date(), local.hour * 60 + local.minute


def serialise_time(minutes: int, on: date | None, style: Any) -> str:
    """A time as form-js submits it, in the field's ``timeSerializingFormat``."""
    wall = time(minutes // 60, minutes % 60)
    if style not in (TIME_FORMAT_OFFSET, TIME_FORMAT_UTC):
        return f"{wall:%H:%M}"
    if on is None:
        raise ValueError("a time with a time zone needs today's date")
    moment = datetime.combine(on, wall, tzinfo=FORM_ZONE)
    if style == TIME_FORMAT_UTC:
        return f"{moment.astimezone(UTC):%H:%M}Z"
    return f"{wall:%H:%M}{_offset(moment)}"


def serialise_datetime(on: date, minutes: int, style: Any) -> str:
    wall = time(minutes // 60, minutes % 60)
    moment = datetime.combine(on, wall, tzinfo=FORM_ZONE)
    if style == TIME_FORMAT_UTC:
        utc = moment.astimezone(UTC)
        return f"{utc.date().isoformat()}T{utc:%H:%M}Z"
    if style == TIME_FORMAT_OFFSET:
        return f"{on.isoformat()}T{wall:%H:%M}{_offset(moment)}"
    return f"{on.isoformat()}T{wall:%H:%M}"


def _offset(moment: datetime) -> str:
    delta = moment.utcoffset() or timedelta(0)
    total = int(delta.total_seconds() // 60)
    sign = "-" if total < 0 else "+"
    return f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def split_datetime(value: str, subtype: Any, today: date | None) -> tuple[str, str]:
    """A stored date, time or date-time as what the page's date and time inputs show."""
    value = value.strip()
    if subtype == "time":
        parsed = parse_time(value)
        if parsed is None:
            return "", value
        minutes, offset = parsed
        if offset is not None and today is not None:
            minutes = local_datetime(today, minutes, offset)[1]
        return "", f"{minutes // 60:02d}:{minutes % 60:02d}"
    day_text, _sep, time_text = value.partition("T")
    day = parse_date(day_text)
    if subtype != "datetime" or day is None:
        return day_text, ""
    parsed = parse_time(time_text)
    if parsed is None:
        return day.isoformat(), time_text
    day, minutes = local_datetime(day, *parsed)
    return day.isoformat(), f"{minutes // 60:02d}:{minutes % 60:02d}"


def _datetime(
    component: Mapping[str, Any], text: str, label: str, today: date | None
) -> tuple[Any, str | None]:
    subtype = component.get("subtype") or "date"
    style = component.get("timeSerializingFormat")
    required = bool(_rules(component).get("required"))
    if subtype == "time":
        parsed = parse_time(text)
        if parsed is None:
            return text, _("Enter “%(label)s” as a time, like 14:30.", label=label)
        minutes, offset = parsed
        if offset is not None:
            if today is None:
                raise ValueError("a time with a time zone needs today's date")
            minutes = local_datetime(today, minutes, offset)[1]
        return serialise_time(minutes, today, style), None
    day_text, _sep, time_text = text.partition("T")
    day_text, time_text = day_text.strip(), time_text.strip()
    if subtype == "datetime" and not (day_text and time_text):
        if not day_text and not time_text and not required:
            return None, None
        return text, _("Enter both a date and a time for “%(label)s”.", label=label)
    day = parse_date(day_text)
    if day is None:
        return text, _("Enter “%(label)s” as a real date.", label=label)
    minutes = 0
    if subtype == "datetime":
        parsed = parse_time(time_text)
        if parsed is None:
            return text, _("Enter “%(label)s” as a time, like 14:30.", label=label)
        day, minutes = local_datetime(day, *parsed)
    if component.get("disallowPassedDates"):
        if today is None:
            raise ValueError("disallowPassedDates needs today's date")
        if day < today:
            return text, _("“%(label)s” must be today or later.", label=label)
    if subtype == "datetime":
        return serialise_datetime(day, minutes, style), None
    return day.isoformat(), None


def page_value(
    component: Mapping[str, Any], value: Any, today: date | None
) -> tuple[Any, str] | None:
    """A stored value (a variable, a default) as the page's fields hold it.

    Returns (what the field holds, what a date-and-time field's time part holds), or None
    when there is nothing to show.
    """
    kind = component.get("type")
    if value is None:
        return None
    if kind == "checkbox":
        return ("true" if value is True else ""), ""
    if kind in MULTIPLE_TYPES:
        return ([token_of(item) for item in value] if isinstance(value, list) else []), ""
    if kind in {"select", "radio"}:
        return token_of(value), ""
    if isinstance(value, Mapping | list) or (kind == "number" and isinstance(value, bool)):
        return None
    if kind == "datetime":
        if not isinstance(value, str):
            return None
        subtype = component.get("subtype") or "date"
        day, clock = split_datetime(value, subtype, today)
        return (clock, "") if subtype == "time" else (day, clock)
    return display_text(value), ""
