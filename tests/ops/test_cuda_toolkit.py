"""`kerasrwm.ops.cuda_toolkit`: toolkits found in fake NVIDIA, pip, conda and Debian layouts."""

from pathlib import Path

from kerasrwm.ops import cuda_toolkit
from tests.ops.fake_cuda import multiarch
from tests.ops.fake_cuda import pip_toolkit
from tests.ops.fake_cuda import prefix_toolkit
from tests.ops.fake_cuda import write_nvcc


def verdicts(choice):
    return {str(candidate.nvcc): verdict for candidate, verdict in choice.candidates}


def test_no_toolkit_says_what_to_install(isolated_discovery):
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit is None and choice.candidates == ()
    assert "no usable CUDA 12.x toolkit" in choice.reason
    assert "nvidia-cuda-nvcc-cu12" in choice.reason and "kerasrwm build-ops --force" in choice.reason


def test_tensorflow_without_cuda_needs_no_toolkit(isolated_discovery):
    assert cuda_toolkit.choose(None) == cuda_toolkit.CudaChoice(None, "TensorFlow is not a CUDA build")


def test_toolkit_of_tensorflows_major_version_is_chosen_and_others_rejected(isolated_discovery, monkeypatch):
    root = isolated_discovery
    monkeypatch.setenv("CUDA_HOME", str(root / "cuda-13"))
    monkeypatch.setenv("CUDA_PATH", str(root / "cuda-12.2"))
    thirteen = prefix_toolkit(root / "cuda-13", "13.0")
    twelve = prefix_toolkit(root / "cuda-12.2", "12.2")
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit.nvcc == twelve and choice.toolkit.version == "12.2"
    assert choice.toolkit.runtime == root / "cuda-12.2" / "lib64" / "libcudart_static.a"
    assert "12.5.1" in choice.reason
    assert verdicts(choice) == {
        str(thirteen): "rejected: CUDA 13.0, TensorFlow needs a CUDA 12.x toolkit",
        str(twelve): "chosen",
    }


def test_closest_minor_version_is_preferred(isolated_discovery, monkeypatch):
    root = isolated_discovery
    monkeypatch.setenv("CUDA_HOME", str(root / "cuda-12.2"))
    monkeypatch.setenv("CUDA_PATH", str(root / "cuda-12.5"))
    prefix_toolkit(root / "cuda-12.2", "12.2")
    prefix_toolkit(root / "cuda-12.5", "12.5")
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit.version == "12.5"
    assert "not chosen: CUDA 12.5 is closer" in verdicts(choice)[str(root / "cuda-12.2" / "bin" / "nvcc")]


def test_pip_wheels_link_the_shared_runtime_and_add_its_headers(isolated_discovery, monkeypatch):
    site = isolated_discovery / "site-packages"
    nvcc = pip_toolkit(site, "12.5")
    monkeypatch.setattr(cuda_toolkit, "site_dirs", lambda: [site])
    toolkit = cuda_toolkit.choose("12.5.1").toolkit
    runtime = site / "nvidia" / "cuda_runtime"
    assert toolkit == cuda_toolkit.CudaToolkit(
        nvcc, "12.5", runtime / "lib" / "libcudart.so.12", (runtime / "include",)
    )
    assert toolkit.link_flags == [f"-L{runtime / 'lib'}", "-l:libcudart.so.12", f"-Wl,-rpath,{runtime / 'lib'}"]


def test_conda_environment_with_the_runtime_in_targets(isolated_discovery, monkeypatch):
    prefix = isolated_discovery / "conda"
    monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    prefix_toolkit(prefix, "12.4", library_dir="targets/x86_64-linux/lib")
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit.runtime == prefix / "targets" / "x86_64-linux" / "lib" / "libcudart_static.a"
    assert choice.candidates[0][0].origin == "$CONDA_PREFIX"
    assert choice.toolkit.link_flags[:2] == [f"-L{prefix / 'targets' / 'x86_64-linux' / 'lib'}", "-lcudart_static"]


