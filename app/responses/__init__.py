"""The Responses API (`/v1/responses`) translated to and from the internal chat request."""
