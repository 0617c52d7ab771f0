"""Questions with verified answers: the ART-E format, loading, generation and statistics."""
