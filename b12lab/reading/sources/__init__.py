"""Input formats turned into cells or observations for the reading layer."""
