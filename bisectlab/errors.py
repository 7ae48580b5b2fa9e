"""One error root: the CLI turns any BisectlabError into one line on stderr and exit 2."""


class BisectlabError(Exception):
    """Bad input or an impossible request; the message is the whole story, one line."""


class HistoryError(BisectlabError):
    """A history or scenario file is missing, malformed, or a ref does not resolve."""


class RangeError(BisectlabError):
    """GOOD..BAD is not a bisectable range."""


class StoreError(BisectlabError):
    """The results database cannot be opened or is not a bisectlab database."""
