"""Where adapter folders written before the method moved into `sdoc_model.method` find their
loader: their shim files import `sdoc_model.hf_checkpoint`. Newer folders import `sdoc_model`."""

from sdoc_model.method.hf_model import SparseDoctorForCausalLM, SparseDoctorHFConfig

__all__ = ["SparseDoctorForCausalLM", "SparseDoctorHFConfig"]
