"""The one exception type weightreport raises for bad input."""


class WeightReportError(Exception):
    """Bad input or an unusable path: the message says what is wrong and what to do.

    The command line turns it into one line on stderr and exit code 2.
    """
