"""What every task's dataset checks raise and warn with."""


class DatasetError(ValueError):
    """A dataset problem, with a message naming the file, the item and the fix."""


class DatasetWarning(UserWarning):
    """Something in a dataset that works but deserves a look (converted modes, empty images...)."""
