"""Where adapter folders written before the method moved into `sdoc_model.method` find their
loader: their shim files import this module. Newer folders import from `sdoc_model`."""

from sdoc_model.method.hf_config import SparseDoctorHFConfig
from sdoc_model.method.hf_model import SparseDoctorForCausalLM

__all__ = ["SparseDoctorForCausalLM", "SparseDoctorHFConfig"]
