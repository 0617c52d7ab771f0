"""The agent's tools: search_inbox, read_email, return_final_answer, scoped to one inbox and a date."""
