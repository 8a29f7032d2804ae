"""The HTTP server under the gateway: uvicorn's protocol held to the gateway's connection limits,
the event loop that serves it, and process memory.
"""
