"""The template engine: Jinja, sandboxed, where every interpolated value is JSON.

Certificate templates produce JSON, and the values interpolated into them come from the
requester (token claims, the CSR, request `templateData`). Injection is impossible by
construction rather than by author discipline:

* every `{{ … }}` is written by the engine as `json.dumps(value)`: a subject of
  `a", "isCA": true, "x": "` becomes one JSON string literal, never structure. Authors
  write `{"commonName": {{ subject.commonName }}}`, without quotes, and build strings
  with `{{ "prefix-" ~ value }}`;
* each interpolation is framed by tabs, which are whitespace between JSON tokens but
  forbidden inside a JSON string: a `{{ … }}` placed inside a quoted string can never
  parse, so no value can ever be read as anything but one whole JSON value;
* rendering runs in Jinja's immutable sandbox (no attribute escapes such as
  `''.__class__`, no mutation of the data), with no loader (no include, import or
  extends), undefined names are errors, and template and output sizes are bounded;
* each rendering has a budget (`ca.templates.sandbox`): loop steps, CPU time and the
  size of every value it builds, so neither requester data nor a careless or hostile
  template can hold a thread for long or fill memory.

`render_json` is format-agnostic; `ca.templates.x509` gives the result its meaning.
"""

from __future__ import annotations

import functools
import json
import traceback
from collections.abc import Mapping
from typing import Any, NoReturn

import jinja2

from ca.errors import BadRequest
from ca.templates.sandbox import BoundedEnvironment, Budget, current, spending

__all__ = ["MAX_OUTPUT_BYTES", "MAX_TEMPLATE_BYTES", "TemplateFail", "render_json"]

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_OUTPUT_BYTES = 256 * 1024
_TEMPLATE_NAME = "<template>"
_FRAME = "\t"


class TemplateFail(BadRequest):
    """Raised by `fail(message)` in a template: the message is returned to the client."""


def render_json(template: str, data: Mapping[str, Any], budget: Budget | None = None) -> Any:
    """Render `template` with `data` and return the decoded JSON document.

    Every failure is a BadRequest whose message starts with "template:", except
    `fail(message)`, whose message is passed through as the author wrote it. The
    rendering spends at most `budget` (by default the standard one).
    """
    if len(template.encode("utf-8")) > MAX_TEMPLATE_BYTES:
        raise BadRequest(f"template: larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    compiled = _compile(template)
    with spending(budget or Budget()):
        output = _render(compiled, data)
    return _decode(output)


@functools.lru_cache(maxsize=64)
def _compile(template: str) -> jinja2.Template:
    try:
        return _ENVIRONMENT.from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise BadRequest(f"template: line {err.lineno}: {err.message}") from None


def _render(compiled: jinja2.Template, data: Mapping[str, Any]) -> str:
    chunks: list[str] = []
    size = 0
    try:
        # Streamed, so an output that grows without bound is stopped as soon as it is
        # too big rather than after it has been built.
        for chunk in compiled.generate(dict(data)):
            size += len(chunk.encode("utf-8"))
            if size > MAX_OUTPUT_BYTES:
                raise BadRequest(f"template: output larger than {MAX_OUTPUT_BYTES // 1024} KiB")
            chunks.append(chunk)
    except BadRequest:
        raise
    except jinja2.TemplateError as err:
        raise BadRequest(f"template: {_where(err)}{err.message or type(err).__name__}") from None
    except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as err:
        raise BadRequest(f"template: {_where(err)}{err}") from None
    except MemoryError:
        raise BadRequest("template: ran out of memory") from None
    return "".join(chunks)


def _decode(output: str) -> Any:
    try:
        return json.loads(output, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno} of the output"
        if output[err.pos : err.pos + 1] == _FRAME:
            raise BadRequest(
                f"template: {where}: a {{{{ … }}}} is inside a quoted string; remove the "
                'quotes, the engine writes them (build strings with {{ "prefix-" ~ value }})'
            ) from None
        raise BadRequest(f"template: {where} is not valid JSON: {err.msg}") from None


def _finalize(value: Any) -> str:
    current().charge()
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing variable
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise BadRequest(
            f"template: a value of type {type(value).__name__} cannot be written as JSON"
        ) from None
    return f"{_FRAME}{encoded}{_FRAME}"


def _fail(message: object) -> NoReturn:
    raise TemplateFail(str(message))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest(f"template: duplicate field {key!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise BadRequest(f"template: {name} is not valid JSON")


def _where(err: BaseException) -> str:
    """ "line N: " for the template line an error was raised on, when Jinja tells us."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(err.__traceback__)
        if frame.filename == _TEMPLATE_NAME
    ]
    return f"line {lines[-1]}: " if lines else ""


def _make_environment() -> BoundedEnvironment:
    env = BoundedEnvironment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        loader=None,
        keep_trailing_newline=True,
    )
    # Only what templates need: no lipsum, cycler or joiner.
    env.globals = {
        "range": env.globals["range"],  # the sandbox's bounded range
        "dict": dict,
        "namespace": env.globals["namespace"],
        "fail": _fail,
    }
    return env


_ENVIRONMENT = _make_environment()
