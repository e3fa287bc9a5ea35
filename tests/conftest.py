"""The `needs` mark: @pytest.mark.needs("deepspeed") (a name of tests/needs.py's CHECKS) runs that check before any
fixture of the test is built, so a missing extra fails (CI=true) or skips (otherwise) the test at once, with its one
line, instead of after minutes of fixtures or with an ImportError's traceback."""
import pytest

from needs import CHECKS


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(name): run tests/needs.py's CHECKS[name] before the test's fixtures")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        CHECKS[mark.args[0]]()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module's tiny models (`pytestmark = pytest.mark.usefixtures("one_thread")`): they
    gain nothing from more, and on a busy 2-core machine they get ~15x slower."""
    import torch  # here, not at the top: collecting the torch-free tests must not import it

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
