"""Facts about the running process that runs, trials and benchmarks record beside their
results, and the progress bar long work shows."""

import resource

from tqdm.auto import tqdm


def peak_rss_mb():
    """This process's peak resident memory so far, in MB (Linux reports ``ru_maxrss`` in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def progress(iterable=None, show=True, **kwargs):
    """A tqdm bar with its time estimate. ``show_progress: False`` (the comparison's quiet mode)
    does not silence it: the bar is redrawn once a minute instead, so a long pretraining run
    still says where it is and how long it has left."""
    return tqdm(iterable, mininterval=0.1 if show else 60, ascii=not show, **kwargs)


def machine_description(device):
    """``"x86_64, 16 cores, NVIDIA H100 80GB HBM3"``: where a result was measured."""
    import os
    import platform

    import torch

    text = f"{platform.machine()}, {os.cpu_count()} cores"
    if str(device).startswith("cuda") and torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(torch.device(device))}"
    return text
