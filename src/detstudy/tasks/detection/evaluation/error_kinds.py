"""The TIDE error types in report order, with TIDE's short names (no imports: the figures and
the report name them without loading the evaluation code)."""

ERRORS = ("classification", "localisation", "both", "duplicate", "background", "missed")
SHORT_NAMES = {"classification": "Cls", "localisation": "Loc", "both": "Both", "duplicate": "Dupe",
               "background": "Bkg", "missed": "Miss"}
