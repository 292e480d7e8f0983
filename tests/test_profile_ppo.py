"""benchmarks/profile_ppo.py: which compiled operations count as dense products, and its bad input."""

from benchmarks import profile_ppo
from tests.one_line_error import assert_one_line_error

HLO = """HloModule jit_update

%fused_computation.6 (param_0.7: f32[8,128,64], param_1.7: f32[8,64,64]) -> f32[8,128,64] {
  %param_0.7 = f32[8,128,64]{2,1,0} parameter(0)
  %param_1.7 = f32[8,64,64]{2,1,0} parameter(1)
  ROOT %dot.1 = f32[8,128,64]{2,1,0} dot(%param_0.7, %param_1.7), lhs_batch_dims={0}
}

%fused_computation.7 (param_0.8: f32[8,128,64]) -> f32[8,128,64] {
  %param_0.8 = f32[8,128,64]{2,1,0} parameter(0)
  ROOT %tanh.2 = f32[8,128,64]{2,1,0} tanh(%param_0.8)
}

ENTRY %main.9 (p0: f32[8,128,64], p1: f32[8,64,64]) -> f32[8,64,64] {
  %p0 = f32[8,128,64]{2,1,0} parameter(0)
  %p1 = f32[8,64,64]{2,1,0} parameter(1)
  %ynn_fusion.6 = f32[8,128,64]{2,1,0} fusion(%p0, %p1), kind=kCustom, calls=%fused_computation.6
  %add_tanh_fusion.5 = f32[8,128,64]{2,1,0} fusion(%ynn_fusion.6), kind=kLoop, calls=%fused_computation.7
  ROOT %dot.30 = f32[8,64,64]{2,1,0} dot(%add_tanh_fusion.5, %p0), lhs_batch_dims={0}
}
"""


def test_dense_operations_are_dots_and_the_fusions_around_them():
    assert profile_ppo.dense_operations(HLO) == {"ynn_fusion.6", "dot.30", "dot.1"}


def test_bad_input_is_one_line(capsys):
    assert_one_line_error(profile_ppo.main, ["--iterations", "0"], "--iterations must be positive", capsys)
    assert_one_line_error(profile_ppo.main, ["--num-seeds", "-1"], "--num-seeds must be positive", capsys)
