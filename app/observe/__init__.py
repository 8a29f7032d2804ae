"""What the gateway tells its operators: the request record, metrics, logs, and what they never
show.
"""
