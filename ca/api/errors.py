"""The one place an exception becomes an HTTP status and step-ca's `{"status","message"}` body.

Clients (step's CLI among them) show `message` to people, so it is step-ca's sentence for the
status; the precise reason goes to the log, never a stack trace to the client.
"""

from __future__ import annotations

from http import HTTPStatus

from ca.api.responses import GoJSONResponse, json_response
from ca.errors import AuthError, BadRequest, Busy, CAError, PolicyError, status_for

UNAUTHORIZED = (
    "The request lacked necessary authorization to be completed. "
    "Please see the certificate authority logs for more info."
)
NOT_FOUND = (
    "The requested resource could not be found. "
    "Please see the certificate authority logs for more info."
)
INTERNAL = (
    "The certificate authority encountered an Internal Server Error. "
    "Please see the certificate authority logs for more info."
)
UNAVAILABLE = (
    "The certificate authority cannot reach its database; nothing was issued or changed. "
    "Please retry shortly."
)
RETRY_AFTER = "2"
"""Seconds a client is asked to wait after a 503."""
NOT_IMPLEMENTED = (
    "The requested method is not implemented by the certificate authority. "
    "Please see the certificate authority logs for more info."
)


def public_message(exc: BaseException, status: int) -> str:
    if isinstance(exc, BadRequest):
        return f"The request could not be completed: {exc.message}."
    if isinstance(exc, PolicyError):
        return f"The request was forbidden by the certificate authority: {exc.message}."
    if isinstance(exc, AuthError):
        return UNAUTHORIZED
    if isinstance(exc, Busy):
        return f"The certificate authority is busy: {exc.message}. Please retry shortly."
    if isinstance(exc, CAError) and status not in (401, 404, 500, 501, 503):
        return exc.message
    return message_for_status(status)


def message_for_status(status: int) -> str:
    return {
        401: UNAUTHORIZED,
        404: NOT_FOUND,
        500: INTERNAL,
        501: NOT_IMPLEMENTED,
        503: UNAVAILABLE,
    }.get(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error")


def error_response(status: int, message: str | None = None) -> GoJSONResponse:
    response = json_response(
        {"status": status, "message": message or message_for_status(status)}, status
    )
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def response_for(exc: BaseException) -> GoJSONResponse:
    status = status_for(exc)
    return error_response(status, public_message(exc, status))


def reason(exc: BaseException) -> str:
    """What the log says about a failure (never sent to the client)."""
    if isinstance(exc, CAError):
        return exc.message
    return f"{exc.__class__.__name__}: {exc}"
