"""Mail sent once: the one record and the one job every domain app sends its e-mail through."""
