"""The scoring stage: reads a finished trajectory (and a judge's verdict) and fills its rubric, reward and cost."""
