"""One error root: the CLI turns any BisectlabError into one line on stderr and exit 2."""


def clipped(text: str, width: int = 60) -> str:
    """Text as an error line shows it: a long one is cut, not echoed whole."""
    return text if len(text) <= width else f"{text[:width - 3]}..."


class BisectlabError(Exception):
    """Bad input or an impossible request; the message is the whole story, one line."""


class HistoryError(BisectlabError):
    """A history or scenario file is missing, malformed, or a ref does not resolve."""


class RangeError(BisectlabError):
    """GOOD..BAD is not a bisectable range."""


class StoreError(BisectlabError):
    """The results database cannot be opened or is not a bisectlab database."""


class CannotResume(StoreError):
    """A stopped hunt's log and the hunt set up again part: resuming it cannot go on."""


class HuntStopped(BisectlabError):
    """A hunt under way stopped without a verdict (its run command asked, or git or the database
    failed): the tests it logged are kept, and `bisectlab resume` goes on with it."""

    def __init__(self, message: str, hunt_id: int):
        super().__init__(message)
        self.hunt_id = hunt_id
