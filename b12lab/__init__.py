"""b12lab: what vitamin B12 status implies for platelets, neutrophils and ferritin."""

__version__ = "0.1.0"
