"""The chat service: routing a request to deployments, attempts, retries, failover, deadlines,
limits and answers.
"""
