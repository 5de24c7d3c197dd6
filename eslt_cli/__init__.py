"""eslt: lottery tickets in evolution strategies (Lange & Sprekeler, ICML 2023)."""

__version__ = "0.1.0"
