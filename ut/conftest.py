import os
import sys

os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("GLOG_v", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytest  # noqa: E402

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


@pytest.fixture(scope="session", autouse=True)
def _graph_mode():
    import mindspore as ms

    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    yield


@pytest.fixture
def data_dir():
    return DATA_DIR


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A small copy of the built-in demo data (64 px), converted to MindRecord once per session."""
    from mindclip.data import make_demo_data

    folder = str(tmp_path_factory.mktemp("tiny_demo"))
    make_demo_data(folder, n_train=64, n_val=24, image_size=64, seed=0, log=None)
    return folder


@pytest.fixture(scope="session")
def pyramid_demo(tmp_path_factory):
    """The demo data with PyramidCLIP's columns (summaries, ROI stand-ins), 16 training pairs at 64 px."""
    from mindclip.data import make_demo_data

    folder = str(tmp_path_factory.mktemp("pyramid_demo"))
    make_demo_data(folder, n_train=16, n_val=2, image_size=64, seed=0, pyramid=True, log=None)
    return folder
