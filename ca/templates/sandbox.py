"""Jinja's immutable sandbox, with a budget on what one rendering may spend.

The sandbox stops a template from reaching outside its data; it does nothing about a
template that runs for ever or builds a gigabyte string, and a template meets data its
author never saw (`templateData` and the CSR come from the requester). So each rendering
gets a `Budget`, and every place where a template can spend is metered against it:

* every `{% for %}` loop (the iterable is wrapped at compile time): at most
  `MAX_LOOP_STEPS` steps in all, across nested loops;
* CPU time, checked at each loop step, attribute lookup, call, filter and interpolation:
  at most `MAX_RENDER_SECONDS` of this thread's CPU;
* every value the template builds (`~`, `+`, `*`, `%`, filters, string methods): at most
  `MAX_VALUE_CHARS` long, refused *before* it is built where its size is known in advance
  (repetition, padding widths, `replace`), and numbers at most `MAX_INT_BITS` bits.

Recursive loops are refused at compile time; recursive macros end at Python's recursion
limit. A spent budget is a BadRequest naming which bound was reached.
"""

from __future__ import annotations

import contextvars
import functools
import operator
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, NoReturn

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ca.errors import BadRequest

__all__ = [
    "MAX_INT_BITS",
    "MAX_LOOP_STEPS",
    "MAX_RENDER_SECONDS",
    "MAX_VALUE_CHARS",
    "BoundedEnvironment",
    "Budget",
]

MAX_LOOP_STEPS = 10_000
MAX_RENDER_SECONDS = 1.0
MAX_VALUE_CHARS = 256 * 1024
MAX_INT_BITS = 4096

_LOOP_FILTER = "_metered_loop"
# The CPU clock is read on every 16th charge: cheap, and no stretch between two readings
# can be long (each charged operation is itself bounded).
_CLOCK_EVERY = 16


class Budget:
    """What one rendering may still spend; charged by the environment's hooks."""

    def __init__(
        self, *, loop_steps: int = MAX_LOOP_STEPS, seconds: float = MAX_RENDER_SECONDS
    ) -> None:
        self.loop_steps = loop_steps
        self.seconds = seconds
        self._steps_left = loop_steps
        self._charges = 0
        self._deadline = time.thread_time() + seconds

    def charge(self) -> None:
        self._charges += 1
        due = self._charges % _CLOCK_EVERY == 0 or self.seconds <= 0
        if due and time.thread_time() > self._deadline:
            raise BadRequest(f"template: ran for more than {self.seconds:g} s of CPU")

    def step(self) -> None:
        self._steps_left -= 1
        if self._steps_left < 0:
            raise BadRequest(f"template: its loops ran more than {self.loop_steps} steps")
        self.charge()


_budget: contextvars.ContextVar[Budget] = contextvars.ContextVar("template_budget")


def current() -> Budget:
    try:
        return _budget.get()
    except LookupError:
        raise RuntimeError("a template is rendered outside Budget.spending()") from None


class spending:
    """`with spending(budget): …` meters every rendering inside the block."""

    def __init__(self, budget: Budget) -> None:
        self._budget = budget
        self._token: contextvars.Token[Budget] | None = None

    def __enter__(self) -> Budget:
        self._token = _budget.set(self._budget)
        return self._budget

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _budget.reset(self._token)


# -- sizes -------------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _too_big(what: str) -> NoReturn:
    raise BadRequest(f"template: {what} would be longer than {MAX_VALUE_CHARS} characters")


def _sized(value: Any, what: str = "a value") -> Any:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        if len(value) > MAX_VALUE_CHARS:
            _too_big(what)
    elif _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise BadRequest(f"template: a number larger than {MAX_INT_BITS} bits")
    return value


