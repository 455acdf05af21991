"""Facts about the running process that runs, trials and benchmarks record beside their results."""

import resource


def peak_rss_mb():
    """This process's peak resident memory so far, in MB (Linux reports ``ru_maxrss`` in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
