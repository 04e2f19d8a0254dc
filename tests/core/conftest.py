import pytest


@pytest.fixture
def one_torch_thread(monkeypatch):
    """The test machine is shared by several processes: one torch thread each (training.cpu_threads)."""
    import torch
    from ticketclient import training

    before = torch.get_num_threads()
    monkeypatch.setenv(training.TORCH_THREADS_ENV, "1")
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
