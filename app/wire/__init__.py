"""The OpenAI wire: request and answer models, reading a request body, validation errors, SSE, data
URIs.
"""
