"""What every task's dataset checks raise and warn with."""


class DatasetError(ValueError):
    """A dataset problem, with a message naming the file, the item and the fix."""


class DatasetWarning(UserWarning):
    """Something in a dataset that works but deserves a look (converted modes, empty images...)."""


def problems_message(name: str, problems: dict[str, list[str]], max_listed: int = 20) -> str:
    """One split's problems by kind, at most ``max_listed`` of each kind (the rest counted)."""
    total = sum(len(v) for v in problems.values())
    lines = [f"split {name!r}: {total} problem(s)"]
    for kind, texts in problems.items():
        lines += [f"  [{kind}] {text}" for text in texts[:max_listed]]
        if len(texts) > max_listed:
            lines.append(f"  [{kind}] ... and {len(texts) - max_listed} more")
    return "\n".join(lines)
