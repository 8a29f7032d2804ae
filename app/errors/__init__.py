"""The gateway's error taxonomy; each error knows its OpenAI envelope (rendered in `app.api`).

GatewayError
├── InvalidRequest                400 invalid_request_error / invalid_value
│   ├── InvalidJSON               400 invalid_json
│   ├── MissingParameter          400 missing_required_parameter
│   ├── InvalidType               400 invalid_type
│   ├── UnsupportedParameter      400 unsupported_parameter
│   ├── ImageError                400 invalid_image
│   │   ├── ImageTooLarge         400 image_too_large
│   │   ├── TooManyImages         400 too_many_images
│   │   ├── ImageURLForbidden     400 image_url_forbidden
│   │   └── ImageFetchFailed      400 image_fetch_failed
│   ├── InvalidDocument           400 invalid_document
│   └── UpstreamRejected          400 upstream_rejected
├── RequestTooLarge               413 request_too_large
├── RequestTimeout                408 request_timeout
├── RequestHeaderTooLarge         431 request_header_too_large
├── AuthenticationFailed          401 authentication_error / invalid_api_key
├── ModelNotAllowed               403 permission_error / model_not_allowed
├── ModelNotFound                 404 model_not_found
├── ResponseNotFound              404 response_not_found
├── ItemNotFound                  404 item_not_found
├── RouteNotFound                 404 not_found
├── MethodNotAllowed              405 method_not_allowed
├── RateLimited                   429 rate_limit_error / rate_limit_exceeded
│   └── UpstreamRateLimited       429 upstream_rate_limited
├── UpstreamError                 502 upstream_error / upstream_failed
│   ├── UpstreamAuthFailed        502 upstream_auth_failed
│   ├── UpstreamJobFailed         502 job_failed
│   ├── UpstreamUnavailable       503 upstream_unavailable
│   └── UpstreamTimeout           504 upstream_timeout
├── ServerBusy                    503 server_error / server_busy
├── ClientClosedRequest           499 client_closed_request (logged; nobody reads it)
└── InternalError                 500 server_error
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None

    def __init__(
        self, message: str, *, param: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.provider: str | None = None  # the provider that failed, for logs and metrics

    @property
    def retryable(self) -> bool:
        """Whether another deployment might succeed where this one failed."""
        return False

    def to_envelope(self) -> dict[str, object]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    """The request is malformed or asks for something the gateway cannot do."""

    status_code = 400
    type = "invalid_request_error"
    code = "invalid_value"


class InvalidJSON(InvalidRequest):
    """The body is not JSON."""

    code = "invalid_json"


class MissingParameter(InvalidRequest):
    """A required field is missing (`param` names it)."""

    code = "missing_required_parameter"


class InvalidType(InvalidRequest):
    """A field holds a value of the wrong JSON type (`"stream": "yes"`)."""

    code = "invalid_type"


class UnsupportedParameter(InvalidRequest):
    """A field that changes the answer and that the chosen provider cannot honour."""

    code = "unsupported_parameter"


class InvalidDocument(InvalidRequest):
    """A document could not be used: not a PDF, corrupt, encrypted, or over a limit."""

    code = "invalid_document"


class ImageError(InvalidRequest):
    """An image could not be used: undecodable, not an image, or degenerate."""

    code = "invalid_image"


class ImageTooLarge(ImageError):
    """An image over the byte or pixel limit."""

    code = "image_too_large"


class TooManyImages(ImageError):
    """More images than the configuration or the provider allows."""

    code = "too_many_images"


class ImageURLForbidden(ImageError):
    """An image URL with a refused scheme or address."""

    code = "image_url_forbidden"


class ImageFetchFailed(ImageError):
    """An image URL that could not be fetched."""

    code = "image_fetch_failed"


class UpstreamRejected(InvalidRequest):
    """The upstream refused the request as invalid (its 4xx)."""

    code = "upstream_rejected"


class RequestTooLarge(GatewayError):
    """The body is over `server.max_request_bytes`."""

    status_code = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RequestTimeout(GatewayError):
    """The request's head or body did not arrive within the server's read timeouts."""

    status_code = 408
    type = "invalid_request_error"
    code = "request_timeout"


class RequestHeaderTooLarge(GatewayError):
    """The request line and headers are over `server.max_header_bytes`."""

    status_code = 431
    type = "invalid_request_error"
    code = "request_header_too_large"


class AuthenticationFailed(GatewayError):
    """A missing or wrong gateway key."""

    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class ModelNotAllowed(GatewayError):
    """The gateway key may not use this model."""

    status_code = 403
    type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(GatewayError):
    """No configured route serves this model."""

    status_code = 404
    type = "invalid_request_error"
    code = "model_not_found"


class ResponseNotFound(GatewayError):
    """A stored response that is unknown, expired, deleted or another key's."""

    status_code = 404
    type = "invalid_request_error"
    code = "response_not_found"


class ItemNotFound(GatewayError):
    """An `item_reference` to an output item that is unknown, expired, deleted or another
    key's."""

    status_code = 404
    type = "invalid_request_error"
    code = "item_not_found"


class RouteNotFound(GatewayError):
    """An unknown path."""

    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    """A known path with the wrong method."""

    status_code = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RateLimited(GatewayError):
    """The gateway's own rate limit was reached."""

    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamRateLimited(RateLimited):
    """The upstream answered 429; its `Retry-After` is passed on."""

    code = "upstream_rate_limited"

    @property
    def retryable(self) -> bool:
        return True


class UpstreamError(GatewayError):
    """The upstream failed: a 5xx, or a reply the gateway cannot read."""

    status_code = 502
    type = "upstream_error"
    code = "upstream_failed"

    @property
    def retryable(self) -> bool:
        return True


class UpstreamAuthFailed(UpstreamError):
    """The upstream refused the gateway's credential: a configuration problem, not the client's."""

    code = "upstream_auth_failed"

    @property
    def retryable(self) -> bool:
        return False


class UpstreamJobFailed(UpstreamError):
    """An upstream job ended in a failed state."""

    code = "job_failed"

    @property
    def retryable(self) -> bool:
        return False


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached."""

    status_code = 503
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    """The request's deadline (`timeout_s`) passed."""

    status_code = 504
    code = "upstream_timeout"


class ServerBusy(GatewayError):
    """The worker holds `server.max_connections` connections already; retry shortly."""

    status_code = 503
    type = "server_error"
    code = "server_busy"


class ClientClosedRequest(GatewayError):
    """The client went away before its answer was ready; nobody reads this one."""

    status_code = 499
    type = "invalid_request_error"
    code = "client_closed_request"


class InternalError(GatewayError):
    """Anything unexpected; the details stay in the log."""

    status_code = 500
    type = "server_error"
    code = None
