"""Building, caching and falling back of the compiled CPU deformable-attention kernel."""
import os

import pytest
import torch

from mmseg_maskformer.models.layers import cpu_kernel
from mmseg_maskformer.models.layers.ms_deform_attn import MSDeformAttn


def _skip_when_switched_off():
    """These tests build the kernel, unless it is switched off on purpose."""
    if os.environ.get('MMSEG_MASKFORMER_CPU_KERNEL', '1') == '0':
        pytest.skip('compiled CPU kernel switched off (MMSEG_MASKFORMER_CPU_KERNEL=0)')


@pytest.fixture
def fresh_state(monkeypatch, tmp_path):
    """A kernel module that has not tried to load yet, caching under tmp_path."""
    monkeypatch.setattr(cpu_kernel, '_library', None)
    monkeypatch.setattr(cpu_kernel, '_failure', None)
    monkeypatch.setattr(cpu_kernel, '_openmp', False)  # restored with the library after
    monkeypatch.setenv('MMSEG_MASKFORMER_CACHE', str(tmp_path))
    return tmp_path


def test_builds_into_the_cache_once(fresh_state):
    _skip_when_switched_off()
    assert cpu_kernel.kernel_available(), cpu_kernel.kernel_failure()
    built = list(fresh_state.glob('ms_deform_attn_cpu_*.so'))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    # a second build finds it: nothing is compiled again, no temporary file is left
    assert cpu_kernel._build(os.environ.get('CC', 'cc'), openmp=True) == built[0]
    assert built[0].stat().st_mtime_ns == stamp
    assert sorted(p.name for p in fresh_state.iterdir()) == [built[0].name]


def test_missing_compiler_falls_back_with_the_reason(fresh_state, monkeypatch):
    monkeypatch.setenv('CC', str(fresh_state / 'no-such-compiler'))
    assert not cpu_kernel.kernel_available()
    assert 'no-such-compiler' in cpu_kernel.kernel_failure()
    with pytest.raises(RuntimeError, match='not available'):
        cpu_kernel.ms_deform_attn_cpu(torch.zeros(1, 1, 1, 1), torch.ones(1, 2).long(),
                                      torch.zeros(1, 1, 1, 1, 1, 2), torch.ones(1, 1, 1, 1, 1))
    # the module still works, through the pure-PyTorch cores
    attn = MSDeformAttn(embed_dims=8, num_levels=1, num_heads=2, num_points=2)
    out = attn(torch.randn(1, 3, 8), torch.rand(1, 3, 1, 2), torch.randn(1, 6, 8),
               torch.tensor([[2, 3]]), torch.tensor([0]))
    assert out.shape == (1, 3, 8) and bool(torch.isfinite(out).all())


def test_failed_compilation_is_reported(fresh_state, monkeypatch):
    script = fresh_state / 'broken-cc'
    script.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo broken 1.0; exit 0; fi\n'
                      'echo "error: no space left" >&2\nexit 1\n')
    script.chmod(0o755)
    monkeypatch.setenv('CC', str(script))
    assert not cpu_kernel.kernel_available()
    assert 'no space left' in cpu_kernel.kernel_failure()
    assert not list(fresh_state.glob('*.so'))  # no partial library is left


def test_switched_off_by_environment(fresh_state, monkeypatch):
    monkeypatch.setenv('MMSEG_MASKFORMER_CPU_KERNEL', '0')
    assert not cpu_kernel.kernel_available()
    assert 'MMSEG_MASKFORMER_CPU_KERNEL=0' in cpu_kernel.kernel_failure()


def test_openmp_build_shares_the_runtime_pytorch_loaded(fresh_state):
    """One OpenMP runtime in the process: the kernel runs on PyTorch's own threads."""
    _skip_when_switched_off()
    if not os.path.exists('/proc/self/maps'):
        pytest.skip('needs /proc/self/maps to list the loaded libraries')
    assert cpu_kernel.kernel_available(), cpu_kernel.kernel_failure()
    assert cpu_kernel._openmp and cpu_kernel._library.msda_openmp() == 1
    with open('/proc/self/maps') as maps:
        runtimes = {line.split()[-1] for line in maps if 'libgomp' in line or 'libomp' in line}
    assert len(runtimes) == 1, runtimes


def test_compiler_without_openmp_gives_a_threaded_build_without_it(fresh_state, monkeypatch):
    _skip_when_switched_off()
    monkeypatch.setattr(cpu_kernel, '_OPENMP_FLAGS', ['-fno-such-openmp-option'])
    assert cpu_kernel.kernel_available(), cpu_kernel.kernel_failure()
    assert not cpu_kernel._openmp and cpu_kernel._library.msda_openmp() == 0
    assert len(list(fresh_state.glob('*.so'))) == 1  # the failed build left nothing
    value = torch.randn(1, 6, 2, 4)
    locations = torch.rand(1, 5, 2, 1, 3, 2)
    weights = torch.rand(1, 5, 2, 1, 3)
    shapes = torch.tensor([[2, 3]])
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = cpu_kernel.ms_deform_attn_cpu(value, shapes, locations, weights)
        torch.set_num_threads(1)
        one = cpu_kernel.ms_deform_attn_cpu(value, shapes, locations, weights)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and bool(one.abs().sum() > 0)
