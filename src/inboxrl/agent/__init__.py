"""The agent loop: prompt, episode state machine, drivers that run many episodes at once."""
