"""Translation of English task data into parallel multilingual data: backends, structure preservation,
validators with a retry -> flag -> exclude policy, and a SQLite segment cache."""
