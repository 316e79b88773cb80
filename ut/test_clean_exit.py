"""The test command ends with pytest's summary: MindSpore's harmless `Cell.__del__` teardown noise is
dropped at interpreter exit (mindclip/__init__.py), and any other error at exit is still shown."""
import subprocess
import sys

from train_helpers import tool_env

TEST_FILE = '''
import mindspore as ms
from mindspore import nn

import mindclip  # noqa: F401


class Cell:
    """Stands for mindspore's Cell at interpreter exit: its __del__ runs after the globals it reads are gone."""

    def __del__(self):
        raise AttributeError("'NoneType' object has no attribute 'total_instance_count'")


REAL_CELLS = [nn.Dense(3, 3) for _ in range(4)]  # alive until the interpreter exits
STAND_INS = [Cell() for _ in range(50)]
{extra}


def test_cells_run():
    assert REAL_CELLS[0](ms.Tensor([[1.0, 2.0, 3.0]])).shape == (1, 3)
'''

OTHER_ERROR = '''
class Resource:
    def __del__(self):
        raise RuntimeError("a real error while closing a resource")


OTHERS = [Resource()]
'''


def run_pytest(tmp_path, extra=""):
    path = tmp_path / "test_exit_noise.py"
    path.write_text(TEST_FILE.format(extra=extra))
    result = subprocess.run([sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider"],
                            cwd=tmp_path, env=tool_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return (result.stdout + result.stderr).rstrip().splitlines()


def test_output_ends_with_the_summary_line(tmp_path):
    lines = run_pytest(tmp_path)
    assert lines[-1].startswith("1 passed"), lines[-10:]
    assert not any("total_instance_count" in line for line in lines)


def test_other_errors_at_exit_are_still_shown(tmp_path):
    lines = run_pytest(tmp_path, OTHER_ERROR)
    assert any("a real error while closing a resource" in line for line in lines), lines[-10:]
    assert not any("total_instance_count" in line for line in lines)

