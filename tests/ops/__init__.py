"""Operations tests: real gateway processes, a real Redis, workers, outages, logs, shutdown."""