def test_conda_environment_with_the_runtime_in_lib(isolated_discovery, monkeypatch):
    prefix = isolated_discovery / "conda"
    monkeypatch.setenv("CONDA_PREFIX", str(prefix))
    prefix_toolkit(prefix, "12.5", library_dir="lib")
    assert cuda_toolkit.choose("12.5.1").toolkit.runtime == prefix / "lib" / "libcudart_static.a"


def test_debian_package_with_the_runtime_in_the_multiarch_folder(isolated_discovery, monkeypatch):
    usr = isolated_discovery / "usr"
    monkeypatch.setattr(cuda_toolkit, "SYSTEM_PREFIX", usr)
    prefix_toolkit(usr, "12.4", library_dir=f"lib/{multiarch()}")
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit.runtime == usr / "lib" / multiarch() / "libcudart_static.a"
    assert "Debian" in choice.candidates[0][0].origin


def test_debian_nvcc_on_path_is_a_link_into_another_folder(isolated_discovery, monkeypatch):
    """/usr/bin/nvcc pointing into /usr/lib/nvidia-cuda-toolkit: the runtime is found beside the link."""
    usr = isolated_discovery / "usr"
    real = write_nvcc(usr / "lib" / "nvidia-cuda-toolkit" / "bin" / "nvcc", "12.4")
    (usr / "bin").mkdir(parents=True)
    (usr / "bin" / "nvcc").symlink_to(real)
    (usr / "lib" / multiarch()).mkdir(parents=True)
    (usr / "lib" / multiarch() / "libcudart_static.a").write_bytes(b"!<arch>\n")
    monkeypatch.setattr(cuda_toolkit, "nvcc_on_path", lambda: str(usr / "bin" / "nvcc"))
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit.runtime == usr / "lib" / multiarch() / "libcudart_static.a"
    rejected = [verdict for candidate, verdict in choice.candidates if candidate.nvcc == real]
    assert rejected and "no CUDA runtime" in rejected[0]


def test_local_installs_newest_first(isolated_discovery, monkeypatch):
    local = isolated_discovery / "local"
    monkeypatch.setattr(cuda_toolkit, "LOCAL_ROOT", local)
    for version in ("12.1", "12.3"):
        prefix_toolkit(local / f"cuda-{version}", version)
    found = [candidate.version for candidate in cuda_toolkit.candidates()]
    assert found == ["12.3", "12.1"]


def test_toolkit_without_runtime_or_with_a_broken_nvcc_is_rejected_with_the_reason(isolated_discovery, monkeypatch):
    root = isolated_discovery
    monkeypatch.setenv("CUDA_HOME", str(root / "no-runtime"))
    monkeypatch.setenv("CUDA_PATH", str(root / "broken"))
    prefix_toolkit(root / "no-runtime", "12.5", runtime=None)
    write_nvcc(root / "broken" / "bin" / "nvcc", version=None)
    choice = cuda_toolkit.choose("12.5.1")
    assert choice.toolkit is None
    found = verdicts(choice)
    assert found[str(root / "no-runtime" / "bin" / "nvcc")].startswith("rejected: no CUDA runtime")
    assert "libcudart.so.12" in found[str(root / "no-runtime" / "bin" / "nvcc")]
    assert found[str(root / "broken" / "bin" / "nvcc")] == "rejected: nvcc does not run or prints no release version"
    assert "no-runtime" in choice.reason and "broken" in choice.reason


def test_the_same_nvcc_is_listed_once(isolated_discovery, monkeypatch):
    root = isolated_discovery
    prefix_toolkit(root / "cuda", "12.5")
    monkeypatch.setenv("CUDA_HOME", str(root / "cuda"))
    monkeypatch.setenv("CUDA_PATH", str(root / "cuda"))
    monkeypatch.setattr(cuda_toolkit, "nvcc_on_path", lambda: str(root / "cuda" / "bin" / "nvcc"))
    assert [Path(c.nvcc) for c in cuda_toolkit.candidates()] == [root / "cuda" / "bin" / "nvcc"]
