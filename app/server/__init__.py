"""The process under the gateway: the HTTP server (uvicorn's protocol held to the gateway's
connection limits), the event loop that serves it, the worker threads that take blocking work
off it, and process memory.
"""