def _int_arguments(args: Iterable[Any], what: str) -> None:
    """Counts, widths and lengths given to a filter or method are at most a value's size."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_VALUE_CHARS:
            raise BadRequest(f"template: {what}: the number {arg} is too large")


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")


def _printf_widths(fmt: str) -> None:
    for match in _PRINTF_SPEC.finditer(fmt):
        for number in match.groups():
            if number == "*":
                raise BadRequest("template: '*' widths in a % format are not supported")
            if number is not None and int(number) > MAX_VALUE_CHARS:
                _too_big("a formatted value")


def _format_widths(fmt: str) -> None:
    try:
        parts = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format itself will say what is wrong
    for _literal, _field, spec, _conversion in parts:
        if not spec:
            continue
        if "{" in spec:
            raise BadRequest("template: nested {} in a format spec are not supported")
        if any(int(number) > MAX_VALUE_CHARS for number in re.findall(r"\d+", spec)):
            _too_big("a formatted value")


def _replaced_length(text: str, old: Any, new: Any, count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    found = text.count(old)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    if len(text) + found * (len(new) - len(old)) > MAX_VALUE_CHARS:
        _too_big("a replaced string")


# -- operators ---------------------------------------------------------------------------


def _check_multiply(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, _SEQUENCES) and _is_int(times) and len(seq) * times > MAX_VALUE_CHARS:
            _too_big("a repeated value")
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise BadRequest(f"template: a product larger than {MAX_INT_BITS} bits")


def _check_power(base: Any, exponent: Any) -> None:
    if not (_is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1):
        return
    if (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
        raise BadRequest(f"template: a power larger than {MAX_INT_BITS} bits")


def _check_modulo(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _printf_widths(left)


_BEFORE: dict[str, Callable[[Any, Any], None]] = {
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_modulo,
}


# -- filters and methods -----------------------------------------------------------------


def _metered_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current()
    for item in iterable:
        budget.step()
        yield item


def _metered_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    # Filters marked pass_context/pass_environment/pass_eval_context get that first.
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(func)
    def metered(*args: Any, **kwargs: Any) -> Any:
        current().charge()
        value, rest = args[skip] if len(args) > skip else None, args[skip + 1 :]
        _int_arguments([*rest, *kwargs.values()], f"filter {name}")
        if name == "format" and isinstance(value, str):
            _printf_widths(value)
        elif name == "replace":
            _replaced_length(str(value), *rest[:3])
        result = func(*args, **kwargs)
        if isinstance(result, Sized):
            _sized(result, f"the result of filter {name}")
        return result

    return metered


def _check_method(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    wrapped = getattr(obj, "__wrapped__", None)
    if name in ("format", "format_map") and isinstance(getattr(wrapped, "__self__", None), str):
        _format_widths(wrapped.__self__)  # type: ignore[union-attr]
        return
    if isinstance(owner, _SEQUENCES):
        _int_arguments([*args, *kwargs.values()], f"method {name}")
        if name == "replace" and isinstance(owner, str):
            _replaced_length(owner, *args[:3])


# -- the environment -------------------------------------------------------------------


class _MeteredCodeGenerator(CodeGenerator):
    """Wraps every loop's iterable in the metering filter; builds `~` through the
    environment so its length is checked."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            if loop.recursive:
                self.fail("recursive loops are not supported", loop.lineno)
            loop.iter = nodes.Filter(
                loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
            )
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, metered (see the module's docstring)."""

    code_generator_class = _MeteredCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        # No constant folding at compile time: everything is evaluated, and metered, when
        # the template renders.
        super().__init__(optimized=False, **options)
        self.filters = {name: _metered_filter(name, f) for name, f in self.filters.items()}
        self.filters[_LOOP_FILTER] = _metered_loop

    def concat(self, values: Iterable[Any]) -> str:
        current().charge()
        parts = [str(value) for value in values]
        if sum(map(len, parts)) > MAX_VALUE_CHARS:
            _too_big("a joined string")
        return "".join(parts)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        current().charge()
        check = _BEFORE.get(operator_)
        if check is not None:
            check(left, right)
        return _sized(_BINOPS[operator_](left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().charge()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().charge()
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        current().charge()
        _check_method(obj, args, kwargs)
        return _sized(super().call(context, obj, *args, **kwargs))


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}
